"""The one place that says what a run's result depends on besides its task and seed.

Library versions, backend, device, the CPU and the settings that choose its kernels are read here,
and nowhere else, for all three uses: the cache key (`key_facts`, in the parent, without importing a
backend), the record's `environment` (`record_facts`, in the worker, with the backend loaded) and
every table's fingerprint (`trainwreck_version` plus what the records say)."""

from __future__ import annotations

import ast
import functools
import hashlib
import os
import platform
from importlib import metadata
from pathlib import Path

from .hardware import cpu_facts, numeric_env, onednn_state

__all__ = ["package_version", "library_versions", "key_facts", "record_facts", "trainwreck_version",
           "TRACE_VERSION", "WORKER_THREADS", "TASK_CODE", "KEY_EXEMPT", "task_code_digest"]

# Per backend: bump a backend's number when what its workers record changes, to invalidate its cache.
# tensorflow 4, jax 5, torch 4: gradient statistics over trainable variables only (a frozen layer has no
# gradient entry), each layer's configuration in the summary, the learning rate per epoch, compiled probes.
TRACE_VERSION = {"tensorflow": 4, "jax": 5, "torch": 4}
# One TensorFlow thread per worker: N workers never oversubscribe N cores, and the
# reduction order (hence every number in a record) does not depend on --jobs.
WORKER_THREADS = 1
# The modules that turn a resolved task into a record, in the worker. Their code is part of every run key
# (`task_code_digest`), so an edit that changes what a task means (a fit argument, a dataset, a probe)
# retrains its runs instead of serving a record the new code would not write.
TASK_CODE = ("train", "datasets", "data_steps", "models", "pipelines", "transforms", "trace", "profile", "summary",
             "record", "hardware")
# The other harness modules a training worker imports, and why an edit to them need not move the keys
# (tests/test_cache_and_resume.py checks that nothing else is imported).
KEY_EXEMPT = {"case": "the task it parses is keyed by its content",
              "environment": "the facts it gathers are keyed (key_facts) and recorded as they are",
              "registry": "names and parameter schemas: the parameters themselves are keyed with the task"}


def package_version(*dists: str) -> str:
    """The installed version of the first of these distributions present, or ''."""
    for d in dists:
        try:
            return metadata.version(d)
        except metadata.PackageNotFoundError:
            continue
    return ""


def trainwreck_version() -> str:
    return package_version("trainwreck") or "unknown"


def library_versions(backend: str) -> dict:
    """The versions of everything that computes a run; the backend's own package only on that backend."""
    return {"python": platform.python_version(),
            "tensorflow": package_version("tensorflow", "tensorflow-cpu"), "keras": package_version("keras"),
            "numpy": package_version("numpy"), "sklearn": package_version("scikit-learn"),
            **({"jax": package_version("jax"), "jaxlib": package_version("jaxlib")} if backend == "jax" else {}),
            **({"torch": package_version("torch")} if backend == "torch" else {})}


@functools.lru_cache(maxsize=1)
def task_code_digest() -> str:
    """A digest of the `TASK_CODE` modules' syntax trees without docstrings: an edit to the code moves every
    key, an edit to comments, docstrings or layout does not. Read from the files, nothing is imported."""
    h = hashlib.sha256()
    for name in TASK_CODE:
        tree = ast.parse((Path(__file__).parent / f"{name}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                    and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
                node.body = body[1:] or [ast.Pass()]
        h.update(name.encode() + b"\0" + ast.dump(tree).encode() + b"\0")
    return h.hexdigest()[:16]


def key_facts(backend: str, device: str, threads: int = WORKER_THREADS, env: dict | None = None) -> dict:
    """What besides the task and seed determines a run's result: versions, backend, device, and the CPU with
    the settings that choose its kernels, so runs from two processors never share a cache entry."""
    return {**library_versions(backend),
            "backend": backend, "device": device, "trace_version": TRACE_VERSION[backend], "task_code": task_code_digest(),
            "threads": threads, **cpu_facts(), **numeric_env({**os.environ, **(env or {})})}


def record_facts(backend: str, device: str, device_name: str, threads: int, probes: dict) -> dict:
    """The record's `environment`, measured in the worker (threads read back from the backend, probe readings)."""
    versions = library_versions(backend)
    return {**{k: versions.get(k, "") for k in ("python", "tensorflow", "keras", "numpy", "sklearn", "jax", "torch")},
            "backend": backend, "device": device, "device_name": device_name,
            "platform": platform.platform(), **cpu_facts(), "onednn": onednn_state(),
            "numeric_env": numeric_env(), "threads": threads, "probes": probes}
