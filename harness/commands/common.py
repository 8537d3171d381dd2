"""What several commands do with their parsed options: select, run, score, write, summarise."""

from __future__ import annotations

from pathlib import Path

from trainwreck import api
from trainwreck.errors import EXIT_FAILED, EXIT_OK
from trainwreck.options import command_line, progress_enabled, results_dir, seeds

__all__ = ["selected_cases", "run_selection", "cached_selection", "detectors_for", "score_results",
           "write_report", "oracle_summary", "exit_for", "oracle_figures", "setting_runner"]


def selected_cases(args):
    return api.load_cases(args.cases, case=getattr(args, "case", None), family=getattr(args, "family", None))


def run_selection(args, cases, log=print, *, sweeps: bool | None = None):
    return api.run(cases, seeds=seeds(args), backend=args.backend, device=args.device,
                   sweeps=getattr(args, "sweeps", False) if sweeps is None else sweeps,
                   results=results_dir(args), jobs=args.jobs, timeout=args.timeout,
                   memory_limit_mb=args.memory_limit, executor=args.executor, ray_address=args.ray_address,
                   progress=progress_enabled(args), log=log)


def cached_selection(args, cases, *, backend: str | None = None, sweeps: bool = True):
    return api.cached(cases, seeds=seeds(args), backend=backend or args.backend, device=args.device,
                      results=results_dir(args), sweeps=sweeps, log=print)


def detectors_for(args):
    """The detectors the options name, resolved (and every problem reported) before anything trains."""
    return api.resolve_detectors(args.detector or None, args.detector_spec or [])


def score_results(args, results, detectors, log=print) -> api.Scores:
    scores = api.score(results, detectors, jobs=args.jobs, log=log if not args.quiet else (lambda *_: None))
    log(f"scored {len(detectors)} detector(s) x {len(results)} runs in {scores.seconds:.2f}s")
    return scores


def write_report(args, results, scores: api.Scores, log=print) -> None:
    out = Path(args.out) if args.out else results_dir(args)
    rep = api.report(results, scores, out=out, command=command_line(args), plots=not args.no_plots)
    log(f"wrote {len(rep.paths)} table files and {len(rep.plots)} plots under {out}")
    md = out / "leaderboard.md"
    if md.exists() and not args.quiet:
        print(md.read_text())


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
