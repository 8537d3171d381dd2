"""Expand cases into runs, execute the missing ones in workers, check oracles.

`plan` turns each case into RunSpecs (case x variant x seed) with a content
key; `execute` serves what the cache has and trains the rest on a
`WorkerPool`, writing each record as soon as it arrives, so an interrupted
bench loses at most the runs in flight.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from .case import VARIANTS, Case, resolve_variant
from .executor import Job, JobResult, WorkerPool
from .oracle import OracleVerdict, evaluate
from .record import RunRecord
from .store import CorruptRecord, RunStore, digest

__all__ = ["RunSpec", "RunResult", "plan", "execute", "fingerprint", "resolve_device", "TRACE_VERSION",
           "default_jobs", "Progress"]

TRACE_VERSION = 2  # bump when the worker's record content changes, to invalidate caches


def _version(*dists: str) -> str:
    for d in dists:
        try:
            return metadata.version(d)
        except metadata.PackageNotFoundError:
            continue
    return "absent"


def resolve_device(device: str) -> str:
    """'auto' is gpu when the machine shows an NVIDIA device, else cpu (checked without importing TF)."""
    if device != "auto":
        return device
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    has_gpu = Path("/proc/driver/nvidia/gpus").exists() and any(Path("/proc/driver/nvidia/gpus").iterdir())
    return "gpu" if has_gpu and visible != "-1" else "cpu"


def fingerprint(backend: str, device: str) -> dict:
    """What besides the task and seed determines a run's result."""
    return {"python": platform.python_version(),
            "tensorflow": _version("tensorflow", "tensorflow-cpu"), "keras": _version("keras"),
            "numpy": _version("numpy"), "sklearn": _version("scikit-learn"),
            "backend": backend, "device": device, "trace_version": TRACE_VERSION}


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


@dataclass(frozen=True)
class RunSpec:
    case: Case
    variant: str
    seed: int
    task: dict
    key: str

    @property
    def label(self) -> str:
        return f"{self.case.id} {self.variant} seed={self.seed}"


@dataclass(frozen=True)
class RunResult:
    spec: RunSpec
    record: RunRecord
    extras: dict
    verdict: OracleVerdict
    source: str            # cached | trained | failed
    message: str = ""


def plan(cases: list[Case], *, seeds: list[int] | None = None, variants=VARIANTS,
         backend: str = "tensorflow", device: str = "cpu") -> list[RunSpec]:
    env = fingerprint(backend, device)
    specs = []
    for case in cases:
        for variant in variants:
            task = resolve_variant(case, variant).model_dump(mode="json", by_alias=True)
            for seed in case.seeds if seeds is None else [s for s in case.seeds if s in seeds]:
                key = digest({"task": task, "seed": seed, "env": env})[:24]
                specs.append(RunSpec(case, variant, seed, task, key))
    return specs


def _failure_record(spec: RunSpec, res: JobResult, backend: str, device: str) -> dict:
    status = {"timeout": "timeout"}.get(res.status, "crashed")
    kind = {"timeout": "TimeoutError", "memory": "MemoryError", "crashed": "WorkerDied"}.get(res.status, "HarnessError")
    return {"key": spec.key, "seed": spec.seed, "trace": [],
            "outcome": {"status": status, "exception_type": kind, "message": res.message.splitlines()[0][:500],
                        "epochs_run": 0, "wall_seconds": res.seconds},
            "environment": {"backend": backend, "device": device}}


class Progress:
    """Per-run lines with an ETA on stderr: shown on a terminal or when asked, silent when piped."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.enabled, self.done, self.t0 = total, enabled, 0, time.monotonic()
        self.trained = 0

    def step(self, label: str, what: str, trained: bool) -> None:
        self.done += 1
        self.trained += trained
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.t0
        left = self.total - self.done
        eta = elapsed / self.trained * left if self.trained else 0.0
        print(f"[{self.done:>{len(str(self.total))}}/{self.total}] {label:<48} {what:<32} "
              f"ETA {int(eta) // 60}m{int(eta) % 60:02d}s", file=sys.stderr, flush=True)


def execute(specs: list[RunSpec], store: RunStore, *, jobs: int = 1, timeout: float = 300.0,
            memory_limit_mb: int = 4096, backend: str = "tensorflow", device: str = "cpu",
            progress: Progress | None = None, log=print) -> list[RunResult]:
    """Every spec's result, training only what the cache lacks. Raises KeyboardInterrupt after cleanup."""
    progress = progress or Progress(len(specs), False)
    results: dict[str, RunResult] = {}
    todo: list[RunSpec] = []
    seen_keys: set[str] = set()
    for spec in specs:
        try:
            stored = store.get(spec.key)
        except CorruptRecord as e:
            log(f"warning: {e}; it will be re-run")
            store.discard(spec.key)
            stored = None
        if stored is None:
            if spec.key not in seen_keys:
                todo.append(spec)
            seen_keys.add(spec.key)
            continue
        results[spec.key] = _result(spec, stored.record, stored.extras, "cached")
        progress.step(spec.label, f"cached  {_brief(results[spec.key])}", False)

    if todo:
        threads = max(1, default_jobs() // max(1, jobs))
        by_key = {s.key: s for s in todo}
        with WorkerPool("train", (backend, device, threads), n=min(jobs, len(todo)),
                        memory_limit_mb=memory_limit_mb) as pool:
            job_list = [Job(s.key, {"task": s.task, "seed": s.seed, "key": s.key}, timeout) for s in todo]
            for res in pool.run(job_list):
                spec = by_key[res.job.key]
                if res.status == "ok":
                    store.put(spec.key, res.value["record"], res.value["extras"])
                    out = _result(spec, res.value["record"], res.value["extras"], "trained")
                else:
                    rec = _failure_record(spec, res, backend, device)
                    if res.status in ("timeout", "crashed", "memory"):
                        store.put(spec.key, rec, {})
                    out = _result(spec, rec, {}, "failed", res.message)
                results[spec.key] = out
                progress.step(spec.label, f"trained {_brief(out)}", True)
    return [results[s.key] if s.key in results else None for s in specs]  # type: ignore[misc]


def _result(spec: RunSpec, record: dict, extras: dict, source: str, message: str = "") -> RunResult:
    rec = RunRecord.from_dict(record)
    conds = getattr(spec.case.oracle, spec.variant)
    return RunResult(spec, rec, extras, evaluate(conds, rec, extras), source, message)


def _brief(r: RunResult) -> str:
    return f"{r.record.outcome.status:<9} oracle {'ok' if r.verdict.holds else 'FAILS'} {r.record.outcome.wall_seconds:5.1f}s"
