"""The run record: everything a detector may know about one training run.

A record is built in the worker from what training produced, stored as JSON,
and handed to detectors as a deeply read-only `RunRecord`. By construction it
holds no ground truth: no case id, title, cause, symptom or dataset name; the
oracle's inputs (clean held-out scores) and verdict live beside it, outside
`RunRecord`, and a detector only ever receives a record with an opaque key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Mapping

__all__ = ["SCHEMA_VERSION", "OUTCOMES", "RunRecord", "EpochTrace", "DataProfile", "ModelSummary",
           "LayerInfo", "Outcome", "Environment", "freeze", "thaw", "truncate", "without_timings"]

SCHEMA_VERSION = 1
OUTCOMES = ("completed", "nan", "stopped_early", "crashed", "timeout")


def freeze(obj: Any) -> Any:
    """JSON-like data as immutable mappings and tuples."""
    if isinstance(obj, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in obj.items()})
    if isinstance(obj, (list, tuple)):
        return tuple(freeze(v) for v in obj)
    return obj


def thaw(obj: Any) -> Any:
    """The inverse of freeze (and of the dataclasses below): plain JSON-able data."""
    if hasattr(obj, "__dataclass_fields__"):
        return {f.name: thaw(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, Mapping):
        return {k: thaw(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [thaw(v) for v in obj]
    return obj


def _build(cls, data: Mapping | None):
    """Construct a frozen dataclass from a mapping, tolerating missing optional keys."""
    data = data or {}
    kw = {}
    for f in fields(cls):
        if f.name in data:
            kw[f.name] = freeze(data[f.name])
    return cls(**kw)


@dataclass(frozen=True)
class DataProfile:
    """Statistics of the data as the model saw it (after every transform)."""
    n_train: int = 0
    n_val: int = 0
    input_shape: tuple = ()
    x_dtype: str = ""
    y_dtype: str = ""
    task_kind: str = ""            # classification | regression, inferred from the labels
    label_shape: tuple = ()        # (k,) for one-hot labels, () for integer labels
    n_classes: int = 0
    feature_min: tuple = ()        # per feature (last axis), over the training split
    feature_max: tuple = ()
    feature_mean: tuple = ()
    feature_std: tuple = ()
    nan_count: int = 0             # training + validation inputs
    inf_count: int = 0
    class_counts_train: Mapping = field(default_factory=lambda: MappingProxyType({}))
    class_counts_val: Mapping = field(default_factory=lambda: MappingProxyType({}))
    duplicate_rows_train_val: int = 0   # validation rows that also occur in training
    feature_target_corr: tuple = ()     # |Pearson r| of each feature with the target (train)
    target_mean: float = math.nan
    target_std: float = math.nan
    target_min: float = math.nan
    target_max: float = math.nan
    input_min: float = math.nan        # over every input value (all features), training split
    input_max: float = math.nan


@dataclass(frozen=True)
class LayerInfo:
    name: str = ""
    kind: str = ""                 # Keras class name
    activation: str = ""
    units: int = 0
    params: int = 0
    trainable: bool = True
    kernel_initializer: str = ""


@dataclass(frozen=True)
class ModelSummary:
    layers: tuple = ()             # of LayerInfo
    total_params: int = 0
    trainable_params: int = 0
    optimizer: str = ""
    learning_rate: float = math.nan
    loss: str = ""
    metrics: tuple = ()
    batch_size: int = 0
    epochs: int = 0
    output_units: int = 0
    output_activation: str = ""


@dataclass(frozen=True)
class EpochTrace:
    """One epoch. Per-layer mappings are keyed by layer name, in model order."""
    epoch: int = 0
    completed: bool = True          # False for an epoch interrupted by a crash
    logs: Mapping = field(default_factory=lambda: MappingProxyType({}))   # Keras logs: loss, accuracy, val_loss, val_accuracy ...
    steps: int = 0                  # train batches actually run
    expected_steps: int = 0         # the steps Keras was told to run
    batch_shapes: tuple = ()        # distinct input batch shapes seen, with counts: ((shape, count), ...)
    seconds: float = 0.0
    weight_norms: Mapping = field(default_factory=lambda: MappingProxyType({}))
    update_ratios: Mapping = field(default_factory=lambda: MappingProxyType({}))      # ||W_t - W_{t-1}|| / ||W_{t-1}||
    grad_norms: Mapping = field(default_factory=lambda: MappingProxyType({}))         # on the fixed probe batch
    grad_mean: Mapping = field(default_factory=lambda: MappingProxyType({}))
    grad_mean_abs: Mapping = field(default_factory=lambda: MappingProxyType({}))
    grad_zero_fraction: Mapping = field(default_factory=lambda: MappingProxyType({}))
    grad_zero_fraction_all: float = math.nan            # exact zeros over every trainable variable
    weight_mean: Mapping = field(default_factory=lambda: MappingProxyType({}))
    weight_var: Mapping = field(default_factory=lambda: MappingProxyType({}))
    dead_relu_fraction: Mapping = field(default_factory=lambda: MappingProxyType({}))  # units zero on every probe input
    relu_zero_fraction: Mapping = field(default_factory=lambda: MappingProxyType({}))  # outputs <= 0
    saturated_fraction: Mapping = field(default_factory=lambda: MappingProxyType({}))  # sigmoid/tanh with |input| >= 5
    activation_mean: Mapping = field(default_factory=lambda: MappingProxyType({}))
    activation_std: Mapping = field(default_factory=lambda: MappingProxyType({}))
    activation_min: Mapping = field(default_factory=lambda: MappingProxyType({}))
    activation_max: Mapping = field(default_factory=lambda: MappingProxyType({}))
    nonfinite: bool = False          # loss, weights or gradients not finite
    weights_nonfinite: bool = False
    grads_nonfinite: bool = False


@dataclass(frozen=True)
class Outcome:
    status: str = "unknown"          # one of OUTCOMES ("unknown" when not provided)
    exception_type: str = ""
    message: str = ""
    epochs_run: int = 0
    wall_seconds: float = 0.0


@dataclass(frozen=True)
class Environment:
    python: str = ""
    tensorflow: str = ""
    keras: str = ""
    numpy: str = ""
    sklearn: str = ""
    jax: str = ""                    # set when the backend is jax
    torch: str = ""                  # set when the backend is torch
    backend: str = ""
    device: str = ""
    device_name: str = ""
    platform: str = ""
    cpu_model: str = ""
    cpu_vendor: str = ""
    arch: str = ""
    cpu_flags: tuple = ()            # the SIMD features that change numerics (hardware.NUMERIC_FLAGS)
    onednn: str = ""                 # on | off (TF_ENABLE_ONEDNN_OPTS)
    numeric_env: Mapping = field(default_factory=lambda: MappingProxyType({}))   # TF_ENABLE_ONEDNN_OPTS, ONEDNN_MAX_CPU_ISA
    threads: int = 0                 # intra-op threads of the worker
    probes: Mapping = field(default_factory=lambda: MappingProxyType({}))        # platform probe readings, e.g. relu_nan


@dataclass(frozen=True)
class RunRecord:
    key: str
    schema_version: int = SCHEMA_VERSION
    seed: int = 0
    data: DataProfile = field(default_factory=DataProfile)
    model: ModelSummary = field(default_factory=ModelSummary)
    trace: tuple = ()                # of EpochTrace
    outcome: Outcome = field(default_factory=Outcome)
    environment: Environment = field(default_factory=Environment)

    @classmethod
    def from_dict(cls, d: Mapping) -> "RunRecord":
        model = dict(d.get("model") or {})
        model["layers"] = tuple(_build(LayerInfo, x) for x in model.get("layers", ()))
        return cls(key=d["key"], schema_version=d.get("schema_version", SCHEMA_VERSION), seed=d.get("seed", 0),
                   data=_build(DataProfile, d.get("data")),
                   model=ModelSummary(**{k: (v if k == "layers" else freeze(v)) for k, v in model.items()
                                         if k in ModelSummary.__dataclass_fields__}),
                   trace=tuple(_build(EpochTrace, e) for e in d.get("trace", ())),
                   outcome=_build(Outcome, d.get("outcome")),
                   environment=_build(Environment, d.get("environment")))

    def to_dict(self) -> dict:
        return thaw(self)

    @property
    def layer_names(self) -> tuple:
        return tuple(layer.name for layer in self.model.layers)


TIMING_FIELDS = frozenset({"seconds", "wall_seconds"})


def without_timings(obj):
    """A record (as plain data) with wall-clock fields removed: what must be identical across reruns."""
    if isinstance(obj, dict):
        return {k: without_timings(v) for k, v in obj.items() if k not in TIMING_FIELDS}
    if isinstance(obj, list):
        return [without_timings(v) for v in obj]
    return obj


def truncate(record: RunRecord, epochs: int) -> RunRecord:
    """The record as it stood after `epochs` epochs: what an online detector had seen then."""
    from dataclasses import replace

    trace = record.trace[:epochs]
    done = epochs >= len(record.trace)
    return replace(record, trace=trace, outcome=record.outcome if done else Outcome(
        status="running", epochs_run=len(trace), wall_seconds=sum(e.seconds for e in trace)))
