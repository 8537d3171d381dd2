"""umlaut: each heuristic of BerkeleyHCI/umlaut `umlaut/heuristics.py` @68c2a02 fires on a record
built to trip it and stays silent just inside its threshold (synthetic records, no training)."""

from __future__ import annotations

import pytest

from trainwreck.detectors.base import restrict
from trainwreck.detectors.testing import healthy_dict
from trainwreck.detectors.umlaut import Umlaut
from trainwreck.record import RunRecord

NAN = float("nan")


def clean():
    """A record none of UMLAUT's heuristics fire on: L142 wants a last layer named 'softmax' and L211
    a linear layer before it, so the model ends Dense(linear) -> Softmax; inputs lie in [-1, 1]."""
    d = healthy_dict(8)
    d["model"]["layers"][-1].update(activation="linear")
    d["model"]["layers"].append({"name": "softmax", "kind": "Softmax", "activation": ""})
    d["model"]["output_activation"] = "softmax"
    n = len(d["data"]["feature_min"])
    d["data"].update(feature_min=[-1.0] * n, feature_max=[1.0] * n, input_min=-1.0, input_max=1.0)
    for i, e in enumerate(d["trace"]):
        e["logs"].update(accuracy=0.6 + 0.04 * i, val_accuracy=0.6 + 0.04 * i)
    return d


def found(d):
    return {(x.cause, x.symptom): x for x in Umlaut().diagnose(restrict(RunRecord.from_dict(d), Umlaut.needs))}


def test_clean_record_is_silent():
    assert found(clean()) == {}


def test_no_softmax_before_loss_and_final_activation():
    d = healthy_dict(4)       # last layer 'dense_3', sigmoid: L142-153 and L211-223 both fire
    out = Umlaut().diagnose(restrict(RunRecord.from_dict(d), Umlaut.needs))
    texts = [x.evidence for x in out if x.cause == "wrong_output_activation"]
    assert any("Missing Softmax" in t for t in texts) and any("nonlinear activation 'sigmoid'" in t for t in texts)
    assert all(x.epoch is None for x in out if x.cause == "wrong_output_activation")


def test_missing_activation():
    d = clean()
    d["model"]["layers"][0]["activation"] = "linear"
    assert "layer 0 (dense_1) is linear" in found(d)[("underfitting", None)].evidence


def test_high_dropout():
    d = clean()
    d["model"]["layers"].insert(1, {"name": "dropout", "kind": "Dropout", "activation": "", "dropout_rate": 0.6})
    assert ("underfitting", None) in found(d)
    d["model"]["layers"][1]["dropout_rate"] = 0.5         # rate > 0.5 only
    assert ("underfitting", None) not in found(d)


@pytest.mark.parametrize("lo,hi,fires", [(-1.0, 1.0, False), (-1.01, 1.0, True), (0.0, 1.5, True)])
def test_input_normalization(lo, hi, fires):
    d = clean()
    d["data"].update(input_min=lo, input_max=hi)
    assert (("unscaled_features", "out_of_range_values") in found(d)) is fires


def test_input_normalization_silent_on_nan_data():
    d = clean()
    d["data"].update(input_min=-5.0, input_max=5.0, nan_count=3)   # np.min(x) is NaN
    assert ("unscaled_features", "out_of_range_values") not in found(d)


def test_nan_in_input():
    d = clean()
    d["data"]["nan_count"] = 3
    assert ("nan_inputs", "nan_loss") not in found(d)          # finite loss: silent
    d["trace"][2]["logs"]["loss"] = NAN
    assert found(d)[("nan_inputs", "nan_loss")].epoch == 2
    d["data"]["nan_count"] = 0                                # NaN loss, clean inputs: silent
    assert ("nan_inputs", "nan_loss") not in found(d)


@pytest.mark.parametrize("lr,cause", [(0.01, None), (0.0101, "lr_too_high"), (1e-7, None), (9e-8, "lr_too_low")])
def test_learning_rate_range(lr, cause):
    d = clean()
    d["model"]["learning_rate"] = lr
    causes = {c for c, _ in found(d)}
    assert causes & {"lr_too_high", "lr_too_low"} == ({cause} if cause else set())


def test_overfitting():
    d = clean()
    d["trace"][5]["logs"]["val_loss"] = d["trace"][4]["logs"]["val_loss"] + 0.01   # val up, train down
    assert found(d)[("overfitting", "train_val_gap")].epoch == 5
    d["trace"][5]["logs"]["loss"] = d["trace"][4]["logs"]["loss"] + 0.001           # both up: silent
    assert ("overfitting", "train_val_gap") not in found(d)


def test_high_validation_accuracy():
    d = clean()
    d["trace"][2]["logs"]["val_accuracy"] = 0.99        # epoch < 3: ignored
    assert (None, "inflated_validation") not in found(d)
    d["trace"][3]["logs"].update(accuracy=0.7, val_accuracy=0.76)    # val - train = 0.06 > 0.05
    assert found(d)[(None, "inflated_validation")].epoch == 3
    d["trace"][3]["logs"].update(val_accuracy=0.74)                  # 0.04: not more than 5%
    assert (None, "inflated_validation") not in found(d)
