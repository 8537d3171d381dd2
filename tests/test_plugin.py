"""Third-party detectors, through the real paths: an installed entry point, and
`--detector-spec module:Class`; misbehaving detectors become error rows."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from trainwreck.detectors.testing import check_detector

from .conftest import ONE_WORKER, ROOT, run_cli

EXAMPLE = ROOT / "examples" / "trainwreck-example-detector"


@pytest.fixture(scope="module")
def installed_plugin():
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["install", "--no-deps", "--no-build-isolation", str(EXAMPLE)], check=True,
                   capture_output=True)
    try:
        yield
    finally:
        subprocess.run(pip + ["uninstall", "-y", "trainwreck-example-detector"], capture_output=True)


def test_installed_plugin_is_listed_and_conforms(installed_plugin):
    r = run_cli("detectors")
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("loss-goes-up"))
    assert "trainwreck-example-detector 0.1.0" in line
    from trainwreck_example_detector import LossGoesUp

    report = check_detector(LossGoesUp)
    assert all(v == "passed" for v in report.values()), report


def test_plugin_can_be_disabled(installed_plugin):
    r = run_cli("detectors", env={"TRAINWRECK_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert r.returncode == 0 and "loss-goes-up" not in r.stdout


@pytest.mark.slow
def test_plugin_gets_a_leaderboard_row(installed_plugin, corpus_results, results_dir, tmp_path):
    out = tmp_path / "out"
    r = run_cli("score", "--results", str(results_dir), "--out", str(out), "--case", "lr-divergence",
                "--case", "unscaled-features", "-d", "loss-goes-up", "-d", "nan-guard", "--no-plots", "-q")
    assert r.returncode == 0, r.stdout + r.stderr
    board = json.loads((out / "leaderboard.json").read_text())
    names = [row[0] for row in board["rows"]]
    assert names == ["loss-goes-up", "nan-guard"]
    assert board["fingerprint"]["detectors"]["loss-goes-up"]["origin"] == "trainwreck-example-detector 0.1.0"


@pytest.mark.slow
def test_misbehaving_detectors_are_error_rows_and_the_bench_completes(corpus_results, results_dir, tmp_path):
    specs = [f"tests.bad_detectors:{c}" for c in ("Crashing", "Hanging", "Garbage", "Mutating")]
    args = ["score", "--results", str(results_dir), "--out", str(tmp_path), "--case", "lr-divergence",
            "-d", "nan-guard", "--no-plots", "-q"]
    for s in specs:
        args += ["--detector-spec", s]
    r = run_cli(*args)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = json.loads((tmp_path / "scores.json").read_text())["rows"]
    by_det = {}
    for row in rows:
        by_det.setdefault(row["detector"], []).append(row)
    assert all(not x["error"] for x in by_det["nan-guard"])
    assert all("RuntimeError: this detector always crashes" in x["error"] for x in by_det["crashing"])
    assert all(x["error"].startswith("timeout") for x in by_det["hanging"])
    assert all("expected Diagnosis" in x["error"] for x in by_det["garbage"])
    assert all("TypeError" in x["error"] or "AttributeError" in x["error"] for x in by_det["mutating"])
    strict = run_cli(*args, "--seeds", "0", "--strict")   # one seed is enough to see the exit code
    assert strict.returncode == 1


@pytest.mark.slow
def test_a_detector_that_needs_steps_gets_the_per_step_trace(tmp_path):
    """The example's BatchLossSpike declares "steps": bench records every 10th batch for it, and its
    diagnoses come from those step rows (lr-divergence's batch loss climbs within the first epochs)."""
    import os

    env = {"PYTHONPATH": os.pathsep.join([str(EXAMPLE), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    r = run_cli("bench", "--results", str(tmp_path), "--case", "lr-divergence", "--seeds", "0", "--no-sweeps",
                "--detector-spec", "trainwreck_example_detector:BatchLossSpike", "--no-plots", "-q", *ONE_WORKER, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    records = [json.loads(p.read_text())["record"] for p in (tmp_path / "runs").glob("*.json")]
    assert records and all(rec["trace_every"] == 10 for rec in records)
    assert all(any(ep["step_trace"] for ep in rec["trace"]) for rec in records)
    out = next(tmp_path.glob("filtered/*/scores.json"))
    rows = json.loads(out.read_text())["rows"]
    broken = [x for x in rows if x["detector"] == "batch-loss-spike" and x["variant"] == "broken"]
    assert broken and not broken[0]["error"] and broken[0]["diagnoses"], broken


@pytest.mark.slow
def test_built_ins_scored_together_answer_as_alone_and_a_dying_one_costs_only_its_rows(corpus_results):
    """The bench replays the built-ins together, one job per run. Posing misbehaving classes as
    built-ins: the healthy detectors' rows equal their rows scored alone, an exception is its own
    detector's error, and a detector that kills the shared worker is found by replaying the run's
    detectors one by one, so it alone gets the error rows."""
    from trainwreck.detectors.loading import BUILTINS, DetectorInfo
    from trainwreck.score import score_runs

    runs = [r for (case, _, _), r in corpus_results.items() if case == "lr-divergence"]
    infos = [DetectorInfo(n, BUILTINS[n], "builtin") for n in ("nan-guard", "autotrainer", "deepdiagnosis")]
    bad = [DetectorInfo(n, f"tests.bad_detectors:{c}", "builtin") for n, c in (("crashing", "Crashing"),
                                                                              ("exits", "Exits"))]
    together = score_runs(runs, infos + bad, jobs=2, log=lambda *a: None)
    alone = score_runs(runs, infos[:1], jobs=1, log=lambda *a: None) + \
        score_runs(runs, infos[1:2], jobs=1, log=lambda *a: None) + score_runs(runs, infos[2:], jobs=1, log=lambda *a: None)

    def key(row):
        return (row.detector, row.run_key, row.diagnoses, row.error, row.latency_epochs)

    good = sorted(key(r) for r in together if r.detector in {i.name for i in infos})
    assert good == sorted(key(r) for r in alone) and all(not g[3] for g in good)
    by = {n: [r for r in together if r.detector == n] for n in ("crashing", "exits")}
    assert len(by["crashing"]) == len(runs) and all(
        r.error == "error: RuntimeError: this detector always crashes" for r in by["crashing"])
    assert all(r.error.startswith("crashed: worker process died") for r in by["exits"]), by["exits"][0].error
