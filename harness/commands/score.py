"""`trainwreck score` (rescore cached runs; never trains) and `trainwreck report` (tables from scores.json;
runs nothing)."""

from __future__ import annotations

import shlex
import sys
import time

from trainwreck import api
from trainwreck.errors import EXIT_FAILED, UsageError
from trainwreck.options import add_cases_dir, add_common, results_dir, seeds

from .common import (cached_selection, detectors_for, trace_every, exit_for, score_results, selected_cases, uncached_runs,
                     write_report, write_saved_report)

__all__ = ["register", "main", "report_main"]


def register(sub) -> None:
    p = sub.add_parser("score", help="score detectors on cached runs (never trains) and write the tables",
                       epilog="exit codes: 0 ok, 1 an oracle does not hold, a run is missing from the cache or "
                              "damaged (they are listed, with what to run), or a detector errored with --strict; "
                              "2 bad input")
    add_common(p, scoring=True)
    p.set_defaults(fn=main)
    r = sub.add_parser("report", help="rebuild every table from saved scores (scores.json); trains nothing and "
                                      "runs no detector",
                       epilog="exit codes: 0 ok, 2 bad input (no or unreadable scores.json, a filter matching "
                              "no saved row)")
    add_cases_dir(r)
    r.add_argument("--results", default=None, help="results directory (default: ./results or $TRAINWRECK_RESULTS)")
    r.add_argument("--scores", default=None,
                   help="the scores.json to read (default: scores.json in the results directory)")
    r.add_argument("--case", action="append", help="only this case id (repeatable)")
    r.add_argument("--family", action="append", help="only cases of this family (repeatable)")
    r.add_argument("--seeds", help="only these seeds, e.g. 0,1")
    r.add_argument("--detector", "-d", action="append", help="only this detector (repeatable)")
    r.add_argument("--out", default=None, help="where to write the tables (default: the results directory for the "
                                               "full corpus, results/filtered/<hash>/ for a selection)")
    r.add_argument("--quiet", "-q", action="store_true", help="do not print the leaderboard")
    r.set_defaults(fn=report_main)


def main(args) -> int:
    t0 = time.monotonic()
    cases = selected_cases(args)
    detectors = detectors_for(args)
    try:   # the cache is read once; only when it lacks something is every run checked, to list them all
        results = cached_selection(args, cases, detectors=detectors)
    except UsageError:
        problems = uncached_runs(args, cases, detectors=detectors)
        if not problems:
            raise
        for line in problems:
            print(line, file=sys.stderr)
        print(f"{len(problems)} run(s) the scores need are not in the cache or are damaged; `score` never trains "
              f"(nor deletes a damaged record). Train exactly those with: {_run_command(args)}", file=sys.stderr)
        return EXIT_FAILED
    scores = score_results(args, results, detectors)
    write_report(args, results, scores)
    print(f"rescored from cache in {time.monotonic() - t0:.2f}s")
    return exit_for(args, results, scores)


def _run_command(args) -> str:
    parts = ["trainwreck", "run", "--results", str(results_dir(args))]
    for c in args.case or []:
        parts += ["--case", c]
    for f in args.family or []:
        parts += ["--family", f]
    if args.seeds:
        parts += ["--seeds", args.seeds]
    k = trace_every(args, detectors_for(args))
    if k:
        parts += ["--trace-every", str(k)]
    if args.backend != "tensorflow":
        parts += ["--backend", args.backend]
    return " ".join(shlex.quote(p) for p in parts)


def report_main(args) -> int:
    path = args.scores or results_dir(args) / "scores.json"
    fingerprint, rows = api.read_scores(path)
    rows, fingerprint = api.filter_rows(rows, fingerprint, case=args.case, family=args.family, seeds=seeds(args),
                                        detectors=args.detector or [])
    write_saved_report(args, fingerprint, rows)
    print(f"rebuilt the tables from {path} ({len(rows)} score rows; nothing trained, no detector run)")
    return 0
