"""smdebug: each evaluated SageMaker Debugger rule fires at its documented default and not just
inside it (synthetic records, no training)."""

from __future__ import annotations

import math

import pytest

from trainwreck.detectors.base import restrict
from trainwreck.detectors.smdebug import SMDebug
from trainwreck.detectors.testing import healthy_dict
from trainwreck.record import RunRecord


def symptoms(d):
    return {x.symptom: x for x in SMDebug().diagnose(restrict(RunRecord.from_dict(d), SMDebug.needs))}


def quiet():
    d = healthy_dict(6)
    for e in d["trace"]:
        e["logs"]["val_loss"] = e["logs"]["loss"] * 1.05      # ratio 0.05 <= 0.1
    return d


def test_healthy_is_silent():
    assert symptoms(quiet()) == {}


@pytest.mark.parametrize("g,fires", [(9e-8, True), (1e-7, False)])
def test_vanishing_gradient_threshold(g, fires):
    d = quiet()
    d["trace"][2]["grad_mean_abs"]["dense_1"] = g
    assert ("vanishing_gradient" in symptoms(d)) is fires


def test_vanishing_gradient_skips_frozen_layers():
    d = quiet()
    d["trace"][2]["grad_mean_abs"]["dense_1"] = 0.0
    d["model"]["layers"][0]["trainable"] = False
    assert "vanishing_gradient" not in symptoms(d)


@pytest.mark.parametrize("frac,fires", [(0.51, True), (0.5, False)])
def test_dead_relu_threshold_layer(frac, fires):
    d = quiet()
    d["trace"][3]["dead_relu_fraction"]["dense_2"] = frac
    assert ("dead_units" in symptoms(d)) is fires


@pytest.mark.parametrize("ratio,fires", [(0.11, True), (0.09, False)])
def test_overfit_ratio(ratio, fires):
    d = quiet()
    e = d["trace"][4]
    e["logs"]["val_loss"] = e["logs"]["loss"] * (1 + ratio)
    out = symptoms(d)
    assert ("train_val_gap" in out) is fires
    if fires:
        assert out["train_val_gap"].epoch == 4


def test_exploding_tensor():
    d = quiet()
    d["trace"][3]["nonfinite"] = True
    assert symptoms(d)["exploding_gradient"].epoch == 3
    d["trace"][2]["logs"]["loss"] = math.nan
    assert symptoms(d)["nan_loss"].epoch == 2
