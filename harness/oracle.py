"""Oracle measures: what the harness measures to prove a variant fails or trains.

A case's oracle is a list of conditions `{measure, key?, direction?, min?, max?, in?}`
per variant. Measures read the run record and the oracle-only extras (scores on the
clean held-out split, which no detector sees). A measure that cannot be taken
(e.g. no epoch finished) is NaN, and NaN satisfies no bound: a broken run that
crashed cannot accidentally "meet" a numeric failure oracle. A run the harness
itself failed (outcome `harness_error`) meets no oracle at all.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Callable, Literal

from .record import RunRecord
from .registry import Registry

__all__ = ["MEASURES", "Measure", "ConditionResult", "OracleVerdict", "evaluate", "DIRECTIONS", "direction_of"]

Value = float | str


@dataclass(frozen=True)
class Measure:
    fn: Callable[[RunRecord, dict, str | None], Value]
    doc: str
    needs_key: bool = False
    discrete: bool = False    # a count or category: its robustness margin is 'holds on every run', not a distance
    log_scale: bool = False   # a ratio or norm that scatters by factors, not by amounts: margins in log10
    directed: bool = False    # reads the best epoch of a log key, so needs to know if higher is better


MEASURES: Registry[Measure] = Registry("oracle measure")


def _measure(name: str, needs_key: bool = False, discrete: bool = False, log_scale: bool = False,
             directed: bool = False):
    def deco(fn):
        MEASURES.register(name)(Measure(fn, (fn.__doc__ or "").strip(), needs_key, discrete, log_scale, directed))
        return fn
    return deco


Direction = Literal["max", "min"]

# Whether the best epoch of a Keras log key has its largest or its smallest value, by the metric's name
# (Keras 3's `name` of each built-in metric and loss, and the string aliases `compile` accepts). A key
# is looked up without its `val_` prefix and a `_<n>` suffix Keras adds to repeated names (`auc_1`).
# Names whose direction depends on how they are used (cosine_similarity is a similarity as a metric, a
# negated one as a loss) are left out on purpose: a condition on them must say `direction:`.
_HIGHER_IS_BETTER = (
    "accuracy", "acc", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
    "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy",
    "auc", "prc", "precision", "recall", "f1_score", "fbeta_score", "r2_score",
    "io_u", "mean_io_u", "binary_io_u", "one_hot_io_u", "one_hot_mean_io_u", "pearson_correlation",
    "concordance_correlation",
    "precision_at_recall", "recall_at_precision", "sensitivity_at_specificity", "specificity_at_sensitivity",
    "true_positives", "true_negatives")
_LOWER_IS_BETTER = (
    "loss", "mse", "mean_squared_error", "mae", "mean_absolute_error", "mape", "mean_absolute_percentage_error",
    "msle", "mean_squared_logarithmic_error", "rmse", "root_mean_squared_error", "log_cosh", "logcosh",
    "huber", "huber_loss", "kl_divergence", "kld", "kullback_leibler_divergence", "poisson",
    "hinge", "squared_hinge", "categorical_hinge", "binary_crossentropy", "categorical_crossentropy",
    "sparse_categorical_crossentropy", "binary_focal_crossentropy", "categorical_focal_crossentropy",
    "false_positives", "false_negatives")
DIRECTIONS: dict[str, Direction] = {**{k: "max" for k in _HIGHER_IS_BETTER}, **{k: "min" for k in _LOWER_IS_BETTER}}


def direction_of(key: str) -> Direction | None:
    """'max' or 'min' for a log key the table knows (val_auc -> max, val_loss_2 -> min), else None."""
    name = key.removeprefix("val_")
    return DIRECTIONS.get(name) or DIRECTIONS.get(re.sub(r"_\d+$", "", name))


def _series(r: RunRecord, key: str) -> list[float]:
    return [float(e.logs[key]) for e in r.trace if e.completed and key in e.logs]


def _finite(xs: list[float]) -> list[float]:
    return [x for x in xs if math.isfinite(x)]


@_measure("outcome", discrete=True)
def outcome(r, extras, key):
    """The run's outcome: completed, nan, stopped_early, crashed or timeout (harness_error meets no oracle)."""
    return r.outcome.status


@_measure("last", needs_key=True)
def last(r, extras, key):
    """The last epoch's value of a log key (e.g. val_accuracy, loss)."""
    s = _series(r, key)
    return s[-1] if s else math.nan


@_measure("best", needs_key=True, directed=True)
def best(r, extras, key, direction: Direction | None = None):
    """The best value of a log key over epochs: its max or min by the condition's `direction`, else by the
    key's metric (max for accuracy, auc, precision, recall, f1, r2...; min for losses and errors)."""
    s = _finite(_series(r, key))
    direction = direction or direction_of(key)
    if not s or direction is None:
        return math.nan
    return max(s) if direction == "max" else min(s)


@_measure("first", needs_key=True)
def first(r, extras, key):
    """The first epoch's value of a log key."""
    s = _series(r, key)
    return s[0] if s else math.nan


@_measure("test", needs_key=True)
def test(r, extras, key):
    """A metric on the clean held-out test split (oracle only): Keras's (accuracy, loss, mae); for
    classification balanced_accuracy, macro_f1, minority_recall, top_class_share; for regression r2."""
    return float(extras.get("test", {}).get(key, math.nan))


@_measure("val", needs_key=True)
def val(r, extras, key):
    """A metric of the final model on the validation split, computed by the harness like `test` (so r2 and
    balanced_accuracy exist there too, which Keras does not log)."""
    return float(extras.get("val", {}).get(key, math.nan))


@_measure("train", needs_key=True)
def train(r, extras, key):
    """A metric of the final model on the training split (after any resampling), computed like `test`."""
    return float(extras.get("train", {}).get(key, math.nan))


@_measure("val_minus_test", needs_key=True, directed=True)
def val_minus_test(r, extras, key, direction: Direction | None = None):
    """Best validation metric minus the clean test metric: how much validation overstates."""
    return best(r, extras, f"val_{key}", direction) - test(r, extras, key)


@_measure("train_minus_val", needs_key=True)
def train_minus_val(r, extras, key):
    """Last training metric minus last validation metric (the generalisation gap)."""
    return last(r, extras, key) - last(r, extras, f"val_{key}")


@_measure("loss_nonfinite", discrete=True)
def loss_nonfinite(r, extras, key):
    """1 if any epoch's training loss was NaN/inf or the run ended as 'nan', else 0."""
    bad = any(not math.isfinite(x) for x in _series(r, "loss")) or r.outcome.status == "nan"
    return 1.0 if bad else 0.0


@_measure("loss_ratio", log_scale=True)
def loss_ratio(r, extras, key):
    """Last finite training loss over the first; inf when the loss became non-finite."""
    s = _series(r, "loss")
    if not s:
        return math.nan
    if loss_nonfinite(r, extras, key):
        return math.inf
    return s[-1] / s[0] if s[0] else math.nan


def _layer_series(r: RunRecord, attr: str) -> list[list[float]]:
    return [list(getattr(e, attr).values()) for e in r.trace if getattr(e, attr)]


@_measure("grad_ratio", log_scale=True)
def grad_ratio(r, extras, key):
    """Median over epochs of |grad W_first| / |grad W_last| on the probe batch (AUTOTRAINER's ratio)."""
    ratios = sorted(v[0] / v[-1] for v in _layer_series(r, "grad_norms") if len(v) > 1 and v[-1] > 0)
    return ratios[len(ratios) // 2] if ratios else math.nan


@_measure("max_grad_norm", log_scale=True)
def max_grad_norm(r, extras, key):
    """Largest per-layer probe-batch gradient norm over all epochs (inf if any was non-finite)."""
    vals = [x for v in _layer_series(r, "grad_norms") for x in v]
    if not vals:
        return math.nan
    return math.inf if any(not math.isfinite(x) for x in vals) else max(vals)


@_measure("dead_relu")
def dead_relu(r, extras, key):
    """Largest fraction of dead ReLU units in any layer at the last epoch."""
    s = _layer_series(r, "dead_relu_fraction")
    return max(s[-1]) if s else math.nan


@_measure("saturation")
def saturation(r, extras, key):
    """Largest fraction of saturated sigmoid/tanh outputs in any layer at the last epoch."""
    s = _layer_series(r, "saturated_fraction")
    return max(s[-1]) if s else math.nan


@_measure("min_steps_fraction")
def min_steps_fraction(r, extras, key):
    """Smallest steps-run / steps-expected over epochs, interrupted epochs included."""
    fr = [e.steps / e.expected_steps for e in r.trace if e.expected_steps]
    return min(fr) if fr else math.nan


@_measure("epochs_run", discrete=True)
def epochs_run(r, extras, key):
    """Epochs completed."""
    return float(r.outcome.epochs_run)


@_measure("max_update_ratio", log_scale=True)
def max_update_ratio(r, extras, key):
    """Largest per-layer weight update ratio |dW|/|W| over the run (0 means nothing learned)."""
    vals = [x for v in _layer_series(r, "update_ratios") for x in v if math.isfinite(x)]
    return max(vals) if vals else math.nan


@_measure("min_layer_update", log_scale=True)
def min_layer_update(r, extras, key):
    """Smallest, over weighted layers, of that layer's largest update ratio |dW|/|W| over the run:
    0 when some layer's kernel never changed (frozen), NaN when no layer has a finite ratio."""
    per_layer: dict[str, float] = {}
    for e in r.trace:
        for name, x in e.update_ratios.items():
            if math.isfinite(x):
                per_layer[name] = max(per_layer.get(name, 0.0), x)
    return min(per_layer.values()) if per_layer else math.nan


@_measure("val_loss_rise", log_scale=True)
def val_loss_rise(r, extras, key):
    """Last validation loss over the lowest validation loss of the run: well above 1 when the
    validation loss climbs back up while training goes on (overfitting); inf if it became non-finite."""
    s = _series(r, "val_loss")
    if not s:
        return math.nan
    if any(not math.isfinite(x) for x in s):
        return math.inf
    low = min(s)
    return s[-1] / low if low > 0 else math.nan


@dataclass(frozen=True)
class ConditionResult:
    measure: str
    key: str | None
    value: Value
    bound: str
    holds: bool

    def __str__(self) -> str:
        name = f"{self.measure}({self.key})" if self.key else self.measure
        v = f"{self.value:.4g}" if isinstance(self.value, float) else str(self.value)
        return f"{name} = {v} [{self.bound}] {'ok' if self.holds else 'FAILS'}"


@dataclass(frozen=True)
class OracleVerdict:
    holds: bool
    conditions: tuple[ConditionResult, ...]

    def to_dict(self) -> dict:
        return {"holds": self.holds, "conditions": [
            {"measure": c.measure, "key": c.key, "value": c.value, "bound": c.bound, "holds": c.holds}
            for c in self.conditions]}

    def summary(self) -> str:
        return "; ".join(map(str, self.conditions))


def _check(value: Value, cond) -> tuple[bool, str]:
    parts, ok = [], True
    if cond.in_ is not None:
        parts.append(f"in {cond.in_}")
        ok &= str(value) in cond.in_
    if cond.min is not None:
        parts.append(f">= {cond.min:g}")
        ok &= isinstance(value, float) and value >= cond.min
    if cond.max is not None:
        parts.append(f"<= {cond.max:g}")
        ok &= isinstance(value, float) and value <= cond.max
    return bool(ok), ", ".join(parts)


def evaluate(conditions, record: RunRecord, extras: dict) -> OracleVerdict:
    results = []
    for cond in conditions:
        m = MEASURES.get(cond.measure)
        direction = getattr(cond, "direction", None)
        value = m.fn(record, extras, cond.key, *([direction] if m.directed and direction else []))
        ok, bound = _check(value, cond)
        results.append(ConditionResult(cond.measure, cond.key, value, bound, ok))
    if record.outcome.status == "harness_error":
        return _harness_failed(results, record)
    return OracleVerdict(all(c.holds for c in results), tuple(results))


def _harness_failed(results: list[ConditionResult], record: RunRecord) -> OracleVerdict:
    """The verdict on a run the harness's own code failed: whatever its conditions say, it does not hold,
    since no measurement of it shows the case's mechanism (a harness bug must not pass for a case that
    is meant to crash). Every condition fails, the first saying why; the list keeps the case's conditions
    in place, since tables line them up by position, with one condition of its own when there are none."""
    detail = ": ".join(p for p in (record.outcome.exception_type, record.outcome.message) if p)
    why = f"harness error: {detail}" if detail else "harness error"
    if not results:
        return OracleVerdict(False, (ConditionResult("outcome", None, "harness_error", f"not judged, {why}", False),))
    marked = [replace(c, bound=f"{c.bound}; not judged, {why if i == 0 else 'harness error'}", holds=False)
              for i, c in enumerate(results)]
    return OracleVerdict(False, tuple(marked))
