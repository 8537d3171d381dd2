"""Data transforms a case may apply after loading its dataset, in order.

Faults (scaling features apart, leaking rows, corrupting labels) and fixes
(scalers, imputers, resamplers) are the same kind of thing: a named function
of the data. Every fix is fitted on the training split only, as a correct
pipeline would be; the clean test split is never contaminated by a fault, so
the oracle can measure what the fault hides.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from pydantic import Field

from .datasets import Data
from .registry import Component, Params, Registry

__all__ = ["TRANSFORMS", "Transform", "apply_transforms"]


class Transform(Protocol):
    """A data step: the splits, its parameters and the run's seed in, new splits out."""
    def __call__(self, data: Data, p: Params, seed: int) -> Data: ...


TRANSFORMS: Registry[Component[Transform]] = Registry("transform")


def _flat(x: np.ndarray) -> np.ndarray:
    return x.reshape(len(x), -1)


def _fit_apply(data: Data, make) -> Data:
    """Fit a scikit-learn transformer on the flattened training split, apply to all splits."""
    shape = data.x_train.shape[1:]
    t = make().fit(_flat(data.x_train))
    f = lambda x: t.transform(_flat(x)).astype("float32").reshape((len(x), *shape))  # noqa: E731
    return data.with_(x_train=f(data.x_train), x_val=f(data.x_val), x_test=f(data.x_test))


class ScaleParams(Params):
    max_log10: float = Field(6.0, ge=0, le=12, description="the last feature is multiplied by 10**max_log10")
    offset: float = Field(0.0, ge=-1e6, le=1e6, description="added to every feature after scaling")


@TRANSFORMS.component("scale_features", ScaleParams)
def scale_features(data: Data, p: ScaleParams, seed: int) -> Data:
    """Fault: multiply feature j by a factor log-spaced from 1 to 10**max_log10 (every split). A single
    feature has no spread of scales to make, so it is multiplied by 10**max_log10 (raw-scale input)
    rather than by 1, which would silently leave the data clean."""
    n = _flat(data.x_train).shape[1]
    factors = (np.logspace(0, p.max_log10, n) if n > 1 else np.array([10.0 ** p.max_log10])).astype("float32")
    f = lambda x: (_flat(x) * factors + p.offset).reshape(x.shape).astype("float32")  # noqa: E731
    return data.with_(x_train=f(data.x_train), x_val=f(data.x_val), x_test=f(data.x_test))


@TRANSFORMS.component("standard_scaler", Params)
def standard_scaler(data: Data, p: Params, seed: int) -> Data:
    """Fix: sklearn StandardScaler fitted on the training split only."""
    from sklearn.preprocessing import StandardScaler

    return _fit_apply(data, StandardScaler)


@TRANSFORMS.component("minmax_scaler", Params)
def minmax_scaler(data: Data, p: Params, seed: int) -> Data:
    """Fix: sklearn MinMaxScaler fitted on the training split only."""
    from sklearn.preprocessing import MinMaxScaler

    return _fit_apply(data, MinMaxScaler)


class LeakRowsParams(Params):
    fraction: float = Field(1.0, gt=0, le=1.0, description="share of validation rows copied into training")
    copies: int = Field(1, ge=1, le=10, description="how many times each leaked row is repeated")


@TRANSFORMS.component("leak_validation_rows", LeakRowsParams)
def leak_validation_rows(data: Data, p: LeakRowsParams, seed: int) -> Data:
    """Fault: copy validation rows into the training split (train/evaluation overlap)."""
    rng = np.random.default_rng(seed)
    k = int(round(len(data.x_val) * p.fraction))
    idx = rng.choice(len(data.x_val), size=k, replace=False)
    x = np.concatenate([data.x_train] + [data.x_val[idx]] * p.copies)
    y = np.concatenate([data.y_train] + [data.y_val[idx]] * p.copies)
    order = rng.permutation(len(x))
    return data.with_(x_train=x[order], y_train=y[order])


class TargetFeatureParams(Params):
    noise: float = Field(0.05, ge=0, le=10, description="std of noise added to the leaked target")


@TRANSFORMS.component("add_target_feature", TargetFeatureParams)
def add_target_feature(data: Data, p: TargetFeatureParams, seed: int) -> Data:
    """Fault: append a feature computed from the target to train and validation.

    In deployment (the clean test split) the target is unknown, so that column
    holds noise there: a model that relies on it scores well on validation only.
    """
    rng = np.random.default_rng(seed)

    def col(y, n):
        base = y.astype("float32") if data.task != "multiclass" else y.astype("float32") / max(1, data.n_classes - 1)
        return (base + rng.normal(0, p.noise, n)).astype("float32")[:, None]

    te = rng.permutation(col(data.y_test, len(data.y_test)))
    return data.with_(x_train=np.hstack([_flat(data.x_train), col(data.y_train, len(data.y_train))]),
                      x_val=np.hstack([_flat(data.x_val), col(data.y_val, len(data.y_val))]),
                      x_test=np.hstack([_flat(data.x_test), te]))


class NanParams(Params):
    fraction: float = Field(0.05, gt=0, le=0.5, description="share of training cells set to NaN")


@TRANSFORMS.component("inject_nan", NanParams, version=2)   # 2: the test split stays clean
def inject_nan(data: Data, p: NanParams, seed: int) -> Data:
    """Fault: set a share of training and validation cells to NaN (missing values left in). The test split
    stays clean: it measures the fitted model for the oracle, not the fault."""
    rng = np.random.default_rng(seed)

    def f(x):
        x = x.copy()
        x[rng.random(x.shape) < p.fraction] = np.nan
        return x
    return data.with_(x_train=f(data.x_train), x_val=f(data.x_val))


@TRANSFORMS.component("impute_mean", Params)
def impute_mean(data: Data, p: Params, seed: int) -> Data:
    """Fix: sklearn SimpleImputer(mean) fitted on the training split only."""
    from sklearn.impute import SimpleImputer

    return _fit_apply(data, SimpleImputer)


class FlipParams(Params):
    fraction: float = Field(0.4, gt=0, le=1.0, description="share of training labels replaced")


@TRANSFORMS.component("flip_labels", FlipParams)
def flip_labels(data: Data, p: FlipParams, seed: int) -> Data:
    """Fault: replace a share of the training labels by a random other class."""
    rng = np.random.default_rng(seed)
    y = data.y_train.copy()
    hit = rng.random(len(y)) < p.fraction
    y[hit] = (y[hit] + rng.integers(1, data.n_classes, hit.sum())) % data.n_classes
    return data.with_(y_train=y)


class ResampleParams(Params):
    method: str = Field("random_over", pattern="^(random_over|smote|random_under)$")


@TRANSFORMS.component("resample", ResampleParams)
def resample(data: Data, p: ResampleParams, seed: int) -> Data:
    """Fix: rebalance the training split with imbalanced-learn (RandomOverSampler, SMOTE, RandomUnderSampler)."""
    from imblearn.over_sampling import SMOTE, RandomOverSampler
    from imblearn.under_sampling import RandomUnderSampler

    make = {"random_over": RandomOverSampler, "smote": SMOTE, "random_under": RandomUnderSampler}[p.method]
    shape = data.x_train.shape[1:]
    x, y = make(random_state=seed).fit_resample(_flat(data.x_train), data.y_train)
    return data.with_(x_train=x.astype("float32").reshape((len(x), *shape)), y_train=y)


@TRANSFORMS.component("one_hot_labels", Params)
def one_hot_labels(data: Data, p: Params, seed: int) -> Data:
    """Encode every split's labels one-hot (for categorical_crossentropy)."""
    eye = np.eye(data.n_classes, dtype="float32")
    return data.with_(y_train=eye[data.y_train], y_val=eye[data.y_val], y_test=eye[data.y_test])


class OffsetLabelsParams(Params):
    offset: int = Field(1, ge=-10, le=10, description="added to every class label (1 turns 0..k-1 into 1..k)")


@TRANSFORMS.component("offset_labels", OffsetLabelsParams)
def offset_labels(data: Data, p: OffsetLabelsParams, seed: int) -> Data:
    """Fault: shift every split's integer labels, e.g. classes numbered 1..k as exported from a spreadsheet."""
    f = lambda y: (y + p.offset).astype(y.dtype)  # noqa: E731
    return data.with_(y_train=f(data.y_train), y_val=f(data.y_val), y_test=f(data.y_test))


def apply_transforms(data: Data, steps: list[tuple[str, dict]], seed: int) -> Data:
    for name, params in steps:
        entry = TRANSFORMS.get(name)
        data = entry.fn(data, entry.parse(params), seed)
    return data
