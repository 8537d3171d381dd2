"""The training trace: a Keras callback that records one `EpochTrace` per epoch, and optionally
a `StepTrace` every k batches.

Beyond Keras's logs it measures, on a fixed probe batch of training data, the per-layer gradient
norms and zero-gradient fractions (AUTOTRAINER's inputs), dead-ReLU and saturated-activation
fractions and activation moments (DeepDiagnosis's inputs), and the weight norms and update ratios
||W_t - W_{t-1}|| / ||W_{t-1}||.

Gradient statistics are over trainable variables only, as both originals read them: a frozen layer
has no gradient entry at all (the model summary says it is not trainable) instead of a zero that
reads as a vanishing gradient. Its kernel is still measured (weight norms, update ratio 0).

Cost. The statistics are written once, in `keras.ops`, and run compiled: on TensorFlow the whole
probe (forward, backward, every reduction) is one `tf.function` of the weights' values, and its numbers
come back to the host as a single vector. Because it takes the weights as arguments, a worker traces it
once per architecture, not once per run: the runs of one case's seeds (and often its broken and fixed
variants) share it (`_TFProbeCache`). On JAX the gradient, the activations and the statistics are
`jax.jit`-compiled once per run; on torch they run eagerly on the device. `eager=True` runs the same
functions uncompiled, which the tests compare against.

Per-step resolution (`trace_every=k`, TensorFlow): the gradients of the actual batch are read where
Keras applies them (a tap on the optimizer's `apply_gradients` inside the compiled train step, gated
by a variable so that only every k-th batch pays for the statistics) and the batch loss where Keras
computes it; the probe batch gives activation and pre-activation quantiles after that step.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter, OrderedDict

import numpy as np

from .record import QUANTILES

__all__ = ["TraceCallback", "PROBE_SIZE", "probe_gradients", "EpochProbe", "kernel_layers"]

PROBE_SIZE = 64
# DeepDiagnosis calls a sigmoid/tanh unit saturated when its input |x| >= 5. The
# activations are monotone, so that is the same as these bounds on the output.
TANH_5 = float(np.tanh(5.0))
SIGMOID_5 = float(1 / (1 + np.exp(-5.0)))
SIGMOID_M5 = float(1 / (1 + np.exp(5.0)))


def _f(v) -> float:
    return float(v) if v is not None else math.nan


def _numpy(t) -> np.ndarray:
    """A backend tensor or variable as NumPy (torch tensors may need detaching and a copy off the GPU)."""
    import keras

    return np.asarray(keras.ops.convert_to_numpy(t))


# -- what is measured: pure functions of tensors over an array namespace `xp` (raw TensorFlow ops on
#    TensorFlow, whose graph they are traced into; keras.ops elsewhere), so one definition serves every
#    backend, compiled or eager. The layers of a kind are concatenated and reduced per segment, so the
#    number of ops, and with it the tracing time, does not grow with the depth of the model.
#    Each returns {field: (layer names, or None for a scalar, vector of their values)}.

class TFOps:
    """The array functions the statistics use, as TensorFlow ops (a tenth of keras.ops' tracing time)."""

    def __init__(self):
        import tensorflow as tf

        self.tf = tf
        m = tf.math
        self.sqrt, self.square, self.abs, self.where = m.sqrt, m.square, m.abs, tf.where
        self.isfinite, self.isnan, self.logical_not, self.floor = m.is_finite, m.is_nan, m.logical_not, m.floor
        self.sum, self.all, self.any, self.sort, self.take = tf.reduce_sum, tf.reduce_all, tf.reduce_any, tf.sort, tf.gather

    def f32(self, a):
        return self.tf.cast(a, self.tf.float32)

    def flat(self, a):
        return self.tf.reshape(self.f32(a), [-1])

    def concat(self, xs):
        return self.tf.concat(xs, 0) if xs else self.tf.zeros([0])

    def const(self, v, dtype="float32"):
        return self.tf.constant(np.asarray(v, dtype))

    def segsum(self, a, seg, n):
        return self.tf.math.unsorted_segment_sum(a, seg, n)

    def segmax(self, a, seg, n):
        return self.tf.math.unsorted_segment_max(a, seg, n)

    def all0(self, a):
        return self.tf.reduce_all(a, axis=0)

    def reshape(self, a, shape):
        return self.tf.reshape(a, shape)

    def i32(self, a):
        return self.tf.cast(a, self.tf.int32)


class KerasOps(TFOps):
    """The same functions as keras.ops, for the JAX and torch backends."""

    def __init__(self):  # noqa: super-init-not-called - nothing of TensorFlow is needed here
        import keras.ops as K

        self.K = K
        self.sqrt, self.square, self.abs, self.where = K.sqrt, K.square, K.abs, K.where
        self.isfinite, self.isnan, self.logical_not, self.floor = K.isfinite, K.isnan, K.logical_not, K.floor
        self.sum, self.all, self.any, self.sort, self.take = K.sum, K.all, K.any, K.sort, K.take

    def f32(self, a):
        return self.K.cast(a, "float32")

    def flat(self, a):
        return self.K.reshape(self.f32(a), (-1,))

    def concat(self, xs):
        return self.K.concatenate(xs, axis=0) if xs else self.K.zeros((0,))

    def const(self, v, dtype="float32"):
        return self.K.convert_to_tensor(np.asarray(v, dtype))

    def segsum(self, a, seg, n):
        return self.K.segment_sum(a, seg, num_segments=n)

    def segmax(self, a, seg, n):
        return self.K.segment_max(a, seg, num_segments=n)

    def all0(self, a):
        return self.K.all(a, axis=0)

    def reshape(self, a, shape):
        return self.K.reshape(a, shape)

    def i32(self, a):
        return self.K.cast(a, "int32")


def array_ops(backend: str):
    return TFOps() if backend == "tensorflow" else KerasOps()


class _Segments:
    """Tensors of several layers flattened into one vector, with each entry's layer (segment)."""

    def __init__(self, xp, tensors):
        sizes = [int(np.prod(t.shape)) for t in tensors]
        self.xp, self.n = xp, len(tensors)
        self.flat = xp.concat([xp.flat(t) for t in tensors])
        self.seg = xp.const(np.repeat(np.arange(self.n), sizes), "int32")
        self.size = xp.const(np.maximum(sizes, 1))

    def sum(self, v):
        return self.xp.segsum(v, self.seg, self.n)

    def mean(self, v):
        return self.sum(v) / self.size

    def norm(self, v=None):
        return self.xp.sqrt(self.sum(self.xp.square(self.flat if v is None else v)))

    def var(self):
        xp = self.xp
        return self.mean(xp.square(self.flat - xp.take(self.mean(self.flat), self.seg)))

    def extreme(self, v, sign: float):
        """Per-segment max (sign 1) or min (sign -1) that is NaN where the segment holds a NaN, as NumPy's is."""
        xp = self.xp
        m = sign * xp.segmax(sign * v, self.seg, self.n)
        return xp.where(self.sum(xp.f32(xp.isnan(v))) > 0, xp.const(np.full(self.n, np.nan)), m)

    def fraction(self, cond):
        return self.mean(self.xp.f32(cond))


def _ratio(xp, num, den):
    """num / den, NaN where den is 0 or not finite (an update ratio against a zero or broken kernel)."""
    ok = xp.isfinite(den) & (den != 0)
    return xp.where(ok, num / xp.where(ok, den, np.float32(1.0)), np.float32(np.nan))


def kernel_stats(xp, names, kernels, prev_flat) -> tuple[dict, object]:
    """Weight norm, mean, variance and update ratio against `prev_flat` (the kernels at the last measure,
    flattened), per weighted layer's kernel; and the kernels flattened, to keep for the next one."""
    s = _Segments(xp, kernels)
    norm = s.norm()
    p = xp.f32(prev_flat)
    out = {"weight_norms": (names, norm), "weight_mean": (names, s.mean(s.flat)), "weight_var": (names, s.var()),
           "update_ratios": (names, _ratio(xp, s.norm(s.flat - p), s.norm(p))),
           "weights_nonfinite": (None, xp.any(xp.logical_not(xp.isfinite(norm))))}
    return out, s.flat


def _filled(xp, grads, variables) -> list:
    """The gradients, a variable with none (unconnected to the loss) as zeros of its shape."""
    return [xp.const(np.zeros(v.shape)) if g is None else xp.f32(g) for g, v in zip(grads, variables)]


def grad_stats(xp, grads, variables, kernels: list[tuple[int, str]]) -> dict:
    """Per trainable layer (kernel; `kernels` gives each one's variable index and layer name): norm, mean,
    mean |g|, zero fraction; over every trainable variable: the zero fraction and whether any entry is not
    finite."""
    gs = _filled(xp, grads, variables)
    every = xp.concat([xp.flat(g) for g in gs])
    total = max(1, sum(int(np.prod(v.shape)) for v in variables))
    names = [n for _, n in kernels]
    s = _Segments(xp, [gs[i] for i, _ in kernels])
    out = {"grad_norms": (names, s.norm()), "grad_mean": (names, s.mean(s.flat)),
           "grad_mean_abs": (names, s.mean(xp.abs(s.flat))), "grad_zero_fraction": (names, s.fraction(s.flat == 0)),
           "grad_zero_fraction_all": (None, xp.sum(xp.f32(every == 0)) / total if variables else xp.const(np.nan)),
           "grads_nonfinite": (None, xp.logical_not(xp.all(xp.isfinite(every))))}
    return out


def activation_stats(xp, acts, tracked, n: int) -> dict:
    """Dead-ReLU, ReLU-zero and saturated fractions and moments of each profiled layer's output."""
    names = [name for name, _ in tracked]
    s = _Segments(xp, acts)
    a = s.flat
    mean = s.mean(a)
    out = {"activation_mean": (names, mean),
           "activation_std": (names, xp.sqrt(s.mean(xp.square(a - xp.take(mean, s.seg))))),
           "activation_min": (names, s.extreme(a, -1.0)), "activation_max": (names, s.extreme(a, 1.0))}
    relu = [i for i, (_, k) in enumerate(tracked) if k == "relu"]
    if relu:
        zero = s.fraction(a <= 0)
        dead = [xp.sum(xp.f32(xp.all0(xp.reshape(xp.f32(acts[i]), (n, -1)) <= 0))) /
                max(1, int(np.prod(acts[i].shape)) // n) for i in relu]
        out["dead_relu_fraction"] = ([names[i] for i in relu], xp.concat([xp.reshape(d, (1,)) for d in dead]))
        out["relu_zero_fraction"] = ([names[i] for i in relu], xp.take(zero, xp.const(relu, "int32")))
    sat = [i for i, (_, k) in enumerate(tracked) if k in ("tanh", "sigmoid")]
    if sat:
        is_tanh = xp.const([k == "tanh" for _, k in tracked], "bool")
        frac = xp.where(is_tanh, s.fraction(xp.abs(a) >= TANH_5), s.fraction((a <= SIGMOID_M5) | (a >= SIGMOID_5)))
        out["saturated_fraction"] = ([names[i] for i in sat], xp.take(frac, xp.const(sat, "int32")))
    return out


def quantiles(xp, a):
    """QUANTILES of the finite values of `a` (linear interpolation, as NumPy's default); NaN when none is."""
    flat = xp.flat(a)
    finite = xp.isfinite(flat)
    count = xp.sum(xp.f32(finite))
    srt = xp.sort(xp.where(finite, flat, np.float32(np.finfo(np.float32).max)))  # non-finite values sorted last
    top = xp.where(count > 0, count - 1, np.float32(0.0))
    pos = top * xp.const(QUANTILES)
    lo = xp.floor(pos)
    hi = xp.where(lo + 1 < top, lo + 1, top)
    vlo, vhi = xp.take(srt, xp.i32(lo)), xp.take(srt, xp.i32(hi))
    q = vlo + (vhi - vlo) * (pos - lo)
    return xp.where(count > 0, q, np.float32(np.nan))


def step_grad_stats(xp, grads, variables, kernels: list[tuple[int, str]]) -> dict:
    """The per-step gradient statistics of the batch just applied, per trainable layer's kernel."""
    gs = _filled(xp, grads, variables)
    names = [n for _, n in kernels]
    ks = [gs[i] for i, _ in kernels]
    s = _Segments(xp, ks)
    qs = [quantiles(xp, g) for g in ks]
    pick = lambda level: xp.concat([xp.reshape(xp.take(q, xp.const([QUANTILES.index(level)], "int32")), (1,))  # noqa: E731
                                    for q in qs])
    return {"grad_norms": (names, s.norm()), "grad_mean_abs": (names, s.mean(xp.abs(s.flat))),
            "grad_max_abs": (names, s.extreme(xp.abs(s.flat), 1.0)), "grad_p5": (names, pick(0.05)),
            "grad_p95": (names, pick(0.95)), "grad_zero_fraction": (names, s.fraction(s.flat == 0)),
            "grad_nonfinite": (names, s.sum(xp.f32(xp.logical_not(xp.isfinite(s.flat)))))}


def step_weight_stats(xp, names, kernels, prev_flat) -> tuple[dict, object]:
    """Per weighted layer's kernel: min, max, variance, update ratio against the previous recorded step."""
    s = _Segments(xp, kernels)
    p = xp.f32(prev_flat)
    return {"weight_min": (names, s.extreme(s.flat, -1.0)), "weight_max": (names, s.extreme(s.flat, 1.0)),
            "weight_var": (names, s.var()), "update_ratios": (names, _ratio(xp, s.norm(s.flat - p), s.norm(p)))}, s.flat


# -- moving the statistics to the host in one transfer

def pack(xp, out: dict):
    """(layout, one float32 vector): every field's values concatenated, so the host reads a single tensor."""
    layout, parts = [], []
    for field, (names, v) in out.items():
        v = xp.reshape(xp.f32(v), (-1,))
        layout.append((field, names, int(v.shape[0])))
        parts.append(v)
    return layout, xp.concat(parts)


def unpack(layout, vec: np.ndarray) -> dict:
    """The inverse of `pack` on the host: {field: float | bool | {layer: float | int | [quantiles]}}."""
    out: dict = {}
    i = 0
    for field, names, size in layout:
        vals = vec[i:i + size]
        i += size
        if names is None:
            out[field] = bool(vals[0]) if field.endswith("nonfinite") else float(vals[0])
        elif field.endswith("quantiles"):
            k = len(QUANTILES)
            out[field] = {n: [float(x) for x in vals[j * k:(j + 1) * k]] for j, n in enumerate(names)}
        elif field == "grad_nonfinite":
            out[field] = {n: int(x) for n, x in zip(names, vals)}
        else:
            out[field] = {n: float(x) for n, x in zip(names, vals)}
    return out


# -- the model's parts the probe reads

def kernel_layers(model) -> tuple[list, list]:
    """(weighted layers, the trainable ones): AUTOTRAINER compares kernels, the first weight of a layer;
    a layer counts as trainable when that kernel is one of the model's trainable variables."""
    weighted = [l for l in model.layers if l.weights]
    ids = {id(v) for v in model.trainable_variables}
    return weighted, [l for l in weighted if id(l.weights[0]) in ids]


def activation_layers(model) -> list:
    """Every layer with an output worth profiling, with its activation's name."""
    out = []
    for l in model.layers:
        act = getattr(getattr(l, "activation", None), "__name__", "")
        if l.weights or act:
            out.append((l, act))
    return out


def _preactivation_layers(tracked) -> list:
    """Tracked layers whose activation can be switched off for one call (Dense, Conv): not recurrent ones,
    whose activation lives in their cell and is applied per time step."""
    return [l for l, act in tracked if act and act != "linear" and not hasattr(l, "cell")]


def probe_gradients(model, x, y) -> tuple[float, list]:
    """The loss on (x, y) and its gradient for each trainable variable, on the active backend, eagerly
    (NumPy out): the reference the compiled probe is tested against."""
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
        import jax

        def f(tv, ntv, mv, x, y):
            y_pred, _ = model.stateless_call(tv, ntv, x, training=False)
            return model.stateless_compute_loss(tv, ntv, mv, x=x, y=y, y_pred=y_pred, training=False)[0]

        loss, grads = jax.value_and_grad(f)([v.value for v in variables], [v.value for v in model.non_trainable_variables],
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


class EpochProbe:
    """The per-epoch probe of one run: built in `on_train_begin`, called at every epoch end.

    `measure()` returns the epoch's statistics as plain floats. Compiled (see the module docstring:
    once per architecture in a worker on TensorFlow, once per run on JAX) unless `eager`; the previous
    kernels, for the update ratios, stay on the device."""

    def __init__(self, model, x, y, eager: bool = False):
        import keras

        self.model, self.eager = model, eager
        self.backend = keras.backend.backend()
        self.xp = array_ops(self.backend)
        self.weighted, trainable = kernel_layers(model)
        self.names = [l.name for l in self.weighted]
        self.variables = list(model.trainable_variables)
        index = {id(v): i for i, v in enumerate(self.variables)}
        self.kernels = [(index[id(l.weights[0])], l.name) for l in trainable]
        tracked = activation_layers(model)
        self._tracked_layers = tracked
        self.tracked = [(l.name, act) for l, act in tracked]
        self.n_out = len(model.outputs) if tracked else 1
        self._probe_model = None
        self.x = keras.ops.convert_to_tensor(x)
        self.y = keras.ops.convert_to_tensor(y)
        self.n = int(x.shape[0])
        self.layout = None
        self._prev = self._kernels_flat()
        self._fn = self._build()

    @property
    def probe_model(self):
        """One forward pass gives the prediction and every profiled layer's output; built on first use
        (a run whose compiled probe is cached never needs it)."""
        if self._probe_model is None and self._tracked_layers:
            import keras

            self._probe_model = keras.Model(self.model.inputs,
                                            [*self.model.outputs, *[l.output for l, _ in self._tracked_layers]])
        return self._probe_model

    def _kernels_flat(self):
        return self.xp.concat([self.xp.flat(l.weights[0].value) for l in self.weighted])

    # -- the pieces every backend shares
    def _forward(self, x, training=False):
        if self.probe_model is None:
            return self.model(x, training=training), []
        outs = list(self.probe_model([x], training=training))
        k = self.n_out
        return (outs[0] if k == 1 else outs[:k]), outs[k:]

    def _stats(self, loss, grads, acts, kernels, prev):
        xp = self.xp
        out, flat = kernel_stats(xp, self.names, kernels, prev)
        out.update(grad_stats(xp, grads, self.variables, self.kernels))
        if acts:
            out.update(activation_stats(xp, acts, self.tracked, self.n))
        bad = out["weights_nonfinite"][1] | out["grads_nonfinite"][1] | xp.logical_not(xp.isfinite(xp.f32(loss)))
        out["nonfinite"] = (None, bad)
        self.layout, vec = pack(xp, out)
        return vec, flat

    # -- per backend: one compiled function () -> packed statistics
    def _build(self):
        if self.eager:
            return self._run_eager
        if self.backend == "tensorflow":
            return self._build_tf()
        if self.backend == "jax":
            return self._build_jax()
        return self._run_eager

    def _build_tf(self):
        """The compiled probe of this architecture (traced now, or by an earlier run of the worker), called
        with this run's weights; the previous kernels go in and come out as a tensor on the device."""
        entry = _TF_PROBES.get(self)
        model = self.model

        def run():
            vec, self._prev = entry.fn([v.value for v in model.trainable_variables],
                                       [v.value for v in model.non_trainable_variables],
                                       [v.value for v in model.metrics_variables], self._prev, self.x, self.y)
            self.layout = entry.layout
            return vec

        return run

    def _build_jax(self):
        import jax

        model, pm = self.model, self.probe_model

        def loss_fn(tv, ntv, mv, x, y):
            if pm is None:
                y_pred, _ = model.stateless_call(tv, ntv, x, training=False)
                acts = []
            else:
                outs, _ = pm.stateless_call(tv, ntv, [x], training=False)
                k = self.n_out
                y_pred, acts = (outs[0] if k == 1 else list(outs[:k])), list(outs[k:])
            loss, _ = model.stateless_compute_loss(tv, ntv, mv, x=x, y=y, y_pred=y_pred, training=False)
            return loss, acts

        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        weighted_ids = [id(l.weights[0]) for l in self.weighted]

        def fn(tv, ntv, mv, kernels, prev, x, y):
            (loss, acts), grads = grad_fn(tv, ntv, mv, x, y)
            return self._stats(loss, grads, acts, kernels, prev)

        compiled = jax.jit(fn)

        def run():
            by_id = {id(v): v for v in model.weights}
            vec, self._prev = compiled([v.value for v in model.trainable_variables],
                                       [v.value for v in model.non_trainable_variables],
                                       [v.value for v in model.metrics_variables],
                                       [by_id[i].value for i in weighted_ids], self._prev, self.x, self.y)
            return vec

        return run

    def _run_eager(self):
        """The statistics uncompiled: gradients from `probe_gradients`, the same reductions."""
        loss, grads = probe_gradients(self.model, self.x, self.y)
        _, acts = self._forward(self.x)
        vec, self._prev = self._stats(np.float32(loss), [None if g is None else self.xp.const(g) for g in grads],
                                      acts, [l.weights[0].value for l in self.weighted], self._prev)
        return vec

    def measure(self) -> dict:
        vec = _numpy(self._fn())   # first: the layout is known once the function has been traced
        return unpack(self.layout, vec)


def _probe_signature(p: EpochProbe) -> str | None:
    """Everything a compiled probe's graph depends on: the model's class, architecture and loss, the
    variables' shapes and dtypes, the probe batch's, and what is measured. None (never shared) for a model
    Keras cannot describe. Weights and initializers do not enter the graph: they are its arguments."""
    import keras

    m = p.model
    try:
        arch = json.loads(m.to_json())
        loss = keras.saving.serialize_keras_object(m.loss)
    except Exception:  # noqa: BLE001 - a model without a config is probed, just not shared
        return None
    shapes = [[(tuple(v.shape), str(v.dtype)) for v in vs]
              for vs in (m.trainable_variables, m.non_trainable_variables, m.metrics_variables)]
    batch = [(tuple(t.shape), str(t.dtype)) for t in (p.x, p.y)]
    return json.dumps([type(m).__module__, type(m).__qualname__, _graph_config(arch), loss,
                       getattr(m, "loss_weights", None), shapes, batch, p.names, p.kernels, p.tracked, p.n_out],
                      sort_keys=True, default=str)


def _graph_config(cfg):
    """The model config as far as the probe's graph depends on it: without its initializers (a seed there
    changes the weights, not the graph) and its compile config (the optimizer is not in the graph; the loss
    is in the signature on its own)."""
    if isinstance(cfg, dict):
        return {k: _graph_config(v) for k, v in cfg.items()
                if not k.endswith("_initializer") and k != "compile_config"}
    if isinstance(cfg, list):
        return [_graph_config(v) for v in cfg]
    return cfg


class _TFProbe:
    """One architecture's compiled probe: fn(trainable, non-trainable and metrics values, previous kernels,
    x, y) -> (statistics vector, this epoch's kernels), traced against the first run's model, whose layers
    compute with the values passed in (`stateless_call`, as on JAX)."""

    def __init__(self, p: EpochProbe):
        import tensorflow as tf

        model, pm = p.model, p.probe_model
        tv_ids = [id(v) for v in model.trainable_variables]
        ntv_ids = [id(v) for v in model.non_trainable_variables]
        where = {i: ("t", k) for k, i in enumerate(tv_ids)} | {i: ("n", k) for k, i in enumerate(ntv_ids)}
        kernels = [where[id(l.weights[0])] for l in p.weighted]
        if pm is not None:   # the probe model's variable order, as indices into the model's
            pm_t = [tv_ids.index(id(v)) for v in pm.trainable_variables]
            pm_n = [ntv_ids.index(id(v)) for v in pm.non_trainable_variables]
        self.layout = None

        def fn(tv, ntv, mv, prev, x, y):
            with tf.GradientTape() as tape:
                tape.watch(tv)
                if pm is None:
                    y_pred, _ = model.stateless_call(tv, ntv, x, training=False)
                    acts = []
                else:
                    outs, _ = pm.stateless_call([tv[i] for i in pm_t], [ntv[i] for i in pm_n], [x], training=False)
                    k = p.n_out
                    y_pred, acts = (outs[0] if k == 1 else list(outs[:k])), list(outs[k:])
                loss, _ = model.stateless_compute_loss(tv, ntv, mv, x=x, y=y, y_pred=y_pred, training=False)
            grads = tape.gradient(loss, tv) if tv else []
            vec, flat = p._stats(loss, grads, acts, [(tv if w == "t" else ntv)[k] for w, k in kernels], prev)
            self.layout = p.layout
            return vec, flat

        self.fn = tf.function(fn, autograph=False)


class _TFProbeCache:
    """The compiled probes of the architectures a worker has trained (each keeps its first model alive: a
    few MB; a training worker serves at most 60 runs, run.TRAIN_JOBS_PER_WORKER, so the bound is only a
    guard). A run still pays the probe's first execution: seeding clears TensorFlow's kernel caches at
    every run's start (`tf.random.set_seed`, tensorflow/python/eager/context.py `_set_global_seed`), so
    that no run inherits another's random state, and a function's instantiation goes with them."""

    def __init__(self, size: int = 64):
        self.size, self.hits, self.misses = size, 0, 0
        self._entries: OrderedDict[str, _TFProbe] = OrderedDict()

    def clear(self) -> None:
        """Forget every compiled probe (`make perf` times a run that traces its own)."""
        self._entries.clear()

    def get(self, p: EpochProbe) -> _TFProbe:
        key = _probe_signature(p)
        entry = self._entries.get(key) if key else None
        if entry is not None:
            self.hits += 1
            self._entries.move_to_end(key)
            return entry
        self.misses += 1
        entry = _TFProbe(p)
        if key:
            self._entries[key] = entry
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return entry


_TF_PROBES = _TFProbeCache()


def probe_cache_counts() -> tuple[int, int]:
    """(runs that reused a compiled probe, runs that traced one) in this process, on TensorFlow."""
    return _TF_PROBES.hits, _TF_PROBES.misses


def forget_compiled_probes() -> None:
    _TF_PROBES.clear()


class StepTap:
    """Per-step statistics of the actual batch, on TensorFlow.

    The gradients Keras applies are read where it applies them (the optimizer's `apply_gradients`,
    wrapped for this fit only, so the compiled train step is retraced with the tap), reduced there
    when `want` is set (every k-th batch) and kept in a variable the callback reads after the step;
    other steps pay one conditional. The batch loss comes from Keras's own loss tracker: the change
    of its weighted total over the change of its count across the step, so the loss computation is
    not wrapped (a case whose loss raises keeps its crash as its own)."""

    def __init__(self, model):
        import tensorflow as tf

        self.model, self.xp = model, TFOps()
        self.weighted, trainable = kernel_layers(model)
        self.variables = list(model.trainable_variables)
        index = {id(v): i for i, v in enumerate(self.variables)}
        self.kernels = [(index[id(l.weights[0])], l.name) for l in trainable]
        self.want = tf.Variable(False, trainable=False)
        self.layout, vec = pack(self.xp, step_grad_stats(self.xp, [None] * len(self.variables), self.variables,
                                                         self.kernels))
        self.stats = tf.Variable(tf.zeros_like(vec), trainable=False)
        self.tracker = next((m for m in model.metrics if m.name == "loss"), None)
        self._before = (0.0, 0.0)
        self._saved = None

    def install(self) -> None:
        opt = self.model.optimizer
        self._saved = apply = opt.apply_gradients

        def apply_gradients(grads_and_vars):
            gv = list(grads_and_vars)
            self._observe([g for g, _ in gv], [v for _, v in gv])
            return apply(gv)

        opt.apply_gradients = apply_gradients
        self.model.make_train_function(force=True)   # retraced with the tap (fit reads it on every step)

    def uninstall(self) -> None:
        if self._saved is not None:
            self.model.optimizer.apply_gradients = self._saved
            self.model.train_function = None
            self._saved = None

    def _observe(self, grads, variables) -> None:
        import tensorflow as tf

        index = {id(v): i for i, v in enumerate(variables)}
        ordered = [grads[index[id(v)]] if id(v) in index else None for v in self.variables]

        def record():
            _, vec = pack(self.xp, step_grad_stats(self.xp, ordered, self.variables, self.kernels))
            self.stats.assign(vec)
            return tf.constant(True)

        tf.cond(self.want, record, lambda: tf.constant(False))

    def _tracker_state(self) -> tuple[float, float]:
        if self.tracker is None:
            return math.nan, math.nan
        return float(_numpy(self.tracker.total)), float(_numpy(self.tracker.count))

    def begin(self) -> None:
        self.want.assign(True)
        self._before = self._tracker_state()

    def read(self) -> dict:
        self.want.assign(False)
        (t0, c0), (t1, c1) = self._before, self._tracker_state()
        loss = (t1 - t0) / (c1 - c0) if c1 != c0 else math.nan
        return {"loss": loss, **unpack(self.layout, _numpy(self.stats))}


class StepProbe:
    """After a recorded step: quantiles of each profiled layer's output and pre-activation on the probe
    batch, and each kernel's min, max, variance and update ratio since the previous recorded step."""

    def __init__(self, model, x):
        import keras
        import tensorflow as tf

        self.model, self.xp = model, TFOps()
        self.weighted, _ = kernel_layers(model)
        self.names = [l.name for l in self.weighted]
        tracked = activation_layers(model)
        self.tracked = [l.name for l, _ in tracked]
        self.pre = _preactivation_layers(tracked)
        outputs = [l.output for l, _ in tracked] + [l.input for l in self.pre]
        self.probe_model = keras.Model(model.inputs, outputs) if outputs else None
        self.x = tf.convert_to_tensor(x)
        self.prev = tf.Variable(self.xp.concat([self.xp.flat(l.weights[0].value) for l in self.weighted]),
                                trainable=False)
        self.layout = None
        self._fn = tf.function(self._measure, autograph=False)

    def _linear(self, layer, inp):
        """The layer's output with its activation switched off for this one call: its pre-activation."""
        import keras

        saved = layer.activation
        layer.activation = keras.activations.linear
        try:
            return layer(inp, training=False)
        finally:
            layer.activation = saved

    def _measure(self, x):
        xp = self.xp
        out = {}
        if self.probe_model is not None:
            outs = self.probe_model([x], training=False)
            outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
            out["activation_quantiles"] = (self.tracked, xp.concat([quantiles(xp, a) for a in outs[:len(self.tracked)]]))
            if self.pre:
                pre = [quantiles(xp, self._linear(l, inp)) for l, inp in zip(self.pre, outs[len(self.tracked):])]
                out["preactivation_quantiles"] = ([l.name for l in self.pre], xp.concat(pre))
        stats, flat = step_weight_stats(xp, self.names, [l.weights[0].value for l in self.weighted], self.prev)
        out.update(stats)
        self.layout, vec = pack(xp, out)
        self.prev.assign(flat)
        return vec

    def measure(self) -> dict:
        vec = _numpy(self._fn(self.x))   # first: the layout is known once the function has been traced
        return unpack(self.layout, vec)


def _epoch_defaults() -> dict:
    """Every per-layer mapping of an `EpochTrace`, empty: the fields a finished epoch always carries."""
    import dataclasses

    from .record import EpochTrace

    return {f.name: {} for f in dataclasses.fields(EpochTrace) if "Map" in str(f.type) and f.name != "logs"}


_EPOCH_DEFAULTS = _epoch_defaults()


def _make_callback_base():
    import keras
    return keras.callbacks.Callback


class TraceCallback(_make_callback_base()):  # type: ignore[misc]
    """The per-epoch trace; with `trace_every=k` (TensorFlow) also a step record every k batches of an
    epoch (batches 0, k, 2k, ...). `eager=True` runs the probes uncompiled (for the tests)."""

    def __init__(self, x_probe, y_probe, shapes_seen: list | None, array_shapes: list | None,
                 trace_every: int = 0, eager: bool = False):
        super().__init__()
        self.x_probe, self.y_probe = x_probe, y_probe
        self.shapes_seen, self.array_shapes = shapes_seen, array_shapes
        self.trace_every, self.eager = int(trace_every or 0), eager
        self.epochs: list[dict] = []
        self._probe: EpochProbe | None = None
        self._tap: StepTap | None = None
        self._step_probe: StepProbe | None = None
        self._global_step = 0

    def on_train_begin(self, logs=None):
        import keras

        self._global_step = 0
        self._probe = EpochProbe(self.model, self.x_probe, self.y_probe, eager=self.eager)
        self._tap = self._step_probe = None
        if self.trace_every > 0 and keras.backend.backend() == "tensorflow":
            self._tap = StepTap(self.model)
            self._tap.install()
            self._step_probe = StepProbe(self.model, self.x_probe)

    def on_train_end(self, logs=None):
        if self._tap is not None:
            self._tap.uninstall()

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()
        self._steps = 0
        self._shape_mark = len(self.shapes_seen) if self.shapes_seen is not None else 0
        self.epochs.append({"epoch": epoch, "completed": False, "steps": 0,
                            "expected_steps": int(self.params.get("steps") or 0)})

    def _recorded(self, batch: int) -> bool:
        return self._tap is not None and batch % self.trace_every == 0

    def on_train_batch_begin(self, batch, logs=None):
        if self._recorded(batch):
            self._tap.begin()

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1
        self.epochs[-1]["steps"] = self._steps
        if self._recorded(batch):
            with np.errstate(all="ignore"):
                step = {"step": self._global_step, "batch": int(batch), **self._tap.read(),
                        **self._step_probe.measure()}
            self.epochs[-1].setdefault("step_trace", []).append(step)
        self._global_step += 1

    def on_epoch_end(self, epoch, logs=None):
        e = self.epochs[-1]
        e["seconds"] = time.perf_counter() - self._t0
        e["logs"] = {k: _f(v) for k, v in (logs or {}).items()}
        e["batch_shapes"] = self._batch_shapes()
        with np.errstate(all="ignore"):  # diverging runs overflow on purpose
            stats = self._probe.measure()
        stats.pop("loss", None)
        e.update(stats)
        e["learning_rate"] = self._learning_rate()
        e.setdefault("step_trace", [])
        for name, default in _EPOCH_DEFAULTS.items():   # a field with no layer to measure is still there, empty
            e.setdefault(name, default)
        e["completed"] = True
        e["seconds"] = time.perf_counter() - self._t0

    def _learning_rate(self) -> float:
        """The learning rate the optimizer used at this point (a schedule evaluated at its step)."""
        opt = getattr(self.model, "optimizer", None)
        try:   # float32 printed shortest, so SGD(0.1) records 0.1 as the case file says
            return float(str(np.float32(_numpy(opt.learning_rate))))
        except Exception:  # noqa: BLE001 - an optimizer without a readable rate records NaN, as unknown
            return math.nan

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
