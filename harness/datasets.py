"""Datasets a case may name: synthetic from a seed, or shipped inside scikit-learn.

Nothing is downloaded. Every dataset returns a `Data` with a train, a
validation and a clean held-out test split. The validation split is what
training reports (and what faults such as leakage may contaminate); the test
split is only ever seen by the oracle, never by a detector.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, Protocol

import numpy as np
from pydantic import Field

from .registry import Component, Params, Registry

__all__ = ["Data", "DATASETS", "DatasetBuilder", "DatasetParams", "load_dataset"]

Task = Literal["binary", "multiclass", "regression"]


@dataclass(frozen=True)
class Data:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    task: Task
    n_classes: int  # 0 for regression

    def with_(self, **changes) -> "Data":
        return replace(self, **changes)


class DatasetParams(Params):
    """What every dataset shares: its size and the split into train, validation and test."""
    n_samples: int = Field(1500, ge=30, le=50_000, description="rows before the split")
    val_fraction: float = Field(0.2, gt=0, lt=0.5)
    test_fraction: float = Field(0.2, gt=0, lt=0.5)
    shuffle_split: bool = Field(True, description="shuffle before splitting; false keeps the generator's order")


class DatasetBuilder(Protocol):
    """A dataset: its parameters and the run's seed in, the three splits out."""
    def __call__(self, p: DatasetParams, seed: int) -> Data: ...


DATASETS: Registry[Component[DatasetBuilder]] = Registry("dataset")


def _split(x: np.ndarray, y: np.ndarray, p: DatasetParams, seed: int, task: Task, n_classes: int) -> Data:
    n = len(x)
    order = np.random.default_rng(seed).permutation(n) if p.shuffle_split else np.arange(n)
    n_test = int(round(n * p.test_fraction))
    n_val = int(round(n * p.val_fraction))
    tr, va, te = order[: n - n_val - n_test], order[n - n_val - n_test: n - n_test], order[n - n_test:]
    return Data(x[tr].astype("float32"), y[tr], x[va].astype("float32"), y[va],
                x[te].astype("float32"), y[te], task, n_classes)


class ClassificationParams(DatasetParams):
    n_features: int = Field(20, ge=2, le=512)
    n_informative: int = Field(6, ge=1, le=512)
    n_classes: int = Field(2, ge=2, le=50)
    class_sep: float = Field(1.0, gt=0, le=10)
    flip_y: float = Field(0.01, ge=0, le=0.5, description="share of labels assigned at random")
    weights: list[float] | None = Field(None, description="class proportions, e.g. [0.95, 0.05]")
    sort_by_label: bool = Field(False, description="order rows by label before an unshuffled split")
    shuffle_features: bool = Field(True, description="false keeps make_classification's column order, informative "
                                                     "columns first, so a fault applied by column position "
                                                     "(scale_features) hits them the same way on every seed")


@DATASETS.component("tabular_classification", ClassificationParams)
def tabular_classification(p: ClassificationParams, seed: int) -> Data:
    """Gaussian-cluster classification from sklearn.datasets.make_classification."""
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=p.n_samples, n_features=p.n_features,
                               n_informative=min(p.n_informative, p.n_features),
                               n_redundant=0, n_classes=p.n_classes, class_sep=p.class_sep,
                               flip_y=p.flip_y, weights=p.weights, random_state=seed,
                               shuffle=p.shuffle_features)
    if not p.shuffle_features:   # make_classification then leaves the rows grouped by class as well
        order = np.random.default_rng(seed).permutation(len(y))
        x, y = x[order], y[order]
    if p.sort_by_label:
        order = np.argsort(y, kind="stable")
        x, y = x[order], y[order]
    return _split(x, y.astype("int64"), p, seed, "binary" if p.n_classes == 2 else "multiclass", p.n_classes)


class RegressionParams(DatasetParams):
    n_features: int = Field(10, ge=1, le=512)
    n_informative: int = Field(5, ge=1, le=512)
    noise: float = Field(5.0, ge=0, le=1000)
    target_scale: float = Field(1.0, gt=0, le=1e6, description="multiplies the target")


@DATASETS.component("tabular_regression", RegressionParams)
def tabular_regression(p: RegressionParams, seed: int) -> Data:
    """Linear-plus-noise regression from sklearn.datasets.make_regression, target standardised."""
    from sklearn.datasets import make_regression

    x, y = make_regression(n_samples=p.n_samples, n_features=p.n_features,
                           n_informative=min(p.n_informative, p.n_features), noise=p.noise,
                           random_state=seed)
    y = (y - y.mean()) / y.std() * p.target_scale
    return _split(x, y.astype("float32"), p, seed, "regression", 0)


class ShippedParams(DatasetParams):
    n_samples: int = Field(0, ge=0, le=50_000, description="0 keeps every row")
    as_images: bool = Field(False, description="digits only: shape (8, 8, 1) instead of 64 features")
    scale_to_unit: bool = Field(False, description="digits only: divide pixels by 16")


def _shipped(loader_name: str, p: ShippedParams, seed: int) -> Data:
    import sklearn.datasets as skd

    bunch = getattr(skd, loader_name)()
    x, y = bunch.data.astype("float32"), bunch.target.astype("int64")
    if p.n_samples:
        x, y = x[: p.n_samples], y[: p.n_samples]
    if loader_name == "load_digits":
        if p.scale_to_unit:
            x = x / 16.0
        if p.as_images:
            x = x.reshape(-1, 8, 8, 1)
    k = int(y.max()) + 1
    return _split(x, y, p, seed, "binary" if k == 2 else "multiclass", k)


for _name, _loader, _doc in [
    ("digits", "load_digits", "8x8 handwritten digits shipped with scikit-learn (1797 rows, 10 classes)."),
    ("breast_cancer", "load_breast_cancer", "Wisconsin breast cancer, shipped with scikit-learn (569 rows, raw scales 1e-3..4e3)."),
    ("wine", "load_wine", "Wine recognition, shipped with scikit-learn (178 rows, 3 classes, raw scales)."),
    ("iris", "load_iris", "Iris, shipped with scikit-learn (150 rows, 3 classes)."),
]:
    DATASETS.register(_name)(Component(ShippedParams, (lambda ln: lambda p, s: _shipped(ln, p, s))(_loader), _doc))


class SequenceParams(DatasetParams):
    timesteps: int = Field(40, ge=2, le=500)
    n_features: int = Field(4, ge=1, le=64)
    signal_step: int = Field(0, ge=0, description="the step that carries the label; 0 is the first")
    positive_fraction: float | None = Field(None, gt=0, lt=1, description="share of label-1 rows; None draws labels 50/50")
    signal_noise: float = Field(0.1, ge=0, le=10, description="std of the noise on the signal value (larger overlaps the classes)")


@DATASETS.component("sequence_memory", SequenceParams)
def sequence_memory(p: SequenceParams, seed: int) -> Data:
    """Binary label carried only by one early time step, the rest noise: needs long-range memory."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, size=(p.n_samples, p.timesteps, p.n_features)).astype("float32")
    if p.positive_fraction is None:
        y = rng.integers(0, 2, size=p.n_samples)
    else:
        y = (rng.random(p.n_samples) < p.positive_fraction).astype("int64")
    step = min(p.signal_step, p.timesteps - 1)
    x[:, step, 0] = np.where(y == 1, 1.0, -1.0) + rng.normal(0, p.signal_noise, size=p.n_samples)
    return _split(x, y.astype("int64"), p, seed, "binary", 2)


def load_dataset(name: str, params: dict, seed: int) -> Data:
    entry = DATASETS.get(name)
    return entry.fn(entry.parse(params), seed)
