"""deepchecker: TheDeepChecker's PreCheck.Data rules at the thresholds of its settings.yaml
(normalised ranges [0, 1] / [-1, 1], standardised within 0.01, label balance 0.5)."""

from __future__ import annotations

import pytest

from trainwreck.detectors.deepchecker import DeepChecker, label_balance
from trainwreck.detectors.testing import healthy_dict
from trainwreck.record import RunRecord


def causes(d):
    return [x.cause for x in DeepChecker().diagnose(RunRecord.from_dict(d))]


def features(d, lo, hi, mean, std):
    n = len(d["data"]["feature_min"])
    d["data"].update(feature_min=[lo] * n, feature_max=[hi] * n, feature_mean=[mean] * n, feature_std=[std] * n)
    return d


@pytest.mark.parametrize("lo,hi,mean,std,flagged", [
    (-3.1, 3.2, 0.0, 1.0, False),      # standardised
    (-3.1, 3.2, 0.0, 1.011, True),     # std off by more than 0.01
    (-3.1, 3.2, 0.02, 1.0, True),      # mean off by more than 0.01
    (0.0, 1.0, 0.4, 0.3, False),       # min-max scaled to [0, 1]
    (-1.0, 1.0, 0.1, 0.5, False),      # scaled to [-1, 1]
    (0.0, 255.0, 120.0, 60.0, True),   # raw pixels
])
def test_feature_normalisation(lo, hi, mean, std, flagged):
    assert ("unscaled_features" in causes(features(healthy_dict(), lo, hi, mean, std))) is flagged


def test_a_normalised_feature_ends_the_check():
    d = features(healthy_dict(), -1.0, 1.0, 0.1, 0.5)
    d["data"]["feature_max"][3] = 100.0     # feature 3 is not normalised, but feature 0 stopped the loop
    assert causes(d) == []


def test_constant_feature_is_not_reported():
    assert causes(features(healthy_dict(), 2.0, 2.0, 2.0, 0.0)) == []


def test_label_balance_numbers():
    assert label_balance([500, 500]) == pytest.approx(1.0)
    assert label_balance([900, 100]) == pytest.approx(0.384, abs=1e-3)   # exp(H) = 1.384
    assert label_balance([800, 200]) == pytest.approx(0.649, abs=1e-3)


@pytest.mark.parametrize("counts,flagged", [({"0": 900, "1": 100}, True), ({"0": 800, "1": 200}, False)])
def test_unbalanced_labels(counts, flagged):
    d = healthy_dict()
    d["data"]["class_counts_train"] = counts
    assert ("class_imbalance" in causes(d)) is flagged
