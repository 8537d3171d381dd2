"""The functions pooled workers run (see executor.HANDLERS): set up once, then serve jobs."""

from __future__ import annotations

import os
import time

__all__ = ["init_train", "train", "init_detect", "detect", "init_selftest", "selftest"]


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
    import resource

    from .train import run_task

    out = run_task(payload["task"], payload["seed"], payload["key"], state["backend"], state["device"],
                   trace_every=int(payload.get("trace_every", 0)))
    # peak resident memory of this worker so far (KiB on Linux); kept out of the record
    out["extras"]["worker_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def init_detect(spec: str):
    from trainwreck.detectors.loading import load_detector

    return load_detector(spec)


def detect(detector, payload: dict) -> dict:
    """Replay one run record; or, for the conformance kit, run one of its checks (payload {"check": name})
    in this worker, so that a detector which hangs or kills its process cannot take the caller with it."""
    if "check" in payload:
        from trainwreck.detectors.testing import run_check

        return run_check(type(detector), payload["check"])
    from trainwreck.detectors.runner import diagnose_replay

    return diagnose_replay(detector, payload["record"], payload.get("replay", True))


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
    if mode == "hang":
        time.sleep(3600)
    if mode == "memory":
        blocks = []
        while True:
            blocks.append(b"x" * (50 * 2**20))
            time.sleep(0.01)
    raise ValueError(f"unknown selftest mode {mode}")
