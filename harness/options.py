"""The command-line options the commands share, their checks, and what they mean once parsed."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from .case import CASES_DIR
from .errors import UsageError
from .run import BACKENDS, default_jobs

__all__ = ["add_common", "add_cases_dir", "results_dir", "seeds", "progress_enabled", "command_line",
           "physical_memory_mib", "MIN_MEMORY_MIB", "DEFAULT_MEMORY_MIB", "jobs", "seconds", "memory_mib", "trace_every"]

# A worker with its backend imported needs more than this; a lower limit would kill every run.
MIN_MEMORY_MIB = 256
DEFAULT_MEMORY_MIB = 6144


def physical_memory_mib() -> int | None:
    """This machine's physical memory in MiB; None where the OS does not tell."""
    try:
        mib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (AttributeError, ValueError, OSError):
        return None
    return mib if mib > 0 else None


def jobs(text: str) -> int:
    """--jobs: a number of worker processes; refused here, since 0 or less would start none."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of worker processes, at least 1; got {text!r}")
    return n


def trace_every(text: str) -> int:
    """--trace-every: batches between step records; 0 keeps the per-epoch trace only."""
    try:
        k = int(text)
    except ValueError:
        k = -1
    if k < 0:
        raise argparse.ArgumentTypeError(f"expected 0 (per epoch) or a positive number of batches; got {text!r}")
    return k


def seconds(text: str) -> float:
    """--timeout: a run's time limit; 0 or less would kill every run at once, NaN or inf none."""
    try:
        t = float(text)
    except ValueError:
        t = 0.0
    if not (0 < t < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds greater than 0; got {text!r}")
    return t


def memory_mib(text: str) -> int:
    """--memory-limit: MiB per worker, within what a worker needs and what this machine has."""
    most = physical_memory_mib()
    try:
        mib = int(text)
    except ValueError:
        mib = 0
    if mib < MIN_MEMORY_MIB or (most is not None and mib > most):
        upper = f"this machine's {most} MiB" if most is not None else "this machine's memory"
        raise argparse.ArgumentTypeError(f"expected a whole number of MiB per worker from {MIN_MEMORY_MIB} "
                                         f"to {upper}; got {text!r}")
    return mib


def add_cases_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cases", default=str(CASES_DIR), help="case directory (default: %(default)s)")


def add_common(p: argparse.ArgumentParser, *, running: bool = False, scoring: bool = False) -> None:
    add_cases_dir(p)
    p.add_argument("--results", default=None, help="results directory (default: ./results or $TRAINWRECK_RESULTS)")
    p.add_argument("--case", action="append", help="only this case id (repeatable)")
    p.add_argument("--family", action="append", help="only cases of this family (repeatable)")
    p.add_argument("--seeds", help="only these seeds, e.g. 0,1")
    p.add_argument("--backend", default="tensorflow", choices=list(BACKENDS),
                   help="Keras backend: tensorflow, jax (installed by make setup) or torch "
                        "(make setup-torch) (default: tensorflow)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"],
                   help="auto uses a GPU when one is present (default: auto)")
    p.add_argument("--jobs", "-j", type=jobs, default=default_jobs(), help="worker processes (default: cores)")
    p.add_argument("--trace-every", type=trace_every, default=None, metavar="K",
                   help="also record every K-th training step (per-step trace; 0: per epoch only; default: "
                        "10 when a selected detector needs 'steps', else 0); part of every run's cache key")
    p.add_argument("--quiet", "-q", action="store_true", help="no per-run lines")
    p.add_argument("--progress", action="store_true", help="per-run lines with ETA even when not on a terminal")
    if running:
        p.add_argument("--sweeps", action=argparse.BooleanOptionalAction, default=scoring,
                       help="also run the severity sweeps cases declare (default: on for bench)")
        p.add_argument("--timeout", type=seconds, default=300.0,
                       help="seconds per run before it is killed; a run it stops is not cached (default: 300)")
        p.add_argument("--memory-limit", type=memory_mib,
                       default=min(DEFAULT_MEMORY_MIB, physical_memory_mib() or DEFAULT_MEMORY_MIB),
                       help=f"MiB per worker before the run is killed (local executor), from {MIN_MEMORY_MIB} to "
                            f"this machine's memory; a run it stops is not cached (default: {DEFAULT_MEMORY_MIB}, "
                            "or this machine's memory if less)")
        p.add_argument("--executor", default="local", choices=["local", "ray"],
                       help="local worker processes, or Ray tasks (needs trainwreck[ray])")
        p.add_argument("--ray-address", default=None, help="an existing Ray cluster (default: start a local one)")
    if scoring:
        p.add_argument("--detector", "-d", action="append", help="only this detector (repeatable)")
        p.add_argument("--detector-spec", action="append", metavar="MODULE:CLASS",
                       help="also score this detector class (repeatable)")
        p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
        p.add_argument("--out", default=None, help="where to write tables and plots (default: the results directory "
                                                   "for the full corpus, results/filtered/<hash>/ for a selection)")
        p.add_argument("--strict", action="store_true", help="exit 1 when a detector errors")
        p.add_argument("--fresh", action="store_true",
                       help="replay every detector even where the answer cache holds its answer to an unchanged "
                            "record (and refill the cache)")


def results_dir(args) -> Path:
    from . import api

    return api.results_dir(getattr(args, "results", None))


def seeds(args) -> list[int] | None:
    if not getattr(args, "seeds", None):
        return None
    try:
        return [int(s) for s in args.seeds.split(",")]
    except ValueError:
        raise UsageError(f"--seeds: expected comma-separated integers, got {args.seeds!r}") from None


def progress_enabled(args) -> bool:
    if getattr(args, "quiet", False):
        return False
    return bool(getattr(args, "progress", False)) or sys.stderr.isatty()


def command_line(args) -> str:
    return "trainwreck " + " ".join(shlex.quote(a) for a in getattr(args, "argv", []))
