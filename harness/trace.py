"""The training trace: a Keras callback that records one `EpochTrace` per epoch.

Beyond Keras's logs it measures, on a fixed probe batch of training data, the
per-layer gradient norms and zero-gradient fractions (AUTOTRAINER's inputs),
dead-ReLU and saturated-activation fractions and activation moments
(DeepDiagnosis's inputs), and the weight norms and update ratios
||W_t - W_{t-1}|| / ||W_{t-1}||. The probe costs one forward and one backward
pass of a small batch per epoch, a bounded share of the epoch.
"""

from __future__ import annotations

import math
import time
from collections import Counter

import numpy as np

__all__ = ["TraceCallback", "PROBE_SIZE", "probe_gradients"]

PROBE_SIZE = 64
# DeepDiagnosis calls a sigmoid/tanh unit saturated when its input |x| >= 5. The
# activations are monotone, so that is the same as these bounds on the output.
TANH_5 = float(np.tanh(5.0))
SIGMOID_5 = float(1 / (1 + np.exp(-5.0)))
SIGMOID_M5 = float(1 / (1 + np.exp(5.0)))


def _f(v) -> float:
    return float(v) if v is not None else math.nan


def probe_gradients(model, x, y, jax_cache: dict | None = None) -> tuple[float, list]:
    """The loss on (x, y) and its gradient for each trainable variable, on the active backend.

    The same quantity on every backend: the compiled loss (plus regularisers) in inference mode,
    differentiated with the backend's own autodiff. On JAX the function is jit-compiled once per
    model (kept in `jax_cache`): run eagerly, a recurrent layer's scan is re-traced on every call,
    which made the probe ~90% of a deep-LSTM run.
    """
    import keras

    variables = list(model.trainable_variables)
    backend = keras.backend.backend()

    def loss_now():
        return model.compute_loss(x=x, y=y, y_pred=model(x, training=False), training=False)

    if not variables:
        return float(_numpy(loss_now())), []
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_now()
        grads = tape.gradient(loss, variables)
    elif backend == "jax":
        cache = {} if jax_cache is None else jax_cache
        if "grad" not in cache:
            cache["grad"] = _jax_grad_fn(model)
        loss, grads = cache["grad"]([v.value for v in variables], [v.value for v in model.non_trainable_variables],
                                    [v.value for v in model.metrics_variables], x, y)
    elif backend == "torch":
        import torch

        with torch.enable_grad():
            loss = loss_now()
            grads = torch.autograd.grad(loss, [v.value for v in variables], allow_unused=True)
        loss = loss.detach()
    else:
        raise NotImplementedError(f"gradient probe for the {backend} backend")
    return float(_numpy(loss)), [None if g is None else _numpy(g) for g in grads]


def _jax_grad_fn(model):
    import jax

    def f(tv, ntv, mv, x, y):
        y_pred, _ = model.stateless_call(tv, ntv, x, training=False)
        value, _ = model.stateless_compute_loss(tv, ntv, mv, x=x, y=y, y_pred=y_pred, training=False)
        return value

    return jax.jit(jax.value_and_grad(f))


def _activations(probe_model, x, jax_cache: dict) -> list:
    """The outputs of every profiled layer on x (jit-compiled once per run on JAX, like the gradient probe)."""
    import keras

    if keras.backend.backend() != "jax":
        acts = probe_model([x], training=False)
        return list(acts) if isinstance(acts, (list, tuple)) else [acts]
    if "acts" not in jax_cache:
        import jax

        jax_cache["acts"] = jax.jit(lambda tv, ntv, x: probe_model.stateless_call(tv, ntv, [x], training=False)[0])
    acts = jax_cache["acts"]([v.value for v in probe_model.trainable_variables],
                             [v.value for v in probe_model.non_trainable_variables], x)
    return list(acts) if isinstance(acts, (list, tuple)) else [acts]


def _numpy(t) -> np.ndarray:
    """A backend tensor or variable as NumPy (torch tensors may need detaching and a copy off the GPU)."""
    import keras

    return np.asarray(keras.ops.convert_to_numpy(t))


def _make_callback_base():
    import keras
    return keras.callbacks.Callback


class TraceCallback(_make_callback_base()):  # type: ignore[misc]
    def __init__(self, x_probe, y_probe, shapes_seen: list | None, array_shapes: list | None):
        super().__init__()
        self.x_probe, self.y_probe = x_probe, y_probe
        self.shapes_seen, self.array_shapes = shapes_seen, array_shapes
        self.epochs: list[dict] = []
        self._prev: dict[str, np.ndarray] = {}
        self._probe_model = None
        self._tracked = []
        self._jax_cache: dict = {}

    # -- helpers
    def _weighted_layers(self):
        return [l for l in self.model.layers if l.weights]

    def _kernels(self) -> dict[str, np.ndarray]:
        """The first weight (kernel) of each weighted layer; AUTOTRAINER compares kernels."""
        return {l.name: _numpy(l.weights[0].value) for l in self._weighted_layers()}

    def _activation_layers(self):
        """Every layer with an output worth profiling, with its activation's name."""
        out = []
        for l in self.model.layers:
            act = getattr(getattr(l, "activation", None), "__name__", "")
            if l.weights or act:
                out.append((l, act))
        return out

    def on_train_begin(self, logs=None):
        import keras
        self._tracked = self._activation_layers()
        if self._tracked:
            self._probe_model = keras.Model(self.model.inputs, [l.output for l, _ in self._tracked])
        self._prev = self._kernels()

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()
        self._steps = 0
        self._shape_mark = len(self.shapes_seen) if self.shapes_seen is not None else 0
        self.epochs.append({"epoch": epoch, "completed": False, "steps": 0,
                            "expected_steps": int(self.params.get("steps") or 0)})

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1
        self.epochs[-1]["steps"] = self._steps

    def on_epoch_end(self, epoch, logs=None):
        e = self.epochs[-1]
        e["seconds"] = time.perf_counter() - self._t0
        e["logs"] = {k: _f(v) for k, v in (logs or {}).items()}
        e["batch_shapes"] = self._batch_shapes()
        e.update(self._probe())
        e["completed"] = True
        e["seconds"] = time.perf_counter() - self._t0

    def finish_interrupted(self):
        """Close an epoch cut short by an exception, keeping the steps it ran."""
        if self.epochs and not self.epochs[-1]["completed"]:
            e = self.epochs[-1]
            e["seconds"] = time.perf_counter() - self._t0
            e["batch_shapes"] = self._batch_shapes()
            e.setdefault("logs", {})

    def _batch_shapes(self):
        if self.shapes_seen is not None:
            seen = [tuple(s) for s in self.shapes_seen[self._shape_mark:]]
        else:
            seen = [tuple(s) for s in (self.array_shapes or [])][: self._steps]
        return [[list(s), c] for s, c in Counter(seen).items()]

    def _probe(self) -> dict:
        with np.errstate(all="ignore"):  # diverging runs overflow on purpose
            return self._probe_stats()

    def _probe_stats(self) -> dict:
        kernels = self._kernels()
        out = {k: {} for k in ("weight_norms", "weight_mean", "weight_var", "update_ratios", "grad_norms",
                               "grad_mean", "grad_mean_abs",
                               "grad_zero_fraction", "dead_relu_fraction", "relu_zero_fraction",
                               "saturated_fraction", "activation_mean", "activation_std",
                               "activation_min", "activation_max")}
        weights_bad = grads_bad = False
        for name, w in kernels.items():
            norm = float(np.linalg.norm(w))
            prev = self._prev.get(name)
            out["weight_norms"][name] = norm
            out["weight_mean"][name] = float(np.mean(w))
            out["weight_var"][name] = float(np.var(w))
            pn = float(np.linalg.norm(prev)) if prev is not None else math.nan
            out["update_ratios"][name] = float(np.linalg.norm(w - prev)) / pn if pn and math.isfinite(pn) else math.nan
            weights_bad |= not math.isfinite(norm)
        self._prev = kernels

        layers = self._weighted_layers()
        variables = list(self.model.trainable_variables)
        kernel_ids = {id(l.weights[0]): l.name for l in layers}
        loss, grads = probe_gradients(self.model, self.x_probe, self.y_probe, self._jax_cache)
        zeros = total = 0
        for v, g in zip(variables, grads):
            g = np.zeros(v.shape) if g is None else g
            zeros, total = zeros + int(np.sum(g == 0)), total + g.size
            grads_bad |= not np.all(np.isfinite(g))
            name = kernel_ids.get(id(v))
            if name is not None:
                out["grad_norms"][name] = float(np.linalg.norm(g))
                out["grad_mean"][name] = float(np.mean(g))
                out["grad_mean_abs"][name] = float(np.mean(np.abs(g)))
                out["grad_zero_fraction"][name] = float(np.mean(g == 0))
        for l in layers:  # frozen layers have no gradient: record it as zero
            out["grad_norms"].setdefault(l.name, 0.0)
            out["grad_mean"].setdefault(l.name, 0.0)
            out["grad_mean_abs"].setdefault(l.name, 0.0)
            out["grad_zero_fraction"].setdefault(l.name, 1.0)
        out["grad_norms"] = {l.name: out["grad_norms"][l.name] for l in layers}
        out["grad_zero_fraction_all"] = zeros / total if total else math.nan

        if self._probe_model is not None:
            acts = _activations(self._probe_model, self.x_probe, self._jax_cache)
            for (l, kind), a in zip(self._tracked, acts):
                a = _numpy(a).reshape(len(self.x_probe), -1)
                if kind == "relu":
                    out["dead_relu_fraction"][l.name] = float(np.mean(np.all(a <= 0, axis=0)))
                    out["relu_zero_fraction"][l.name] = float(np.mean(a <= 0))
                elif kind == "tanh":
                    out["saturated_fraction"][l.name] = float(np.mean(np.abs(a) >= TANH_5))
                elif kind == "sigmoid":
                    out["saturated_fraction"][l.name] = float(np.mean((a <= SIGMOID_M5) | (a >= SIGMOID_5)))
                with np.errstate(all="ignore"):
                    out["activation_mean"][l.name] = float(np.mean(a))
                    out["activation_std"][l.name] = float(np.std(a))
                    out["activation_min"][l.name] = float(np.min(a))
                    out["activation_max"][l.name] = float(np.max(a))
        out["weights_nonfinite"] = bool(weights_bad)
        out["grads_nonfinite"] = bool(grads_bad)
        out["nonfinite"] = bool(weights_bad or grads_bad or not math.isfinite(loss))
        return out
