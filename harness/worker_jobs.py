"""The functions pooled workers run (see executor.HANDLERS): set up once, then serve jobs."""

from __future__ import annotations

import os
import time

__all__ = ["init_train", "train", "init_detect", "detect", "init_detect_many", "detect_many", "init_selftest",
           "selftest"]


def init_train(backend: str, device: str, threads: int, env: dict | None = None):
    """Set the worker up, then freeze what is alive: every run starts with `clear_session(free_memory=True)`,
    whose full garbage collection would otherwise walk the whole imported TensorFlow and Keras each time
    (0.2-0.6 s a run, a third of a small one); frozen objects are skipped, a run's own garbage is not."""
    import gc

    from .train import setup_worker

    setup_worker(backend, device, threads, env)   # first: it sets KERAS_BACKEND before Keras is imported
    import sklearn.metrics  # noqa: F401 - every run's evaluation imports it; frozen with the rest

    from . import trace  # noqa: F401
    gc.collect()
    gc.freeze()
    return {"backend": backend, "device": device}


def train(state: dict, payload: dict) -> dict:
    """One run. First the previous run's garbage is collected and what survives it is frozen: TensorFlow
    keeps every traced model's graphs alive from its C++ side (about 10,000 Python objects and 28 runtime
    functions a run, unreachable from Python and never freed), and unfrozen, the full collection each
    run's `clear_session` makes walks them all: 30 ms after 5 runs, 180 ms after 40, and a run's CPU
    time grows about 10 % over 40 runs. Frozen, the collection stays at about 13 ms, and a run's time
    flat for about 60 runs (run.TRAIN_JOBS_PER_WORKER)."""
    import gc
    import resource

    from .trace import probe_cache_counts
    from .train import run_task

    gc.collect()
    gc.freeze()
    traced = probe_cache_counts()[1]
    out = run_task(payload["task"], payload["seed"], payload["key"], state["backend"], state["device"],
                   trace_every=int(payload.get("trace_every", 0)))
    if state["backend"] == "tensorflow":   # did this run trace its compiled probe, or reuse an earlier run's?
        out["extras"]["probe_traced"] = probe_cache_counts()[1] > traced
    # peak resident memory of this worker so far (KiB on Linux); kept out of the record
    out["extras"]["worker_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def init_detect(spec: str):
    from trainwreck.detectors.loading import load_detector

    return load_detector(spec)


def detect(detector, payload: dict) -> dict:
    """Replay one run record (a learned detector: with a fold's model, or its features, or fitting that
    model: see trainwreck.crossfit); or, for the conformance kit, run one of its checks (payload {"check": name})
    in this worker, so that a detector which hangs or kills its process cannot take the caller with it."""
    if "check" in payload:
        from trainwreck.detectors.testing import run_check

        return run_check(type(detector), payload["check"])
    from trainwreck.detectors.runner import diagnose_learned, diagnose_replay, learned_features

    if "fit" in payload:        # a learned detector's fold model, from other cases' features and labels
        return type(detector).fit(**payload["fit"])
    if "features" in payload:   # {key: (features, "")} for a chunk of records
        return {k: (learned_features(detector, rec), "") for k, rec in payload["records"].items()}
    if "model" in payload:      # {key: (answer, "")}: a fold's held-out records, diagnosed by its model
        return diagnose_learned(type(detector)(payload["model"]), payload["records"], payload["replay"])
    return diagnose_replay(detector, payload["record"], payload.get("replay", True))


def init_detect_many(specs: tuple) -> dict:
    from trainwreck.detectors.loading import load_detector

    return {spec: load_detector(spec) for spec in specs}


def detect_many(detectors: dict, payload: dict) -> dict:
    """One run replayed by several detectors (the built-ins, which the bench batches): the record crosses
    the pipe and is validated once. {spec: (answer, "") or (None, error)}: a detector's exception is its
    own error, and a replay over its budget (payload["budgets"][spec]) is its own timeout."""
    from trainwreck.detectors.runner import diagnose_replay
    from trainwreck.record import RunRecord

    record = RunRecord.from_dict(payload["record"])
    out = {}
    for spec, detector in detectors.items():
        t0 = time.perf_counter()
        try:
            answer = diagnose_replay(detector, record)
        except Exception as e:  # noqa: BLE001 - this detector's error row; the others still answer
            out[spec] = (None, f"error: {f'{type(e).__name__}: {e}'.splitlines()[0]}")
            continue
        limit = payload["budgets"][spec]
        over = time.perf_counter() - t0 > limit
        out[spec] = (None, f"timeout: exceeded the time limit of {limit:g}s") if over else (answer, "")
    return out


def init_selftest():
    return {}


def selftest(state: dict, payload: dict):
    """Misbehaviours on demand, to prove the pool survives them (used by the reliability tests)."""
    mode = payload["mode"]
    if mode == "ok":
        time.sleep(payload.get("sleep", 0))
        return {"pid": os.getpid(), "echo": payload.get("echo")}
    if mode == "raise":
        raise ValueError("deliberate failure")
    if mode == "exit":
        os._exit(3)
    if mode == "segfault":
        import ctypes
        ctypes.string_at(0)
    if mode == "sigkill":
        os.kill(os.getpid(), 9)
    if mode == "grow":   # a worker whose memory grows with every job, as a TensorFlow worker's does
        state.setdefault("kept", []).append(bytearray(payload["mb"] * 2**20))
        return {"pid": os.getpid(), "echo": payload.get("echo")}
    if mode == "hang":
        time.sleep(3600)
    if mode == "memory":
        blocks = []
        while True:
            blocks.append(b"x" * (50 * 2**20))
            time.sleep(0.01)
    raise ValueError(f"unknown selftest mode {mode}")
