"""Whether `best` of a log key is its maximum or its minimum is data: a table of Keras metric names,
or `direction: max|min` on the condition; a key with neither is a located validation error."""

from __future__ import annotations

import pytest

from trainwreck.case import CaseErrors, Condition, load_case, load_corpus
from trainwreck.oracle import DIRECTIONS, direction_of, evaluate
from trainwreck.record import RunRecord

from .conftest import CASES
from .test_validation import _variant


def _record(key: str, values: list[float]) -> RunRecord:
    return RunRecord.from_dict({"key": "k", "outcome": {"status": "completed"},
                                "trace": [{"epoch": i, "logs": {key: v}} for i, v in enumerate(values)]})


def _best(key: str, values: list[float], **cond) -> float:
    c = Condition.model_validate({"measure": "best", "key": key, "min": -1e30, **cond})
    return evaluate([c], _record(key, values), {}).conditions[0].value


@pytest.mark.parametrize("key", ["val_auc", "auc", "val_r2_score", "precision", "val_recall", "f1_score",
                                 "val_binary_accuracy", "auc_1"])
def test_scores_are_maximised(key):
    assert _best(key, [0.6, 0.9, 0.7]) == 0.9


@pytest.mark.parametrize("key", ["val_mse", "mean_absolute_error", "val_rmse", "val_huber", "loss_2"])
def test_errors_are_minimised(key):
    assert _best(key, [0.6, 0.2, 0.7]) == 0.2


def test_no_key_the_corpus_uses_changes_direction():
    """Before the table, 'acc' in the key meant max and anything else min; every key in use keeps that."""
    used = {(c.measure, c.key) for case in load_corpus(CASES)
            for variant in (case.oracle.broken, case.oracle.fixed) for c in variant
            if c.measure in ("best", "val_minus_test")}
    assert used
    for measure, key in used:
        full = f"val_{key}" if measure == "val_minus_test" else key
        assert direction_of(full) == ("max" if "acc" in full else "min"), full


def test_an_explicit_direction_wins():
    assert _best("val_loss", [0.6, 0.2, 0.7], direction="max") == 0.7
    assert _best("val_my_score", [0.6, 0.9, 0.7], direction="max") == 0.9
    assert _best("val_my_error", [0.6, 0.2, 0.7], direction="min") == 0.2


def test_the_table_holds_only_directions():
    assert set(DIRECTIONS.values()) == {"max", "min"}
    assert DIRECTIONS["accuracy"] == "max" and DIRECTIONS["loss"] == "min"


def _error(tmp_path, mutate) -> str:
    with pytest.raises(CaseErrors) as info:
        load_case(_variant(tmp_path, mutate))
    return str(info.value)


def test_best_of_a_key_with_no_known_direction_is_a_located_error(tmp_path):
    msg = _error(tmp_path, lambda d: d["oracle"]["fixed"].append({"measure": "best", "key": "val_wobble", "max": 1}))
    assert "lr-divergence.yaml: oracle.fixed.2.key: no known direction for 'val_wobble'" in msg
    assert "direction: max" in msg


def test_val_minus_test_of_a_key_with_no_known_direction_is_a_located_error(tmp_path):
    msg = _error(tmp_path, lambda d: d["oracle"]["broken"].append(
        {"measure": "val_minus_test", "key": "wobble", "min": 0.1}))
    assert "oracle.broken.1.key: no known direction for 'val_wobble'" in msg


def test_direction_on_a_measure_without_one_is_a_located_error(tmp_path):
    msg = _error(tmp_path, lambda d: d["oracle"]["broken"][0].update(direction="max"))
    assert "oracle.broken.0.direction:" in msg and "best" in msg


def test_direction_must_be_max_or_min(tmp_path):
    msg = _error(tmp_path, lambda d: d["oracle"]["fixed"][1].update(direction="up"))
    assert "oracle.fixed.1.direction:" in msg


def test_a_key_with_no_known_direction_validates_with_one(tmp_path):
    case = load_case(_variant(tmp_path, lambda d: d["oracle"]["fixed"].append(
        {"measure": "best", "key": "learning_rate", "direction": "max", "min": 0.0})))
    assert case.oracle.fixed[-1].direction == "max"
