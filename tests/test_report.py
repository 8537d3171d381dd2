"""Citable output: every table in four formats with its fingerprint; LaTeX that compiles;
rescoring from the cache gives the bench's numbers; reproduce says 'identical'."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess

import pytest

from .conftest import ONE_WORKER, run_cli
from .test_scores_report import SMALL, small_cache, small_specs  # noqa: F401 - fixtures: two small cases, seed 0

pytestmark = pytest.mark.slow

TABLES = ("leaderboard", "matrix", "per_cause", "confusion", "significance", "severity", "platform", "invalid")
CASES = ["--case", SMALL[0], "--case", SMALL[1], "--seeds", "0"]


@pytest.fixture(scope="module")
def scored(small_cache, results_dir, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("report")
    r = run_cli("score", "--results", str(results_dir), "--out", str(out), *CASES)
    assert r.returncode == 0, r.stdout + r.stderr
    return out, r.stdout


def test_every_table_in_every_format_with_fingerprint(scored):
    out, _ = scored
    for t in TABLES:
        doc = json.loads((out / f"{t}.json").read_text())
        fp = doc["fingerprint"]
        for key in ("trainwreck", "tensorflow", "keras", "numpy", "backend", "device", "corpus_hash", "date",
                    "command", "seeds", "detectors", "cpu_model", "arch", "onednn"):
            assert fp[key] not in (None, ""), (t, key)
        assert fp["command"].startswith("trainwreck score")
        assert fp["corpus_hash"] in (out / f"{t}.md").read_text()
        assert fp["corpus_hash"] in (out / f"{t}.tex").read_text()
        lines = (out / f"{t}.csv").read_text().splitlines()
        assert lines[0].startswith("# ") and any(fp["corpus_hash"] in ln for ln in lines if ln.startswith("#"))
        body = [ln for ln in lines if not ln.startswith("#")]
        assert list(csv.reader(body))[0] == doc["headers"]
    plots = sorted(p.stem for p in (out / "plots").glob("*.png"))
    assert plots == sorted(SMALL)
    assert (out / "plots" / "lr-divergence.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_latex_is_booktabs_fits_the_page_and_compiles(scored, tmp_path):
    out, _ = scored
    for t in TABLES:
        doc = json.loads((out / f"{t}.json").read_text())
        tex = (out / f"{t}.tex").read_text()
        body = [ln for ln in tex.splitlines() if not ln.startswith("%")]
        # every table is shrunk (never enlarged) to the line width and 85% of the text height
        assert body[0].startswith("\\noindent\\resizebox*{!}{") and body[1].startswith("\\resizebox{"), t
        assert body[-2:] == ["\\end{tabular}%", "}}\\par"], t
        body = body[2:-1]
        body[-1] = body[-1].rstrip("%")
        assert body[0].startswith("\\begin{tabular}") and body[-1] == "\\end{tabular}", t
        assert [ln for ln in body if ln in ("\\toprule", "\\midrule", "\\bottomrule")] == \
            ["\\toprule", "\\midrule", "\\bottomrule"], t
        for ln in body[2:-2]:
            if ln.endswith("\\\\"):
                assert len(re.split(r"(?<!\\)&", ln)) == len(doc["headers"]), ln
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed; structure checked only")
    doc = tmp_path / "doc.tex"
    doc.write_text("\\documentclass{article}\n\\usepackage[utf8]{inputenc}\n\\usepackage{booktabs}\n"
                   "\\usepackage{graphicx}\n\\usepackage{textcomp}\n\\begin{document}\n"
                   + "".join(f"\\input{{{out / t}.tex}}\n\n" for t in TABLES) + "\\end{document}\n")
    r = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-2000:]
    assert "Overfull \\hbox" not in r.stdout and "Overfull \\vbox" not in r.stdout


def test_rescoring_matches_and_is_fast(scored, results_dir, tmp_path):
    out, stdout = scored
    m = re.search(r"rescored from cache in ([\d.]+)s", stdout)
    assert m, stdout
    again = tmp_path / "again"
    # --fresh: every detector replayed, not read back from the answer cache the first scoring filled
    r = run_cli("score", "--results", str(results_dir), "--out", str(again), *CASES, "--no-plots", "--fresh")
    assert r.returncode == 0
    from trainwreck.report import comparable

    a = json.loads((out / "leaderboard.json").read_text())
    b = json.loads((again / "leaderboard.json").read_text())
    assert comparable(a["headers"], a["rows"]) == comparable(b["headers"], b["rows"])
    for t in ("matrix", "per_cause", "confusion", "significance"):
        assert json.loads((out / f"{t}.json").read_text())["rows"] == json.loads((again / f"{t}.json").read_text())["rows"]


def test_reproduce_reports_identical(results_dir, small_cache, tmp_path):  # noqa: F811
    out = tmp_path / "one"
    r = run_cli("score", "--results", str(results_dir), "--out", str(out), "--case", "lr-divergence",
                "--seeds", "0", "-d", "autotrainer", "-d", "nan-guard", "--no-plots", "-q")
    assert r.returncode == 0, r.stdout + r.stderr
    rep = run_cli("reproduce", str(out / "leaderboard.json"), "--results", str(tmp_path / "scratch"), "-q", *ONE_WORKER)
    assert rep.returncode == 0, rep.stdout + rep.stderr
    assert "identical" in rep.stdout
