"""Case files: the schema, loading, validation and the broken/fixed merge.

A case is one YAML file `cases/<family>/<id>.yaml`. It holds a `base` task and
two overrides of it, `broken` and `fixed`, deep-merged onto the base (mappings
merge, everything else replaces), so the diff between the two variants is the
fault. Validation is pydantic; every problem is reported as
`file: field.path: what was expected`, with a suggestion for unknown names.
Case files come from strangers' pull requests, so YAML is read with the safe
loader, without aliases, within size and depth limits, and no field is ever
executed or imported.
"""

from __future__ import annotations

import copy
import re
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

import yaml
from pydantic import (BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator,
                      model_serializer, model_validator)

from . import taxonomy
from .data_steps import DATA_STEPS, StepFailed, check_order, load_steps, step_items
from .datasets import DATASETS
from .models import MODELS, LayersModel, LayerSpecError, type_names, types_ok
from .oracle import DIRECTIONS, MEASURES, direction_of
from .pipelines import PIPELINES
from .record import OUTCOMES
from .registry import Registry, UnknownName, suggest
from .transforms import TRANSFORMS

__all__ = ["Case", "Task", "CaseError", "CaseErrors", "load_case", "load_corpus", "resolve_variant", "resolve_sweep",
           "VARIANTS", "case_schema", "CASES_DIR", "MAX_FILE_BYTES", "MAX_DEPTH"]

VARIANTS = ("broken", "fixed")
CASES_DIR = Path(__file__).resolve().parent.parent / "cases"
MAX_FILE_BYTES = 64 * 1024
MAX_DEPTH = 12


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Component(_Strict):
    name: str = Field(description="a registered name")
    params: dict[str, Any] = Field(default_factory=dict, description="keyword parameters of the component")


class EarlyStopping(_Strict):
    monitor: str = "val_loss"
    patience: int = Field(3, ge=0, le=100)
    min_delta: float = Field(0.0, ge=0)
    restore_best_weights: bool = True


#: Built-in optimizer classes a case may name, with the arguments each takes besides the common ones.
_OPTIMIZER_COMMON = {"learning_rate": (float, int), "weight_decay": (float, int, type(None)),
                     "clipnorm": (float, int, type(None)), "clipvalue": (float, int, type(None)),
                     "global_clipnorm": (float, int, type(None)), "use_ema": (bool,), "ema_momentum": (float,),
                     "gradient_accumulation_steps": (int, type(None))}
_ADAM = {"beta_1": (float,), "beta_2": (float,), "epsilon": (float,), "amsgrad": (bool,)}
OPTIMIZER_ARGS: dict[str, dict[str, tuple]] = {
    "SGD": {"momentum": (float, int), "nesterov": (bool,)},
    "Adam": _ADAM, "AdamW": _ADAM, "Nadam": {"beta_1": (float,), "beta_2": (float,), "epsilon": (float,)},
    "Adamax": {"beta_1": (float,), "beta_2": (float,), "epsilon": (float,)},
    "RMSprop": {"rho": (float,), "momentum": (float, int), "epsilon": (float,), "centered": (bool,)},
    "Adagrad": {"initial_accumulator_value": (float,), "epsilon": (float,)},
    "Adadelta": {"rho": (float,), "epsilon": (float,)},
    "Lion": {"beta_1": (float,), "beta_2": (float,)},
}
_XENT = {"from_logits": (bool,), "label_smoothing": (float, int), "axis": (int,)}
#: Built-in loss classes a case may name, with their arguments.
LOSS_ARGS: dict[str, dict[str, tuple]] = {
    "BinaryCrossentropy": _XENT, "CategoricalCrossentropy": _XENT,
    "SparseCategoricalCrossentropy": {"from_logits": (bool,), "ignore_class": (int, type(None))},
    "BinaryFocalCrossentropy": {**_XENT, "gamma": (float, int), "alpha": (float,), "apply_class_balancing": (bool,)},
    "MeanSquaredError": {}, "MeanAbsoluteError": {}, "MeanSquaredLogarithmicError": {},
    "MeanAbsolutePercentageError": {}, "Huber": {"delta": (float, int)}, "LogCosh": {}, "Hinge": {},
    "SquaredHinge": {}, "KLDivergence": {}, "Poisson": {},
}
LossName = Literal["binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy",
                   "mse", "mae", "huber", "hinge", "squared_hinge", "msle", "mape", "log_cosh", "kl_divergence",
                   "poisson", "binary_focal_crossentropy", "mean_squared_error", "mean_absolute_error"]
OptimizerName = Literal["sgd", "adam", "rmsprop", "adagrad", "adamw", "nadam", "adadelta", "adamax", "lion"]


def _keras_object(v: Any, table: dict[str, dict[str, tuple]], what: str) -> Any:
    """A {ClassName: {argument: value}} mapping checked against its allowlist table (no import of Keras)."""
    if not isinstance(v, dict):
        return v
    if len(v) != 1:
        raise ValueError(f"expected one {what}: {{ClassName: {{argument: value}}}}, got {len(v)} keys")
    (name, kw), = v.items()
    if name not in table:
        raise ValueError(f"unknown {what} class '{name}'; {suggest(str(name), sorted(table))}"
                         f"valid: {', '.join(sorted(table))}")
    kw = {} if kw is None else kw
    if not isinstance(kw, dict):
        raise ValueError(f"{name}: expected a mapping of its arguments, got {kw!r}")
    args = {**(_OPTIMIZER_COMMON if what == "optimizer" else {"name": (str,), "reduction": (str,)}), **table[name]}
    for arg, value in kw.items():
        if arg not in args:
            raise ValueError(f"{name} takes no argument '{arg}'; {suggest(str(arg), sorted(args))}"
                             f"takes: {', '.join(sorted(args))}")
        types = args[arg]
        if not types_ok(value, types):
            raise ValueError(f"{name}.{arg}: expected {type_names(types)}, got {value!r}")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value != value:
            raise ValueError(f"{name}.{arg}: NaN is not a value")
    if what == "optimizer" and not 0 < kw.get("learning_rate", 0.001) <= 1000:
        raise ValueError(f"{name}.learning_rate: expected a value in (0, 1000], got {kw['learning_rate']}")
    return {name: dict(kw)}


class _Stable(_Strict):
    """A spec whose newer fields are left out of its dump while they hold their defaults, so the cache
    key of a case that does not use them is what it was before they existed."""
    _NEW: tuple[str, ...] = ()

    @model_serializer(mode="wrap")
    def _drop_defaults(self, handler):
        out = handler(self)
        for name in self._NEW:
            if name in out and getattr(self, name) == type(self).model_fields[name].get_default(call_default_factory=True):
                del out[name]
        return out


class CompileSpec(_Stable):
    optimizer: OptimizerName | dict[str, Any] = Field(
        "adam", description="a name, or a built-in class with its arguments: {SGD: {learning_rate: 0.1, momentum: 0.9}}")
    learning_rate: float = Field(0.001, gt=0, le=1000, description="with an optimizer given by name")
    momentum: float = Field(0.0, ge=0, lt=1, description="sgd given by name only")
    clipnorm: float | None = Field(None, gt=0)
    loss: LossName | dict[str, Any] = Field(
        "sparse_categorical_crossentropy",
        description="a name, or a built-in class with its arguments: {BinaryCrossentropy: {label_smoothing: 0.1}}")
    metrics: list[Literal["accuracy", "mae", "mse", "auc", "precision", "recall", "binary_accuracy",
                          "categorical_accuracy", "sparse_categorical_accuracy"]] = Field(
        default_factory=lambda: ["accuracy"], max_length=4)

    @field_validator("optimizer", mode="before")
    @classmethod
    def _class_spelling(cls, v: Any) -> Any:
        """Keras takes optimizer='RMSprop' as well as 'rmsprop': a report's spelling is accepted as written."""
        import typing

        return v.lower() if isinstance(v, str) and v.lower() in typing.get_args(OptimizerName) else v

    @field_validator("optimizer")
    @classmethod
    def _optimizer(cls, v: Any) -> Any:
        return _keras_object(v, OPTIMIZER_ARGS, "optimizer")

    @field_validator("loss")
    @classmethod
    def _loss(cls, v: Any) -> Any:
        return _keras_object(v, LOSS_ARGS, "loss")

    @property
    def optimizer_name(self) -> str:
        return self.optimizer.lower() if isinstance(self.optimizer, str) else next(iter(self.optimizer)).lower()

    @property
    def lr(self) -> float:
        """The learning rate the run starts with, whichever form gave it."""
        if isinstance(self.optimizer, dict):
            return float(next(iter(self.optimizer.values())).get("learning_rate", 0.001))
        return self.learning_rate

    @property
    def loss_name(self) -> str:
        return self.loss if isinstance(self.loss, str) else next(iter(self.loss))


#: Callbacks a case may attach, with the arguments each takes.
CALLBACK_ARGS: dict[str, dict[str, tuple]] = {
    "EarlyStopping": {"monitor": (str,), "min_delta": (float, int), "patience": (int,), "mode": (str,),
                      "baseline": (float, int, type(None)), "restore_best_weights": (bool,), "start_from_epoch": (int,)},
    "ReduceLROnPlateau": {"monitor": (str,), "factor": (float,), "patience": (int,), "mode": (str,),
                          "min_delta": (float, int), "cooldown": (int,), "min_lr": (float, int)},
    "TerminateOnNaN": {},
}


class FitSpec(_Stable):
    _NEW = ("validation_split", "steps_per_epoch", "initial_epoch", "callbacks")
    epochs: int = Field(10, ge=1, le=200)
    batch_size: int = Field(32, ge=1, le=4096)
    shuffle: bool = True
    class_weight: Literal["balanced"] | dict[int, float] | None = Field(
        None, description="balanced, or a weight per class label: {0: 1, 1: 5}")
    early_stopping: EarlyStopping | None = None
    validation_split: float = Field(0.0, ge=0, lt=1, description="Keras holds out this fraction of the training "
                                                                 "data as validation (instead of the case's val split)")
    steps_per_epoch: int | None = Field(None, ge=1, le=10_000)
    initial_epoch: int = Field(0, ge=0, le=199)
    callbacks: list[dict[str, Any]] = Field(default_factory=list, max_length=4,
                                            description="each {EarlyStopping: {...}} or {ReduceLROnPlateau: {...}}")

    @field_validator("epochs", "batch_size", "steps_per_epoch", "initial_epoch", mode="before")
    @classmethod
    def _no_bool(cls, v: Any) -> Any:
        """YAML's `epochs: true` is a bool, which pydantic would read as 1."""
        if isinstance(v, bool):
            raise ValueError(f"expected an integer, got {v!r}")
        return v

    @field_validator("callbacks")
    @classmethod
    def _callbacks(cls, v: list) -> list:
        table = {k: {**a} for k, a in CALLBACK_ARGS.items()}
        out = []
        for i, cb in enumerate(v):
            try:
                out.append(_keras_object(cb, table, "callback"))
            except ValueError as e:
                raise ValueError(f"callbacks.{i}: {e}") from None
        return out


def _model_form(v: Any) -> str:
    """Which of the two model forms a case wrote: Keras layers, or a registered model by name."""
    has_layers = isinstance(v, dict) and "layers" in v or isinstance(v, LayersModel)
    return _LAYERS_TAG if has_layers else _NAMED_TAG


_LAYERS_TAG, _NAMED_TAG = "<layers-form>", "<named-form>"

ModelSpec = Annotated[Annotated[Component, Tag(_NAMED_TAG)] | Annotated[LayersModel, Tag(_LAYERS_TAG)],
                      Discriminator(_model_form)]


class Task(_Strict):
    """Everything needed to train one run; the base and each variant resolve to one."""
    dataset: Component | None = Field(None, description="a registered dataset (with `transforms`), or use `data`")
    transforms: list[Component] = Field(default_factory=list, max_length=10)
    data: list[dict[str, dict[str, Any] | None]] | None = Field(
        None, max_length=20, description="the data as ordered steps, one {name: {params}} each: a source "
                                         "(make_*, load_*, inline, linspace), steps, split, transforms "
                                         "(`trainwreck ls steps`)")
    model: ModelSpec = Field(description="{name:, params:} for a registered model, or {layers: [...], trainable:} "
                                         "in the keras.layers vocabulary")
    pipeline: Component = Field(default_factory=lambda: Component(name="arrays"))
    compile: CompileSpec = Field(default_factory=CompileSpec)
    fit: FitSpec = Field(default_factory=FitSpec)

    @model_validator(mode="after")
    def _one_data_form(self):
        if (self.dataset is None) == (self.data is None):
            raise ValueError("give either dataset (a registered name, with transforms) or data (a list of steps)")
        if self.data is not None and self.transforms:
            raise ValueError("with data, transforms are steps of the data list (after its split step)")
        return self


class Condition(_Strict):
    """One measured inequality; a variant's oracle holds when all its conditions hold."""
    measure: str = Field(description="a registered oracle measure (see `trainwreck ls measures`)")
    # before `key`, so that the key's check can see it: pydantic validates fields in their order
    direction: Literal["max", "min"] | None = Field(
        None, description="for best and val_minus_test: whether the best epoch of the key has its largest (max) "
                          "or smallest (min) value; needed only for a key whose Keras metric name does not say")
    key: str | None = Field(None, description="the log key a measure reads, e.g. val_accuracy")
    min: float | None = None
    max: float | None = None
    in_: list[str] | None = Field(None, alias="in", description="allowed values of a categorical measure")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _bounded(self) -> "Condition":
        """A condition with no bound holds for every run; min > max for none; NaN compares false always."""
        for name in ("min", "max"):
            v = getattr(self, name)
            if v is not None and v != v:
                raise ValueError(f"{name} is NaN, which no value meets; give a number")
        if self.min is None and self.max is None and self.in_ is None:
            raise ValueError("a condition needs a bound: min, max or in")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}: no run can meet it")
        return self

    @field_validator("measure")
    @classmethod
    def _known(cls, v: str) -> str:
        """Pydantic locates only a ValueError; the registry's UnknownName (a KeyError) would escape
        validation unlocated and hide every other file's errors."""
        try:
            MEASURES.get(v)
        except UnknownName as e:
            raise ValueError(str(e)) from None
        return v

    @field_validator("direction")
    @classmethod
    def _directed(cls, v: str | None, info) -> str | None:
        measure = info.data.get("measure")
        if v is not None and measure in MEASURES and not MEASURES.get(measure).directed:
            directed = [n for n in MEASURES.names() if MEASURES.get(n).directed]
            raise ValueError(f"measure '{measure}' has no direction; only {', '.join(directed)} take one")
        return v

    @field_validator("key")
    @classmethod
    def _direction_known(cls, v: str | None, info) -> str | None:
        """A best epoch needs to know whether higher is better: from the key's metric name or `direction`.
        Guessing (the old rule: max when the key contains 'acc') minimised val_auc and precision."""
        measure = info.data.get("measure")
        if v is None or measure not in MEASURES or not MEASURES.get(measure).directed or info.data.get("direction"):
            return v
        read = f"val_{v}" if measure == "val_minus_test" else v
        if direction_of(read) is None:
            known = [*DIRECTIONS, *(f"val_{k}" for k in DIRECTIONS)]
            raise ValueError(f"no known direction for '{read}'; {suggest(read, known)}give direction: max "
                             f"(higher is better) or direction: min (lower is better)")
        return v

    @field_validator("in_")
    @classmethod
    def _outcomes(cls, v: list[str] | None, info) -> list[str] | None:
        """An outcome condition names statuses a run can end with; harness_error is none a case can claim."""
        if v is None or info.data.get("measure") != "outcome":
            return v
        for status in v:
            if status == "harness_error":
                raise ValueError("'harness_error' meets no oracle: it is the harness failing, not the case")
            if status not in OUTCOMES:
                valid = [o for o in OUTCOMES if o != "harness_error"]
                raise ValueError(f"'{status}' is not an outcome; {suggest(status, valid)}valid: {', '.join(valid)}")
        return v


class Oracle(_Strict):
    broken: list[Condition] = Field(min_length=1, description="what the broken run must show")
    fixed: list[Condition] = Field(min_length=1, description="what the fixed run must show")


def _known_symptoms(v: list[str]) -> list[str]:
    for s in v:
        if not taxonomy.is_symptom(s):
            raise ValueError(f"unknown symptom '{s}'; {suggest(s, taxonomy.symptom_names())}"
                             f"valid: {', '.join(taxonomy.symptom_names())}")
    return v


class PlatformOracle(_Strict):
    """The oracle for runs on which a platform probe reads one value (a variant left out keeps the case's)."""
    broken: list[Condition] | None = Field(None, min_length=1)
    fixed: list[Condition] | None = Field(None, min_length=1)
    symptoms: list[str] | None = Field(None, description="what the broken run shows on such platforms, when it "
                                                         "differs from the case's `symptoms` (scored instead)")

    @field_validator("symptoms")
    @classmethod
    def _symptoms(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _known_symptoms(v)


class PlatformDependence(_Strict):
    """A mechanism that really differs by platform, named with the probe that tells which one a run had."""
    probe: str = Field(description="a platform probe (harness/hardware.py PROBES), measured in every worker")
    why: str = Field(min_length=10, description="what differs between platforms, and why")
    oracle: dict[str, PlatformOracle] = Field(
        min_length=1, description="probe reading -> the oracle that holds on platforms reading it; "
                                  "any other reading uses the case's `oracle`")

    @field_validator("probe")
    @classmethod
    def _probe(cls, v: str) -> str:
        from .hardware import PROBES

        if v not in PROBES:
            raise ValueError(f"unknown platform probe '{v}'; {suggest(v, PROBES.names())}"
                             f"valid: {', '.join(PROBES.names())}")
        return v

    @field_validator("oracle")
    @classmethod
    def _readings(cls, v: dict, info) -> dict:
        from .hardware import PROBES

        probe = info.data.get("probe")
        if probe in PROBES:
            valid = PROBES.get(probe).values
            for reading in v:
                if reading not in valid:
                    raise ValueError(f"'{reading}' is not a reading of probe '{probe}'; "
                                     f"{suggest(reading, list(valid))}valid: {', '.join(valid)}")
        return v


class Sweep(_Strict):
    """A severity sweep: the broken variant re-run with one task parameter set to each value."""
    path: str = Field(pattern=r"^[a-z_]+(\.[a-z_0-9]+)+$", description="dotted path into the task, e.g. compile.learning_rate")
    values: list[float | int | str | bool] = Field(min_length=2, max_length=8)
    seeds: list[int] | None = Field(None, description="seeds for the sweep runs (default: the case's first seed)")


class Case(_Strict):
    schema_version: Literal[1] = 1
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{1,63}$", description="equals the file name without .yaml")
    title: str = Field(min_length=3, max_length=120)
    description: str = Field(min_length=10)
    provenance: str = Field(min_length=5, description="the public report, paper or scenario reproduced")
    cause: str = Field(description="a cause from harness/taxonomy.py; 'healthy' for a trap")
    symptoms: list[str] = Field(default_factory=list, description="symptoms from harness/taxonomy.py")
    seeds: list[int] = Field(min_length=3, max_length=10)
    status: Literal["active", "deprecated"] = "active"
    deprecated_reason: str | None = None
    base: Task
    broken: dict[str, Any] = Field(default_factory=dict, description="override of base for the broken run")
    fixed: dict[str, Any] = Field(default_factory=dict, description="override of base for the fixed run")
    no_fix: bool = Field(False, description="a healthy trap with nothing to fix: its fixed run is its broken run "
                                            "(otherwise broken and fixed must resolve to different tasks)")
    oracle: Oracle
    sweep: Sweep | None = Field(None, description="optional severity sweep over the broken variant")
    backend_notes: dict[Literal["tensorflow", "jax", "torch"], str] = Field(
        default_factory=dict,
        description="how this case behaves differently on a Keras backend, and why (e.g. different numerics "
                    "for NaN); `trainwreck backends` exits 1 on a cross-backend difference no note explains")

    platform_dependence: PlatformDependence | None = Field(
        None, description="declare a mechanism that depends on the platform (e.g. what ReLU does with NaN), "
                          "with a probe measured at run time and the oracle for each behaviour")

    def _platform(self, probes: Mapping[str, str] | None) -> "PlatformOracle | None":
        dep = self.platform_dependence
        return dep.oracle.get(str(probes.get(dep.probe, ""))) if dep is not None and probes else None

    def oracle_for(self, variant: str, probes: Mapping[str, str] | None = None) -> list["Condition"]:
        """The conditions a run of `variant` must meet, given the platform probe readings of its worker."""
        alt = self._platform(probes)
        if alt is not None and getattr(alt, variant) is not None:
            return getattr(alt, variant)
        return getattr(self.oracle, variant)

    def symptoms_for(self, probes: Mapping[str, str] | None = None) -> list[str]:
        """The symptoms a broken run shows, given the platform probe readings of its worker."""
        alt = self._platform(probes)
        return alt.symptoms if alt is not None and alt.symptoms is not None else self.symptoms

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        """Seeds feed keras.utils.set_random_seed (NumPy takes [0, 2**32)); a repeated seed is a run counted twice."""
        for i, seed in enumerate(v):
            if not 0 <= seed < 2 ** 32:
                raise ValueError(f"seeds.{i}: expected a seed in [0, 2**32), got {seed}")
        dup = sorted({s for s in v if v.count(s) > 1})
        if dup:
            raise ValueError(f"seed {dup[0]} is repeated; each seed must be a different run")
        return v

    @field_validator("cause")
    @classmethod
    def _cause(cls, v: str) -> str:
        if not taxonomy.is_cause(v):
            raise ValueError(f"unknown cause '{v}'; {suggest(v, taxonomy.cause_names())}"
                             f"valid: {', '.join(taxonomy.cause_names())}")
        return v

    @field_validator("symptoms")
    @classmethod
    def _symptoms(cls, v: list[str]) -> list[str]:
        return _known_symptoms(v)

    @property
    def family(self) -> str:
        return getattr(self, "_family", "")


@dataclass(frozen=True)
class CaseError:
    file: str
    field: str
    message: str

    def __str__(self) -> str:
        message = " ".join(self.message.split())  # always one line
        return f"{self.file}: {self.field}: {message}" if self.field else f"{self.file}: {message}"


class CaseErrors(Exception):
    def __init__(self, errors: list[CaseError]):
        self.errors = errors
        super().__init__("\n".join(map(str, errors)))


# ---------------------------------------------------------------- YAML reading

class _UniqueKeys:
    """Constructor part of the case loaders: a key written twice is an error (PyYAML would silently keep the
    last, `cause:` twice)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:
                continue  # an unhashable key: the constructor reports it
            if first != key_node.start_mark.line + 1:
                raise yaml.YAMLError(f"duplicate key '{key}' (line {key_node.start_mark.line + 1}, "
                                     f"first on line {first})")
        return super().construct_mapping(node, deep=deep)


class _GuardedLoader(_UniqueKeys, yaml.SafeLoader):
    """The pure-Python SafeLoader with the guards: no alias (billion-laughs), no deep nesting, unique keys."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("YAML aliases (*name) are not allowed in case files")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.YAMLError(f"nesting deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_CLoader = type("_CLoader", (_UniqueKeys, yaml.CSafeLoader), {}) if yaml.__with_libyaml__ else None
_OPEN = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSE = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def _load_guarded(text: str) -> Any:
    """The document, with the guards of `_GuardedLoader`. With libyaml, the events are checked first (C's
    composer does not call Python's `compose_node`), then libyaml composes: ten times faster."""
    if _CLoader is None:
        return yaml.load(text, Loader=_GuardedLoader)  # noqa: S506 (guarded safe loader)
    depth = 0
    for ev in yaml.parse(text, Loader=yaml.CSafeLoader):
        if isinstance(ev, yaml.AliasEvent):
            raise yaml.MarkedYAMLError(problem="YAML aliases (*name) are not allowed in case files",
                                       problem_mark=ev.start_mark)
        if isinstance(ev, _OPEN):
            depth += 1
            if depth > MAX_DEPTH:
                raise yaml.MarkedYAMLError(problem=f"nesting deeper than {MAX_DEPTH} levels", problem_mark=ev.start_mark)
        elif isinstance(ev, _CLOSE):
            depth -= 1
        elif isinstance(ev, yaml.ScalarEvent) and depth + 1 > MAX_DEPTH:   # a scalar is a node one level down
            raise yaml.MarkedYAMLError(problem=f"nesting deeper than {MAX_DEPTH} levels", problem_mark=ev.start_mark)
    return yaml.load(text, Loader=_CLoader)  # noqa: S506 (safe loader, guarded above)


def _read_yaml(path: Path) -> Any:
    if not path.is_file():
        why = ("is a directory; give a case file, or --cases DIR for a directory of cases" if path.is_dir()
               else "no such file")
        raise CaseErrors([CaseError(str(path), "", why)])
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise CaseErrors([CaseError(str(path), "", f"file is {size} bytes; a case file may hold at most {MAX_FILE_BYTES}")])
    try:
        return _load_guarded(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        where = ""
        mark = getattr(e, "problem_mark", None)
        if mark is not None:
            where = f"line {mark.line + 1}"
        msg = " ".join(str(getattr(e, "problem", None) or getattr(e, "reason", None) or e).split())
        raise CaseErrors([CaseError(str(path), where, f"invalid YAML: {msg}")]) from None


# ---------------------------------------------------------------- validation

_VOCABULARY: set[str] = set()


def _vocabulary() -> list[str]:
    """Every key a case may use anywhere: the 'did you mean' candidates."""
    if not _VOCABULARY:
        def walk(model):
            for name, f in model.model_fields.items():
                _VOCABULARY.add(f.alias or name)
                for arg in getattr(f.annotation, "__args__", ()) + (f.annotation,):
                    if isinstance(arg, type) and issubclass(arg, BaseModel):
                        walk(arg)
        walk(Case)
        walk(Task)
        for reg in (DATASETS, MODELS, TRANSFORMS, PIPELINES):
            for n in reg.names():
                walk(reg.get(n).params)
    return sorted(_VOCABULARY)


def _expected(err: dict) -> str:
    if err["type"] == "extra_forbidden":
        key = str(err["loc"][-1])
        hint = suggest(key, [v for v in _vocabulary() if v != key]).strip()  # never the rejected key itself
        return f"unknown key '{key}'; {hint}" if hint else f"unknown key '{key}'"
    if err["type"] == "missing":
        return "required field is missing"
    msg = err["msg"]
    if "input" in err and err["type"] not in ("value_error",) and not isinstance(err["input"], (dict, list)):
        msg += f" (got {err['input']!r})"
    return msg.removeprefix("Value error, ")


def _errors(file: str, prefix: str, exc: ValidationError) -> list[CaseError]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if p not in (_LAYERS_TAG, _NAMED_TAG))
        out.append(CaseError(file, ".".join(p for p in (prefix, loc) if p), _expected(err)))
    return out


def _by_index(base: list, override: dict) -> list:
    """A list changed at some indices: `layers: {1: {Dense: {units: 2}}}` merges into the second layer only."""
    out = copy.deepcopy(base)
    for k, v in override.items():
        if not 0 <= k < len(out):
            raise KeyError(f"index {k} is outside the list of {len(out)} items it overrides")
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out[k], dict) else copy.deepcopy(v)
    return out


def deep_merge(base: dict, override: dict) -> dict:
    """Mappings merge, a mapping with integer keys merges into a list by index, everything else replaces."""
    out = copy.deepcopy(base)
    for k, v in override.items():
        old = out.get(k)
        if isinstance(v, dict) and isinstance(old, dict):
            out[k] = deep_merge(old, v)
        elif isinstance(v, dict) and isinstance(old, list) and v and all(type(i) is int for i in v):
            out[k] = _by_index(old, v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _check_components(file: str, prefix: str, task: Task) -> list[CaseError]:
    """Names resolve in their registries and params validate against each component's schema."""
    out: list[CaseError] = []
    slots: list[tuple[str, Component, Registry]] = [("pipeline", task.pipeline, PIPELINES)]
    if task.dataset is not None:
        slots.append(("dataset", task.dataset, DATASETS))
    if task.data is not None:
        out += _check_steps(file, f"{prefix}.data", task.data)
    if isinstance(task.model, LayersModel):
        try:
            task.model.checked()
        except LayerSpecError as e:
            out.append(CaseError(file, f"{prefix}.model.{e.where}", str(e)))
    else:
        slots.append(("model", task.model, MODELS))
    slots += [(f"transforms.{i}", c, TRANSFORMS) for i, c in enumerate(task.transforms)]
    for where, comp, reg in slots:
        path = f"{prefix}.{where}"
        try:
            entry = reg.get(comp.name)
        except UnknownName as e:
            out.append(CaseError(file, f"{path}.name", str(e)))
            continue
        try:
            entry.params(**comp.params)
        except ValidationError as e:
            out += _errors(file, f"{path}.params", e)
    return out


def _check_steps(file: str, path: str, steps: list[dict]) -> list[CaseError]:
    """Each step one {name: params} with a known name and valid params, the list in an order that can run."""
    out: list[CaseError] = []
    names = []
    for i, item in enumerate(steps):
        try:
            ((name, params),) = step_items([item])
        except ValueError:
            out.append(CaseError(file, f"{path}.{i}", f"expected one step {{name: {{params}}}}, got keys {sorted(item)}"))
            continue
        try:
            entry = DATA_STEPS.get(name)
        except UnknownName as e:
            out.append(CaseError(file, f"{path}.{i}", str(e)))
            continue
        names.append(name)
        try:
            entry.parse(params)
        except ValidationError as e:
            out += _errors(file, f"{path}.{i}.{name}", e)
    if not out:
        out += [CaseError(file, f"{path}.{i}", msg) for i, msg in check_order(names)]
    if not out:   # built once, without training: what scikit-learn rejects is reported here, not in a worker
        try:
            load_steps(steps, seed=0)
        except StepFailed as e:
            out.append(CaseError(file, f"{path}.{e.index}.{e.name}",
                                 f"building the data fails here: {type(e.error).__name__}: "
                                 + " ".join(str(e.error).split())[:300]))
    return out


def resolve_variant(case: Case, variant: str) -> Task:
    """The base task with the variant's override merged in."""
    merged = deep_merge(case.base.model_dump(mode="json", by_alias=True), getattr(case, variant))
    return Task.model_validate(merged)


def set_path(task: dict, path: str, value: Any) -> dict:
    """A copy of task with the dotted path (list indices as numbers) set to value."""
    out = copy.deepcopy(task)
    node: Any = out
    parts = path.split(".")
    for i, part in enumerate(parts):
        key: Any = int(part) if part.isdigit() and isinstance(node, list) else part
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not isinstance(key, int) or key >= len(node):
                raise KeyError(f"'{part}' is not an index of the list at '{'.'.join(parts[:i])}'")
        elif not isinstance(node, dict):
            raise KeyError(f"'{part}' is not a key of the value at '{'.'.join(parts[:i])}' "
                           f"(a {type(node).__name__}, not a mapping)")
        elif not last and key not in node:
            node[key] = {}
        if last:
            node[key] = value
        else:
            node = node[key]
    return out


def resolve_sweep(case: Case, value: Any) -> Task:
    """The broken variant with the sweep parameter set to value."""
    broken = resolve_variant(case, "broken").model_dump(mode="json", by_alias=True)
    return Task.model_validate(set_path(broken, case.sweep.path, value))


def _validate(data: Any, file: str, family: str) -> Case:
    if not isinstance(data, dict):
        raise CaseErrors([CaseError(file, "", f"expected a mapping at the top level, got {type(data).__name__}")])
    try:
        case = Case.model_validate(data)
    except ValidationError as e:
        raise CaseErrors(_errors(file, "", e)) from None
    base_errors = _check_components(file, "base", case.base)
    errors = list(base_errors)
    resolved: dict[str, Task] = {}
    for variant in VARIANTS:
        try:
            task = resolve_variant(case, variant)
        except KeyError as e:
            errors.append(CaseError(file, variant, str(e.args[0])))
            continue
        except ValidationError as e:
            errors += _errors(file, variant, e)
            continue
        resolved[variant] = task
        inherited = {(e.field.replace("base", variant, 1), e.message) for e in base_errors}
        errors += [e for e in _check_components(file, variant, task) if (e.field, e.message) not in inherited]
    if case.sweep is not None:
        for i, value in enumerate(case.sweep.values):
            try:
                task = resolve_sweep(case, value)
            except KeyError as e:
                errors.append(CaseError(file, "sweep.path", str(e.args[0])))
                break
            except ValidationError as e:
                errors += [CaseError(file, f"sweep.values.{i}", f"{x.field}: {x.message}") for x in _errors(file, "", e)]
                continue
            errors += [CaseError(file, f"sweep.values.{i}", f"{x.field}: {x.message}")
                       for x in _check_components(file, "task", task)]
    stem = Path(file).stem
    if case.id != stem:
        errors.append(CaseError(file, "id", f"expected '{stem}' (the file name), got '{case.id}'"))
    errors += _check_fix(file, case, resolved)
    errors += _check_oracle_keys(file, case, resolved)
    if errors:
        raise CaseErrors(errors)
    object.__setattr__(case, "_family", family)
    return case


#: What `_evaluate` adds to a classification run's test scores beside Keras's own (harness/train.py).
_TEST_EXTRAS = ("balanced_accuracy", "macro_f1", "minority_recall", "top_class_share", "r2")


def _producible(task: Task, measure: str) -> list[str]:
    """The keys a run of this task can log for `measure` to read: its loss and metrics, as Keras names them."""
    names = ["loss", *task.compile.metrics]
    if measure in ("val_minus_test", "train_minus_val"):
        return names
    if measure in ("test", "val", "train"):
        return [*names, *_TEST_EXTRAS]
    return [*names, *(f"val_{n}" for n in names), "learning_rate"]


def _check_oracle_keys(file: str, case: Case, resolved: dict[str, Task]) -> list[CaseError]:
    """A condition reading a key no run of its variant logs (`val_mea`) would hold as NaN and fail every run."""
    out = []
    for variant, task in resolved.items():
        for i, cond in enumerate(getattr(case.oracle, variant)):
            if cond.key is None or not MEASURES.get(cond.measure).needs_key or re.search(r"_\d+$", cond.key):
                continue
            valid = _producible(task, cond.measure)
            if cond.key not in valid:
                hint = suggest(cond.key, [v for v in valid if v != cond.key]).strip()
                out.append(CaseError(file, f"oracle.{variant}.{i}.key",
                                     f"no run of this variant logs '{cond.key}' for measure '{cond.measure}'; "
                                     + (f"{hint} " if hint else "") + f"it logs: {', '.join(valid)}"))
    return out


def _check_fix(file: str, case: Case, resolved: dict[str, Task]) -> list[CaseError]:
    """Broken and fixed must train different tasks: compared resolved, so restating a base value in
    `fixed` is no fix. A healthy trap with nothing to fix says so with `no_fix: true`."""
    if len(resolved) < 2:
        return []
    same = resolved["broken"] == resolved["fixed"]
    if case.no_fix:
        if case.cause != "healthy":
            return [CaseError(file, "no_fix", f"only a healthy trap may have no fix; this case's cause is '{case.cause}'")]
        if not same:
            return [CaseError(file, "fixed", "no_fix is true, so broken and fixed must resolve to the same task")]
        return []
    if same:
        hint = " (or no_fix: true for a healthy trap)" if case.cause == "healthy" else ""
        return [CaseError(file, "fixed", f"broken and fixed resolve to the same task: the fixed override must change "
                                         f"something the broken run has{hint}")]
    return []


_LOADED: dict[tuple, Case] = {}


def load_case(path: str | Path) -> Case:
    """The validated case of one file; a file read before and unchanged since (same mtime and size) is not
    parsed again (a `score` or `bench` reads the corpus more than once; parsing costs a second)."""
    path = Path(path)
    st = path.stat() if path.is_file() else None
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size) if st else None
    if key is not None and key in _LOADED:
        return _LOADED[key]
    case = _validate(_read_yaml(path), str(path), path.parent.name)
    if key is not None:
        _LOADED[key] = case
    return case


def case_files(root: Path = CASES_DIR) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*.yaml"))


def load_corpus(root: Path = CASES_DIR, *, include_deprecated: bool = False) -> list[Case]:
    """Every case under root, sorted by path; all errors of all files are raised together."""
    if not Path(root).is_dir():
        raise CaseErrors([CaseError(str(root), "", "no such case directory")])
    cases, errors, seen = [], [], {}
    for path in case_files(root):
        try:
            case = load_case(path)
        except CaseErrors as e:
            errors += e.errors
            continue
        if case.id in seen:
            errors.append(CaseError(str(path), "id", f"duplicate case id '{case.id}', also in {seen[case.id]}"))
            continue
        seen[case.id] = str(path)
        if case.status == "active" or include_deprecated:
            cases.append(case)
    if errors:
        raise CaseErrors(errors)
    return cases


def case_hash(case: Case) -> str:
    text = json.dumps(case.model_dump(mode="json", by_alias=True), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


_JSON_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number", list: "array", dict: "object",
               type(None): "null"}


def _layers_schema() -> dict:
    """One layer, short or long form, with every allowlisted class and its typed arguments, for editors."""
    from .models import LAYER_ARGS, layer_arg_table

    def args(cls: str) -> dict:
        props = {a: {"type": sorted({_JSON_TYPES[t] for t in ts})} for a, ts in layer_arg_table(cls).items()}
        return {"type": "object", "properties": props, "additionalProperties": False}
    short = [{"type": "object", "properties": {c: args(c)}, "required": [c], "additionalProperties": False}
             for c in sorted(LAYER_ARGS)]
    long = {"type": "object", "properties": {"class_name": {"enum": sorted(LAYER_ARGS)}, "config": {"type": "object"}},
            "required": ["class_name"], "additionalProperties": False}
    return {"anyOf": [*short, long]}


def _steps_schema(defs: dict) -> dict:
    """One data step: {name: params} with every registered step and its typed parameters, for editors."""
    items = []
    for name in DATA_STEPS.names():
        sub = DATA_STEPS.get(name).params.model_json_schema()
        defs.update(sub.pop("$defs", {}))
        sub.pop("title", None)
        items.append({"type": "object", "properties": {name: {**sub, "description": DATA_STEPS.get(name).doc}},
                      "required": [name], "additionalProperties": False})
    return {"anyOf": items}


def case_schema() -> dict:
    """The JSON Schema of a case file, for editors (cases/schema.json)."""
    schema = Case.model_json_schema(by_alias=True)
    schema["$id"] = "https://trainwreck.invalid/case.schema.json"
    schema["title"] = "trainwreck case"
    defs = schema.get("$defs", {})
    for comp_key in ("Component",):
        if comp_key in defs:
            defs[comp_key]["properties"]["name"]["examples"] = sorted(
                set(DATASETS.names() + MODELS.names() + TRANSFORMS.names() + PIPELINES.names()))
    if "LayersModel" in defs:
        defs["LayersModel"]["properties"]["layers"]["items"] = _layers_schema()
    if "Task" in defs:
        defs["Task"]["properties"]["data"]["anyOf"][0]["items"] = _steps_schema(defs)
    schema["properties"]["cause"]["enum"] = taxonomy.cause_names()
    schema["properties"]["symptoms"]["items"] = {"enum": taxonomy.symptom_names()}
    return schema
