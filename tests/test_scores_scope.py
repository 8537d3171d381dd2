"""A detector's declared scope reaches the tables through real detector workers: a symptom-only tool gets
"n/a" in every cause column, a narrow one is judged within its scope, and scores.json keeps both scopes."""

from __future__ import annotations

import json
import math

import pytest

from trainwreck.detectors import Detector, Diagnosis
from trainwreck.metrics import METRICS

from .conftest import run_cli
from .test_scores_report import FILTERS, SMALL, results, small_cache, small_specs  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow


class SymptomOnly(Detector):
    """Reports a non-finite training loss and claims no cause at all."""
    name, version, needs = "symptom-only-test", "1", frozenset({"trace"})
    causes, symptoms = frozenset(), frozenset({"nan_loss"})

    def diagnose(self, record):
        for e in record.trace:
            loss = e.logs.get("loss")
            if e.completed and loss is not None and not math.isfinite(loss):
                return [Diagnosis(symptom="nan_loss", epoch=e.epoch, evidence=f"loss {loss} at epoch {e.epoch}")]
        return []


class LrOnly(Detector):
    """Names one cause, lr_too_high, when the loss ends above where it started (or is not finite)."""
    name, version, needs = "lr-only-test", "1", frozenset({"trace"})
    causes, symptoms = frozenset({"lr_too_high"}), frozenset({"divergence"})

    def diagnose(self, record):
        losses = [e.logs.get("loss", math.nan) for e in record.trace if e.completed]
        if len(losses) > 1 and not (losses[-1] <= losses[0]):
            return [Diagnosis(cause="lr_too_high", symptom="divergence", confidence=0.5, epoch=len(losses) - 1,
                              evidence=f"loss {losses[0]:.3g} -> {losses[-1]:.3g}")]
        return []


def test_declared_scope_shapes_the_cause_columns(results, tmp_path):  # noqa: F811
    out = tmp_path / "out"
    r = run_cli("score", "--results", str(results), "--out", str(out), *FILTERS, "-d", "nan-guard",
                "--detector-spec", f"{__name__}:SymptomOnly", "--detector-spec", f"{__name__}:LrOnly",
                "--no-plots", "-q")
    assert r.returncode == 0, r.stdout + r.stderr
    board = json.loads((out / "leaderboard.json").read_text())
    by_name = {row[0]: dict(zip(board["headers"], row)) for row in board["rows"]}
    cause_columns = [m.column for m in METRICS.values() if m.cause]
    assert all(by_name["symptom-only-test"][c] == "n/a" for c in cause_columns)
    assert by_name["symptom-only-test"]["detection"] != "n/a"
    assert all(by_name["lr-only-test"][c] != "n/a" for c in cause_columns)
    data = {d["detector"]: d for d in board["data"]}
    assert data["lr-only-test"]["scope"] == {"causes": ["lr_too_high"], "symptoms": ["divergence"]}
    # SMALL[0] is an lr_too_high fault: the whole corpus slice is within the narrow detector's scope
    assert data["lr-only-test"]["scope_coverage"]["value"] == 1.0
    rows = json.loads((out / "scores.json").read_text())["rows"]
    assert {r["detector_causes"] == [] for r in rows if r["detector"] == "symptom-only-test"} == {True}
    per_cause = json.loads((out / "per_cause.json").read_text())["data"]
    assert per_cause["lr_too_high"]["symptom-only-test"]["applicable"] is False
    confusion = json.loads((out / "confusion.json").read_text())["data"]
    assert "symptom-only-test" not in confusion and "lr-only-test" in confusion
    assert SMALL[0] in (out / "matrix.md").read_text()
