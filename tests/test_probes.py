"""The trace's probes on a real small model: the compiled probe gives the eager probe's numbers, both
give what NumPy computes from the model's own gradients and activations, frozen layers have no
gradient entry, and the per-step records read the gradients of the actual batch."""

from __future__ import annotations

import math

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from trainwreck.record import QUANTILES, RunRecord  # noqa: E402
from trainwreck.summary import layer_summaries  # noqa: E402
from trainwreck.trace import PROBE_SIZE, TraceCallback, probe_gradients  # noqa: E402

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the TensorFlow probes")


def _data(n=192, d=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int32")
    return x, y


def _model(frozen_first=False, d=6):
    model = keras.Sequential([keras.Input((d,)),
                              keras.layers.Dense(12, activation="relu", trainable=not frozen_first,
                                                 kernel_initializer="he_normal"),
                              keras.layers.Dropout(0.25),
                              keras.layers.Dense(8, activation="tanh"),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def _fit(eager: bool, frozen_first=False, trace_every=0, epochs=3, seed=0):
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    x, y = _data()
    model = _model(frozen_first)
    cb = TraceCallback(x[:PROBE_SIZE], y[:PROBE_SIZE], None, None, trace_every=trace_every, eager=eager)
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, callbacks=[cb], shuffle=False)
    return model, cb


def _close(a, b, path=""):
    """Equal up to float32 rounding, NaN equal to NaN, over nested dicts and lists."""
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (u, v) in enumerate(zip(a, b)):
            _close(u, v, f"{path}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-4, abs=1e-6), (path, a, b)
    else:
        assert a == b, (path, a, b)


def test_compiled_probe_equals_eager_probe():
    _, compiled = _fit(eager=False)
    _, eager = _fit(eager=True)
    strip = lambda e: {k: v for k, v in e.items() if k != "seconds"}  # noqa: E731
    assert len(compiled.epochs) == 3
    for c, e in zip(compiled.epochs, eager.epochs):
        _close(strip(c), strip(e), f"epoch {c['epoch']}")
        assert c["grad_norms"] and c["activation_mean"] and c["update_ratios"]


def test_a_probe_reused_by_a_later_run_records_what_its_own_would(monkeypatch):
    """The compiled probe takes the weights as arguments, so a worker traces it once per architecture: a run
    that reuses an earlier run's probe must record exactly (bit for bit) what a probe traced for it records."""
    from trainwreck import trace

    strip = lambda e: {k: v for k, v in e.items() if k != "seconds"}  # noqa: E731
    monkeypatch.setattr(trace, "_TF_PROBES", trace._TFProbeCache())
    _fit(eager=False, seed=1)
    assert trace.probe_cache_counts() == (0, 1)
    _, reused = _fit(eager=False, seed=2)            # same architecture, other weights and data order
    assert trace.probe_cache_counts() == (1, 1)
    monkeypatch.setattr(trace, "_TF_PROBES", trace._TFProbeCache())
    _, own = _fit(eager=False, seed=2)
    assert trace.probe_cache_counts() == (0, 1)
    assert [strip(e) for e in reused.epochs] == [strip(e) for e in own.epochs]
    assert reused.epochs[-1]["grad_norms"] and reused.epochs[-1]["update_ratios"]
    _fit(eager=False, seed=2, frozen_first=True)     # another architecture: a probe of its own
    assert trace.probe_cache_counts() == (0, 2)


def test_probe_numbers_are_numpys_on_the_models_own_gradients():
    """An independent reference: NumPy on `probe_gradients` and on the layer outputs, at train end."""
    model, cb = _fit(eager=False, epochs=1)
    x, y = _data()
    xp, yp = x[:PROBE_SIZE], y[:PROBE_SIZE]
    last = cb.epochs[-1]
    _, grads = probe_gradients(model, xp, yp)
    by_var = {id(v): g for v, g in zip(model.trainable_variables, grads)}
    for layer in (l for l in model.layers if l.weights):
        g = by_var[id(layer.weights[0])]
        w = np.asarray(layer.weights[0].numpy())
        assert last["grad_norms"][layer.name] == pytest.approx(float(np.linalg.norm(g)), rel=1e-5)
        assert last["grad_mean_abs"][layer.name] == pytest.approx(float(np.mean(np.abs(g))), rel=1e-5)
        assert last["weight_norms"][layer.name] == pytest.approx(float(np.linalg.norm(w)), rel=1e-5)
        assert last["weight_var"][layer.name] == pytest.approx(float(np.var(w)), rel=1e-4)
    relu = model.layers[0]
    a = np.asarray(keras.Model(model.inputs, relu.output)([xp]))
    assert last["relu_zero_fraction"][relu.name] == pytest.approx(float(np.mean(a <= 0)))
    assert last["dead_relu_fraction"][relu.name] == pytest.approx(float(np.mean(np.all(a <= 0, axis=0))))
    assert last["activation_max"][relu.name] == pytest.approx(float(a.max()), rel=1e-6)
    assert last["learning_rate"] == pytest.approx(0.05)


def test_the_probe_computes_the_forward_the_run_computes_even_on_nan_inputs():
    """What ReLU gives for NaN depends on the kernel that runs it: a fused matmul+bias+relu (grappler's
    remapper, oneDNN) gives 0 on some CPUs where a plain Relu gives NaN. The probe must be optimised as Keras's
    own compiled functions are, so that it measures the run's forward and not another one (a probe run without
    grappler once read NaN where the run itself read 0, and moved every NaN-input case's diagnoses)."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    x, y = _data()
    x[::3, 0] = np.nan
    model = _model()
    cb = TraceCallback(x[:PROBE_SIZE], y[:PROBE_SIZE], None, None)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[cb], shuffle=False)
    relu = model.layers[0]
    a = keras.Model(model.inputs, relu.output).predict(x[:PROBE_SIZE], batch_size=PROBE_SIZE, verbose=0)
    assert np.isnan(x[:PROBE_SIZE]).any()
    assert cb.epochs[-1]["relu_zero_fraction"][relu.name] == pytest.approx(float(np.mean(a <= 0)))
    assert cb.epochs[-1]["dead_relu_fraction"][relu.name] == pytest.approx(float(np.mean(np.all(a <= 0, axis=0))))


def test_a_frozen_layer_has_no_gradient_entry_and_is_summarised_as_frozen():
    """Issue 15: both originals read trainable variables only, so a frozen layer is not a zero gradient."""
    model, cb = _fit(eager=False, frozen_first=True)
    frozen = model.layers[0].name
    for e in cb.epochs:
        assert frozen not in e["grad_norms"] and frozen not in e["grad_mean_abs"]
        assert frozen not in e["grad_zero_fraction"]
        assert list(e["grad_norms"]) == [l.name for l in model.layers[2:]]   # the trainable kernels, in order
        assert e["update_ratios"][frozen] == 0.0                           # its kernel is still measured
        assert e["weight_norms"][frozen] > 0
        assert e["grad_zero_fraction_all"] < 0.5                          # zeros of trainable variables only
    layers = {l["name"]: l for l in layer_summaries(model)}
    assert layers[frozen]["trainable"] is False and layers[frozen]["kernel_initializer"] == "HeNormal"
    assert layers[model.layers[1].name]["dropout_rate"] == 0.25
    assert layers[model.layers[2].name]["activation"] == "tanh" and layers[model.layers[2].name]["trainable"]


def test_compiled_and_eager_agree_with_a_frozen_layer():
    _, compiled = _fit(eager=False, frozen_first=True, epochs=2)
    _, eager = _fit(eager=True, frozen_first=True, epochs=2)
    for c, e in zip(compiled.epochs, eager.epochs):
        _close({k: v for k, v in c.items() if k != "seconds"}, {k: v for k, v in e.items() if k != "seconds"})


def test_step_records_read_the_actual_batch():
    """Every k-th batch: the batch's own loss and gradients (recomputed here on that batch, in order,
    since fit does not shuffle), quantiles at the declared levels, and training left unchanged."""
    k = 2
    model, cb = _fit(eager=False, trace_every=k, epochs=2)
    _, plain = _fit(eager=False, epochs=2)
    for a, b in zip(cb.epochs, plain.epochs):   # the tap reads; it does not change what is trained
        assert a["logs"] == b["logs"] and a["weight_norms"] == b["weight_norms"]
    steps = [s for e in cb.epochs for s in e["step_trace"]]
    assert [s["batch"] for s in cb.epochs[0]["step_trace"]] == [0, 2, 4]
    assert [s["step"] for s in steps] == [0, 2, 4, 6, 8, 10]
    first = steps[0]
    assert len(first["activation_quantiles"][model.layers[0].name]) == len(QUANTILES)
    pre = first["preactivation_quantiles"][model.layers[0].name]
    assert pre[0] < 0 <= first["activation_quantiles"][model.layers[0].name][0]   # ReLU's input goes below 0
    assert sorted(pre) == pre

    out_layer = model.layers[-1].name
    assert math.isfinite(first["loss"]) and first["loss"] > 0
    assert first["grad_nonfinite"] == {n: 0 for n in first["grad_norms"]}
    assert set(first["grad_norms"]) == {l.name for l in model.layers if l.weights}
    assert first["grad_p5"][out_layer] <= first["grad_p95"][out_layer]
    assert first["grad_max_abs"][out_layer] >= max(abs(first["grad_p5"][out_layer]), abs(first["grad_p95"][out_layer]))


def test_step_loss_is_the_batch_loss_without_dropout():
    """With no dropout, the recorded batch loss and gradient norm are exactly those of that batch."""
    import tensorflow as tf

    def build():
        keras.backend.clear_session()
        keras.utils.set_random_seed(1)
        m = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
        m.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
        return m

    x, y = _data()
    model = build()
    cb = TraceCallback(x[:PROBE_SIZE], y[:PROBE_SIZE], None, None, trace_every=3)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[cb], shuffle=False)
    steps = cb.epochs[0]["step_trace"]
    assert [s["batch"] for s in steps] == [0, 3]

    ref = build()   # the same seed: the initial weights batch 0 was applied to
    with tf.GradientTape() as tape:
        loss = ref.compute_loss(x=x[:32], y=y[:32], y_pred=ref(x[:32], training=True), training=True)
    grads = tape.gradient(loss, ref.trainable_variables)
    kernel = ref.layers[0].weights[0]
    g = next(g for g, v in zip(grads, ref.trainable_variables) if v is kernel).numpy()
    first = steps[0]
    assert first["loss"] == pytest.approx(float(loss), rel=1e-5)
    name = model.layers[0].name
    assert first["grad_norms"][name] == pytest.approx(float(np.linalg.norm(g)), rel=1e-5)
    assert first["grad_p95"][name] == pytest.approx(float(np.quantile(g, 0.95)), rel=1e-4, abs=1e-7)
    assert first["grad_zero_fraction"][name] == pytest.approx(float(np.mean(g == 0)))


def test_step_records_fit_the_strict_schema():
    model, cb = _fit(eager=False, trace_every=4, epochs=1)
    rec = RunRecord.from_dict({"key": "k", "trace_every": 4, "trace": cb.epochs})
    step = rec.trace[0].step_trace[0]
    assert step.step == 0 and isinstance(step.activation_quantiles[model.layers[0].name], tuple)
    with pytest.raises(ValueError, match="step_trace.0.grad_p50: unknown field|step_trace\\[0\\].grad_p50"):
        RunRecord.from_dict({"key": "k", "trace": [{"epoch": 0, "step_trace": [{"step": 0, "grad_p50": {}}]}]})


def test_restrict_hides_steps_from_a_detector_that_does_not_declare_them():
    from trainwreck.detectors.base import restrict

    _, cb = _fit(eager=False, trace_every=4, epochs=1)
    rec = RunRecord.from_dict({"key": "k", "trace_every": 4, "trace": cb.epochs})
    assert rec.trace[0].step_trace
    assert restrict(rec, frozenset({"trace"})).trace[0].step_trace == ()
    assert restrict(rec, frozenset({"trace", "steps"})).trace[0].step_trace == rec.trace[0].step_trace
