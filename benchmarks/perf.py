"""`make perf`: what the harness costs beyond the training it contains, each figure next to its goal.

Measured in one run on this machine (issue 18's goals in brackets):
  (a) tracing overhead: model.fit with the trace callback / bare model.fit of the same model, data
      and seed, per family (fixed variants of its first cases), at the default resolution
      [<= 1.05x overall, <= 1.10x per family] and with a step record every 10 batches [<= 1.5x].
      A worker traces the compiled probe once per architecture, so the default resolution is timed
      twice: a run that reuses the probe of an earlier run, and the first run of an architecture,
      which traces it; the overall figure weighs the two by the share of the corpus's runs that
      traced theirs in the last cold `make bench` (the run cache records which).
      Bare, default and per-step fits are interleaved, repeat by repeat, after a warm-up of each, and
      each figure is a median over the repeats;
  (b) cold run of the founding cases with --jobs 1 and --jobs 2, the speed-up [>= 1.8x], and the
      peak resident memory of a training worker;
  (c) warm rescoring of the whole corpus with every built-in detector, the whole command [<= 5 s]
      (on the project's run cache: after `make bench`, or after part d), with the answer cache and
      with every detector replayed (--fresh);
  (d) cold corpus time, --jobs 2 (long: only with --cold-corpus or --only d) [<= 15 min];
  (e) the founding cases cold on each installed Keras backend (--jobs 2), with the median run;
  (f) a training worker's life: 80 runs of ten cases in turn in one worker, past the
      run.TRAIN_JOBS_PER_WORKER that this figure sets: the seconds each round of the ten takes, and
      the worker's memory growth per run.
`python benchmarks/perf.py --only a` runs one part (a, b, c, d, e or f).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOUNDING = ["ragged-generator", "unscaled-features", "deep-lstm-vanishing", "lr-divergence", "validation-leakage"]
STEP_EVERY = 10
GOALS = {"default": 1.05, "family": 1.10, "steps": 1.5, "speedup": 1.8, "rescore": 5.0, "cold": 15 * 60}


def _cli(*args: str, env: dict | None = None) -> tuple[float, str]:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "trainwreck", *args], cwd=ROOT, capture_output=True, text=True,
                       env={**os.environ, **(env or {})})
    if r.returncode not in (0, 1):
        raise SystemExit(f"trainwreck {' '.join(args)} failed:\n{r.stderr}")
    return time.perf_counter() - t0, r.stdout


def _verdict(value: float, goal: float, higher: bool = False, unit: str = "x") -> str:
    ok = value >= goal if higher else value <= goal
    return f"(goal {'>=' if higher else '<='} {goal:g}{unit}: {'met' if ok else 'NOT met'})"


# -- (a) tracing overhead

def _fit_timer(task):
    """fit(mode) -> seconds of one seeded model.fit, built as a worker builds it (`train.prepare_fit`):
    mode 'bare' (no trace callback), 'default' (the per-epoch trace) or 'steps' (every STEP_EVERY batches)."""
    from trainwreck.trace import forget_compiled_probes
    from trainwreck.train import prepare_fit

    def fit(mode: str) -> float:
        every = {"bare": 0, "default": 0, "first": 0, "steps": STEP_EVERY}[mode]
        if mode == "first":
            forget_compiled_probes()
        p = prepare_fit(task, 0, trace_every=every, traced=mode != "bare")
        t0 = time.perf_counter()
        p.model.fit(p.x, p.y, **p.kwargs)
        return time.perf_counter() - t0

    return fit


def overhead(per_family: int, repeats: int) -> list[tuple[str, str, dict]]:
    """(family, case, {mode: median seconds}) for the fixed variant of each family's first cases."""
    import warnings

    from trainwreck.train import setup_worker

    warnings.filterwarnings("ignore", category=UserWarning)   # Keras's per-fit notes on PyDataset workers
    setup_worker("tensorflow", "cpu", 1)
    from trainwreck.case import load_corpus, resolve_variant

    chosen: dict[str, list] = {}
    for case in load_corpus(ROOT / "cases"):
        if case.cause != "healthy" and len(chosen.setdefault(case.family, [])) < per_family:
            chosen[case.family].append(case)
    out = []
    for family, cases in chosen.items():
        for case in cases:
            fit = _fit_timer(resolve_variant(case, "fixed"))
            modes = ("bare", "default", "first", "steps")
            for m in modes:   # warm-up: graph tracing and caches
                fit(m)
            times = {m: [] for m in modes}
            for _ in range(repeats):   # interleaved, so a slow moment of a shared machine hits every mode
                for m in modes:
                    times[m].append(fit(m))
            out.append((family, case.id, {m: statistics.median(v) for m, v in times.items()}))
    return out


def traced_share() -> float | None:
    """The share of the corpus's TensorFlow runs (in the project's run cache) that traced their compiled
    probe rather than reuse an earlier run's: None before a `make bench` that records it."""
    from trainwreck.case import load_corpus
    from trainwreck.run import plan
    from trainwreck.store import RunStore

    store = RunStore(ROOT / "results" / "runs")
    flags = []
    for spec in {s.key: s for s in plan(load_corpus(ROOT / "cases"), device="cpu")}.values():
        stored = store.get(spec.key)
        if stored is not None and "probe_traced" in stored.extras:
            flags.append(bool(stored.extras["probe_traced"]))
    return sum(flags) / len(flags) if flags else None


def part_a(per_family: int, repeats: int) -> None:
    print(f"\n(a) tracing overhead: fit with the trace callback / bare fit, median of {repeats} interleaved "
          f"repeats after a warm-up; default = a run that reuses an earlier run's compiled probe, first = "
          f"the first run of its architecture in a worker (traces it); per-step = a step record every "
          f"{STEP_EVERY} batches")
    rows = overhead(per_family, repeats)
    for family, cid, t in rows:
        print(f"    {family:<13} {cid:<34} bare {t['bare']:6.2f}s  default {t['default'] / t['bare']:5.2f}x"
              f"  first {t['first'] / t['bare']:5.2f}x  per-step {t['steps'] / t['bare']:5.2f}x")
    share = traced_share()
    # without a record of the share, the conservative figure: every run traces its probe
    weigh = (lambda d, f: f) if share is None else (lambda d, f: (1 - share) * d + share * f)
    fams = dict.fromkeys(r[0] for r in rows)
    for fam in fams:
        b, d, f, s = (sum(r[2][m] for r in rows if r[0] == fam) for m in ("bare", "default", "first", "steps"))
        w = weigh(d, f) / b
        print(f"    family {fam:<13} default {d / b:6.3f}x  first {f / b:6.3f}x  weighed {w:6.3f}x "
              f"{_verdict(w, GOALS['family'])}   per-step {s / b:6.3f}x {_verdict(s / b, GOALS['steps'])}")
    b, d, f, s = (sum(r[2][m] for r in rows) for m in ("bare", "default", "first", "steps"))
    w = weigh(d, f) / b
    where = ("no run in the cache records it: weighed = first" if share is None
             else f"{share:.0%} of the corpus's runs traced their probe")
    print(f"    overall       default {d / b:6.3f}x  first {f / b:6.3f}x  weighed {w:6.3f}x "
          f"{_verdict(w, GOALS['default'])}   per-step {s / b:6.3f}x {_verdict(s / b, GOALS['steps'])}")
    print(f"    ({where})")


# -- (b) parallel speed-up and worker memory

def part_b(repeats: int) -> None:
    cases = [a for c in FOUNDING for a in ("--case", c)]
    times: dict[int, list[float]] = {1: [], 2: []}
    peak = 0.0
    n = 0
    for _ in range(max(1, repeats)):
        for jobs in (1, 2):   # side by side, each from a cold cache
            with tempfile.TemporaryDirectory(prefix="trainwreck-perf-") as d:
                secs, _ = _cli("run", *cases, "--results", d, "--jobs", str(jobs), "-q")
                times[jobs].append(secs)
                docs = [json.loads(p.read_text()) for p in Path(d, "runs").glob("*.json")]
                n = len(docs)
                peak = max([peak, *(doc["extras"].get("worker_peak_rss_mb", 0.0) for doc in docs)])
    one, two = statistics.median(times[1]), statistics.median(times[2])
    print(f"\n(b) cold run of the {len(FOUNDING)} founding cases ({n} runs, worker start-up included), "
          f"median of {len(times[1])}")
    print(f"    --jobs 1 {one:6.1f}s   --jobs 2 {two:6.1f}s   speed-up {one / two:.2f}x "
          f"{_verdict(one / two, GOALS['speedup'], higher=True)}")
    print(f"    peak resident memory of a training worker: {peak:.0f} MiB")


# -- (c) warm rescoring of the whole corpus

def part_c(repeats: int) -> None:
    results = ROOT / "results"
    with tempfile.TemporaryDirectory(prefix="trainwreck-perf-") as out:
        args = ("score", "--results", str(results), "--out", out, "--no-plots", "-q")
        first = subprocess.run([sys.executable, "-m", "trainwreck", *args], cwd=ROOT, capture_output=True, text=True)
        if first.returncode not in (0, 1):
            print("\n(c) warm rescoring: skipped, the run cache does not hold the whole corpus "
                  "(run `make bench` or part d first):", (first.stderr.strip().splitlines() or [""])[-1])
            return
        fresh, cached = [], []
        for _ in range(max(1, repeats)):   # interleaved; --fresh replays every detector and refills the cache
            fresh.append(_cli(*args, "--fresh")[0])
            cached.append(_cli(*args)[0])
    secs = statistics.median(cached)
    print(f"\n(c) warm rescoring of the whole corpus, every built-in detector, whole command: {secs:.2f}s with the "
          f"answer cache {_verdict(secs, GOALS['rescore'], unit=' s')}; {statistics.median(fresh):.2f}s replaying "
          f"every detector (--fresh)")


# -- (d) cold corpus

def part_d() -> None:
    with tempfile.TemporaryDirectory(prefix="trainwreck-perf-") as d:
        secs, _ = _cli("run", "--results", d, "--jobs", "2", "-q")
        n = len(list(Path(d, "runs").glob("*.json")))
    print(f"\n(d) cold corpus, --jobs 2: {secs:.0f}s for {n} runs {_verdict(secs, GOALS['cold'], unit=' s')}")


# -- (e) backends

def backends() -> list[tuple[str, float, float, int]]:
    """(backend, whole-command seconds, median run seconds, runs) for the founding cases, cold."""
    import importlib.util

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


def part_e() -> None:
    print(f"\n(e) cold run of the {len(FOUNDING)} founding cases per Keras backend (--jobs 2, whole command)")
    for b, secs, median, n in backends():
        print(f"    {b:<10} {secs:6.1f}s for {n} runs   median run {median:5.2f}s")


# -- (f) a training worker's life

def part_f() -> None:
    from trainwreck.case import load_corpus
    from trainwreck.environment import WORKER_THREADS
    from trainwreck.executor import Job, WorkerPool
    from trainwreck.run import TRAIN_JOBS_PER_WORKER, TRAIN_RETIRE_RSS_MB, plan

    fixed = sorted((s for s in plan(load_corpus(ROOT / "cases"), device="cpu") if s.seed == 0 and s.variant == "fixed"),
                   key=lambda s: s.case.id)
    ten = fixed[::max(1, len(fixed) // 10)][:10]   # spread over the corpus, so over its architectures
    n, k = max(80, TRAIN_JOBS_PER_WORKER), len(ten)
    turns = [ten[i % k] for i in range(n)]
    jobs = [Job(f"{i}-{s.key}", {"task": s.task, "seed": s.seed, "key": s.key}, 600.0) for i, s in enumerate(turns)]
    with WorkerPool("train", ("tensorflow", "cpu", WORKER_THREADS, None), n=1) as pool:
        done = {r.job.key: r for r in pool.run(jobs)}
    res = [done[j.key] for j in jobs]
    failed = [r.brief() for r in res if r.status != "ok"]
    if failed:
        print(f"\n(f) a worker's life: {len(failed)} of {n} runs failed: {failed[0]}")
        return
    secs = [r.seconds for r in res]
    rss = [r.value["extras"]["worker_peak_rss_mb"] for r in res]
    rounds = [sum(secs[i:i + k]) for i in range(0, n - k + 1, k)]   # each round trains every case once
    print(f"\n(f) one training worker serving {n} runs of {k} cases in turn (a fresh one replaces it after "
          f"{TRAIN_JOBS_PER_WORKER}, run.TRAIN_JOBS_PER_WORKER, or past {TRAIN_RETIRE_RSS_MB} MiB)")
    print(f"    seconds per round of the {k} cases: {' '.join(f'{r:.1f}' for r in rounds)}; the last round / "
          f"the second {rounds[-1] / rounds[1]:.2f}x (the first traces each case's probe)")
    print(f"    peak memory {rss[0]:.0f} MiB after the first run, {rss[-1]:.0f} MiB after the last "
          f"({(rss[-1] - rss[0]) / (n - 1):.1f} MiB a run)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=list("abcdef"), help="run one part only")
    ap.add_argument("--cold-corpus", action="store_true", help="include part d, the cold corpus (long)")
    ap.add_argument("--repeats", type=int, default=3, help="repeats per figure (medians); default 3")
    ap.add_argument("--cases-per-family", type=int, default=2, help="part a: cases measured per family")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores, {sys.platform}, Python {sys.version.split()[0]}, "
          f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC")
    parts = [args.only] if args.only else ["a", "b", *(["d"] if args.cold_corpus else []), "c", "e", "f"]
    for p in parts:
        {"a": lambda: part_a(args.cases_per_family, args.repeats), "b": lambda: part_b(args.repeats),
         "c": lambda: part_c(args.repeats), "d": part_d, "e": part_e, "f": part_f}[p]()


if __name__ == "__main__":
    main()
