"""The oracle's scores of a split (train._evaluate): a split up to ONE_BATCH_ROWS is scored in one call of
Keras's `test_on_batch`/`predict_on_batch`; a larger one by `evaluate`/`predict` in batches. Both must be
Keras's own loss (regularization losses included) and metrics on real trained models, to float rounding."""

from __future__ import annotations

import math

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from trainwreck import train  # noqa: E402


def _classifier(d):
    return keras.Sequential([
        keras.Input((d,)),
        keras.layers.Dense(16, activation="relu", kernel_regularizer=keras.regularizers.L2(0.01),
                           activity_regularizer=keras.regularizers.L1(0.001)),
        keras.layers.BatchNormalization(),
        keras.layers.Dropout(0.3),
        keras.layers.Dense(3, activation="softmax")])


def _regressor(d):
    return keras.Sequential([keras.Input((d,)), keras.layers.Dense(8, activation="tanh"),
                             keras.layers.Dense(1, kernel_regularizer=keras.regularizers.L1L2(0.01, 0.01))])


def _sequence(d):
    return keras.Sequential([keras.Input((5, d)), keras.layers.LSTM(6), keras.layers.Dense(1, activation="sigmoid")])


CASES = {
    "classification": (_classifier, (700, 6), "sparse_categorical_crossentropy", ["accuracy"], "classification"),
    "regression": (_regressor, (700, 6), "mse", ["mae"], "regression"),
    "sequence": (_sequence, (700, 5, 3), "binary_crossentropy", ["accuracy"], "classification"),
}


def _trained(kind):
    build, shape, loss, metrics, task = CASES[kind]
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape).astype("float32")
    signal = x.reshape(len(x), -1)[:, 0] + 0.5 * x.reshape(len(x), -1)[:, 1]
    y = {"classification": np.digitize(signal, [-0.5, 0.5]).astype("int32"), "regression": (3 * signal).astype("float32"),
         "sequence": (signal > 0).astype("int32")}[kind]
    model = build(shape[-1])
    model.compile(optimizer="adam", loss=loss, metrics=metrics)
    model.fit(x[:500], y[:500], batch_size=64, epochs=2, verbose=0)
    return model, x[500:], y[500:], task


@pytest.mark.parametrize("kind", sorted(CASES))
def test_one_batch_scores_equal_keras_evaluate_and_predict(kind, monkeypatch):
    model, x, y, task = _trained(kind)
    assert len(x) <= train.ONE_BATCH_ROWS
    one = train._evaluate(model, x, y, task)
    monkeypatch.setattr(train, "ONE_BATCH_ROWS", 0)   # every split through evaluate/predict in batches
    batched = train._evaluate(model, x, y, task)
    assert set(one) == set(batched) and "loss" in one and len(one) >= 3
    for name, value in batched.items():
        assert math.isclose(one[name], value, rel_tol=1e-5, abs_tol=1e-6), (name, one[name], value)
    if kind != "sequence":   # the loss carries the regularization terms, as evaluate's does
        assert one["loss"] > float(keras.losses.get(CASES[kind][2])(y, model.predict_on_batch(x)).numpy().mean())


def test_a_model_that_cannot_score_the_split_is_an_error_entry():
    model, x, y, task = _trained("classification")
    out = train._evaluate(model, x, np.zeros((len(x), 7), "float32"), task)   # one-hot of the wrong width
    assert set(out) == {"error"} and out["error"]
