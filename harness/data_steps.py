"""Data as an ordered list of steps, the split one of them, so a case says "scaled before the split" or
"oversampled before the split" in the order it happened.

    data:
      - make_moons: {n_samples: 1000, noise: 0.25}
      - standard_scaler: {}        # before split: fitted on every row, the leak
      - split: {val: 0.2, test: 0.2}
      - resample: {method: smote}  # after split: the training rows only, as a correct pipeline does

The first step is a *source*: any scikit-learn `make_*` generator or bundled `load_*` dataset with its
own documented parameters (its `random_state` is the run's seed), or `inline` rows copied from a report.
Steps before `split` see the rows the user had; `split` divides them into train and validation; the
steps after it are the transforms (`trainwreck ls transforms`), fitted on the training split.

The clean test split, the one only the oracle reads, is held out from the source's rows *before*
the first step runs, so no fault ever reaches it. Each step treats it as new data arriving after
deployment: what defines the task (recoded labels, a target transform, a class subset, one-hot labels)
and fitted feature transforms (a scaler, fitted wherever the case fits it) apply to it; faults and
resampling (NaN, misalignment, oversampling, sorting) never do."""

from __future__ import annotations

import functools
import inspect
import json
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import Field, create_model, model_validator

from .datasets import Data
from .registry import Component, Params, Registry
from .transforms import TRANSFORMS

__all__ = ["Rows", "DATA_STEPS", "DataStep", "Where", "WHERE", "load_steps", "StepFailed", "check_order", "step_items",
           "MAX_INLINE_VALUES"]

Where = Literal["source", "before", "split", "after", "either"]
MAX_INLINE_VALUES = 20_000


@dataclass(frozen=True)
class Rows:
    """The rows before the split, and the held-out test rows that travel beside them."""
    x: np.ndarray
    y: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    task: Literal["binary", "multiclass", "regression"]
    n_classes: int

    def with_(self, **changes) -> "Rows":
        return replace(self, **changes)


class DataStep(Protocol):
    """A step: the rows (before the split) or the splits (after it), its parameters, the seed; the same out."""
    def __call__(self, state: Rows | Data, p: Params, seed: int) -> Rows | Data: ...


DATA_STEPS: Registry[Component[DataStep]] = Registry("data step")
WHERE: dict[str, Where] = {}


def _step(name: str, params: type[Params], where: Where):
    def deco(fn):
        DATA_STEPS.component(name, params)(fn)
        WHERE[name] = where
        return fn
    return deco


def _task_of(y: np.ndarray, regression: bool) -> tuple[str, int]:
    if regression:
        return "regression", 0
    k = len(np.unique(y))
    return ("binary" if k <= 2 else "multiclass"), k


# ---- sources ---------------------------------------------------------------------------------------

# name -> does it make a regression target
_MAKERS = {"make_classification": False, "make_blobs": False, "make_moons": False, "make_circles": False,
           "make_gaussian_quantiles": False, "make_hastie_10_2": False, "make_regression": True,
           "make_friedman1": True, "make_friedman2": True, "make_friedman3": True,
           "make_sparse_uncorrelated": True, "make_s_curve": True, "make_swiss_roll": True}
_LOADERS = {"load_digits": False, "load_iris": False, "load_wine": False, "load_breast_cancer": False,
            "load_diabetes": True}
_NOT_PARAMS = {"random_state", "return_X_y", "as_frame", "return_centers", "return_distributions", "data_home",
               "download_if_missing", "shuffle_split"}
_BOUNDS = {"n_samples": dict(ge=4, le=50_000), "n_features": dict(ge=1, le=512),
           "n_informative": dict(ge=1, le=512), "n_classes": dict(ge=2, le=50), "n_class": dict(ge=1, le=10)}
_JSONISH = float | list[float] | list[list[float]] | None


def _signature_params(fn, name: str) -> type[Params]:
    """A strict Params class from a scikit-learn function's signature: every documented argument with its
    default and the type the default has (sizes bounded), so a case may pass exactly what sklearn takes."""
    fields: dict[str, Any] = {}
    for arg in inspect.signature(fn).parameters.values():
        if arg.name in _NOT_PARAMS or arg.kind in (arg.VAR_POSITIONAL, arg.VAR_KEYWORD):
            continue
        d = list(arg.default) if isinstance(arg.default, tuple) else arg.default
        if arg.name in _BOUNDS:
            kind: Any = int
        elif isinstance(d, bool):
            kind = bool
        elif isinstance(d, (int, float)):   # sklearn also takes an array where a scalar is the default
            kind = int | float | list[float]
        elif isinstance(d, str):
            kind = str
        elif isinstance(d, list):
            kind = list[float]
        else:
            kind = _JSONISH
        fields[arg.name] = (kind, Field(d, description=f"sklearn.datasets.{name}'s `{arg.name}`",
                                        **_BOUNDS.get(arg.name, {})))
    return create_model(f"{name}_params", __base__=Params, **fields)


def _source(name: str, regression: bool):
    import sklearn.datasets as skd

    fn = getattr(skd, name)
    loader = name.startswith("load_")

    tuples = {a.name for a in inspect.signature(fn).parameters.values() if isinstance(a.default, tuple)}

    def build(state, p: Params, seed: int) -> Rows:
        kw = {k: tuple(v) if k in tuples and isinstance(v, list) else v for k, v in p.model_dump().items()}
        if loader:
            x, y = _bundled(name, json.dumps(kw, sort_keys=True))
        else:
            x, y = fn(random_state=seed, **kw)
        x = np.array(x, dtype="float32")   # copies: a bundled dataset is shared by every case that loads it
        y = np.array(y, dtype="float32" if regression else "int64")
        task, k = _task_of(y, regression)
        return Rows(x, y, x[:0], y[:0], task, k)

    build.__doc__ = (f"Source: sklearn.datasets.{name} ({'regression' if regression else 'classification'}), "
                     f"with its own parameters; " + ("the bundled rows." if loader else "random_state is the run's seed."))
    return build


@functools.lru_cache(maxsize=16)
def _bundled(name: str, kw_json: str):
    """A dataset shipped with scikit-learn, read from its files once per process (validation builds every
    `data:` case once, and a worker serves many runs)."""
    import sklearn.datasets as skd

    return getattr(skd, name)(return_X_y=True, **json.loads(kw_json))


def _register_sources() -> None:
    import sklearn.datasets as skd

    for name, regression in {**_MAKERS, **_LOADERS}.items():
        _step(name, _signature_params(getattr(skd, name), name), "source")(_source(name, regression))


DATA_STEPS.defer(_register_sources)   # importing scikit-learn costs a second; only a `data:` case needs it


class InlineParams(Params):
    x: list[list[float]] | list[float] = Field(description="rows of features (a flat list is one feature)")
    y: list[float] = Field(description="one target per row")
    task: Literal["binary", "multiclass", "regression"] | None = Field(
        None, description="null: integer targets are classes, anything else regression")

    @model_validator(mode="after")
    def _sizes(self):
        rows = [r if isinstance(r, list) else [r] for r in self.x]
        if len(rows) != len(self.y):
            raise ValueError(f"x has {len(rows)} rows and y {len(self.y)} targets; they must match")
        if len({len(r) for r in rows}) > 1:
            raise ValueError("every row of x must have the same number of features")
        if sum(map(len, rows)) + len(self.y) > MAX_INLINE_VALUES:
            raise ValueError(f"at most {MAX_INLINE_VALUES} inline values; a larger dataset belongs in a generator")
        if len(rows) < 2:
            raise ValueError("at least 2 rows")
        return self


@_step("inline", InlineParams, "source")
def inline(state, p: InlineParams, seed: int) -> Rows:
    """Source: rows written in the case file, as a report shows them (at most 20,000 values)."""
    x = np.asarray([r if isinstance(r, list) else [r] for r in p.x], dtype="float32")
    y = np.asarray(p.y)
    regression = p.task == "regression" or (p.task is None and not np.all(y == np.round(y)))
    y = y.astype("float32" if regression else "int64")
    task, k = _task_of(y, regression)
    return Rows(x, y, x[:0], y[:0], p.task or task, k)


class LinspaceParams(Params):
    start: float = Field(0.0, ge=-1e9, le=1e9)
    stop: float = Field(1.0, ge=-1e9, le=1e9)
    num: int = Field(200, ge=4, le=50_000, description="rows, evenly spaced (numpy.linspace)")


@_step("linspace", LinspaceParams, "source")
def linspace(state, p: LinspaceParams, seed: int) -> Rows:
    """Source: one feature on an even grid (numpy.linspace), target 0 until a target step sets it."""
    x = np.linspace(p.start, p.stop, p.num, dtype="float32")[:, None]
    y = np.zeros(p.num, dtype="float32")
    return Rows(x, y, x[:0], y[:0], "regression", 0)


# ---- before the split ------------------------------------------------------------------------------

def _rows_only(name: str, state) -> Rows:
    if not isinstance(state, Rows):
        raise TypeError(f"data step '{name}' runs before split")
    return state


class PolynomialParams(Params):
    coefficients: list[float] = Field(min_length=1, max_length=8, description="c0, c1, ...: y = c0 + c1 x + c2 x^2 ...")
    feature: int = Field(0, ge=0, le=511, description="the column x is read from")
    noise: float = Field(0.0, ge=0, le=1e6, description="std of Gaussian noise added to y")


@_step("target_polynomial", PolynomialParams, "before")
def target_polynomial(state, p: PolynomialParams, seed: int) -> Rows:
    """Target: a polynomial of one feature plus Gaussian noise, for test rows too (it defines the task)."""
    s = _rows_only("target_polynomial", state)
    rng = np.random.default_rng(seed)
    f = lambda x: np.polynomial.polynomial.polyval(x[:, p.feature].astype("float64"), p.coefficients)  # noqa: E731
    y = (f(s.x) + rng.normal(0, p.noise, len(s.x))).astype("float32")
    return s.with_(y=y, y_test=f(s.x_test).astype("float32"), task="regression", n_classes=0)


class SubsetParams(Params):
    classes: list[int] = Field(min_length=2, max_length=50, description="labels kept; their values are unchanged")


@_step("subset_classes", SubsetParams, "before")
def subset_classes(state, p: SubsetParams, seed: int) -> Rows:
    """Keep the rows of some classes (train, validation and test alike): the task is these classes."""
    s = _rows_only("subset_classes", state)
    keep, keep_t = np.isin(s.y, p.classes), np.isin(s.y_test, p.classes)
    task, k = _task_of(s.y[keep], False)
    return s.with_(x=s.x[keep], y=s.y[keep], x_test=s.x_test[keep_t], y_test=s.y_test[keep_t], task=task, n_classes=k)


class SortParams(Params):
    by: Literal["label"] | int = Field("label", description="'label', or a feature's column index")
    descending: bool = False


@_step("sort", SortParams, "before")
def sort(state, p: SortParams, seed: int) -> Rows:
    """Fault: order the rows by label or a feature, so an unshuffled split validates on one end.

    One class only, or inputs outside the training range (extrapolation); also fit's validation_split."""
    s = _rows_only("sort", state)
    key = s.y if p.by == "label" else s.x.reshape(len(s.x), -1)[:, p.by]
    order = np.argsort(-key if p.descending else key, kind="stable")
    return s.with_(x=s.x[order], y=s.y[order])


class RecodeParams(Params):
    mapping: dict[int, float] = Field(min_length=1, max_length=50, description="old label: new value ({0: 2, 1: 4})")


@_step("recode_labels", RecodeParams, "before")
def recode_labels(state, p: RecodeParams, seed: int) -> Rows:
    """Replace label values (every split: it defines the task), e.g. UCI's {2, 4} for {benign, malignant}."""
    s = _rows_only("recode_labels", state)

    def f(y):
        out = y.astype("float64").copy()
        for old, new in p.mapping.items():
            out[y == old] = new
        return out.astype("int64") if np.all(out == np.round(out)) else out.astype("float32")
    return s.with_(y=f(s.y), y_test=f(s.y_test))


class MisalignParams(Params):
    shift: int = Field(1, ge=-10_000, le=10_000, description="rows the targets are rolled by against the inputs")


@_step("misalign", MisalignParams, "either")
def misalign(state, p: MisalignParams, seed: int):
    """Fault: targets shifted against their inputs (x[i] paired with y[i - shift]); never the test rows.

    As after sorting or dropping rows of one array only. Before the split: every row the user has;
    after it: the training split only."""
    if isinstance(state, Rows):
        return state.with_(y=np.roll(state.y, p.shift))
    return state.with_(y_train=np.roll(state.y_train, p.shift))


# ---- either side of the split ----------------------------------------------------------------------

class ScaleParams(Params):
    factor: float = Field(1.0, ge=-1e9, le=1e9, description="x * factor + offset")
    offset: float = Field(0.0, ge=-1e9, le=1e9)
    columns: list[int] | None = Field(None, max_length=512, description="column indices; null: every column")


def _affine(x: np.ndarray, p: ScaleParams) -> np.ndarray:
    flat = x.reshape(len(x), -1).astype("float64").copy()
    cols = slice(None) if p.columns is None else p.columns
    flat[:, cols] = flat[:, cols] * p.factor + p.offset
    return flat.astype("float32").reshape(x.shape)


@_step("scale", ScaleParams, "either")
def scale(state, p: ScaleParams, seed: int):
    """A fixed affine map x * factor + offset of some or all features, on every split (test too)."""
    if isinstance(state, Rows):
        return state.with_(x=_affine(state.x, p), x_test=_affine(state.x_test, p))
    return state.with_(x_train=_affine(state.x_train, p), x_val=_affine(state.x_val, p), x_test=_affine(state.x_test, p))


class TargetTransformParams(Params):
    kind: Literal["offset", "scale", "minmax", "standardize", "log1p"]
    value: float = Field(0.0, ge=-1e9, le=1e9, description="offset: added; scale: multiplied by")


def _target_fn(kind: str, value: float, fit: np.ndarray):
    fit = fit.astype("float64")
    lo, hi, mu, sd = fit.min(), fit.max(), fit.mean(), fit.std() or 1.0
    return {"offset": lambda y: y + value, "scale": lambda y: y * value,
            "minmax": lambda y: (y - lo) / ((hi - lo) or 1.0), "standardize": lambda y: (y - mu) / sd,
            "log1p": np.log1p}[kind]


@_step("target_transform", TargetTransformParams, "either")
def target_transform(state, p: TargetTransformParams, seed: int):
    """A regression target transform on every split; minmax/standardize fitted where the step stands.

    It defines what is predicted, so the test rows get it too; fitted on every row before the split,
    on the training split after it."""
    def cast(f):
        return lambda y: f(y.astype("float64")).astype("float32")
    if isinstance(state, Rows):
        f = cast(_target_fn(p.kind, p.value, state.y))
        return state.with_(y=f(state.y), y_test=f(state.y_test), task="regression", n_classes=0)
    f = cast(_target_fn(p.kind, p.value, state.y_train))
    return state.with_(y_train=f(state.y_train), y_val=f(state.y_val), y_test=f(state.y_test))


def _fitted_on_rows(name: str, cls: str):
    def fn(state, p: Params, seed: int):
        if not isinstance(state, Rows):
            return TRANSFORMS.get(name).fn(state, p, seed)
        import sklearn.preprocessing

        shape = state.x.shape[1:]
        t = getattr(sklearn.preprocessing, cls)().fit(state.x.reshape(len(state.x), -1))
        f = lambda x: t.transform(x.reshape(len(x), -1)).astype("float32").reshape((len(x), *shape))  # noqa: E731
        return state.with_(x=f(state.x), x_test=f(state.x_test))
    fn.__doc__ = f"sklearn {cls}, applied to every split: fitted on every row before the split (the leak), on training after it"
    _step(name, TRANSFORMS.get(name).params, "either")(fn)


_fitted_on_rows("standard_scaler", "StandardScaler")
_fitted_on_rows("minmax_scaler", "MinMaxScaler")


def _resample(state, p: Params, seed: int):
    """imbalanced-learn resampling: before the split of every row (the leak), after it of training only.

    Before the split, copies of a row reach the validation split; the test rows are never resampled."""
    if not isinstance(state, Rows):
        return TRANSFORMS.get("resample").fn(state, p, seed)
    flat = state.with_(x=state.x.reshape(len(state.x), -1))
    data = Data(flat.x, state.y, flat.x[:0], state.y[:0], flat.x[:0], state.y[:0], state.task, state.n_classes)
    out = TRANSFORMS.get("resample").fn(data, p, seed)
    return state.with_(x=out.x_train.reshape((len(out.x_train), *state.x.shape[1:])), y=out.y_train)


_step("resample", TRANSFORMS.get("resample").params, "either")(_resample)


# ---- the split -------------------------------------------------------------------------------------

class SplitParams(Params):
    val: float = Field(0.2, ge=0, lt=0.9, description="share of the rows for validation; 0 validates on the "
                                                      "training rows themselves (as a report without a split)")
    test: float = Field(0.2, ge=0, lt=0.9, description="share of the source's rows held out for the oracle, "
                                                       "before any step; 0 tests on the source's rows themselves")
    shuffle: bool = Field(True, description="false keeps the rows' order: validation is the last rows")
    stratify: bool = Field(False, description="keep class proportions in both parts (classification)")

    @model_validator(mode="after")
    def _room(self):
        if self.val + self.test >= 0.9:
            raise ValueError(f"val + test = {self.val + self.test:g} leaves too little to train on (at most 0.9)")
        return self


@_step("split", SplitParams, "split")
def split(state, p: SplitParams, seed: int) -> Data:
    """Divide the rows into training and validation (scikit-learn's train_test_split)."""
    from sklearn.model_selection import train_test_split

    s = _rows_only("split", state)
    if p.val == 0:
        xt, xv, yt, yv = s.x, s.x.copy(), s.y, s.y.copy()
    else:
        strat = s.y if p.stratify and s.task != "regression" and p.shuffle else None
        xt, xv, yt, yv = train_test_split(s.x, s.y, test_size=p.val, shuffle=p.shuffle, stratify=strat,
                                          random_state=seed if p.shuffle else None)
    return Data(xt, yt, xv, yv, s.x_test, s.y_test, s.task, s.n_classes)


def _hold_out_test(rows: Rows, p: SplitParams, seed: int) -> Rows:
    """The oracle's test rows, taken from the source before any step (the same shuffle rule as split)."""
    from sklearn.model_selection import train_test_split

    if p.test == 0:
        return rows.with_(x_test=rows.x.copy(), y_test=rows.y.copy())
    strat = rows.y if p.stratify and rows.task != "regression" and p.shuffle else None
    x, xt, y, yt = train_test_split(rows.x, rows.y, test_size=p.test, shuffle=p.shuffle, stratify=strat,
                                    random_state=seed + 1 if p.shuffle else None)
    return rows.with_(x=x, y=y, x_test=xt, y_test=yt)


def _after_only(name: str):
    entry = TRANSFORMS.get(name)

    def fn(state, p: Params, seed: int):
        if not isinstance(state, Data):
            raise TypeError(f"data step '{name}' runs after split")
        return entry.fn(state, p, seed)
    fn.__doc__ = entry.doc
    _step(name, entry.params, "after")(fn)


for _name in TRANSFORMS.names():
    if _name not in WHERE:
        _after_only(_name)


# ---- running a list --------------------------------------------------------------------------------

def step_items(steps: list[dict]) -> list[tuple[str, dict]]:
    """[(name, params)] of a `data:` list whose items are one-key mappings ({split: {val: 0.2}})."""
    out = []
    for i, item in enumerate(steps):
        if not isinstance(item, dict) or len(item) != 1:
            raise ValueError(f"step {i}: expected one mapping {{name: {{params}}}}, got {item!r}")
        (name, params), = item.items()
        out.append((str(name), dict(params or {})))
    return out


def check_order(names: list[str]) -> list[tuple[int, str]]:
    """(index, message) for every step out of place: a source first and only first, one split, steps
    that need the rows before it and the splits after it. Names are known (checked before)."""
    DATA_STEPS.names()   # the deferred sources, registered
    out = []
    if not names or WHERE.get(names[0]) != "source":
        out.append((0, "the first step must be a source (a make_*/load_* dataset, inline or linspace)"))
    splits = [i for i, n in enumerate(names) if WHERE.get(n) == "split"]
    if len(splits) != 1:
        out.append((len(names) - 1 if not splits else splits[1],
                    "exactly one split step is needed" if not splits else "only one split step"))
    at = splits[0] if splits else len(names)
    for i, n in enumerate(names):
        w = WHERE.get(n)
        if i and w == "source":
            out.append((i, f"'{n}' is a source: only the first step may be one"))
        elif w == "before" and i > at:
            out.append((i, f"'{n}' works on the rows before the split: move it above split"))
        elif w == "after" and i < at:
            out.append((i, f"'{n}' works on the train/validation splits: move it below split"))
    return out


class StepFailed(Exception):
    """A step raised while building the data: which one, and what it raised."""
    def __init__(self, index: int, name: str, error: Exception):
        self.index, self.name, self.error = index, name, error
        super().__init__(f"step {index} ({name}) raised {type(error).__name__}: {error}")


def load_steps(steps: list[dict], seed: int) -> Data:
    """Run a checked `data:` list: the source, the test rows held out, each step in order. Raises
    StepFailed naming the step (`validate` builds every case's data this way, without training)."""
    items = step_items(steps)
    DATA_STEPS.names()
    split_params = next(DATA_STEPS.get(n).parse(p) for n, p in items if WHERE[n] == "split")
    state: Rows | Data | None = None
    for i, (name, params) in enumerate(items):
        entry = DATA_STEPS.get(name)
        try:
            with np.errstate(all="ignore"):
                state = entry.fn(state, entry.parse(params), seed)
                if i == 0:
                    state = _hold_out_test(state, split_params, seed)
        except Exception as e:  # noqa: BLE001 - reported with the step it came from
            raise StepFailed(i, name, e) from e
    assert isinstance(state, Data)
    if min(len(state.x_train), len(state.x_val), len(state.x_test)) == 0:
        raise StepFailed(len(items) - 1, items[-1][0], ValueError(
            f"a split is empty (train {len(state.x_train)}, validation {len(state.x_val)}, test {len(state.x_test)} rows)"))
    return state
