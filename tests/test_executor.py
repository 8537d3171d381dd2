"""The worker pool survives whatever a job does, with real processes and real signals."""

from __future__ import annotations

from collections import Counter

import pytest

from trainwreck.executor import Job, WorkerPool


def _run(modes, timeout=20.0, memory_limit_mb=0, n=1, sleep=0.0, max_jobs=0, retire_rss_mb=0, mb=0):
    jobs = [Job(f"{i}-{m}", {"mode": m, "echo": i, "sleep": sleep, "mb": mb}, timeout) for i, m in enumerate(modes)]
    with WorkerPool("selftest", n=n, memory_limit_mb=memory_limit_mb, max_jobs=max_jobs,
                    retire_rss_mb=retire_rss_mb) as pool:
        out = {r.job.key: r for r in pool.run(jobs)}
        replaced = pool.replaced
    return [out[j.key] for j in jobs], replaced


@pytest.mark.parametrize("mode,status,message", [
    ("raise", "error", "ValueError: deliberate failure"),
    ("exit", "crashed", "exit code 3"),
    ("segfault", "crashed", "SIGSEGV"),
    ("sigkill", "crashed", "SIGKILL"),
])
def test_failure_is_recorded_and_the_next_job_runs(mode, status, message):
    (bad, after), replaced = _run([mode, "ok"])
    assert bad.status == status
    assert message in bad.message
    assert after.status == "ok" and after.value["echo"] == 1
    assert replaced == (0 if status == "error" else 1)


def test_hang_is_killed_at_the_time_limit():
    (hung, after), replaced = _run(["hang", "ok"], timeout=2.0)
    assert hung.status == "timeout" and "time limit of 2s" in hung.message
    assert 2.0 <= hung.seconds < 10
    assert after.status == "ok" and replaced == 1


def test_memory_hog_is_killed_at_the_memory_limit():
    (hog, after), replaced = _run(["memory", "ok"], memory_limit_mb=300, timeout=60)
    assert hog.status == "memory" and "memory limit of 300 MiB" in hog.message
    assert after.status == "ok"


def test_two_workers_share_the_jobs():
    results, _ = _run(["ok"] * 6, n=2, sleep=0.5)
    assert all(r.status == "ok" for r in results)
    assert len({r.value["pid"] for r in results}) == 2
    assert [r.value["echo"] for r in results] == list(range(6))


def test_a_worker_is_retired_after_max_jobs_and_nothing_is_lost():
    results, replaced = _run(["ok"] * 7, n=2, max_jobs=2)
    assert [r.value["echo"] for r in results] == list(range(7)) and all(r.status == "ok" for r in results)
    served = Counter(r.value["pid"] for r in results)
    assert max(served.values()) <= 2 and len(served) >= 4
    assert replaced == 0, "a retirement is not a failure"


def test_a_worker_whose_memory_grows_is_retired_between_jobs_and_nothing_is_lost():
    """100 MB kept per job, retired past 200 MB: a worker (a bare Python of well under 100 MB) serves two."""
    results, replaced = _run(["grow"] * 6, retire_rss_mb=200, mb=100)
    assert [r.value["echo"] for r in results] == list(range(6)) and all(r.status == "ok" for r in results)
    served = Counter(r.value["pid"] for r in results)
    assert list(served.values()) == [2, 2, 2]
    assert replaced == 0, "a retirement is not a failure"


def test_only_known_handlers():
    with pytest.raises(ValueError):
        WorkerPool("os.system")
