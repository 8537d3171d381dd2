"""The record's model summary and outcome status, shared by the harness and `trainwreck.keras.Recorder`.

A detector must not be able to tell a run captured from someone's own `model.fit` from a corpus
run, so both build these parts of the record with the same functions. Nothing here imports a
backend: a model is only read through Keras's layer API.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = ["layer_config", "layer_summaries", "model_summary", "run_status", "array_batch_shapes"]


def layer_config(layer) -> dict:
    """The layer's config; {} for a custom layer that cannot give one (Keras raises NotImplementedError
    for a constructor argument its config does not hold), so such a layer is summarised by kind and size."""
    try:
        return layer.get_config()
    except NotImplementedError:
        return {}


def _initializer(cfg: dict, key: str) -> str:
    init = cfg.get(key)
    return init.get("class_name", "") if isinstance(init, dict) else str(init or "")


def _activation(cfg: dict, key: str) -> str:
    act = cfg.get(key)
    return str((act.get("config") or {}).get("name") or act.get("class_name", "")) if isinstance(act, dict) \
        else str(act or "")


def _rate(cfg: dict, *keys: str) -> float:
    """The first of these config entries that is a number (Dropout's `rate`, a recurrent layer's `dropout`)."""
    for k in keys:
        v = cfg.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return 0.0


def layer_summaries(model) -> list[dict]:
    """One `LayerInfo` dict per layer, in model order: kind, size, and the configuration a detector
    reasons about (activation, initializers, dropout, and whether the layer is trainable, so a frozen
    layer is known as frozen rather than read as a zero gradient). Input layers are skipped: a
    Sequential model (every corpus model) never lists one, a functional model does, and neither has
    weights."""
    out = []
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        cfg = layer_config(layer)
        out.append({"name": layer.name, "kind": type(layer).__name__, "activation": _activation(cfg, "activation"),
                    "units": int(cfg.get("units") or cfg.get("filters") or 0), "params": int(layer.count_params()),
                    "trainable": bool(layer.trainable),
                    "kernel_initializer": _initializer(cfg, "kernel_initializer"),
                    "bias_initializer": _initializer(cfg, "bias_initializer"),
                    "recurrent_activation": _activation(cfg, "recurrent_activation"),
                    "dropout_rate": _rate(cfg, "rate", "dropout"),
                    "recurrent_dropout_rate": _rate(cfg, "recurrent_dropout")})
    return out


def model_summary(model, *, optimizer: str, learning_rate: float, loss: str, metrics: Sequence[str],
                  batch_size: int, epochs: int, output_units: int, output_activation: str) -> dict:
    """The record's `model` part (a `ModelSummary` as plain data)."""
    return {"layers": layer_summaries(model), "total_params": int(model.count_params()),
            "trainable_params": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
            "optimizer": optimizer, "learning_rate": learning_rate, "loss": loss,
            "metrics": list(metrics), "batch_size": batch_size, "epochs": epochs,
            "output_units": output_units, "output_activation": output_activation}


def run_status(trace: Sequence[dict], epochs_planned: int) -> str:
    """The outcome status of a run that did not raise: `nan` when a finished epoch's training loss is not
    finite, `stopped_early` when fewer epochs finished than were planned, else `completed`."""
    done = [e for e in trace if e.get("completed")]
    if any(not math.isfinite(e.get("logs", {}).get("loss", math.nan)) for e in done):
        return "nan"
    return "stopped_early" if len(done) < epochs_planned else "completed"


def array_batch_shapes(n: int, batch_size: int, sample_shape: Sequence[int]) -> list[list[int]]:
    """The input batch shapes `fit` draws from an array of `n` samples: full batches, then the remainder."""
    full = [[batch_size, *sample_shape]] * (n // batch_size)
    return full + ([[n % batch_size, *sample_shape]] if n % batch_size else [])
