"""Expand cases into runs, execute the missing ones in workers, check oracles.

`plan` turns each case into RunSpecs (case x variant x seed) with a content
key; `execute` serves what the cache has and trains the rest on a
`WorkerPool`, writing each record as soon as it arrives, so an interrupted
bench loses at most the runs in flight.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .case import VARIANTS, Case, resolve_sweep, resolve_variant
from .environment import TRACE_VERSION, WORKER_THREADS, key_facts
from .executor import Job, JobResult, WorkerPool
from .oracle import OracleVerdict, evaluate
from .record import RunRecord
from .store import CorruptRecord, RunStore, atomic_write_text, digest

__all__ = ["RunSpec", "RunResult", "plan", "execute", "resolve_device", "TRACE_VERSION", "WORKER_THREADS",
           "default_jobs", "Progress", "make_pool",
           "BACKENDS", "BackendUnavailable", "check_backend", "WorkerSetting", "NotCached", "longest_first",
           "expected_seconds"]

# How a job ends when a limit of this machine, not the case, stopped it: reported, never cached.
MACHINE_LIMITS = ("timeout", "memory")

# When a fresh training worker replaces one (executor.WorkerPool's max_jobs and retire_rss_mb): after this
# many runs, or once its resident memory passes this many MiB. With what survives each run frozen
# (worker_jobs.train), a worker's CPU time per run is flat for about 60 runs, then grows (`make perf` (f):
# 10 cases in turn, 23.4-24.6 s a round for six rounds, 25.9-26.9 s for the next two). Its memory grows
# all along, by the graphs TensorFlow keeps of every traced model (fit in a loop leaks, clear_session or
# not: tensorflow/tensorflow#61791), 5-15 MB a run (a cold corpus: about 0.8 GB after a worker's first
# run, 1.9 GB after its 80th): retired at 1.5 GiB, a worker keeps 2.5 GiB of the default 4 GiB memory
# limit for its run, so a run's fate does not depend on how many came before it in the worker. A fresh
# worker costs one TensorFlow import, about 4 s of CPU.
TRAIN_JOBS_PER_WORKER = 60
TRAIN_RETIRE_RSS_MB = 1536


# Each Keras backend, the distribution that provides it, and how to install it here.
BACKENDS = {"tensorflow": ("tensorflow", "make setup"),
            "jax": ("jax", "make setup (the jax extra: pip install 'trainwreck[jax]')"),
            "torch": ("torch", "make setup-torch (pip install 'trainwreck[torch]')")}


class BackendUnavailable(Exception):
    """The requested backend or device cannot run on this machine; raised before any worker starts."""


def _driver_gpus() -> list[str]:
    """NVIDIA GPUs the driver lists (read without importing TF)."""
    root = Path("/proc/driver/nvidia/gpus")
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def _cuda_hides_all() -> bool:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return visible is not None and visible.strip() in ("", "-1")


def _visible_nvidia_gpus() -> list[str]:
    """NVIDIA GPUs the driver lists, minus those CUDA_VISIBLE_DEVICES hides."""
    return [] if _cuda_hides_all() else _driver_gpus()


def resolve_device(device: str) -> str:
    """'auto' is gpu when the machine shows an NVIDIA device, else cpu."""
    if device != "auto":
        return device
    return "gpu" if _visible_nvidia_gpus() else "cpu"


def check_backend(backend: str, device: str) -> None:
    """Fail with what to do, before spawning workers, when the backend or a requested GPU is missing."""
    if backend not in BACKENDS:
        raise BackendUnavailable(f"unknown backend '{backend}' (expected one of: {', '.join(BACKENDS)})")
    dist, how = BACKENDS[backend]
    import importlib.util

    if importlib.util.find_spec(dist) is None:
        raise BackendUnavailable(f"the {backend} backend needs the '{dist}' package, which is not installed; "
                                 f"install it with: {how}")
    if device == "gpu" and not _visible_nvidia_gpus():
        why = ("CUDA_VISIBLE_DEVICES hides every device" if _driver_gpus() and _cuda_hides_all()
               else "no NVIDIA GPU is listed under /proc/driver/nvidia/gpus")
        raise BackendUnavailable(f"--device gpu was requested but this machine has no usable GPU ({why}); "
                                 f"use --device cpu, or --device auto to take a GPU only when present")


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


@dataclass(frozen=True)
class WorkerSetting:
    """Where a run trains: the backend, the device and the worker settings that change numerics."""
    backend: str = "tensorflow"
    device: str = "cpu"
    threads: int = WORKER_THREADS
    env: tuple = ()              # (name, value) pairs of numerics-relevant variables, e.g. TF_ENABLE_ONEDNN_OPTS

    @property
    def env_dict(self) -> dict:
        return dict(self.env)


@dataclass(frozen=True)
class RunSpec:
    case: Case
    variant: str
    seed: int
    task: dict
    key: str
    severity: object = None      # the sweep value, for severity-sweep runs of the broken variant
    setting: WorkerSetting = WorkerSetting()
    trace_every: int = 0         # the trace's resolution: a step record every k batches; 0 = per epoch only

    @property
    def backend(self) -> str:
        return self.setting.backend

    @property
    def device(self) -> str:
        return self.setting.device

    @property
    def label(self) -> str:
        if self.severity is not None:
            return f"{self.case.id} sweep {self.case.sweep.path.rsplit('.', 1)[-1]}={self.severity} seed={self.seed}"
        return f"{self.case.id} {self.variant} seed={self.seed}"


@dataclass(frozen=True)
class RunResult:
    spec: RunSpec
    record: RunRecord
    extras: dict
    verdict: OracleVerdict
    source: str            # cached | trained | failed
    message: str = ""
    checksum: str = ""     # the stored record's checksum; "" for a run that was not stored (stopped by a limit)


def plan(cases: list[Case], *, seeds: list[int] | None = None, variants=VARIANTS,
         backend: str = "tensorflow", device: str = "cpu", sweeps: bool = False,
         threads: int = WORKER_THREADS, env: dict | None = None,
         any_seeds: list[int] | None = None, trace_every: int = 0) -> list[RunSpec]:
    """Runs for case x variant x seed; with sweeps, also the broken variant at each sweep value.

    `threads` and `env` (numerics-relevant environment variables for the workers) are the settings
    `check-case --robust` perturbs; they are part of every key. `seeds` filters the declared seeds;
    `any_seeds` replaces them (the robustness check runs seeds a case does not declare). `trace_every`
    (k > 0: a step record every k batches) is the trace's resolution, part of every key: a per-step
    record and a per-epoch one of the same task are two cache entries."""
    if trace_every < 0:
        raise ValueError(f"trace_every must be 0 (per epoch) or a positive number of batches, got {trace_every}")
    facts = key_facts(backend, device, threads, env)
    setting = WorkerSetting(backend, device, threads, tuple(sorted((env or {}).items())))
    specs = []

    def add(case, variant, task, seed, severity=None):
        identity = {"task": task, "seed": seed, "env": facts, "trace_every": trace_every}
        revised = component_versions(task)
        if revised:
            identity["components"] = revised
        key = digest(identity)[:24]
        specs.append(RunSpec(case, variant, seed, task, key, severity, setting, trace_every))

    for case in cases:
        chosen = any_seeds if any_seeds is not None else (
            case.seeds if seeds is None else [s for s in case.seeds if s in seeds])
        for variant in variants:
            task = resolve_variant(case, variant).model_dump(mode="json", by_alias=True)
            for seed in chosen:
                add(case, variant, task, seed)
        if sweeps and case.sweep is not None:
            for value in case.sweep.values:
                task = resolve_sweep(case, value).model_dump(mode="json", by_alias=True)
                for seed in case.sweep.seeds or case.seeds[:1]:
                    add(case, "broken", task, seed, value)
    return specs


def component_versions(task: dict) -> dict[str, int]:
    """The transforms of a resolved task whose code was revised (version > 1), by name: part of its run key."""
    from .transforms import TRANSFORMS

    names = {t["name"] for t in task.get("transforms", [])}
    return {n: TRANSFORMS.get(n).version for n in sorted(names) if n in TRANSFORMS and TRANSFORMS.get(n).version > 1}


def _failure_record(spec: RunSpec, res: JobResult) -> dict:
    """The record of a job that returned none, from how the pool says it ended (validated like a worker's).

    A handler that raised ('error') is the harness's own failure, never the run's (train.run_task lets
    only what it does not blame on the run propagate): `harness_error`, with the exception type and
    message the worker reported as "Type: message". A worker that died stays `crashed` (WorkerDied),
    the memory limit `crashed` (MemoryError), the time limit `timeout`."""
    message = (res.message.splitlines() or [""])[0]
    status = {"timeout": "timeout", "error": "harness_error"}.get(res.status, "crashed")
    kind = {"timeout": "TimeoutError", "memory": "MemoryError", "crashed": "WorkerDied"}.get(res.status, "HarnessError")
    name, sep, rest = message.partition(": ")
    if res.status == "error" and sep and name.isidentifier():
        kind, message = name, rest
    return RunRecord.finished({
        "key": spec.key, "seed": spec.seed, "trace": [],
        "outcome": {"status": status, "exception_type": kind, "message": message[:500],
                    "epochs_run": 0, "wall_seconds": res.seconds},
        "environment": {"backend": spec.backend, "device": spec.device}}).to_dict()


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


def make_pool(executor: str, handler: str, init_args: tuple, n: int, memory_limit_mb: int = 0,
              ray_address: str | None = None):
    """The local supervised WorkerPool, or the same interface over Ray tasks."""
    if executor == "ray":
        from .ray_executor import RayPool

        return RayPool(handler, init_args, n=n, address=ray_address, memory_limit_mb=memory_limit_mb)
    if executor != "local":
        raise ValueError(f"unknown executor {executor!r}; valid: local, ray")
    train = handler == "train"
    return WorkerPool(handler, init_args, n=n, memory_limit_mb=memory_limit_mb,
                      max_jobs=TRAIN_JOBS_PER_WORKER if train else 0, retire_rss_mb=TRAIN_RETIRE_RSS_MB if train else 0)


def execute(specs: list[RunSpec], store: RunStore, *, jobs: int = 1, timeout: float = 300.0,
            memory_limit_mb: int = 4096, progress: Progress | None = None, log=print, executor: str = "local",
            ray_address: str | None = None, train: bool = True) -> list[RunResult]:
    """One result per spec, training only what the cache lacks (each distinct key once), on the backend,
    device and worker settings each spec carries. With `train=False` nothing is trained: a run the cache
    lacks raises `NotCached`.

    Raises KeyboardInterrupt after the workers are stopped; every record written before then is whole.
    """
    progress = progress or Progress(len(specs), False)
    done, todo = _from_cache(specs, store, progress, log, discard=train)
    if todo and not train:
        raise NotCached(list(todo.values()))
    by_setting: dict[WorkerSetting, dict[str, RunSpec]] = {}
    for key, spec in todo.items():
        by_setting.setdefault(spec.setting, {})[key] = spec
    limited = 0
    past = _past_durations(store) if todo else {}
    for setting, group in by_setting.items():
        check_backend(setting.backend, setting.device)
        init = (setting.backend, setting.device, setting.threads, setting.env_dict)
        with make_pool(executor, "train", init, min(jobs, len(group)), memory_limit_mb, ray_address) as pool:
            job_list = [Job(s.key, {"task": s.task, "seed": s.seed, "key": s.key, "trace_every": s.trace_every},
                            timeout) for s in longest_first(list(group.values()), past)]
            for res in pool.run(job_list):
                spec = group[res.job.key]
                done[spec.key] = _settle(spec, res, store)
                past[_duration_id(spec)] = round(res.seconds, 3)
                limited += res.status in MACHINE_LIMITS
                progress.step(spec.label, f"trained {_brief(_result(spec, *done[spec.key]))}", True)
    if todo:
        _save_durations(store, past)
    if limited:
        log(f"{limited} run(s) stopped by the time or memory limit (--timeout, --memory-limit) were not "
            f"cached; the next run retries them")
    return [_result(spec, *done[spec.key]) for spec in specs]


class NotCached(Exception):
    """Runs a command that never trains needed and the cache does not hold (or holds damaged)."""

    def __init__(self, specs: list[RunSpec]):
        self.specs = specs
        super().__init__(f"{len(specs)} run(s) are not in the cache (e.g. {specs[0].label})")


def _from_cache(specs: list[RunSpec], store: RunStore, progress: Progress,
                log, discard: bool = True) -> tuple[dict[str, tuple[dict, dict, str, str, str]], dict[str, RunSpec]]:
    """(done, todo): key -> (record, extras, 'cached', '', checksum) for what the cache holds, key -> spec for the rest.

    A damaged record is reported and (with `discard`, when its run is about to be trained again) deleted."""
    done: dict[str, tuple[dict, dict, str, str, str]] = {}
    todo: dict[str, RunSpec] = {}
    for spec in specs:
        if spec.key in done or spec.key in todo:
            continue
        try:
            stored = store.get(spec.key)
        except CorruptRecord as e:
            if discard:
                log(f"warning: {e}; it will be re-run")
                store.discard(spec.key)
            stored = None
        if stored is None:
            todo[spec.key] = spec
        else:
            done[spec.key] = (stored.record, stored.extras, "cached", "", stored.checksum)
            progress.step(spec.label, "cached", False)
    return done, todo


def _settle(spec: RunSpec, res: JobResult, store: RunStore) -> tuple[dict, dict, str, str, str]:
    """(record, extras, source, message, checksum) of a finished job, cached when it is the case's own result.

    A completed run and a worker that died by itself are; a run stopped at a time or memory limit is
    reported for this invocation only, since the limit belongs to this machine and command line, and an
    error raised by the harness itself is not the case's doing either."""
    if res.status == "ok":
        checksum = store.put(spec.key, res.value["record"], res.value["extras"])
        return res.value["record"], res.value["extras"], "trained", "", checksum
    rec = _failure_record(spec, res)
    checksum = store.put(spec.key, rec, {}) if res.status == "crashed" else ""
    return rec, {}, "failed", res.message, checksum


def _result(spec: RunSpec, record: dict, extras: dict, source: str, message: str = "", checksum: str = "") -> RunResult:
    rec = RunRecord.from_dict(record)
    # a sweep point makes no claim of its own: it shows where detectors start to see the fault
    conds = [] if spec.severity is not None else spec.case.oracle_for(spec.variant, rec.environment.probes)
    return RunResult(spec, rec, extras, evaluate(conds, rec, extras), source, message, checksum)


def _brief(r: RunResult) -> str:
    claim = "sweep    " if r.spec.severity is not None else f"oracle {'ok   ' if r.verdict.holds else 'FAILS'}"
    return f"{r.record.outcome.status:<9} {claim} {r.record.outcome.wall_seconds:5.1f}s"


# -- scheduling: longest expected run first, so the last worker is not left alone with a deep LSTM

DURATIONS = "durations.tsv"   # in the run cache's folder; not a record (RunStore reads *.json only)


def _duration_id(spec: RunSpec) -> str:
    """What a past duration is remembered by: stable across trace versions and library upgrades (which
    change every key) but not across what changes the work: case, variant, seed, sweep value, backend, device."""
    return "|".join(map(str, (spec.backend, spec.device, spec.case.id, spec.variant, spec.seed, spec.severity,
                              spec.trace_every)))


def _past_durations(store: RunStore) -> dict[str, float]:
    try:
        lines = (store.root / DURATIONS).read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        ident, _, secs = line.rpartition("\t")
        try:
            out[ident] = float(secs)
        except ValueError:
            continue   # a damaged line only costs its estimate
    return out


def _save_durations(store: RunStore, past: dict[str, float]) -> None:
    try:
        atomic_write_text(store.root / DURATIONS, "".join(f"{k}\t{v}\n" for k, v in sorted(past.items())))
    except OSError:
        pass   # an estimate for next time, never a reason to fail this command


def _strings(obj) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [x for k, v in obj.items() for x in (k, *_strings(v))]
    if isinstance(obj, (list, tuple)):
        return [x for v in obj for x in _strings(v)]
    return []


def _longest_list(obj) -> int:
    if isinstance(obj, dict):
        return max([0, *map(_longest_list, obj.values())])
    if isinstance(obj, (list, tuple)):
        return max([len(obj), *map(_longest_list, obj)])
    return 0


def _find(obj, name: str):
    """The first value under `name` anywhere in a task dict (the case format may nest it)."""
    if isinstance(obj, dict):
        if name in obj:
            return obj[name]
        obj = list(obj.values())
    if isinstance(obj, list):
        for v in obj:
            found = _find(v, name)
            if found is not None:
                return found
    return None


def expected_seconds(spec: RunSpec, past: dict[str, float]) -> float:
    """The run's duration last time, else an estimate in arbitrary units (only the order matters: it decides
    which run starts first). These models are tiny, so a step costs about one kernel dispatch per layer, and
    a recurrent layer dispatches once per time step: epochs x batches x layers (x timesteps if recurrent)."""
    if _duration_id(spec) in past:
        return past[_duration_id(spec)]
    model = _find(spec.task, "model") or {}
    epochs = _find(spec.task, "epochs") or 1
    batches = (_find(spec.task, "n_samples") or 1000) / (_find(spec.task, "batch_size") or 32)
    layers = 1 + max(_find(model, "depth") or 0, _longest_list(model))
    recurrent = any(w in s.lower() for s in _strings(model) for w in ("lstm", "gru", "rnn"))
    steps = (_find(spec.task, "timesteps") or 1) if recurrent else 1
    return 1e-4 * float(epochs) * float(batches) * float(layers) * float(steps)


def longest_first(specs: list[RunSpec], past: dict[str, float]) -> list[RunSpec]:
    """The specs by case, the case whose longest run is expected to take longest first, and a case's runs
    together (by variant, then in plan order). With N workers the longest runs start at once and the short
    ones fill in around them, instead of one long run finishing alone at the end; and a worker's next run
    is mostly another seed of the case it just ran, whose compiled probe it already holds (a worker traces
    the probe once per architecture: trace._TFProbeCache)."""
    longest: dict[str, float] = {}
    for s in specs:
        longest[s.case.id] = max(longest.get(s.case.id, 0.0), expected_seconds(s, past))
    return sorted(specs, key=lambda s: (-longest[s.case.id], s.case.id, s.variant))
