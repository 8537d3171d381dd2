"""`make perf`: what the harness costs beyond the training it contains.

Prints, measured in one run on this machine:
  (a) tracing overhead: model.fit with the trace callback / bare model.fit of the same model,
      data and seed, one case per family (fixed variant), each timed after a warm-up fit;
  (b) cold corpus time with --jobs 1 and --jobs 2 over the founding cases, and the speed-up;
  (c) warm rescoring time for every detector over those runs;
  (d) peak resident memory of a training worker;
  (e) the founding cases cold on each installed Keras backend (--jobs 2), and the median
      training time of one run there.
`python benchmarks/perf.py --only e` runs one part (a, bcd or e).
Targets (goals, not assertions): overhead <= 1.10x, speed-up >= 1.7x, rescoring <= 5 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOUNDING = ["ragged-generator", "unscaled-features", "deep-lstm-vanishing", "lr-divergence", "validation-leakage"]


def _cli(*args: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "trainwreck", *args], cwd=ROOT, capture_output=True, text=True)
    if r.returncode not in (0, 1):
        raise SystemExit(f"trainwreck {' '.join(args)} failed:\n{r.stderr}")
    return time.perf_counter() - t0, r.stdout


def overhead() -> list[tuple[str, str, float, float]]:
    from trainwreck.train import setup_worker

    setup_worker("tensorflow", "cpu", 1)
    import keras

    from trainwreck.case import load_corpus, resolve_variant
    from trainwreck.datasets import load_dataset
    from trainwreck.models import build_model
    from trainwreck.pipelines import make_fit_input
    from trainwreck.trace import PROBE_SIZE, TraceCallback
    from trainwreck.train import _optimizer
    from trainwreck.transforms import apply_transforms

    by_family = {}
    for case in load_corpus(ROOT / "cases"):
        if case.cause != "healthy" and case.family not in by_family:
            by_family[case.family] = case
    out = []
    for family, case in by_family.items():
        task = resolve_variant(case, "fixed")

        def fit(traced: bool) -> float:
            keras.backend.clear_session()
            keras.utils.set_random_seed(0)
            data = apply_transforms(load_dataset(task.dataset.name, task.dataset.params, 0),
                                    [(t.name, t.params) for t in task.transforms], 0)
            model = build_model(task.model.name, task.model.params, data.x_train.shape[1:], data.task, data.n_classes)
            model.compile(optimizer=_optimizer(task.compile), loss=task.compile.loss, metrics=list(task.compile.metrics))
            fin = make_fit_input(task.pipeline.name, task.pipeline.params, data.x_train, data.y_train,
                                 task.fit.batch_size, 0)
            cbs = [TraceCallback(data.x_train[:PROBE_SIZE], data.y_train[:PROBE_SIZE], fin.shapes_seen, None)] \
                if traced else []
            t0 = time.perf_counter()
            model.fit(fin.x, fin.y, epochs=task.fit.epochs, verbose=0, callbacks=cbs,
                      validation_data=(data.x_val, data.y_val), **fin.fit_kwargs)
            return time.perf_counter() - t0

        fit(False)  # warm-up: graph tracing and caches
        bare = min(fit(False) for _ in range(2))
        traced = min(fit(True) for _ in range(2))
        out.append((family, case.id, bare, traced))
    return out


def backends() -> list[tuple[str, float, float, int]]:
    """(backend, whole-command seconds, median run seconds, oracles held) for the founding cases, cold."""
    import importlib.util
    import statistics

    from trainwreck.run import BACKENDS

    cases = [a for c in FOUNDING for a in ("--case", c)]
    out = []
    for b, (dist, _) in BACKENDS.items():
        if importlib.util.find_spec(dist) is None:
            continue
        with tempfile.TemporaryDirectory(prefix="trainwreck-perf-") as d:
            secs, _ = _cli("run", *cases, "--results", d, "--backend", b, "--jobs", "2", "-q")
            docs = [json.loads(p.read_text()) for p in Path(d, "runs").glob("*.json")]
        runs = [doc["record"]["outcome"]["wall_seconds"] for doc in docs]
        out.append((b, secs, statistics.median(runs), len(docs)))
    return out


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=["a", "bcd", "e"], help="run one part only")
    only = ap.parse_args().only
    print(f"machine: {os.cpu_count()} cores, {sys.platform}, Python {sys.version.split()[0]}")
    if only in (None, "a"):
        part_a()
    if only in (None, "bcd"):
        part_bcd()
    if only in (None, "e"):
        print(f"\n(e) cold run of the {len(FOUNDING)} founding cases per Keras backend (--jobs 2, whole command)")
        for b, secs, median, n in backends():
            print(f"    {b:<10} {secs:6.1f}s for {n} runs   median run {median:5.2f}s")


def part_a() -> None:
    print("\n(a) tracing overhead (fit with trace callback / bare fit, best of 2 after a warm-up)")
    rows = overhead()
    for family, cid, bare, traced in rows:
        print(f"    {family:<14} {cid:<36} bare {bare:6.2f}s  traced {traced:6.2f}s  ratio {traced / bare:5.2f}x")
    total_b, total_t = sum(r[2] for r in rows), sum(r[3] for r in rows)
    print(f"    overall ratio {total_t / total_b:.2f}x (target <= 1.10x)")


def part_bcd() -> None:
    cases = [a for c in FOUNDING for a in ("--case", c)]
    times, peak = {}, 0.0
    for jobs in (1, 2):
        with tempfile.TemporaryDirectory(prefix="trainwreck-perf-") as d:
            times[jobs], _ = _cli("run", *cases, "--results", d, "--jobs", str(jobs), "-q")
            for p in Path(d, "runs").glob("*.json"):
                peak = max(peak, json.loads(p.read_text())["extras"].get("worker_peak_rss_mb", 0.0))
            if jobs == 2:
                _cli("score", *cases, "--results", d, "--out", d, "--no-plots", "-q")   # warm-up
                rescoring = min(_cli("score", *cases, "--results", d, "--out", d, "--no-plots", "-q")[0]
                                for _ in range(3))
    print(f"\n(b) cold run of the {len(FOUNDING)} founding cases (30 runs, worker start-up included)")
    print(f"    --jobs 1 {times[1]:6.1f}s   --jobs 2 {times[2]:6.1f}s   speed-up {times[1] / times[2]:.2f}x (target >= 1.7x)")
    print(f"\n(c) warm rescoring, all detectors, same runs, whole command: {rescoring:.2f}s (target <= 5s)")
    print(f"\n(d) peak resident memory of a training worker: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
