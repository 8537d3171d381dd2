"""deeplocalize: each of DeepLocalize's on_batch_end checks makes the original's decision on a synthetic
record (per-step trace, and the per-epoch fallback), at most one finding per run, and the detector
passes the conformance kit. No training."""

from __future__ import annotations

import math

import pytest

from trainwreck.detectors.base import restrict
from trainwreck.detectors.deeplocalize import DeepLocalize
from trainwreck.detectors.testing import check_detector, healthy_dict
from trainwreck.record import QUANTILES, RunRecord

LAYERS = ("dense_1", "dense_2", "dense_3")
STEPS = 4          # recorded steps per epoch (batches 0, 10, 20, 30 at trace_every 10)
NAN, INF = math.nan, math.inf


def _step(g: int) -> dict:
    """Recorded step g (global index) of a healthy run: every statistic moves from step to step."""
    f = 1.0 / (1 + 0.1 * g)
    quant = lambda lo, hi: [lo + (hi - lo) * q * f for q in QUANTILES]  # noqa: E731
    return {
        "step": g * 10, "batch": (g % STEPS) * 10, "loss": 0.7 * f,
        "grad_norms": {n: 0.5 * f for n in LAYERS}, "grad_mean_abs": {n: 1e-2 * f for n in LAYERS},
        "grad_max_abs": {n: 0.1 * f for n in LAYERS}, "grad_zero_fraction": {n: 0.05 for n in LAYERS},
        "grad_nonfinite": {n: 0 for n in LAYERS},
        "activation_quantiles": {"dense_1": quant(0.0, 2.0), "dense_2": quant(0.0, 1.5), "dense_3": quant(0.1, 0.9)},
        "weight_min": {n: -0.5 - 0.01 * g for n in LAYERS}, "weight_max": {n: 0.5 + 0.01 * g for n in LAYERS},
        "weight_var": {n: 0.05 + 0.001 * g for n in LAYERS}, "update_ratios": {n: 0.01 * f for n in LAYERS},
    }


def stepped(epochs: int = 6) -> dict:
    """healthy_dict with a per-step trace, trace_every 10, and the epoch means the fallback reads."""
    d = healthy_dict(epochs)
    d["trace_every"] = 10
    for e in d["trace"]:
        i = e["epoch"]
        e["step_trace"] = [_step(i * STEPS + j) for j in range(STEPS)]
        e["weight_mean"] = {n: 0.01 + 0.001 * i for n in LAYERS}
        e["grad_mean"] = {n: 1e-3 / (1 + i) for n in LAYERS}
    return d


def per_epoch(epochs: int = 6) -> dict:
    d = stepped(epochs)
    d["trace_every"] = 0
    for e in d["trace"]:
        e["step_trace"] = []
    return d


def run(d: dict):
    return DeepLocalize().diagnose(restrict(RunRecord.from_dict(d), DeepLocalize.needs))


def only(d: dict):
    out = run(d)
    assert len(out) == 1, out
    return out[0]


def steps(d):
    """The recorded steps in run order (global observation 1, 2, ... = the original's counter)."""
    return [s for e in d["trace"] for s in e["step_trace"]]


@pytest.mark.parametrize("make", [stepped, per_epoch])
def test_healthy_is_silent(make):
    assert run(make()) == []


# ---------------------------------------------------------------- 1. forward (L391-420)
def test_forward_nonfinite_step():
    d = stepped()
    steps(d)[6]["activation_quantiles"]["dense_2"] = [NAN] * len(QUANTILES)   # no finite output
    diag = only(d)
    assert (diag.symptom, diag.epoch) == ("nan_loss", 1)
    assert "Batch 20 (step 60) layer 1 (dense_2): Error in forward, terminating training" in diag.evidence


def test_forward_partly_nonfinite_is_seen_at_the_epoch_end():
    d = stepped()
    d["trace"][2]["activation_mean"]["dense_1"] = NAN        # quantiles (finite values) look fine
    diag = only(d)
    assert (diag.symptom, diag.epoch) == ("nan_loss", 2) and "end of epoch 2" in diag.evidence


def _zero_forward(s):
    s["activation_quantiles"]["dense_1"] = [0.0] * len(QUANTILES)


def test_forward_zero_at_the_first_batch_fires_at_once():
    d = stepped()
    _zero_forward(steps(d)[0])                  # count 1 >= counter 1 / 2
    diag = only(d)
    assert (diag.symptom, diag.epoch) == ("dead_units", 0) and "Error in forward" in diag.evidence


def test_forward_zero_count_must_reach_half_the_observations():
    d = stepped()
    _zero_forward(steps(d)[2])                  # observation 3: 1 < 3/2
    assert run(d) == []
    _zero_forward(steps(d)[3])                  # observation 4: 2 >= 4/2
    diag = only(d)
    assert diag.symptom == "dead_units" and "Batch 30 (step 30) layer 0 (dense_1)" in diag.evidence


def _freeze(seq, layer, field, start, n=5):
    for s in seq[start:start + n]:
        s[field][layer] = seq[start][field][layer]


def test_forward_unchanged_over_a_block():
    d = stepped()
    _freeze(steps(d), "dense_2", "activation_quantiles", 0)      # observations 1-5: one block
    diag = only(d)
    assert diag.symptom == "unchanged_weights" and "step 40) layer 1 (dense_2): Error in forward" in diag.evidence


def test_forward_unchanged_straddling_two_blocks_is_not_seen():
    d = stepped()
    _freeze(steps(d), "dense_2", "activation_quantiles", 1)      # observations 2-6: blocks are 1-5, 6-10
    assert run(d) == []


def test_forward_unchanged_skips_flatten_layers():
    d = stepped()
    d["model"]["layers"].insert(0, {"name": "flatten", "kind": "Flatten"})
    for s in steps(d):
        s["activation_quantiles"] = {"flatten": [0.5] * len(QUANTILES), **s["activation_quantiles"]}
    assert run(d) == []


# ---------------------------------------------------------------- 2. weights (L422-450)
def test_weights_nonfinite_last_layer_first():
    d = stepped()
    s = steps(d)[5]
    s["weight_max"]["dense_1"] = INF
    s["weight_min"]["dense_3"] = NAN
    diag = only(d)
    assert diag.symptom == "exploding_gradient" and "layer 2 (dense_3): Error in Weights" in diag.evidence


def test_weights_zero():
    d = stepped()
    for s in steps(d):
        s["weight_min"]["dense_1"] = s["weight_max"]["dense_1"] = 0.0
    diag = only(d)
    assert (diag.symptom, diag.epoch) == ("unchanged_weights", 0)
    assert "Batch 0 (step 0) layer 0 (dense_1): Error in Weights" in diag.evidence


def test_weights_unchanged_dense_only():
    d = stepped()
    for f in ("weight_min", "weight_max", "weight_var"):
        _freeze(steps(d), "dense_2", f, 5)                        # observations 6-10: the second block
    diag = only(d)
    assert diag.symptom == "unchanged_weights" and "(step 90) layer 1 (dense_2): Error in Weights" in diag.evidence
    d["model"]["layers"][1]["kind"] = "Conv2D"                    # the original checks Dense layers only
    assert run(d) == []


# ---------------------------------------------------------------- 3. loss (L451-466)
def test_invalid_loss():
    d = stepped()
    steps(d)[9]["loss"] = INF
    d["trace"][2]["logs"]["loss"] = INF
    diag = only(d)
    assert (diag.symptom, diag.epoch) == ("nan_loss", 2) and "Batch 10 (step 90): Invalid loss" in diag.evidence


def test_unmeasured_step_loss_is_skipped():
    d = stepped()
    steps(d)[9]["loss"] = NAN           # the epoch's logged loss is finite: the tracker gave no value
    assert run(d) == []


def test_loss_mdl():
    d = stepped()
    for s in steps(d)[10:15]:           # observations 11-15: the third block
        s["loss"] = 0.6931
    diag = only(d)
    assert diag.symptom == "plateau" and "(step 140): MDL, terminating training" in diag.evidence


# ---------------------------------------------------------------- 4. accuracy (L468-484), epoch logs
def test_invalid_accuracy():
    d = stepped()
    d["trace"][3]["logs"]["accuracy"] = NAN
    diag = only(d)
    assert (diag.symptom, diag.epoch) == ("nan_loss", 3) and "Invalid accuracy" in diag.evidence


def test_accuracy_mdl_reads_acc_first():
    d = stepped()
    for e in d["trace"][:5]:
        e["logs"]["acc"] = 0.5           # Keras 2's key, which the original reads
    diag = only(d)
    assert (diag.symptom, diag.epoch) == ("plateau", 4) and "MDL" in diag.evidence
    for e in d["trace"]:
        e["logs"]["acc"] = e["logs"]["accuracy"]
        e["logs"]["accuracy"] = 0.5      # ignored when 'acc' is there
    assert run(d) == []


# ---------------------------------------------------------------- 5. delta weights (L486-517)
def test_delta_nonfinite():
    d = stepped()
    steps(d)[3]["grad_nonfinite"]["dense_1"] = 2
    diag = only(d)
    assert diag.symptom == "exploding_gradient" and "layer 0 (dense_1): Error in delta Weights" in diag.evidence


def test_delta_zero_counts_like_the_original():
    d = stepped()
    seq = steps(d)
    for i in (2, 4):                    # observations 3 (1 < 1.5) and 5 (2 < 2.5): silent
        seq[i]["grad_mean_abs"]["dense_2"] = 0.0
    assert run(d) == []
    seq[5]["grad_mean_abs"]["dense_2"] = 0.0   # observation 6: 3 >= 3
    diag = only(d)
    assert diag.symptom == "unchanged_weights"
    assert "(step 50) layer 1 (dense_2): Error in delta Weights" in diag.evidence


def test_delta_unchanged_and_frozen_layers():
    d = stepped()
    _freeze(steps(d), "dense_3", "grad_mean_abs", 0)
    diag = only(d)
    assert diag.symptom == "unchanged_weights" and "layer 2 (dense_3): Error in Delta Weights" in diag.evidence
    d["model"]["layers"][2]["trainable"] = False     # no gradient of a frozen layer is read
    assert run(d) == []


# ---------------------------------------------------------------- order and the per-epoch fallback
def test_first_check_wins_and_ends_the_run():
    d = stepped()
    s = steps(d)[4]
    s["activation_quantiles"]["dense_3"] = [NAN] * len(QUANTILES)
    s["loss"] = NAN
    s["grad_nonfinite"]["dense_1"] = 5
    steps(d)[12]["weight_max"]["dense_1"] = NAN      # later: never reported
    diag = only(d)
    assert diag.symptom == "nan_loss" and "Error in forward" in diag.evidence


@pytest.mark.parametrize("field,value,layer,symptom,message", [
    ("activation_mean", NAN, "dense_2", "nan_loss", "Error in forward"),
    ("activation_mean", 0.0, "dense_1", "dead_units", "Error in forward"),
    ("weight_mean", INF, "dense_2", "exploding_gradient", "Error in Weights"),
    ("grad_mean", NAN, "dense_3", "exploding_gradient", "Error in delta Weights"),
])
def test_fallback_per_epoch(field, value, layer, symptom, message):
    d = per_epoch()
    d["trace"][0][field][layer] = value              # observation 1: zero fires at once
    diag = only(d)
    assert (diag.symptom, diag.epoch) == (symptom, 0) and "Epoch 0 layer" in diag.evidence and message in diag.evidence


def test_fallback_per_epoch_blocks_and_loss():
    d = per_epoch()
    for e in d["trace"][:5]:
        e["weight_mean"]["dense_1"] = 0.02           # epochs 0-4: one block of unchanged kernel means
    diag = only(d)
    assert (diag.symptom, diag.epoch) == ("unchanged_weights", 4) and "Error in Weights" in diag.evidence
    d = per_epoch()
    d["trace"][1]["logs"]["loss"] = NAN
    assert (only(d).symptom, only(d).epoch) == ("nan_loss", 1)


def test_conformance_kit():
    assert set(check_detector(DeepLocalize).values()) == {"passed"}


def test_mean_is_max_rounds_as_the_original():
    """meanResult's np.mean == np.max on 5 identical float32 values can miss (5x/5 != x): kept."""
    d = stepped()
    for s in steps(d)[10:15]:
        s["loss"] = 0.015
    assert run(d) == []


@pytest.mark.parametrize("field,layer,value,symptom,message", [
    ("logs", "loss", INF, "nan_loss", "Invalid loss"),                   # a batch between recorded steps
    ("weight_mean", "dense_2", NAN, "exploding_gradient", "Error in Weights"),
    ("grad_mean", "dense_1", INF, "exploding_gradient", "Error in delta Weights"),
])
def test_step_mode_checks_the_epoch_end_for_what_sampling_skipped(field, layer, value, symptom, message):
    d = stepped()
    d["trace"][1][field][layer] = value          # every recorded step of epoch 1 is finite
    diag = only(d)
    assert (diag.symptom, diag.epoch) == (symptom, 1)
    assert "end of epoch 1" in diag.evidence and message in diag.evidence
