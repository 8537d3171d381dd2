"""Supervised worker processes: run jobs in isolation, survive anything a job does.

Each worker is a spawned process that imports its heavy libraries once (for
training, TensorFlow: seconds) and then serves many jobs over a pipe. The
parent enforces a per-job time limit and a per-worker memory limit, and
notices a worker that dies (an exception escaping, `os._exit`, a segfault,
SIGKILL). Any of these becomes a failure result for that job only; the
worker is replaced and the remaining jobs go on. A worker may also be retired
after `max_jobs` jobs, or once its resident memory passes `retire_rss_mb`, and
replaced by a fresh one: TensorFlow keeps a little of every model it has traced
(the graphs of its train step, about 10,000 Python objects and 5-15 MB a run),
so a worker that has served hundreds of runs holds gigabytes. Workers ignore SIGINT so
that Ctrl-C reaches only the parent, which stops them and returns.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import os
import signal
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import Any, Callable, Iterable, Iterator

__all__ = ["Job", "JobResult", "WorkerPool", "WorkerStartError", "HANDLERS", "resolve_handler"]


class WorkerStartError(RuntimeError):
    """A worker could not start (its set-up raised, it died, or it hung): no job can run, so the caller stops."""

# Handlers a worker may run, by name. A closed list: nothing a case file says
# can make a worker import an arbitrary module.
HANDLERS = {
    "train": ("trainwreck.worker_jobs", "init_train", "train"),
    "detect": ("trainwreck.worker_jobs", "init_detect", "detect"),
    "detect_many": ("trainwreck.worker_jobs", "init_detect_many", "detect_many"),
    "selftest": ("trainwreck.worker_jobs", "init_selftest", "selftest"),
}


@dataclass(frozen=True)
class Job:
    key: str
    payload: Any
    timeout: float


@dataclass(frozen=True)
class JobResult:
    job: Job
    status: str               # ok | error | timeout | crashed | memory
    value: Any = None
    message: str = ""
    seconds: float = 0.0
    worker_pid: int = 0

    def brief(self) -> str:
        """What became of a job that did not succeed, in one line: its status and the message's first line."""
        return f"{self.status}: {self.message.splitlines()[0] if self.message else ''}"


def resolve_handler(handler: str) -> tuple[Callable, Callable]:
    """(init, fn) of a handler named in the closed HANDLERS table."""
    module, init_name, fn_name = HANDLERS[handler]
    mod = importlib.import_module(module)
    return getattr(mod, init_name), getattr(mod, fn_name)


def _worker_main(conn, handler: str, init_args: tuple) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if not os.environ.get("TRAINWRECK_WORKER_OUTPUT"):
        # Broken runs are noisy (NaN warnings, TF logs); the record holds what matters.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
    init, fn = resolve_handler(handler)
    try:
        state = init(*init_args)
    except BaseException as e:  # noqa: BLE001 - reported to the parent, which decides
        conn.send(("init_error", f"{type(e).__name__}: {e}"))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        try:
            conn.send(("ok", fn(state, msg)))
        except BaseException as e:  # noqa: BLE001
            conn.send(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}"))


@dataclass
class _Worker:
    proc: Any
    conn: Any
    job: Job | None = None
    started: float = 0.0
    ready: bool = False
    spawned: float = field(default_factory=time.monotonic)
    served: int = 0


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class WorkerPool:
    """Runs jobs on `n` supervised workers; yields one JobResult per job as they finish."""

    def __init__(self, handler: str, init_args: tuple = (), n: int = 1, memory_limit_mb: int = 0,
                 startup_timeout: float = 180.0, max_jobs: int = 0, retire_rss_mb: int = 0):
        if handler not in HANDLERS:
            raise ValueError(f"unknown worker handler {handler!r}")
        self.handler, self.init_args, self.n = handler, init_args, max(1, n)
        self.max_jobs = max_jobs         # retire a worker after this many jobs (0: never)
        self.retire_rss = retire_rss_mb * 1024 * 1024   # or once an idle worker's memory passes this (0: never)
        self.memory_limit = memory_limit_mb * 1024 * 1024
        self.startup_timeout = startup_timeout
        self._ctx = mp.get_context("spawn")
        self._workers: list[_Worker] = []
        self._retired: list[_Worker] = []
        self.replaced = 0

    def _spawn(self) -> _Worker:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_worker_main, args=(child, self.handler, self.init_args), daemon=True)
        proc.start()
        child.close()
        return _Worker(proc, parent)

    def _kill(self, w: _Worker) -> None:
        try:
            if w.proc.is_alive():
                w.proc.kill()
            w.proc.join(5)
        finally:
            w.conn.close()

    def close(self) -> None:
        """Idle workers are asked to exit; busy or still-starting ones are killed."""
        for w in self._workers:
            if w.proc.is_alive() and w.job is None and w.ready:
                try:
                    w.conn.send(None)
                except OSError:
                    pass
            elif w.proc.is_alive():
                w.proc.kill()
        deadline = time.monotonic() + 3
        for w in self._workers + self._retired:
            w.proc.join(max(0.0, deadline - time.monotonic()))
            self._kill(w)
        self._workers, self._retired = [], []

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _replace(self, w: _Worker) -> None:
        self._kill(w)
        self._workers[self._workers.index(w)] = self._spawn()
        self.replaced += 1

    def _worn(self, w: _Worker) -> bool:
        """An idle worker that has served its `max_jobs`, or whose resident memory passed `retire_rss_mb`."""
        return w.ready and w.job is None and bool(
            (self.max_jobs and w.served >= self.max_jobs)
            or (self.retire_rss and _rss_bytes(w.proc.pid) > self.retire_rss))

    def _retire(self, w: _Worker) -> None:
        """A worn worker: asked to exit, and a fresh one takes its place."""
        try:
            w.conn.send(None)
        except OSError:
            pass
        self._retired.append(w)     # it exits by itself; close() reaps it, so the pool does not wait here
        self._workers[self._workers.index(w)] = self._spawn()

    def run(self, jobs: Iterable[Job]) -> Iterator[JobResult]:
        pending = list(jobs)[::-1]
        if not pending:
            return
        while len(self._workers) < min(self.n, len(pending)):
            self._workers.append(self._spawn())
        outstanding = len(pending)
        while outstanding:
            for w in list(self._workers):
                if pending and self._worn(w):
                    self._retire(w)
            for w in self._workers:
                if w.ready and w.job is None and pending:
                    w.job, w.started = pending.pop(), time.monotonic()
                    w.conn.send(w.job.payload)
            busy = [w for w in self._workers if w.job is not None or not w.ready]
            waitables = [w.conn for w in busy] + [w.proc.sentinel for w in busy]
            ready = set(wait(waitables, timeout=0.5)) if waitables else set()
            now = time.monotonic()
            for w in list(self._workers):
                result = self._poll(w, ready, now)
                if result is not None:
                    outstanding -= 1
                    yield result

    def _poll(self, w: _Worker, ready: set, now: float) -> JobResult | None:
        job = w.job
        died = False
        if w.conn in ready:
            try:
                kind, value = w.conn.recv()
            except (EOFError, OSError):
                kind, value, died = "died", None, True
            if kind == "ready":
                w.ready = True
                return None
            if kind == "init_error":
                raise WorkerStartError(f"worker for '{self.handler}' failed to start: {value}")
            if kind in ("ok", "error"):
                w.job = None
                w.served += 1
                return JobResult(job, kind, value if kind == "ok" else None,
                                 "" if kind == "ok" else str(value), now - w.started, w.proc.pid)
        if died or not w.proc.is_alive():
            w.proc.join(5)
            code = w.proc.exitcode
            how = f"killed by signal {-code} ({signal.Signals(-code).name})" if code and code < 0 else f"exit code {code}"
            self._replace(w)
            if job is None:
                raise WorkerStartError(f"worker for '{self.handler}' died while starting ({how})")
            return JobResult(job, "crashed", None, f"worker process died: {how}", now - w.started, w.proc.pid)
        if job is None and not w.ready and now - w.spawned > self.startup_timeout:
            raise WorkerStartError(f"worker for '{self.handler}' did not start within {self.startup_timeout:.0f}s")
        if job is not None and now - w.started > job.timeout:
            pid = w.proc.pid
            self._replace(w)
            return JobResult(job, "timeout", None, f"exceeded the time limit of {job.timeout:g}s", now - w.started, pid)
        if job is not None and self.memory_limit and _rss_bytes(w.proc.pid) > self.memory_limit:
            pid = w.proc.pid
            self._replace(w)
            return JobResult(job, "memory", None,
                             f"exceeded the memory limit of {self.memory_limit // 2**20} MiB", now - w.started, pid)
        return None
