"""`--executor ray`: the same jobs as the local WorkerPool, as Ray tasks.

Runs on a local Ray instance by default, or on an existing cluster with
`--ray-address`. Each Ray worker process sets a handler up once (for
training: TensorFlow, seeds, one thread) and reuses it for later tasks, as a
local worker does; the job payloads and results are the same, so records and
cache keys are identical to the local executor's. At most `n` tasks are in
flight, so a task's clock starts when it starts; a task past its time limit is
cancelled with force (its worker process is killed and Ray replaces it).
Requires the optional extra: `pip install trainwreck[ray]`.
"""

from __future__ import annotations

import json

import time
from typing import Iterable, Iterator

from .executor import HANDLERS, Job, JobResult, resolve_handler

__all__ = ["RayPool"]

_STATE: dict = {}


def _ray_job(handler: str, init_args: tuple, payload):
    """Runs inside a Ray worker process: set the handler up once per process, then serve."""
    init, fn = resolve_handler(handler)
    key = (handler, json.dumps(list(init_args), sort_keys=True, default=str))   # init args may hold a dict (env)
    if key not in _STATE:
        _STATE[key] = init(*init_args)
    return fn(_STATE[key], payload)


class RayPool:
    """The WorkerPool interface (context manager + run) over Ray tasks."""

    def __init__(self, handler: str, init_args: tuple = (), n: int = 1, address: str | None = None,
                 memory_limit_mb: int = 0):
        if handler not in HANDLERS:
            raise ValueError(f"unknown worker handler {handler!r}")
        try:
            import ray
        except ImportError:
            raise RuntimeError("--executor ray needs Ray: pip install 'trainwreck[ray]'") from None
        self.ray = ray
        self.handler, self.init_args, self.n = handler, tuple(init_args), max(1, n)
        self._started_here = not ray.is_initialized()
        if self._started_here:
            kw = {"address": address} if address else {"num_cpus": self.n}
            ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False, **kw)
        self._task = ray.remote(num_cpus=1, max_retries=0)(_ray_job)
        self.replaced = 0

    def __enter__(self) -> "RayPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._started_here and self.ray.is_initialized():
            self.ray.shutdown()

    def run(self, jobs: Iterable[Job]) -> Iterator[JobResult]:
        ray = self.ray
        from ray.exceptions import OutOfMemoryError, RayTaskError, TaskCancelledError

        pending = list(jobs)[::-1]
        inflight: dict = {}
        while pending or inflight:
            while pending and len(inflight) < self.n:
                job = pending.pop()
                ref = self._task.remote(self.handler, self.init_args, job.payload)
                inflight[ref] = (job, time.monotonic())
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=0.5)
            now = time.monotonic()
            for ref in ready:
                job, t0 = inflight.pop(ref)
                try:
                    yield JobResult(job, "ok", ray.get(ref), "", now - t0)
                except RayTaskError as e:
                    cause = e.cause if getattr(e, "cause", None) is not None else e
                    yield JobResult(job, "error", None, f"{type(cause).__name__}: {cause}", now - t0)
                except TaskCancelledError:
                    yield JobResult(job, "timeout", None, f"exceeded the time limit of {job.timeout:g}s", now - t0)
                except OutOfMemoryError as e:   # Ray's memory monitor: this node's limit, not the case's doing
                    self.replaced += 1
                    yield JobResult(job, "memory", None, f"Ray killed the task for lack of memory: {e}"[:500],
                                    now - t0)
                except Exception as e:  # noqa: BLE001 - worker crashed, node died, object lost
                    self.replaced += 1
                    yield JobResult(job, "crashed", None, f"Ray worker failed: {type(e).__name__}: {e}"[:500],
                                    now - t0)
            for ref, (job, t0) in list(inflight.items()):
                if now - t0 > job.timeout:
                    ray.cancel(ref, force=True)
                    del inflight[ref]
                    self.replaced += 1
                    yield JobResult(job, "timeout", None, f"exceeded the time limit of {job.timeout:g}s", now - t0)
