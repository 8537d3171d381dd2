"""Tables rebuilt from saved scores, commands that never overwrite the reference tables, `score` that
never trains, filters that match nothing, and `reproduce` that honours its filters and resumes.

Real runs of two small cases (one fault with a sweep, one trap) on seed 0, trained once into the
shared run cache (the `results_dir` fixture) and copied into each test's own results directory.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from trainwreck import api
from trainwreck.reproduce import scratch_name

from .conftest import CASES, run_cli

pytestmark = pytest.mark.slow

SMALL = ["lr-divergence", "high-lr-sgd"]
FILTERS = ["--case", SMALL[0], "--case", SMALL[1], "--seeds", "0"]
DETECTORS = ["-d", "nan-guard", "-d", "autotrainer", "-d", "deepdiagnosis"]
TABLES = ("leaderboard", "matrix", "per_cause", "confusion", "significance", "severity", "platform", "invalid")


@pytest.fixture(scope="module")
def small_specs():
    cases = api.load_cases(CASES, case=SMALL)
    return cases, api.plan_runs(cases, seeds=[0], device="cpu", sweeps=True)


@pytest.fixture(scope="module")
def small_cache(results_dir, small_specs):
    """The selection's runs, trained (or reused) in the shared cache: {key: path}."""
    cases, specs = small_specs
    api.run(cases, specs=specs, results=results_dir, jobs=2)
    return {s.key: results_dir / "runs" / f"{s.key}.json" for s in specs}


@pytest.fixture
def results(tmp_path, small_cache) -> Path:
    """A results directory of this test's own, holding a copy of the selection's runs."""
    (tmp_path / "res" / "runs").mkdir(parents=True)
    for key, p in small_cache.items():
        shutil.copy(p, tmp_path / "res" / "runs" / p.name)
    return tmp_path / "res"


def _table_files(d: Path) -> dict[str, str]:
    return {f"{t}.{fmt}": (d / f"{t}.{fmt}").read_text() for t in TABLES for fmt in ("md", "tex", "csv", "json")}


def test_report_rebuilds_identical_tables_from_scores_alone(results, tmp_path):
    first = tmp_path / "first"
    r = run_cli("score", "--results", str(results), "--out", str(first), *FILTERS, "-q", "--no-plots")
    assert r.returncode == 0, r.stdout + r.stderr
    shutil.rmtree(results / "runs")                          # no run cache: nothing to train or score on
    again = tmp_path / "again"
    rep = run_cli("report", "--results", str(results), "--scores", str(first / "scores.json"), "--out", str(again),
                  *FILTERS, "-q")
    assert rep.returncode == 0, rep.stdout + rep.stderr
    assert "nothing trained" in rep.stdout
    assert not (results / "runs").exists()
    a, b = _table_files(first), _table_files(again)
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a), [k for k in a if a[k] != b[k]]
    assert json.loads((again / "scores.json").read_text()) == json.loads((first / "scores.json").read_text())


def test_report_without_scores_says_what_to_run(tmp_path):
    r = run_cli("report", "--results", str(tmp_path))
    assert r.returncode == 2 and "trainwreck score" in r.stderr and "scores.json" in r.stderr


def test_score_lists_missing_and_corrupt_runs_and_trains_nothing(results, small_specs, tmp_path):
    _, specs = small_specs
    own = [s for s in specs if s.severity is None]
    gone, damaged = results / "runs" / f"{own[0].key}.json", results / "runs" / f"{own[1].key}.json"
    gone.unlink()
    damaged.write_text(damaged.read_text()[:-40])
    before = sorted(p.name for p in (results / "runs").iterdir())
    r = run_cli("score", "--results", str(results), "--out", str(tmp_path / "o"), *FILTERS, *DETECTORS, "-q")
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"missing  {own[0].label}" in r.stderr and f"corrupt  {own[1].label}" in r.stderr
    assert "trainwreck run" in r.stderr and "never trains" in r.stderr
    assert sorted(p.name for p in (results / "runs").iterdir()) == before     # nothing trained, nothing deleted
    assert not (tmp_path / "o" / "leaderboard.json").exists()


def test_filtered_bench_never_overwrites_the_full_tables(results):
    reference = results / "leaderboard.md"
    reference.write_text("the reference tables\n")
    r = run_cli("bench", "--results", str(results), "--case", SMALL[0], "--seeds", "0", *DETECTORS, "--no-plots",
                "-q")
    assert r.returncode == 0, r.stdout + r.stderr
    assert reference.read_text() == "the reference tables\n"
    written = list((results / "filtered").glob("*/leaderboard.json"))
    assert len(written) == 1
    doc = json.loads(written[0].read_text())
    assert "over the corpus" not in doc["title"] and f"case {SMALL[0]}" in doc["title"]
    assert doc["fingerprint"]["selection"]["seeds"] == [0]
    # the same filters land in the same folder; other filters in another
    sel = api.selection_of(case=[SMALL[0]], seeds=[0], detectors=["nan-guard", "autotrainer", "deepdiagnosis"])
    assert written[0].parent == api.output_dir(results, sel)
    assert api.output_dir(results, None) == results
    assert api.output_dir(results, api.selection_of(case=[SMALL[1]])) != written[0].parent
    # `report` of those saved scores, given no filter, still writes beside them, never over the reference
    before = (written[0].parent / "leaderboard.md").read_text()
    r = run_cli("report", "--results", str(results), "--scores", str(written[0].parent / "scores.json"), "-q")
    assert r.returncode == 0, r.stdout + r.stderr
    assert reference.read_text() == "the reference tables\n"
    assert (written[0].parent / "leaderboard.md").read_text() == before


@pytest.mark.parametrize("cmd", [["run", "--case", SMALL[0], "--seeds", "7"],
                                 ["bench", "--case", SMALL[0], "--seeds", "7"],
                                 ["bench", "--family", "no-such-family"],
                                 ["check-case", str(CASES / "optimization" / f"{SMALL[0]}.yaml"), "--seeds", "7"]],
                         ids=["run", "bench-seeds", "bench-family", "check-case"])
def test_a_filter_matching_no_run_exits_2_with_the_reason(cmd, tmp_path):
    r = run_cli(*cmd, "--results", str(tmp_path), "-q")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "no run matches the filters" in r.stderr or "no case matches the filters" in r.stderr
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").glob("*.json"))


def test_reproduce_honours_filters_resumes_and_cleans_up(results, small_specs, tmp_path):
    out = tmp_path / "scored"
    r = run_cli("score", "--results", str(results), "--out", str(out), *FILTERS, *DETECTORS, "--no-plots", "-q")
    assert r.returncode == 0, r.stdout + r.stderr
    table = out / "leaderboard.json"
    fp = json.loads(table.read_text())["fingerprint"]
    scratch = Path(tempfile.gettempdir()) / scratch_name(table, fp, [SMALL[0]], [0])
    # an interrupted earlier attempt left the broken run in the scratch folder: the same command resumes there
    _, specs = small_specs
    broken = next(s for s in specs if s.case.id == SMALL[0] and s.variant == "broken" and s.severity is None)
    (scratch / "runs").mkdir(parents=True, exist_ok=True)
    shutil.copy(results / "runs" / f"{broken.key}.json", scratch / "runs")
    rep = run_cli("reproduce", str(table), "--case", SMALL[0], "--seeds", "0", "-j", "1")
    assert rep.returncode == 0, rep.stdout + rep.stderr
    assert f"retraining 1 cases on seeds [0] into {scratch}" in rep.stdout
    assert re.search(r"2 runs: 1 reused from the cache, 1 trained", rep.stdout), rep.stdout
    assert "identical" in rep.stdout
    assert not scratch.exists()


def test_reproduce_a_filter_outside_the_table_exits_2(results, tmp_path):
    out = tmp_path / "scored"
    r = run_cli("score", "--results", str(results), "--out", str(out), "--case", SMALL[0], "--seeds", "0",
                "-d", "nan-guard", "--no-plots", "-q")
    assert r.returncode == 0, r.stdout + r.stderr
    rep = run_cli("reproduce", str(out / "leaderboard.json"), "--case", SMALL[1])
    assert rep.returncode == 2 and "no run matches the filters" in rep.stderr
