"""--executor ray runs the same jobs as Ray tasks on a local Ray instance: same records, same cache."""

from __future__ import annotations

import json

import pytest

from trainwreck.case import load_case
from trainwreck.executor import Job
from trainwreck.record import without_timings
from trainwreck.run import execute, plan
from trainwreck.store import RunStore

from .conftest import CASES

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'trainwreck[ray]')")
pytestmark = pytest.mark.slow


def test_ray_records_and_cache_equal_local(tmp_path):
    case = load_case(CASES / "optimization" / "lr-divergence.yaml")
    specs = plan([case], seeds=[0, 1])
    local = execute(specs, RunStore(tmp_path / "local"), jobs=2, log=lambda *a: None)
    remote = execute(specs, RunStore(tmp_path / "ray"), jobs=2, log=lambda *a: None, executor="ray")
    assert sorted(p.name for p in (tmp_path / "local").glob("*.json")) == \
        sorted(p.name for p in (tmp_path / "ray").glob("*.json"))
    for a, b in zip(local, remote):
        assert a.spec.key == b.spec.key
        assert json.dumps(without_timings(a.record.to_dict()), sort_keys=True) == \
            json.dumps(without_timings(b.record.to_dict()), sort_keys=True), a.spec.label
        assert a.verdict.holds and b.verdict.holds
    again = execute(specs, RunStore(tmp_path / "ray"), jobs=2, log=lambda *a: None, executor="ray")
    assert {r.source for r in again} == {"cached"}


def test_ray_failures_are_results():
    from trainwreck.ray_executor import RayPool

    jobs = [Job("raise", {"mode": "raise"}, 30), Job("hang", {"mode": "hang"}, 3), Job("ok", {"mode": "ok"}, 30)]
    with RayPool("selftest", n=2) as pool:
        out = {r.job.key: r for r in pool.run(jobs)}
    assert out["raise"].status == "error" and "deliberate failure" in out["raise"].message
    assert out["hang"].status == "timeout"
    assert out["ok"].status == "ok"
