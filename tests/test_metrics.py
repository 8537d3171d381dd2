"""Each metric against a small example computed by hand, with the case as the unit."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score

from trainwreck.docs import metrics_markdown
from trainwreck.metrics import (METRICS, Resamples, confusion, detector_metrics, per_cause_recall, resamples,
                                significance)
from trainwreck.report import build_tables, render_tex, selection_text
from trainwreck.score import SCORE_VERSION, ScoreRow, read_scores, write_scores

ROOT = Path(__file__).resolve().parent.parent


def row(case, seed, cause, predicted=None, flagged=None, variant="broken", symptoms=(), expected_symptoms=(),
        detector="d", valid=True, error="", latency=None, scope=None):
    named = flagged if flagged is not None else (predicted is not None or bool(symptoms))
    diagnoses = () if not named else ({"cause": predicted, "symptom": symptoms[0] if symptoms else None,
                                       "confidence": 1.0, "epoch": 1, "evidence": "e"},)
    return ScoreRow(detector=detector, detector_version="1", case_id=case, family="f",
                    variant=variant, seed=seed, expected_cause=cause, expected_symptoms=tuple(expected_symptoms),
                    is_fault=variant == "broken" and cause != "healthy", valid=valid, error=error,
                    diagnoses=diagnoses, predicted_cause=predicted, symptoms=tuple(symptoms),
                    latency_epochs=latency, run_key=f"{case}-{variant}-{seed}", detector_causes=scope)


ROWS = [
    # case A (lr_too_high), two seeds: flagged + right on seed 0, silent on seed 1
    row("A", 0, "lr_too_high", "lr_too_high", latency=2, expected_symptoms=("nan_loss", "divergence"),
        symptoms=("nan_loss",)),
    row("A", 1, "lr_too_high", None, expected_symptoms=("nan_loss", "divergence")),
    row("A", 0, "lr_too_high", None, variant="fixed"),
    row("A", 1, "lr_too_high", "dying_relu", variant="fixed"),           # a false alarm on a fixed run
    # case B (dying_relu), one seed: flagged with the wrong cause
    row("B", 0, "dying_relu", "lr_too_high", symptoms=("divergence",), expected_symptoms=("dead_units",)),
    row("B", 0, "dying_relu", None, variant="fixed"),
    # case C (dying_relu), one seed: right
    row("C", 0, "dying_relu", "dying_relu", latency=4),
    row("C", 0, "dying_relu", None, variant="fixed"),
    # trap T: both runs healthy, one flagged
    row("T", 0, "healthy", "lr_too_high"),
    row("T", 0, "healthy", None, variant="fixed"),
    # excluded: an invalid run and an error row
    row("A", 2, "lr_too_high", "dying_relu", valid=False),
    row("C", 1, "dying_relu", "dying_relu", error="boom"),
]


def test_case_is_the_unit():
    (m,) = detector_metrics(ROWS)
    # detection per case: A 1/2, B 1, C 1 -> mean over cases 5/6 (the run-level share would be 3/4)
    assert m.figures["detection"].value == pytest.approx(5 / 6)
    assert (m.figures["detection"].cases, m.figures["detection"].runs) == (3, 4)
    # false alarms, separately: fixed runs A 1/2, B 0, C 0 -> 1/6; the trap 1/2
    assert m.figures["false_alarm_fixed"].value == pytest.approx(1 / 6)
    assert m.figures["false_alarm_trap"].value == pytest.approx(0.5)
    # cause accuracy: A 1/2, B 0, C 1 -> 1/2; conditional on a flag: A 1/1, B 0, C 1 -> 2/3
    assert m.figures["cause_accuracy"].value == pytest.approx(0.5)
    assert m.figures["cause_accuracy_flagged"].value == pytest.approx(2 / 3)
    # symptom hit: A (seed 0 hit, seed 1 not) 1/2, B expects dead_units, reports divergence: 0 -> 1/4
    assert m.figures["symptom_hit"].value == pytest.approx(0.25)
    # symptom precision: runs that report a symptom: A seed 0 (1/1), B (0/1) -> 1/2
    assert m.figures["symptom_precision"].value == pytest.approx(0.5)
    assert m.errors == 1 and m.runs == 10 and m.median_latency_epochs == 3.0


def test_macro_f1_is_sklearns_and_its_bootstrap_agrees():
    (m,) = detector_metrics(ROWS)
    faults = [r for r in ROWS if r.is_fault and r.valid and not r.error]
    expected = f1_score([r.expected_cause for r in faults], [r.predicted_cause or "(none)" for r in faults],
                        labels=["dying_relu", "lr_too_high"], average="macro", zero_division=0)
    assert m.figures["macro_f1"].value == pytest.approx(expected)
    # a "resample" that draws every case once is the data itself: the count-based F1 must equal sklearn's
    cases = ("A", "B", "C", "T")
    (m1,) = detector_metrics(ROWS, Resamples(cases, np.ones((1, 4), dtype=np.int64)))
    assert m1.figures["macro_f1"].low == pytest.approx(expected)


def test_scope_recall_and_na_for_symptom_only():
    scoped = [row(r.case_id, r.seed, r.expected_cause, r.predicted_cause, variant=r.variant, valid=r.valid,
                  error=r.error, scope=("lr_too_high",), symptoms=r.symptoms) for r in ROWS]
    (m,) = detector_metrics(scoped)
    # within scope: only case A (lr_too_high): 1/2
    assert m.figures["scope_recall"].value == pytest.approx(0.5) and m.figures["scope_recall"].cases == 1
    # the ceiling: 1 of the 3 fault cases is of a declared cause, whatever the resample (stratified by cause)
    cov = m.figures["scope_coverage"]
    assert (cov.value, cov.low, cov.high) == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    # macro F1 in scope: only the lr_too_high label
    faults = [r for r in scoped if r.is_fault and r.valid and not r.error]
    assert m.figures["macro_f1_scope"].value == pytest.approx(
        f1_score([r.expected_cause for r in faults], [r.predicted_cause or "(none)" for r in faults],
                 labels=["lr_too_high"], average="macro", zero_division=0))
    symptom_only = [row(r.case_id, r.seed, r.expected_cause, None, flagged=r.flagged, variant=r.variant,
                        valid=r.valid, error=r.error, scope=(), symptoms=r.symptoms) for r in ROWS]
    (s,) = detector_metrics(symptom_only)
    for name, metric in METRICS.items():
        assert (str(s.figures[name]) == "n/a") == metric.cause, name
    assert all(str(v["d"]) == "n/a" for v in per_cause_recall(symptom_only).values())


def test_stratified_resamples_are_fixed_and_keep_each_cause():
    causes = {"A": "x", "B": "x", "C": "y", "D": "y", "E": "y", "F": "z"}
    a, b = resamples(causes), resamples(causes)
    assert np.array_equal(a.counts, b.counts)                # fixed seed: the same on every rebuild
    idx = a.index()
    for cause, n in (("x", 2), ("y", 3), ("z", 1)):
        cols = [idx[c] for c, k in causes.items() if k == cause]
        assert (a.counts[:, cols].sum(axis=1) == n).all()     # every resample keeps each cause's weight
    assert not np.array_equal(resamples(causes, seed=1).counts, a.counts)


def test_interval_brackets_the_point_and_reflects_spread():
    rows = [row(c, 0, "lr_too_high", "lr_too_high" if i % 2 else None) for i, c in enumerate("ABCDEFGH")]
    (m,) = detector_metrics(rows)
    e = m.figures["detection"]
    assert e.value == 0.5 and e.low < 0.5 < e.high
    assert str(e) == f"0.50 [{e.low:.2f}, {e.high:.2f}]"


def test_mcnemar_and_paired_bootstrap_by_hand():
    rows = []
    for i, c in enumerate("ABCDEFGH"):
        rows.append(row(c, 0, "lr_too_high", "lr_too_high", detector="a"))
        rows.append(row(c, 0, "lr_too_high", "lr_too_high" if i < 2 else None, detector="b"))
    (cmp_,) = [c for c in significance(rows) if c.metric == "detection"]
    assert (cmp_.a, cmp_.b, cmp_.cases, cmp_.a_only, cmp_.b_only) == ("a", "b", 8, 6, 0)
    assert cmp_.p_mcnemar == pytest.approx(2 * 0.5 ** 6)       # exact two-sided binomial, 6 discordant of 6
    assert cmp_.difference == pytest.approx(0.75) and cmp_.low > 0
    assert cmp_.p_bootstrap < 0.01


def test_confusion_by_hand():
    true, pred, m = confusion(ROWS, "d")
    assert true == ["dying_relu", "lr_too_high"]
    assert pred == ["dying_relu", "lr_too_high", "(none)"]
    assert m.tolist() == [[1, 1, 0], [0, 1, 1]]


def test_empty_is_nan_not_zero():
    (m,) = detector_metrics([row("T", 0, "healthy", None)])
    assert m.figures["detection"].cases == 0 and math.isnan(m.figures["detection"].value)
    assert str(m.figures["detection"]) == "–"


def test_labels():
    assert [r.label for r in ROWS] == ["hit", "missed", "quiet", "false_alarm", "wrong_cause", "quiet", "hit",
                                       "quiet", "false_alarm", "quiet", "invalid", "error"]


def test_score_rows_round_trip_and_refuse_other_versions(tmp_path):
    p = write_scores(tmp_path / "scores.json", {"seeds": [0]}, ROWS)
    fp, back = read_scores(p)
    assert back == ROWS and fp == {"seeds": [0]}
    assert build_tables(back, fp)[0].rows == build_tables(ROWS, fp)[0].rows
    d = ROWS[0].to_dict()
    with pytest.raises(ValueError, match="version"):
        ScoreRow.from_dict(d | {"version": SCORE_VERSION - 1})
    with pytest.raises(ValueError, match="unknown"):
        ScoreRow.from_dict(d | {"surprise": 1})
    (tmp_path / "bad.json").write_text('{"version": 1, "rows": []}')
    with pytest.raises(Exception, match="trainwreck score"):
        read_scores(tmp_path / "bad.json")


def test_titles_state_the_selection_and_wide_latex_fits():
    full = build_tables(ROWS, {"selection": None})
    part = build_tables(ROWS, {"selection": {"case": ["A"], "seeds": [0]}})
    assert all("over the corpus" in t.title for t in full)
    assert all("over the corpus" not in t.title and "case A; seeds 0" in t.title for t in part)
    assert selection_text({}) == "over the corpus"
    names = [t.name for t in full]
    assert "significance" in names
    fp = {k: "" for k in ("trainwreck", "date", "corpus_hash", "cases", "runs", "seeds", "tensorflow", "keras",
                          "numpy", "sklearn", "python", "backend", "device", "device_name", "command")}
    tex = render_tex(full[0], fp)
    body = [ln for ln in tex.splitlines() if not ln.startswith("%")]
    assert body[0].startswith("\\noindent\\resizebox*{!}{") and body[1].startswith("\\resizebox{") \
        and body[-1] == "}}\\par"
    assert "\\toprule" in body and "\\bottomrule" in body


def test_leaderboard_has_every_headline_figure_with_an_interval():
    lb = build_tables(ROWS, {})[0]
    for col in ("detection", "false alarms (fixed)", "false alarms (traps)", "symptom hit", "cause acc. (flagged)",
                "in-scope recall"):
        cell = lb.rows[0][lb.headers.index(col)]
        assert cell.count("[") == 1 and cell.endswith("]"), (col, cell)
    assert any("docs/metrics.md" in n for n in lb.notes)


def test_metrics_doc_is_current():
    assert (ROOT / "docs" / "metrics.md").read_text() == metrics_markdown(), \
        "docs/metrics.md is stale: run `python -m trainwreck.docs`"


def test_saved_rows_filter_states_its_selection_and_refuses_an_empty_one():
    from trainwreck import api
    from trainwreck.errors import UsageError

    fp = {"selection": None, "case_ids": ["A", "B", "C", "T"], "cases": 4, "runs": 10}
    rows, sel_fp = api.filter_rows(ROWS, fp, case=["A"], seeds=[0])
    assert {(r.case_id, r.seed) for r in rows} == {("A", 0)}
    assert sel_fp["selection"] == {"case": ["A"], "seeds": [0]} and sel_fp["case_ids"] == ["A"]
    assert "over a selection (case A; seeds 0)" in build_tables(rows, sel_fp)[0].title
    assert api.filter_rows(ROWS, fp) == (ROWS, fp)                          # no filter: the saved selection
    with pytest.raises(UsageError, match="no saved score row matches"):
        api.filter_rows(ROWS, fp, case=["A"], seeds=[7])
    assert api.output_dir("/r", sel_fp["selection"]) != api.output_dir("/r", None) == Path("/r")
