"""The processor a run trained on, and the settings that stand in for other processors.

Two machines with the same library versions can still train differently: the
SIMD instruction set chooses which kernels oneDNN and Eigen run (and so the
rounding, and what `max(NaN, 0)` returns), and the thread count chooses the
reduction order. `cpu_facts` names those properties, the cache key includes
them, and `PERTURBATIONS` are the environment settings `check-case --robust`
uses to take, on one machine, the code paths another machine would take.
Platform probes (`PROBES`) measure, inside a worker, a behaviour a case's
mechanism may depend on, so a record says which behaviour its run had.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

from .registry import Registry

__all__ = ["cpu_facts", "numeric_env", "Perturbation", "PERTURBATIONS", "Probe", "PROBES", "run_probes",
           "NUMERIC_FLAGS", "ENV_VARS"]

# The SIMD features whose presence changes which kernels run (x86: avx2/avx512f/fma; arm: asimd).
NUMERIC_FLAGS = ("avx2", "avx512f", "fma", "asimd", "neon", "sve")
# Environment variables that change TensorFlow's CPU numerics; a worker's values are part of the cache key.
ENV_VARS = ("TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA")


def _cpuinfo() -> dict[str, str]:
    """The first processor's block of /proc/cpuinfo (Linux); empty elsewhere."""
    try:
        text = open("/proc/cpuinfo", encoding="utf-8", errors="replace").read()
    except OSError:
        return {}
    out: dict[str, str] = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out.setdefault(k.strip().lower(), v.strip())
    return out


def _sysctl(name: str) -> str:
    """A macOS sysctl value, '' when unavailable."""
    import subprocess

    try:
        return subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


@lru_cache(maxsize=1)
def cpu_facts() -> dict:
    """Model name, vendor, architecture and the numerics-relevant SIMD flags of this machine's CPU."""
    info = _cpuinfo()
    arch = platform.machine().lower()
    model = info.get("model name") or info.get("cpu model") or ""
    vendor = info.get("vendor_id") or info.get("cpu implementer") or ""
    flags = set((info.get("flags") or info.get("features") or "").split())
    if not model and platform.system() == "Darwin":
        model = _sysctl("machdep.cpu.brand_string")
        vendor = "Apple" if arch in ("arm64", "aarch64") else _sysctl("machdep.cpu.vendor")
        flags |= set(_sysctl("machdep.cpu.features").lower().split()) | set(
            _sysctl("machdep.cpu.leaf7_features").lower().split())
        if arch in ("arm64", "aarch64"):
            flags.add("asimd")
    return {"cpu_model": model or platform.processor() or arch, "cpu_vendor": vendor, "arch": arch,
            "cpu_flags": sorted(f for f in NUMERIC_FLAGS if f in flags)}


def numeric_env(environ: dict | None = None) -> dict:
    """The numerics-relevant environment variables as a worker will see them ('' when unset)."""
    environ = os.environ if environ is None else environ
    return {k: environ.get(k, "") for k in ENV_VARS}


def onednn_state(environ: dict | None = None) -> str:
    """'off' when TF_ENABLE_ONEDNN_OPTS disables oneDNN, else 'on' (TensorFlow's default on x86-64 and arm64)."""
    value = numeric_env(environ)["TF_ENABLE_ONEDNN_OPTS"].strip().lower()
    return "off" if value in ("0", "false") else "on"


# ---------------------------------------------------------------- perturbations

@dataclass(frozen=True)
class Perturbation:
    """A setting that makes this machine run another machine's code path (or another backend's)."""
    doc: str
    env: dict = field(default_factory=dict)
    threads: int | None = None
    backend: str | None = None
    applies: Callable[[dict], str] = lambda facts: ""   # '' when it applies here, else why not


def _needs_avx512(facts: dict) -> str:
    return "" if "avx512f" in facts["cpu_flags"] else (
        "this CPU has no AVX-512, so oneDNN already takes its AVX2 code paths: the same runs as the declared seeds")


PERTURBATIONS: Registry[Perturbation] = Registry("perturbation")
PERTURBATIONS.register("onednn-off")(Perturbation(
    "oneDNN off (TF_ENABLE_ONEDNN_OPTS=0): TensorFlow's own Eigen kernels", env={"TF_ENABLE_ONEDNN_OPTS": "0"}))
PERTURBATIONS.register("isa-avx2")(Perturbation(
    "oneDNN limited to AVX2 (ONEDNN_MAX_CPU_ISA=AVX2): an AVX-512 machine takes an AVX2 machine's kernels",
    env={"ONEDNN_MAX_CPU_ISA": "AVX2"}, applies=_needs_avx512))
PERTURBATIONS.register("threads-2")(Perturbation(
    "2 intra-op threads instead of 1: another reduction order", threads=2))
PERTURBATIONS.register("jax")(Perturbation(
    "the JAX backend (XLA's CPU kernels), for cases that declare no JAX backend note", backend="jax"))


# ---------------------------------------------------------------- platform probes

@dataclass(frozen=True)
class Probe:
    """A behaviour of the platform, measured in the worker; `values` are its possible readings."""
    fn: Callable[[], str]
    doc: str
    values: tuple[str, ...]


PROBES: Registry[Probe] = Registry("platform probe")


def _relu_nan() -> str:
    """What a compiled Dense+ReLU layer outputs for a NaN pre-activation: 'nan' or 'zero'."""
    import numpy as np
    import keras

    layer = keras.layers.Dense(4, activation="relu")
    model = keras.Sequential([keras.Input((3,)), layer])
    out = np.asarray(model.predict(np.array([[np.nan, 1.0, -1.0]], np.float32), verbose=0))
    if np.isnan(out).all():
        return "nan"
    return "zero" if (out == 0).all() else "mixed"


PROBES.register("relu_nan")(Probe(
    _relu_nan, "relu of a NaN pre-activation in a compiled Dense layer: 'zero' (x86 AVX-512 TensorFlow kernels) "
               "or 'nan' (AVX2 TensorFlow kernels, XLA, torch)", ("zero", "nan", "mixed")))


def run_probes() -> dict[str, str]:
    """Every platform probe's reading in this process (call after the backend is set up)."""
    return {name: PROBES.get(name).fn() for name in PROBES.names()}
