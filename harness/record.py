"""The run record: everything a detector may know about one training run.

A record is built in the worker from what training produced, stored as JSON,
and handed to detectors as a deeply read-only `RunRecord`. By construction it
holds no ground truth: no case id, title, cause, symptom or dataset name; the
oracle's inputs (clean held-out scores) and verdict live beside it, outside
`RunRecord`, and a detector only ever receives a record with an opaque key.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Annotated, Any, Literal, Mapping

from pydantic import AfterValidator, ConfigDict, Strict, TypeAdapter, ValidationError

from .registry import suggest

__all__ = ["SCHEMA_VERSION", "OUTCOMES", "VIEW_STATUSES", "QUANTILES", "RunRecord", "EpochTrace", "StepTrace",
           "DataProfile", "ModelSummary", "LayerInfo", "Outcome", "Environment", "RecordError", "freeze", "thaw",
           "truncate", "without_timings"]

SCHEMA_VERSION = 1
# How a run ends, the only statuses a worker writes. `harness_error`: the harness's own code raised, not
# the training under test (see train.run_task for the rule); such a run satisfies no oracle and is not cached.
OUTCOMES = ("completed", "nan", "stopped_early", "crashed", "timeout", "harness_error")
# Statuses of in-memory views, never of a finished run: "running" is `truncate`'s record of a run still in
# progress (what an online detector sees after some epochs), "unknown" the blank `Outcome()` of a record
# built without one (a detector that does not declare `outcome` in its needs gets that). They are accepted
# by `from_dict` only so that every record round-trips; `RunRecord.finished` (the worker's check) refuses them.
VIEW_STATUSES = ("running", "unknown")
# The levels of every quantile list in a step record (`StepTrace.*_quantiles`, `grad_p5`/`grad_p95`):
# a distribution, not a fraction frozen at one bound, so each detector applies its own saturation or
# dead-unit threshold (SageMaker's tanh +-9.4999 as well as DeepDiagnosis's |x| >= 5).
QUANTILES = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)


def freeze(obj: Any) -> Any:
    """JSON-like data as immutable mappings and tuples."""
    if isinstance(obj, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in obj.items()})
    if isinstance(obj, (list, tuple)):
        return tuple(freeze(v) for v in obj)
    return obj


_SCALARS = (str, int, float, bool, type(None))


def thaw(obj: Any) -> Any:
    """The inverse of freeze (and of the dataclasses below): plain JSON-able data."""
    if isinstance(obj, _SCALARS):   # checked first: a record is mostly numbers, and isinstance against the
        return obj                  # abstract Mapping is ~20x slower than against concrete types
    if isinstance(obj, (list, tuple)):
        return [v if isinstance(v, _SCALARS) else thaw(v) for v in obj]
    if isinstance(obj, (dict, MappingProxyType)):
        return {k: v if isinstance(v, _SCALARS) else thaw(v) for k, v in obj.items()}
    if hasattr(obj, "__dataclass_fields__"):
        return {f.name: thaw(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, Mapping):
        return {k: thaw(v) for k, v in obj.items()}
    return obj


# Field types, checked by pydantic when a record is read or written (see RunRecord.from_dict). Scalars are
# strict (a string is no number, 0 is no bool; an int is a float), sequences become tuples and mappings
# read-only views, so what a detector receives is deeply immutable.
Int = Annotated[int, Strict()]
Num = Annotated[float, Strict()]
Str = Annotated[str, Strict()]
Bool = Annotated[bool, Strict()]
Shape = tuple[Int, ...]
Nums = tuple[Num, ...]
NumMap = Annotated[dict[str, Num], AfterValidator(MappingProxyType)]    # per layer or per log key
IntMap = Annotated[dict[str, Int], AfterValidator(MappingProxyType)]
StrMap = Annotated[dict[str, Str], AfterValidator(MappingProxyType)]
NumsMap = Annotated[dict[str, Nums], AfterValidator(MappingProxyType)]   # per layer: one value per QUANTILES level
Status = Literal[OUTCOMES + VIEW_STATUSES]
_STRICT = ConfigDict(extra="forbid")    # an unknown field is an error, never silently dropped


def _empty() -> Mapping:
    return MappingProxyType({})


@dataclass(frozen=True)
class DataProfile:
    """Statistics of the data as the model saw it (after every transform)."""
    __pydantic_config__ = _STRICT
    n_train: Int = 0
    n_val: Int = 0
    input_shape: Shape = ()
    x_dtype: Str = ""
    y_dtype: Str = ""
    task_kind: Str = ""            # classification | regression, inferred from the labels
    label_shape: Shape = ()        # (k,) for one-hot labels, () for integer labels
    n_classes: Int = 0
    feature_min: Nums = ()         # per feature (last axis), over the training split
    feature_max: Nums = ()
    feature_mean: Nums = ()
    feature_std: Nums = ()
    nan_count: Int = 0             # training + validation inputs
    inf_count: Int = 0
    class_counts_train: IntMap = field(default_factory=_empty)
    class_counts_val: IntMap = field(default_factory=_empty)
    duplicate_rows_train_val: Int = 0   # validation rows that also occur in training
    feature_target_corr: Nums = ()      # |Pearson r| of each feature with the target (train)
    target_mean: Num = math.nan
    target_std: Num = math.nan
    target_min: Num = math.nan
    target_max: Num = math.nan
    input_min: Num = math.nan          # over every input value (all features), training split
    input_max: Num = math.nan


@dataclass(frozen=True)
class LayerInfo:
    __pydantic_config__ = _STRICT
    name: Str                      # required: every per-layer mapping of the trace is keyed by it
    kind: Str = ""                 # Keras class name
    activation: Str = ""
    units: Int = 0
    params: Int = 0
    trainable: Bool = True         # False: frozen; it has no entry in any gradient statistic of the trace
    kernel_initializer: Str = ""
    bias_initializer: Str = ""
    recurrent_activation: Str = ""  # recurrent layers (LSTM/GRU gates); "" elsewhere
    dropout_rate: Num = 0.0        # a Dropout layer's rate, a recurrent layer's input dropout; 0 elsewhere
    recurrent_dropout_rate: Num = 0.0


@dataclass(frozen=True)
class ModelSummary:
    __pydantic_config__ = _STRICT
    layers: tuple[LayerInfo, ...] = ()
    total_params: Int = 0
    trainable_params: Int = 0
    optimizer: Str = ""
    learning_rate: Num = math.nan
    loss: Str = ""
    metrics: tuple[Str, ...] = ()
    batch_size: Int = 0
    epochs: Int = 0
    output_units: Int = 0
    output_activation: Str = ""


@dataclass(frozen=True)
class StepTrace:
    """One recorded training step (batch), at the run's `trace_every` resolution.

    Gradient statistics are over the gradients Keras applied on that very batch (before any
    clipping), per trainable layer's kernel; frozen layers have no entry. Activation quantiles are
    on the fixed probe batch after the step, at the QUANTILES levels, over the finite values.
    Weight statistics and update ratios are of each weighted layer's kernel, the ratio against the
    previous recorded step."""
    __pydantic_config__ = _STRICT
    step: Int                       # global 0-based step (batch) index over the run
    batch: Int = 0                  # 0-based batch index within its epoch
    loss: Num = math.nan            # the loss of this batch (regularisers included), not a running mean
    grad_norms: NumMap = field(default_factory=_empty)
    grad_mean_abs: NumMap = field(default_factory=_empty)
    grad_max_abs: NumMap = field(default_factory=_empty)
    grad_p5: NumMap = field(default_factory=_empty)     # 5th / 95th percentile of the gradient's values
    grad_p95: NumMap = field(default_factory=_empty)
    grad_zero_fraction: NumMap = field(default_factory=_empty)
    grad_nonfinite: IntMap = field(default_factory=_empty)  # NaN or infinite gradient entries
    activation_quantiles: NumsMap = field(default_factory=_empty)     # layer outputs
    preactivation_quantiles: NumsMap = field(default_factory=_empty)  # inputs to the activation (Dense, Conv)
    weight_min: NumMap = field(default_factory=_empty)
    weight_max: NumMap = field(default_factory=_empty)
    weight_var: NumMap = field(default_factory=_empty)
    update_ratios: NumMap = field(default_factory=_empty)  # ||W_s - W_prev|| / ||W_prev||, prev = last recorded step


@dataclass(frozen=True)
class EpochTrace:
    """One epoch. Per-layer mappings are keyed by layer name, in model order.

    Only `epoch` is required: an epoch a crash interrupted has no probe measurements (their defaults)."""
    __pydantic_config__ = _STRICT
    epoch: Int
    completed: Bool = True          # False for an epoch interrupted by a crash
    logs: NumMap = field(default_factory=_empty)   # Keras logs: loss, accuracy, val_loss, val_accuracy ...
    steps: Int = 0                  # train batches actually run
    expected_steps: Int = 0         # the steps Keras was told to run
    batch_shapes: tuple[tuple[Shape, Int], ...] = ()   # distinct input batch shapes seen, with counts
    seconds: Num = 0.0
    weight_norms: NumMap = field(default_factory=_empty)
    update_ratios: NumMap = field(default_factory=_empty)      # ||W_t - W_{t-1}|| / ||W_{t-1}||
    grad_norms: NumMap = field(default_factory=_empty)         # on the fixed probe batch; trainable layers only
    grad_mean: NumMap = field(default_factory=_empty)
    grad_mean_abs: NumMap = field(default_factory=_empty)
    grad_zero_fraction: NumMap = field(default_factory=_empty)
    grad_zero_fraction_all: Num = math.nan            # exact zeros over every trainable variable
    weight_mean: NumMap = field(default_factory=_empty)
    weight_var: NumMap = field(default_factory=_empty)
    dead_relu_fraction: NumMap = field(default_factory=_empty)  # units zero on every probe input
    relu_zero_fraction: NumMap = field(default_factory=_empty)  # outputs <= 0
    saturated_fraction: NumMap = field(default_factory=_empty)  # sigmoid/tanh with |input| >= 5
    activation_mean: NumMap = field(default_factory=_empty)
    activation_std: NumMap = field(default_factory=_empty)
    activation_min: NumMap = field(default_factory=_empty)
    activation_max: NumMap = field(default_factory=_empty)
    nonfinite: Bool = False          # loss, weights or gradients not finite
    weights_nonfinite: Bool = False
    grads_nonfinite: Bool = False
    learning_rate: Num = math.nan    # the optimizer's learning rate at the end of the epoch (schedules applied)
    step_trace: tuple[StepTrace, ...] = ()   # the recorded steps of this epoch; empty at the default resolution


@dataclass(frozen=True)
class Outcome:
    """How the run ended. `status` defaults to "unknown" (a record built without an outcome, see
    VIEW_STATUSES) so that a blank `Outcome()` stands for a part a detector did not ask for."""
    __pydantic_config__ = _STRICT
    status: Status = "unknown"       # one of OUTCOMES for a finished run
    exception_type: Str = ""
    message: Str = ""
    epochs_run: Int = 0
    wall_seconds: Num = 0.0


@dataclass(frozen=True)
class Environment:
    __pydantic_config__ = _STRICT
    python: Str = ""
    tensorflow: Str = ""
    keras: Str = ""
    numpy: Str = ""
    sklearn: Str = ""
    jax: Str = ""                    # set when the backend is jax
    torch: Str = ""                  # set when the backend is torch
    backend: Str = ""
    device: Str = ""
    device_name: Str = ""
    platform: Str = ""
    cpu_model: Str = ""
    cpu_vendor: Str = ""
    arch: Str = ""
    cpu_flags: tuple[Str, ...] = ()  # the SIMD features that change numerics (hardware.NUMERIC_FLAGS)
    onednn: Str = ""                 # on | off (TF_ENABLE_ONEDNN_OPTS)
    numeric_env: StrMap = field(default_factory=_empty)   # TF_ENABLE_ONEDNN_OPTS, ONEDNN_MAX_CPU_ISA
    threads: Int = 0                 # intra-op threads of the worker
    probes: StrMap = field(default_factory=_empty)        # platform probe readings, e.g. relu_nan


class RecordError(ValueError):
    """A record that does not match the schema; `problems` holds one 'path: what is wrong' line each."""

    def __init__(self, problems: list[str], key: object = None):
        self.problems = problems
        which = f" {key!r}" if isinstance(key, str) else ""
        super().__init__(f"invalid run record{which}:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class RunRecord:
    __pydantic_config__ = _STRICT
    key: Str
    schema_version: Literal[1] = SCHEMA_VERSION
    seed: Int = 0
    trace_every: Int = 0             # step records every k batches (EpochTrace.step_trace); 0: per epoch only
    data: DataProfile = field(default_factory=DataProfile)
    model: ModelSummary = field(default_factory=ModelSummary)
    trace: tuple[EpochTrace, ...] = ()
    outcome: Outcome = field(default_factory=Outcome)
    environment: Environment = field(default_factory=Environment)

    @classmethod
    def from_dict(cls, d: Mapping) -> "RunRecord":
        """The record in plain data (JSON), validated against the dataclasses' types by pydantic.

        Strict, so a misspelled or missing field surfaces where it happens instead of as an empty
        mapping a detector silently reads: an unknown field, a missing required one (`key`, each
        epoch's `epoch`, each layer's `name`), a value of the wrong kind or a status outside
        OUTCOMES + VIEW_STATUSES raise RecordError with every problem's path. Parts that are absent
        take their defaults (a failure record has no data profile; a synthetic one may have no outcome).
        """
        if not isinstance(d, Mapping):
            raise RecordError([f"record: expected a mapping, got {type(d).__name__}"])
        try:
            return _adapter().validate_python(dict(d))
        except ValidationError as e:
            raise RecordError([_problem(err) for err in e.errors()], d.get("key")) from None

    @classmethod
    def finished(cls, d: Mapping) -> "RunRecord":
        """A record as a worker writes it: `from_dict`'s checks, and an outcome that says how the run
        ended (one of OUTCOMES), so that a wrong record fails in the worker, at write time."""
        if isinstance(d, Mapping) and "outcome" not in d:
            raise RecordError(["outcome: required in a finished run's record"])
        rec = cls.from_dict(d)
        if rec.outcome.status not in OUTCOMES:
            raise RecordError([f"outcome.status: '{rec.outcome.status}' is not a finished run; "
                               f"expected one of: {', '.join(OUTCOMES)}"])
        return rec

    def to_dict(self) -> dict:
        return thaw(self)

    @property
    def layer_names(self) -> tuple:
        return tuple(layer.name for layer in self.model.layers)


@functools.cache
def _adapter() -> TypeAdapter:
    """Built on first use: the schema costs milliseconds, which a process that never reads a record skips."""
    return TypeAdapter(RunRecord)


def _path(loc: tuple) -> str:
    """('trace', 3, 'grad_norm') -> 'trace[3].grad_norm'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "record"


def _part_at(loc: tuple) -> type | None:
    """The record dataclass that holds the field at `loc`, for 'did you mean' among its own fields."""
    cls: Any = RunRecord
    for name in (p for p in loc if isinstance(p, str)):
        hint = typing.get_type_hints(cls).get(name)
        cls = next((t for t in (hint, *typing.get_args(hint)) if dataclasses.is_dataclass(t)), None)
        if cls is None:
            return None
    return cls


def _problem(err: dict) -> str:
    """One pydantic error as 'path: what is wrong'."""
    loc = tuple(err["loc"])
    kind = err["type"]
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        part = _part_at(loc[:-1])
        hint = suggest(str(loc[-1]), [f.name for f in fields(part)]).strip() if part else ""
        return f"{_path(loc)}: unknown field" + (f" ({hint})" if hint else "")
    if kind in ("missing", "missing_argument", "missing_keyword_argument"):
        return f"{_path(loc)}: required field is missing"
    got = err.get("input")
    shown = repr(got) if isinstance(got, (str, int, float, bool)) or got is None else f"a {type(got).__name__}"
    return f"{_path(loc)}: {err['msg']} (got {shown})"


TIMING_FIELDS = frozenset({"seconds", "wall_seconds"})


def without_timings(obj):
    """A record (as plain data) with wall-clock fields removed: what must be identical across reruns."""
    if isinstance(obj, dict):
        return {k: without_timings(v) for k, v in obj.items() if k not in TIMING_FIELDS}
    if isinstance(obj, list):
        return [without_timings(v) for v in obj]
    return obj


def truncate(record: RunRecord, epochs: int) -> RunRecord:
    """The record as it stood after `epochs` epochs: what an online detector had seen then (a view, whose
    outcome is "running" until the last epoch)."""
    from dataclasses import replace

    trace = record.trace[:epochs]
    done = epochs >= len(record.trace)
    return replace(record, trace=trace, outcome=record.outcome if done else Outcome(
        status="running", epochs_run=len(trace), wall_seconds=sum(e.seconds for e in trace)))
