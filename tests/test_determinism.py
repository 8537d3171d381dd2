"""Same task and seed, same record: in a pooled worker or a fresh one, with 1 or 2 jobs."""

from __future__ import annotations

import json

import pytest

from trainwreck.case import load_case
from trainwreck.executor import Job, WorkerPool
from trainwreck.record import without_timings
from trainwreck.run import WORKER_THREADS, execute, plan
from trainwreck.store import RunStore

from .test_cache_and_resume import _case_dir

pytestmark = pytest.mark.slow


def _same(a, b) -> bool:
    """Equal, with NaN equal to NaN (json round trip keeps NaN)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _specs(tmp_path):
    """The small test case, one seed of each variant (determinism does not depend on a case's size): a
    pooled worker trains the fixed run after the broken one, so what a run leaves behind would show."""
    return plan([load_case(_case_dir(tmp_path) / "test" / "tiny.yaml")], seeds=[0])


def test_pooled_worker_equals_fresh_workers(tmp_path):
    specs = _specs(tmp_path)
    jobs = [Job(s.key, {"task": s.task, "seed": s.seed, "key": s.key}, 300) for s in specs]
    with WorkerPool("train", ("tensorflow", "cpu", WORKER_THREADS), n=1) as pool:
        pooled = {r.job.key: r.value["record"] for r in pool.run(jobs)}
    fresh, pids = {}, set()
    for job in jobs:
        with WorkerPool("train", ("tensorflow", "cpu", WORKER_THREADS), n=1) as pool:
            (r,) = list(pool.run([job]))
            fresh[job.key] = r.value["record"]
            pids.add(r.worker_pid)
    assert len(pids) == len(jobs)
    for k in pooled:
        assert _same(without_timings(pooled[k]), without_timings(fresh[k])), k


def test_jobs_1_and_2_give_identical_records(tmp_path):
    specs = _specs(tmp_path)
    one = execute(specs, RunStore(tmp_path / "a"), jobs=1, log=lambda *a: None)
    two = execute(specs, RunStore(tmp_path / "b"), jobs=2, log=lambda *a: None)
    for a, b in zip(one, two):
        assert _same(without_timings(a.record.to_dict()), without_timings(b.record.to_dict())), a.spec.label
        assert a.verdict.holds == b.verdict.holds
