"""Each metric against a small example computed by hand."""

from __future__ import annotations

import math

import pytest

from trainwreck.metrics import confusion, detector_metrics, per_cause_recall
from trainwreck.score import ScoreRow


def row(seed, cause, predicted=None, flagged=None, variant="broken", symptoms=(), expected_symptoms=(),
        detector="d", valid=True, error="", latency=None):
    diagnoses = () if not (flagged if flagged is not None else predicted) else (
        {"cause": predicted, "symptom": None, "confidence": 1.0},)
    return ScoreRow(detector=detector, detector_version="1", case_id=f"{cause}-{variant}", family="f",
                    variant=variant, seed=seed, expected_cause=cause, expected_symptoms=tuple(expected_symptoms),
                    is_fault=variant == "broken" and cause != "healthy", valid=valid, error=error,
                    diagnoses=diagnoses, predicted_cause=predicted, symptoms=tuple(symptoms),
                    latency_epochs=latency)


ROWS = [
    # seed 0: 2 faults, both flagged, one right; 1 fixed run, flagged (false alarm)
    row(0, "lr_too_high", "lr_too_high", latency=2, expected_symptoms=("nan_loss", "divergence"),
        symptoms=("nan_loss",)),
    row(0, "dying_relu", "lr_too_high"),
    row(0, "dying_relu", "lr_too_high", variant="fixed"),
    # seed 1: 2 faults, one missed, one right; fixed run quiet
    row(1, "lr_too_high", None, expected_symptoms=("nan_loss", "divergence")),
    row(1, "dying_relu", "dying_relu", latency=4),
    row(1, "dying_relu", None, variant="fixed"),
    # excluded: an invalid run and an error row
    row(1, "lr_too_high", "dying_relu", valid=False),
    row(1, "lr_too_high", "dying_relu", error="boom"),
]


def test_leaderboard_metrics_by_hand():
    (m,) = detector_metrics(ROWS)
    # detection: seed 0 2/2 = 1.0, seed 1 1/2 = 0.5 -> mean 0.75, population std 0.25
    assert (m.detection.mean, m.detection.std, m.detection.n) == (0.75, 0.25, 4)
    # cause accuracy: seed 0 1/2, seed 1 1/2 -> 0.5 ± 0
    assert (m.cause_accuracy.mean, m.cause_accuracy.std) == (0.5, 0.0)
    # false alarms: seed 0 1/1, seed 1 0/1 -> 0.5 ± 0.5
    assert (m.false_alarm.mean, m.false_alarm.std, m.false_alarm.n) == (0.5, 0.5, 2)
    # macro over the two expected causes: lr_too_high predicted twice, right once: P=1/2, R=1/2;
    # dying_relu predicted once, right: P=1, R=1/2  -> macro P = 3/4, macro R = 1/2
    assert m.macro_precision == pytest.approx(3 / 4)
    assert m.macro_recall == pytest.approx(0.5)
    f1_lr = 2 * (1 / 2) * (1 / 2) / (1 / 2 + 1 / 2)
    f1_dr = 2 * 1 * 0.5 / 1.5
    assert m.macro_f1 == pytest.approx((f1_lr + f1_dr) / 2)
    # symptom recall: only the lr_too_high rows declare symptoms: seed 0 1/2, seed 1 0/2 -> 0.25 ± 0.25
    assert (m.symptom_recall.mean, m.symptom_recall.std) == (0.25, 0.25)
    assert m.errors == 1 and m.runs == 6
    assert m.median_latency_epochs == 3.0   # hits at epochs 2 and 4


def test_labels():
    assert [r.label for r in ROWS] == ["hit", "wrong_cause", "false_alarm", "missed", "hit", "quiet",
                                       "invalid", "error"]


def test_per_cause_recall_by_hand():
    pcr = per_cause_recall(ROWS)
    assert pcr["lr_too_high"]["d"].mean == 0.5     # seed 0 hit, seed 1 missed
    assert pcr["dying_relu"]["d"].mean == 0.5      # seed 0 wrong, seed 1 hit


def test_confusion_by_hand():
    true, pred, m = confusion(ROWS, "d")
    assert true == ["dying_relu", "lr_too_high"]
    assert pred == ["dying_relu", "lr_too_high", "(none)"]
    assert m.tolist() == [[1, 1, 0], [0, 1, 1]]


def test_empty_is_nan_not_zero():
    (m,) = detector_metrics([row(0, "healthy", None, variant="broken")])
    assert m.detection.n == 0 and math.isnan(m.detection.mean)
    assert str(m.detection) == "–"
