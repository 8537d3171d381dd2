"""What several commands do with their parsed options: select, run, score, write, summarise."""

from __future__ import annotations

from pathlib import Path

from trainwreck import api
from trainwreck.errors import EXIT_FAILED, EXIT_OK
from trainwreck.options import command_line, progress_enabled, results_dir, seeds

__all__ = ["selected_cases", "trace_every", "run_selection", "cached_selection", "detectors_for", "score_results",
           "write_report", "write_saved_report", "uncached_runs", "selection", "report_dir", "oracle_summary",
           "exit_for", "oracle_figures", "setting_runner"]


def selected_cases(args):
    return api.load_cases(args.cases, case=getattr(args, "case", None), family=getattr(args, "family", None))


def trace_every(args, detectors=()) -> int:
    """--trace-every, else the resolution the selected detectors need (per epoch when none is selected)."""
    return api.trace_resolution(detectors, getattr(args, "trace_every", None))


def run_selection(args, cases, log=print, *, sweeps: bool | None = None, detectors=()):
    return api.run(cases, seeds=seeds(args), backend=args.backend, device=args.device,
                   trace_every=trace_every(args, detectors),
                   sweeps=getattr(args, "sweeps", False) if sweeps is None else sweeps,
                   results=results_dir(args), jobs=args.jobs, timeout=args.timeout,
                   memory_limit_mb=args.memory_limit, executor=args.executor, ray_address=args.ray_address,
                   progress=progress_enabled(args), log=log)


def cached_selection(args, cases, *, backend: str | None = None, sweeps: bool = True, detectors=()):
    return api.cached(cases, seeds=seeds(args), backend=backend or args.backend, device=args.device,
                      trace_every=trace_every(args, detectors),
                      results=results_dir(args), sweeps=sweeps, log=print)


def detectors_for(args):
    """The detectors the options name, resolved (and every problem reported) before anything trains."""
    return api.resolve_detectors(args.detector or None, args.detector_spec or [])


def score_results(args, results, detectors, log=print) -> api.Scores:
    scores = api.score(results, detectors, jobs=args.jobs, log=log if not args.quiet else (lambda *_: None),
                       answers=results_dir(args), fresh=getattr(args, "fresh", False))
    log(f"scored {len(detectors)} detector(s) x {len(results)} runs in {scores.seconds:.2f}s")
    return scores


def selection(args) -> dict | None:
    """The filters of the command line as data (None: the full corpus, every detector)."""
    dets = list(getattr(args, "detector", None) or []) + list(getattr(args, "detector_spec", None) or [])
    return api.selection_of(case=getattr(args, "case", None), family=getattr(args, "family", None),
                            seeds=seeds(args), detectors=dets)


def report_dir(args) -> Path:
    """--out, else the results directory for the full corpus, else results/filtered/<hash of the filters>/."""
    return api.output_dir(results_dir(args), selection(args), getattr(args, "out", None))


def write_report(args, results, scores: api.Scores, log=print) -> None:
    out = report_dir(args)
    rep = api.report(results, scores, out=out, command=command_line(args), plots=not args.no_plots,
                     selection=selection(args), cases=args.cases)
    _wrote(args, rep, out, log)


def _wrote(args, rep, out: Path, log=print) -> None:
    log(f"wrote {len(rep.paths)} table files, {len(rep.plots)} plots and {len(rep.site)} HTML pages under {out}"
        + ("" if out == results_dir(args) or getattr(args, "out", None) else
           " (a filtered selection: the full-corpus tables are left as they are)"))
    md = out / "leaderboard.md"
    if md.exists() and not args.quiet:
        print(md.read_text())


def write_saved_report(args, fingerprint: dict, rows, log=print) -> Path:
    """The tables of saved score rows (scores.json), written where their selection says (the saved one and
    the command line's filters), so a filtered scores.json never lands on the full-corpus tables; nothing runs."""
    out = api.output_dir(results_dir(args), fingerprint.get("selection"), getattr(args, "out", None))
    rep = api.report_rows(rows, fingerprint, out=out, cases=args.cases)
    _wrote(args, rep, out, log)
    return out


def uncached_runs(args, cases, *, backend: str | None = None, detectors=()) -> list[str]:
    """One line per run of the selection that the cache lacks or holds damaged, read without training
    or deleting anything (sweep points are optional and not listed)."""
    from trainwreck.store import CorruptRecord, RunStore

    specs = api.plan_runs(cases, seeds=seeds(args), backend=backend or args.backend, device=args.device,
                          trace_every=trace_every(args, detectors))
    store = RunStore(results_dir(args) / "runs")
    problems = []
    for spec in specs:
        if spec.severity is not None:
            continue
        try:
            if store.get(spec.key) is None:
                problems.append(f"missing  {spec.label}: no record {store.path(spec.key)}")
        except CorruptRecord as e:
            problems.append(f"corrupt  {spec.label}: {e}")
    return problems


def oracle_summary(results, log=print) -> int:
    claims, bad = api.oracle_failures(results)
    for r in bad:
        log(f"ORACLE FAILS {r.spec.label}: outcome {r.record.outcome.status}; {r.verdict.summary()}"
            + (f" ({r.message.splitlines()[0]})" if r.message else ""))
    log(f"oracles: {claims - len(bad)}/{claims} hold")
    return EXIT_FAILED if bad else EXIT_OK


def exit_for(args, results, scores: api.Scores) -> int:
    code = oracle_summary(results)
    errors = scores.errors
    if errors:
        print(f"{len(errors)} detector error row(s), e.g. {errors[0].detector} on {errors[0].case_id}: {errors[0].error}")
        if args.strict:
            code = EXIT_FAILED
    return code


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


def setting_runner(args, log=print):
    """A function that trains (or reads from the cache) one robustness setting's runs of the given cases."""
    def run(setting, cases):
        specs = api.plan_runs(cases, backend=setting.backend, device=args.device, threads=setting.threads,
                              env=setting.env, any_seeds=list(setting.seeds))
        return api.run(cases, specs=specs, results=results_dir(args), jobs=args.jobs, timeout=args.timeout,
                       memory_limit_mb=args.memory_limit, executor=args.executor, ray_address=args.ray_address,
                       progress=progress_enabled(args), log=log)
    return run
