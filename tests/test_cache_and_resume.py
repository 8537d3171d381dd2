"""The run cache: a rerun trains nothing, corruption is detected and re-run, a change in
the case invalidates exactly the runs it affects, Ctrl-C keeps every finished record.
Real CLI, real worker processes, real training of a tiny case."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import ROOT, run_cli

TINY = """\
id: tiny
title: A tiny case for harness tests
description: Two quick runs that exercise the cache, not a failure mode.
provenance: trainwreck test suite
cause: lr_too_high
symptoms: [divergence]
seeds: [0, 1, 2]
base:
  dataset: {name: tabular_classification, params: {n_samples: 300, n_features: 5, n_informative: 3}}
  transforms: [{name: standard_scaler}]
  model: {name: mlp, params: {hidden: [8]}}
  compile: {optimizer: adam, learning_rate: 0.01, loss: binary_crossentropy}
  fit: {epochs: EPOCHS, batch_size: 32}
broken:
  compile: {learning_rate: 3.0}
fixed:
  compile: {learning_rate: FIXED_LR}
oracle:
  broken:
    - {measure: epochs_run, min: 1}
  fixed:
    - {measure: epochs_run, min: 1}
"""

pytestmark = pytest.mark.slow


def _case_dir(tmp_path: Path, epochs: int = 3, fixed_lr: float = 0.01) -> Path:
    d = tmp_path / "cases" / "test"
    d.mkdir(parents=True, exist_ok=True)
    (d / "tiny.yaml").write_text(TINY.replace("EPOCHS", str(epochs)).replace("FIXED_LR", str(fixed_lr)))
    return tmp_path / "cases"


def _run(tmp_path, cases, *extra):
    r = run_cli("run", "--cases", str(cases), "--results", str(tmp_path / "res"), "--jobs", "2", "-q", *extra)
    return r


def _counts(out: str) -> tuple[int, int]:
    m = re.search(r"(\d+) reused from the cache, (\d+) trained", out)
    assert m, out
    return int(m.group(1)), int(m.group(2))


def test_rerun_trains_nothing_and_corruption_is_rerun(tmp_path):
    cases = _case_dir(tmp_path)
    first = _run(tmp_path, cases, "--seeds", "0")
    assert first.returncode == 0, first.stdout + first.stderr
    assert _counts(first.stdout) == (0, 2)

    second = _run(tmp_path, cases, "--seeds", "0")
    assert second.returncode == 0 and _counts(second.stdout) == (2, 0)

    runs = sorted((tmp_path / "res" / "runs").glob("*.json"))
    assert len(runs) == 2
    doc = json.loads(runs[0].read_text())
    doc["record"]["trace"][0]["logs"]["loss"] = 0.001          # tampered, checksum now wrong
    runs[0].write_text(json.dumps(doc))
    runs[1].write_text(runs[1].read_text()[:200])              # truncated
    (tmp_path / "res" / "runs" / ".x.json.123.tmp").write_text("{partial")
    third = _run(tmp_path, cases, "--seeds", "0")
    assert third.returncode == 0, third.stdout + third.stderr
    assert "checksum mismatch" in third.stdout and "unreadable" in third.stdout
    assert "removed 1 partial file" in third.stdout
    assert _counts(third.stdout) == (0, 2)


def test_changing_one_variant_invalidates_only_its_runs(tmp_path):
    cases = _case_dir(tmp_path)
    assert _run(tmp_path, cases, "--seeds", "0,1").returncode == 0
    cases = _case_dir(tmp_path, fixed_lr=0.02)
    r = _run(tmp_path, cases, "--seeds", "0,1")
    assert r.returncode == 0 and _counts(r.stdout) == (2, 2)


def test_hung_run_is_recorded_as_timeout_and_the_rest_goes_on(tmp_path):
    cases = _case_dir(tmp_path, epochs=200)
    r = _run(tmp_path, cases, "--seeds", "0", "--timeout", "2")
    assert r.returncode == 1          # the oracles of the killed runs do not hold
    assert "outcome timeout" in r.stdout
    assert _counts(r.stdout) == (0, 2)
    recs = [json.loads(p.read_text())["record"] for p in (tmp_path / "res" / "runs").glob("*.json")]
    assert {x["outcome"]["status"] for x in recs} == {"timeout"}


def _default_sigint() -> None:
    """A shell starts background jobs with SIGINT ignored, and Python then never raises
    KeyboardInterrupt; give the child the default disposition, as a terminal's Ctrl-C finds it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_cleanly_and_resume_trains_only_the_rest(tmp_path):
    cases = _case_dir(tmp_path, epochs=30)
    res = tmp_path / "res"
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", "--cases", str(cases), "--results", str(res),
                             "--jobs", "1", "-q"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=_default_sigint)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not list((res / "runs").glob("*.json")):
        time.sleep(0.2)
    assert list((res / "runs").glob("*.json")), "no run finished in time"
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - t0 < 15
    assert proc.returncode == 130, out + err
    assert "interrupted" in err and "Traceback" not in err
    assert not list((res / "runs").glob(".*.tmp"))
    kept = len(list((res / "runs").glob("*.json")))
    assert 1 <= kept < 6
    for p in (res / "runs").glob("*.json"):
        json.loads(p.read_text())                # every kept file is whole
    again = _run(tmp_path, cases)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _counts(again.stdout) == (kept, 6 - kept)
