"""Input pipelines a case may name: how the training split reaches `model.fit`.

`arrays` passes NumPy arrays (Keras batches them). The others wrap the data in
a `keras.utils.PyDataset` or a Python generator, which is where real-world
pipeline bugs live (ragged batches, a wrong `__len__`, a generator that runs
dry). Each pipeline reports the batch shapes it actually produced so the trace
can record them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from pydantic import Field

from .registry import Component, Params, Registry

__all__ = ["PIPELINES", "FitInput", "Pipeline", "make_fit_input"]



@dataclass
class FitInput:
    """What to pass to `model.fit`, plus the shapes log the trace reads."""
    x: Any
    y: Any = None
    fit_kwargs: dict = field(default_factory=dict)
    shapes_seen: list | None = None  # None: shapes are known from the arrays


class Pipeline(Protocol):
    """An input pipeline: arrays, batch size, its parameters and the seed in, what model.fit takes out."""
    def __call__(self, x: np.ndarray, y: np.ndarray, batch_size: int, p: Params, seed: int) -> FitInput: ...


PIPELINES: Registry[Component[Pipeline]] = Registry("pipeline")


@PIPELINES.component("arrays", Params)
def arrays(x, y, batch_size, p, seed) -> FitInput:
    """NumPy arrays straight into model.fit (Keras batches and shuffles)."""
    return FitInput(x, y, {"batch_size": batch_size})


class BatchParams(Params):
    bad_batch: int = Field(-1, ge=-1, description="index of the batch that is malformed; -1 for none")
    drop_features: int = Field(0, ge=0, description="features missing from the malformed batch")
    extra_len: int = Field(0, ge=0, le=1000, description="batches __len__ claims beyond the real ones")


def _sequence(x, y, batch_size, p: BatchParams, shapes: list):
    import keras

    n_batches = int(np.ceil(len(x) / batch_size))

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(workers=1, use_multiprocessing=False)

        def __len__(self):
            return n_batches + p.extra_len

        def __getitem__(self, i):
            if i >= n_batches:
                raise IndexError(f"batch {i} requested but the data has {n_batches} batches")
            xb, yb = x[i * batch_size:(i + 1) * batch_size], y[i * batch_size:(i + 1) * batch_size]
            if i == p.bad_batch and p.drop_features:
                xb = xb[..., : max(1, xb.shape[-1] - p.drop_features)]
            shapes.append(list(xb.shape))
            return xb, yb

    return Batches()


@PIPELINES.component("pydataset", BatchParams)
def pydataset(x, y, batch_size, p: BatchParams, seed) -> FitInput:
    """A keras.utils.PyDataset serving fixed batches in order; may serve a malformed batch or lie about its length."""
    shapes: list = []
    return FitInput(_sequence(x, y, batch_size, p, shapes), None, {}, shapes)


class GeneratorParams(Params):
    total_batches: int = Field(0, ge=0, le=100_000, description="batches yielded in all; 0 cycles for ever")
    steps_per_epoch: int = Field(0, ge=0, le=10_000, description="0: the number of batches in one pass")


@PIPELINES.component("generator", GeneratorParams)
def generator(x, y, batch_size, p: GeneratorParams, seed) -> FitInput:
    """A Python generator of batches with an explicit steps_per_epoch (Keras cannot know its length)."""
    shapes: list = []
    n_batches = int(np.ceil(len(x) / batch_size))

    def gen():
        i = 0
        while p.total_batches == 0 or i < p.total_batches:
            b = i % n_batches
            xb, yb = x[b * batch_size:(b + 1) * batch_size], y[b * batch_size:(b + 1) * batch_size]
            shapes.append(list(xb.shape))
            yield xb, yb
            i += 1

    return FitInput(gen(), None, {"steps_per_epoch": p.steps_per_epoch or n_batches}, shapes)


def make_fit_input(name: str, params: dict, x, y, batch_size: int, seed: int) -> FitInput:
    entry = PIPELINES.get(name)
    return entry.fn(x, y, batch_size, entry.parse(params), seed)
