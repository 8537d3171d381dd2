"""The run cache: a rerun trains nothing, corruption is detected and re-run, a change in
the case invalidates exactly the runs it affects, Ctrl-C keeps every finished record, and
a run a time or memory limit stopped is reported but never cached, so the next run retries it.
Real CLI, real worker processes, real training of a tiny case (those tests are marked slow)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trainwreck.case import load_case
from trainwreck.cli import main
from trainwreck.executor import Job, WorkerPool
from trainwreck.run import Progress, _from_cache, _result, _settle, plan
from trainwreck.store import RunStore

from .conftest import ONE_WORKER, ROOT, run_cli
from .imports import graph as import_graph

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


def _case_dir(tmp_path: Path, epochs: int = 3, fixed_lr: float = 0.01) -> Path:
    d = tmp_path / "cases" / "test"
    d.mkdir(parents=True, exist_ok=True)
    (d / "tiny.yaml").write_text(TINY.replace("EPOCHS", str(epochs)).replace("FIXED_LR", str(fixed_lr)))
    return tmp_path / "cases"


def _run(tmp_path, cases, *extra):
    r = run_cli("run", "--cases", str(cases), "--results", str(tmp_path / "res"), *ONE_WORKER, "-q", *extra)
    return r


def _counts(out: str) -> tuple[int, int]:
    m = re.search(r"(\d+) reused from the cache, (\d+) trained", out)
    assert m, out
    return int(m.group(1)), int(m.group(2))


@pytest.mark.slow
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


@pytest.mark.slow
def test_changing_one_variant_invalidates_only_its_runs(tmp_path):
    cases = _case_dir(tmp_path)
    assert _run(tmp_path, cases, "--seeds", "0,1").returncode == 0
    cases = _case_dir(tmp_path, fixed_lr=0.02)
    r = _run(tmp_path, cases, "--seeds", "0,1")
    assert r.returncode == 0 and _counts(r.stdout) == (2, 2)


@pytest.mark.slow
def test_run_stopped_by_the_time_limit_is_reported_not_cached_and_retrained_next_time(tmp_path, capsys):
    cases = _case_dir(tmp_path, epochs=50)
    runs = tmp_path / "res" / "runs"
    argv = ["run", "--cases", str(cases), "--results", str(tmp_path / "res"), "--seeds", "0", *ONE_WORKER, "-q"]

    assert main([*argv, "--timeout", "0.5"]) == 1        # the oracles of the killed runs do not hold
    out = capsys.readouterr().out
    assert out.count("outcome timeout") == 2 and _counts(out) == (0, 2)
    assert "2 run(s) stopped by the time or memory limit" in out and "the next run retries them" in out
    assert not list(runs.glob("*.json"))

    assert main(argv) == 0                               # the default limits: both trained this time
    out = capsys.readouterr().out
    assert _counts(out) == (0, 2) and "stopped by the time" not in out
    recs = [json.loads(p.read_text())["record"] for p in runs.glob("*.json")]
    assert len(recs) == 2 and {x["outcome"]["status"] for x in recs} == {"completed"}

    assert main(argv) == 0 and _counts(capsys.readouterr().out) == (2, 0)


def test_limit_kills_are_reported_not_cached_but_a_dying_worker_is(tmp_path):
    """Real workers hang, outgrow the memory limit, die and raise in place of four runs of a case. What a
    limit of this machine stopped is reported with its outcome but left out of the cache, so the next
    invocation trains it again; a worker that died by itself is the case's own result and stays cached."""
    case = load_case(_case_dir(tmp_path) / "test" / "tiny.yaml")
    specs = {s.key: s for s in plan([case], seeds=[0, 1])}
    modes = dict(zip(specs, ["hang", "memory", "exit", "raise"]))
    jobs = [Job(key, {"mode": mode}, 1.0 if mode == "hang" else 60.0) for key, mode in modes.items()]
    store = RunStore(tmp_path / "runs")

    def settle(res):
        spec = specs[res.job.key]
        return res.status, _result(spec, *_settle(spec, res, store))

    with WorkerPool("selftest", n=2, memory_limit_mb=300) as pool:
        settled = {modes[res.job.key]: settle(res) for res in pool.run(jobs)}
    assert {mode: status for mode, (status, _) in settled.items()} == {
        "hang": "timeout", "memory": "memory", "exit": "crashed", "raise": "error"}
    outcome = {mode: r.record.outcome for mode, (_, r) in settled.items()}
    assert outcome["hang"].status == "timeout" and outcome["memory"].exception_type == "MemoryError"
    assert all(not r.verdict.holds and r.source == "failed" for _, r in settled.values())

    keys = {mode: key for key, mode in modes.items()}
    assert store.keys() == [keys["exit"]]
    done, todo = _from_cache(list(specs.values()), store, Progress(len(specs), False), log=print)
    assert set(todo) == {keys["hang"], keys["memory"], keys["raise"]}
    assert set(done) == {keys["exit"]} and done[keys["exit"]][2] == "cached"
    assert done[keys["exit"]][0]["outcome"]["exception_type"] == "WorkerDied"


def _default_sigint() -> None:
    """A shell starts background jobs with SIGINT ignored, and Python then never raises
    KeyboardInterrupt; give the child the default disposition, as a terminal's Ctrl-C finds it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_resume_trains_only_the_rest(tmp_path):
    cases = _case_dir(tmp_path, epochs=10)
    res = tmp_path / "res"
    proc = subprocess.Popen([sys.executable, "-m", "trainwreck", "run", "--cases", str(cases), "--results", str(res),
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


def test_a_revised_component_moves_only_the_keys_of_runs_that_use_it(corpus):
    """inject_nan was revised (version 2: the test split stays clean): its runs get new keys, others keep theirs."""
    from trainwreck.run import component_versions, plan

    for spec in plan(corpus, device="cpu"):
        names = {t["name"] for t in spec.task["transforms"]}
        assert component_versions(spec.task) == ({"inject_nan": 2} if "inject_nan" in names else {}), spec.label


def test_every_module_a_training_run_executes_is_in_the_key_or_says_why_not():
    """TASK_CODE moves every key when its code changes; a module the worker imports that is in neither
    TASK_CODE nor KEY_EXEMPT would change results without moving a key (data_steps once did)."""
    from trainwreck.environment import KEY_EXEMPT, TASK_CODE

    deps = import_graph()
    seen, todo = set(), ["train"]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        if m not in KEY_EXEMPT:   # an exempt module's own imports are not the run's code
            # the package itself (`from . import trace`) is not a module of the run: its own imports are the API
            todo += sorted(d.removeprefix("trainwreck.") for d in deps[f"trainwreck.{m}"] if d != "trainwreck")
    assert seen - set(KEY_EXEMPT) <= set(TASK_CODE), sorted(seen - set(KEY_EXEMPT) - set(TASK_CODE))
    assert set(TASK_CODE) <= seen, "a TASK_CODE module the worker never imports"
