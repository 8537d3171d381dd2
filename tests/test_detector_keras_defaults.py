"""keras-defaults against the real Keras callbacks: the same val_loss sequence is fed to
keras.callbacks.EarlyStopping(patience=5) and ReduceLROnPlateau() (defaults) on a real compiled
model, and the detector must flag the epoch at which Keras stops training or cuts the rate."""

from __future__ import annotations

import math

import pytest

from trainwreck.detectors.base import restrict
from trainwreck.detectors.keras_defaults import PATIENCE_EARLY_STOPPING, KerasDefaults
from trainwreck.detectors.testing import healthy_dict
from trainwreck.record import RunRecord

NAN = float("nan")

CURVES = {
    "improving": [1.0 / (1 + i) for i in range(15)],
    "plateau_after_3": [1.0, 0.8, 0.7, 0.65] + [0.66] * 14,
    "tiny_gains": [1.0 - 5e-5 * (i % 2) for i in range(16)],     # below ReduceLR's min_delta 1e-4
    "rises": [0.5 + 0.05 * i for i in range(12)],
}


def record(val_losses):
    d = healthy_dict(len(val_losses))
    for e, v in zip(d["trace"], val_losses):
        e["logs"]["val_loss"] = v
    return d


def flagged(val_losses):
    out = KerasDefaults().diagnose(restrict(RunRecord.from_dict(record(val_losses)), KerasDefaults.needs))
    early = [d.epoch for d in out if d.evidence.startswith("EarlyStopping")]
    reduce = [d.epoch for d in out if d.evidence.startswith("ReduceLROnPlateau")]
    return (early[0] if early else None), (reduce[0] if reduce else None)


def keras_verdicts(val_losses):
    """(epoch EarlyStopping stops at, epoch ReduceLROnPlateau first cuts the lr at), from Keras itself."""
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
    early = keras.callbacks.EarlyStopping(monitor="val_loss", patience=PATIENCE_EARLY_STOPPING)
    reduce = keras.callbacks.ReduceLROnPlateau()
    stop_at = cut_at = None
    for cb in (early, reduce):
        cb.set_model(model)
        cb.on_train_begin()
    for epoch, v in enumerate(val_losses):
        model.stop_training = False
        early.on_epoch_end(epoch, {"val_loss": v})
        if model.stop_training and stop_at is None:
            stop_at = epoch
        before = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        reduce.on_epoch_end(epoch, {"val_loss": v})
        after = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
        if after < before and cut_at is None:
            cut_at = epoch
    return stop_at, cut_at


@pytest.mark.parametrize("curve", sorted(CURVES))
def test_agrees_with_keras(curve):
    assert flagged(CURVES[curve]) == keras_verdicts(CURVES[curve])


def test_expected_numbers():
    """The numbers themselves: patience 5 after the best at epoch 3 -> stop at 8; ReduceLROnPlateau's
    patience 10 -> cut at 13; a gain of 5e-5 at epoch 1 improves for EarlyStopping (min_delta 0), which
    then stops 5 epochs later at epoch 6, but not for ReduceLROnPlateau (min_delta 1e-4), which waits
    from epoch 1 and cuts at epoch 10."""
    assert flagged(CURVES["plateau_after_3"]) == (8, 13)
    assert flagged(CURVES["improving"]) == (None, None)
    assert flagged(CURVES["tiny_gains"]) == (6, 10)


def test_terminate_on_nan():
    d = record(CURVES["improving"])
    d["trace"][4]["logs"]["loss"] = NAN
    out = KerasDefaults().diagnose(restrict(RunRecord.from_dict(d), KerasDefaults.needs))
    nan = [x for x in out if x.symptom == "nan_loss"]
    assert len(nan) == 1 and nan[0].epoch == 4 and nan[0].cause is None
    d["trace"][4]["logs"]["loss"] = math.inf
    assert [x.epoch for x in KerasDefaults().diagnose(RunRecord.from_dict(d)) if x.symptom == "nan_loss"] == [4]


def test_no_val_loss_no_monitor():
    d = healthy_dict(20)
    for e in d["trace"]:
        e["logs"].pop("val_loss")
        e["logs"]["loss"] = 1.0
    assert KerasDefaults().diagnose(RunRecord.from_dict(d)) == []
