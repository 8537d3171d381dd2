"""The `trainwreck` command line.

Exit codes: 0 success; 1 the work ran but something failed (an oracle did
not hold, a run crashed unexpectedly, a detector errored when --strict);
2 bad input (a malformed case file, an unknown name, a bad option, a backend or
GPU that this machine lacks);
130 interrupted by Ctrl-C (everything finished so far is kept).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

from . import taxonomy
from .case import CASES_DIR, CaseErrors, load_case, load_corpus
from .executor import WorkerStartError
from .registry import UnknownName
from .run import BACKENDS, BackendUnavailable

from trainwreck.detectors.loading import DetectorLoadError

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
ROOT = Path(__file__).resolve().parent.parent


class UsageError(Exception):
    pass


def _results_dir(args) -> Path:
    return Path(args.results or os.environ.get("TRAINWRECK_RESULTS") or ROOT / "results")


def _load(args):
    cases = load_corpus(Path(args.cases))
    if getattr(args, "case", None):
        known = {c.id for c in cases}
        for cid in args.case:
            if cid not in known:
                raise UnknownName("case", cid, sorted(known))
        cases = [c for c in cases if c.id in args.case]
    if getattr(args, "family", None):
        cases = [c for c in cases if c.family in args.family]
    if not cases:
        raise UsageError("no case matches the filters")
    return cases


def _seeds(args) -> list[int] | None:
    if not getattr(args, "seeds", None):
        return None
    try:
        return [int(s) for s in args.seeds.split(",")]
    except ValueError:
        raise UsageError(f"--seeds: expected comma-separated integers, got {args.seeds!r}") from None


def _progress_enabled(args) -> bool:
    if getattr(args, "quiet", False):
        return False
    return bool(getattr(args, "progress", False)) or sys.stderr.isatty()


def _run(args, cases, log):
    from .run import Progress, execute, plan, resolve_device
    from .store import RunStore

    device = resolve_device(args.device)
    specs = plan(cases, seeds=_seeds(args), backend=args.backend, device=device,
                 sweeps=getattr(args, "sweeps", False))
    store = RunStore(_results_dir(args) / "runs")
    leftovers = store.clean_temp()
    if leftovers:
        log(f"removed {leftovers} partial file(s) left by an interrupted run")
    t0 = time.monotonic()
    progress = Progress(len(specs), _progress_enabled(args))
    results = execute(specs, store, jobs=args.jobs, timeout=args.timeout, memory_limit_mb=args.memory_limit,
                      backend=args.backend, device=device, progress=progress, log=log,
                      executor=args.executor, ray_address=args.ray_address)
    distinct = {r.spec.key: r.source for r in results}
    trained = sum(1 for src in distinct.values() if src != "cached")
    log(f"{len(distinct)} runs: {len(distinct) - trained} reused from the cache, {trained} trained "
        f"({time.monotonic() - t0:.1f}s)")
    return results


def oracle_figures(results) -> list[list]:
    """Per case and variant, each oracle measure's value on every seed."""
    from collections import defaultdict

    groups = defaultdict(list)
    for r in results:
        if r.spec.severity is None:
            groups[(r.spec.case.id, r.spec.variant)].append(r)
    rows = []
    for (cid, variant), rs in groups.items():
        for i, cond in enumerate(rs[0].verdict.conditions):
            vals = [r.verdict.conditions[i].value for r in rs]
            shown = " ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in vals)
            rows.append([cid, variant, f"{cond.measure}({cond.key})" if cond.key else cond.measure,
                         cond.bound, shown, f"{sum(r.verdict.conditions[i].holds for r in rs)}/{len(rs)}"])
    return rows


def _oracle_summary(results, log) -> int:
    claims = [r for r in results if r.spec.severity is None]   # sweep points make no claim
    bad = [r for r in claims if not r.verdict.holds]
    for r in bad:
        log(f"ORACLE FAILS {r.spec.label}: outcome {r.record.outcome.status}; {r.verdict.summary()}"
            + (f" ({r.message.splitlines()[0]})" if r.message else ""))
    log(f"oracles: {len(claims) - len(bad)}/{len(claims)} hold")
    return EXIT_FAILED if bad else EXIT_OK


# ------------------------------------------------------------------ commands

def cmd_validate(args) -> int:
    if args.files:
        errors = []
        for f in args.files:
            try:
                load_case(f)
            except CaseErrors as e:
                errors += e.errors
        if errors:
            raise CaseErrors(errors)
        print(f"{len(args.files)} case file(s) valid")
        return EXIT_OK
    cases = load_corpus(Path(args.cases))
    print(f"{len(cases)} cases valid")
    return EXIT_OK


def cmd_run(args) -> int:
    from tabulate import tabulate

    results = _run(args, _load(args), print)
    if not args.quiet:
        print(tabulate(oracle_figures(results), headers=["case", "variant", "measure", "bound",
                                                          "value per seed", "holds"], tablefmt="simple"))
    return _oracle_summary(results, print)


def _score(args, results, log):
    from trainwreck.detectors.loading import select

    from .score import score_runs

    detectors = select(args.detector or None, args.detector_spec or [])
    t0 = time.monotonic()
    rows = score_runs(results, detectors, jobs=args.jobs, log=log if not args.quiet else (lambda *_: None))
    log(f"scored {len(detectors)} detector(s) x {len(results)} runs in {time.monotonic() - t0:.2f}s")
    return detectors, rows


def _cached_results(args, cases, backend: str | None = None, sweeps: bool = True):
    """Results from the cache only; missing runs are an error (score never trains)."""
    from .run import execute, plan, resolve_device
    from .store import RunStore

    backend = backend or args.backend
    specs = plan(cases, seeds=_seeds(args), backend=backend, device=resolve_device(args.device), sweeps=sweeps)
    store = RunStore(_results_dir(args) / "runs")
    specs = [s for s in specs if s.severity is None or store.path(s.key).exists()]  # sweeps are optional
    missing = [s for s in specs if not store.path(s.key).exists()]
    if missing:
        raise UsageError(f"{len(missing)} of {len(specs)} runs on {backend} are not cached "
                         f"(e.g. {missing[0].label}); run `trainwreck run --backend {backend}` first")
    return execute(specs, store, jobs=1, log=print)


def _command_line(args) -> str:
    return "trainwreck " + " ".join(shlex.quote(a) for a in args.argv)


def _write_report(args, results, detectors, rows, log) -> None:
    from .plots import write_plots
    from .report import build_tables, fingerprint_for, write_tables

    fp = fingerprint_for(results, detectors, _command_line(args))
    out = Path(args.out) if args.out else _results_dir(args)
    written = write_tables(build_tables(rows, results), fp, out, rows)
    plots = write_plots(results, out / "plots") if not args.no_plots else []
    log(f"wrote {len(written)} table files and {len(plots)} plots under {out}")
    md = out / "leaderboard.md"
    if md.exists() and not args.quiet:
        print(md.read_text())


def cmd_score(args) -> int:
    t0 = time.monotonic()
    results = _cached_results(args, _load(args))
    detectors, rows = _score(args, results, print)
    _write_report(args, results, detectors, rows, print)
    print(f"rescored from cache in {time.monotonic() - t0:.2f}s")
    return _exit_for(args, results, rows)


def cmd_bench(args) -> int:
    cases = _load(args)
    print(f"{len(cases)} cases valid")
    t0 = time.monotonic()
    results = _run(args, cases, print)
    detectors, rows = _score(args, results, print)
    _write_report(args, results, detectors, rows, print)
    print(f"bench finished in {time.monotonic() - t0:.1f}s")
    return _exit_for(args, results, rows)


def _exit_for(args, results, rows) -> int:
    code = _oracle_summary(results, print)
    errors = [r for r in rows if r.error]
    if errors:
        print(f"{len(errors)} detector error row(s), e.g. {errors[0].detector} on {errors[0].case_id}: {errors[0].error}")
        if args.strict:
            code = EXIT_FAILED
    return code


def cmd_detectors(args) -> int:
    from tabulate import tabulate

    from trainwreck.detectors.loading import available

    avail = available(args.detector_spec or [])
    print(tabulate([(d.name, d.version, d.origin, d.spec) for d in avail.values()],
                   headers=["name", "version", "origin", "class"], tablefmt="simple"))
    return EXIT_OK


def cmd_ls(args) -> int:
    from tabulate import tabulate

    from .datasets import DATASETS
    from .models import MODELS
    from .oracle import MEASURES
    from .pipelines import PIPELINES
    from .transforms import TRANSFORMS

    if args.what == "cases":
        cases = load_corpus(Path(args.cases))
        print(tabulate([(c.family, c.id, c.cause, ",".join(c.symptoms), len(c.seeds)) for c in cases],
                       headers=["family", "id", "cause", "symptoms", "seeds"], tablefmt="simple"))
        return EXIT_OK
    if args.what == "causes":
        print(taxonomy.markdown_table())
        return EXIT_OK
    reg = {"datasets": DATASETS, "models": MODELS, "transforms": TRANSFORMS, "pipelines": PIPELINES,
           "measures": MEASURES}[args.what]
    print(tabulate([(n, reg.get(n).doc) for n in reg.names()], headers=["name", "what it is"], tablefmt="simple"))
    return EXIT_OK


def cmd_env(args) -> int:
    """The facts that decide what a run produces here: versions, backend, device, CPU, kernels, probes."""
    import json

    from tabulate import tabulate

    from .hardware import numeric_env, onednn_state
    from .run import WORKER_THREADS, fingerprint, resolve_device

    facts = fingerprint(args.backend, resolve_device(args.device))
    facts.update({k: v or "(unset)" for k, v in numeric_env().items()}, onednn=onednn_state())
    if not args.no_probe:
        from .hardware import run_probes
        from .train import setup_worker

        setup_worker(args.backend, facts["device"], WORKER_THREADS)
        facts.update({f"probe {k}": v for k, v in run_probes().items()})
    if args.json:
        print(json.dumps(facts, indent=2))
    else:
        print(tabulate([(k, " ".join(v) if isinstance(v, list) else v) for k, v in facts.items()],
                       tablefmt="plain"))
    return EXIT_OK


def cmd_schema(args) -> int:
    import json

    from .case import case_schema

    text = json.dumps(case_schema(), indent=2) + "\n"
    target = Path(args.cases) / "schema.json"
    if args.check:
        if not target.exists() or target.read_text() != text:
            print(f"{target} is out of date; run `trainwreck schema`", file=sys.stderr)
            return EXIT_FAILED
        print(f"{target} is up to date")
        return EXIT_OK
    target.write_text(text)
    (ROOT / "docs").mkdir(exist_ok=True)
    (ROOT / "docs" / "taxonomy.md").write_text(taxonomy.markdown_table())
    print(f"wrote {target} and docs/taxonomy.md")
    return EXIT_OK


# ------------------------------------------------------------------ parser

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


def _jobs(text: str) -> int:
    """--jobs: a number of worker processes; refused here, since 0 or less would start none."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of worker processes, at least 1; got {text!r}")
    return n


def _seconds(text: str) -> float:
    """--timeout: a run's time limit; 0 or less would kill every run at once, NaN or inf none."""
    try:
        t = float(text)
    except ValueError:
        t = 0.0
    if not (0 < t < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds greater than 0; got {text!r}")
    return t


def _memory_mib(text: str) -> int:
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


def _common(p: argparse.ArgumentParser, *, running: bool = False, scoring: bool = False) -> None:
    p.add_argument("--cases", default=str(CASES_DIR), help="case directory (default: %(default)s)")
    p.add_argument("--results", default=None, help="results directory (default: ./results or $TRAINWRECK_RESULTS)")
    p.add_argument("--case", action="append", help="only this case id (repeatable)")
    p.add_argument("--family", action="append", help="only cases of this family (repeatable)")
    p.add_argument("--seeds", help="only these seeds, e.g. 0,1")
    p.add_argument("--backend", default="tensorflow", choices=list(BACKENDS),
                   help="Keras backend: tensorflow, jax (installed by make setup) or torch "
                        "(make setup-torch) (default: tensorflow)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"],
                   help="auto uses a GPU when one is present (default: auto)")
    from .run import default_jobs
    p.add_argument("--jobs", "-j", type=_jobs, default=default_jobs(), help="worker processes (default: cores)")
    p.add_argument("--quiet", "-q", action="store_true", help="no per-run lines")
    p.add_argument("--progress", action="store_true", help="per-run lines with ETA even when not on a terminal")
    if running:
        p.add_argument("--sweeps", action=argparse.BooleanOptionalAction, default=scoring,
                       help="also run the severity sweeps cases declare (default: on for bench)")
        p.add_argument("--timeout", type=_seconds, default=300.0,
                       help="seconds per run before it is killed; a run it stops is not cached (default: 300)")
        p.add_argument("--memory-limit", type=_memory_mib,
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
        p.add_argument("--out", default=None, help="where to write tables and plots (default: the results directory)")
        p.add_argument("--strict", action="store_true", help="exit 1 when a detector errors")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trainwreck", description=(
        "A benchmark of broken Keras training runs, each paired with its fix, for scoring "
        "training-failure detectors."), epilog="exit codes: 0 ok, 1 failures, 2 bad input, 130 interrupted")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check case files against the schema and registries")
    p.add_argument("files", nargs="*", help="case files (default: the whole corpus)")
    p.add_argument("--cases", default=str(CASES_DIR), help="case directory (default: %(default)s)")
    p.set_defaults(fn=cmd_validate)

    p = sub.add_parser("run", help="train every run the cache lacks and check the oracles")
    _common(p, running=True)
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser("score", help="score detectors on cached runs (never trains) and write the tables")
    _common(p, scoring=True)
    p.set_defaults(fn=cmd_score)

    p = sub.add_parser("report", help="the same as score: rescore from the cache and write every table")
    _common(p, scoring=True)
    p.set_defaults(fn=cmd_score)

    p = sub.add_parser("bench", help="validate, run, score and write the tables")
    _common(p, running=True, scoring=True)
    p.set_defaults(fn=cmd_bench)

    p = sub.add_parser("detectors", help="list installed detectors (built-in and plugins)")
    p.add_argument("--detector-spec", action="append", metavar="MODULE:CLASS", help="also list this class")
    p.set_defaults(fn=cmd_detectors)

    p = sub.add_parser("ls", help="list cases or registered names")
    p.add_argument("what", choices=["cases", "datasets", "models", "transforms", "pipelines", "measures", "causes"])
    p.add_argument("--cases", default=str(CASES_DIR), help="case directory (default: %(default)s)")
    p.set_defaults(fn=cmd_ls)

    p = sub.add_parser("env", help="print the library versions and platform facts (CPU, SIMD flags, oneDNN, "
                                   "platform probes) that every run records and every cache key includes")
    p.add_argument("--backend", default="tensorflow", choices=list(BACKENDS), help="(default: %(default)s)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"], help="(default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--no-probe", action="store_true", help="skip the platform probes (they import the backend)")
    p.set_defaults(fn=cmd_env)

    p = sub.add_parser("schema", help="write cases/schema.json and docs/taxonomy.md from the definitions")
    p.add_argument("--check", action="store_true", help="only check that the committed schema is current")
    p.add_argument("--cases", default=str(CASES_DIR), help="case directory (default: %(default)s)")
    p.set_defaults(fn=cmd_schema)

    from .contribute import add_commands
    add_commands(sub, _common)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        return args.fn(args)
    except CaseErrors as e:
        for err in e.errors:
            print(err, file=sys.stderr)
        return EXIT_USAGE
    except (UnknownName, UsageError, DetectorLoadError, BackendUnavailable, WorkerStartError) as e:
        print(f"trainwreck: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\ninterrupted: finished runs are kept in the cache; run the same command to resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
