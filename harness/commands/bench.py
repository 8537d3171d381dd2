"""`trainwreck bench`: validate, run, score and write the tables."""

from __future__ import annotations

import time

from trainwreck.options import add_common

from .common import detectors_for, exit_for, run_selection, score_results, selected_cases, write_report

__all__ = ["register", "main"]


def register(sub) -> None:
    p = sub.add_parser("bench", help="validate, run, score and write the tables",
                       epilog="exit codes: 0 ok, 1 an oracle does not hold (or a detector errored, with --strict), "
                              "2 bad input, 130 interrupted")
    add_common(p, running=True, scoring=True)
    p.set_defaults(fn=main)


def main(args) -> int:
    cases = selected_cases(args)
    print(f"{len(cases)} cases valid")
    detectors = detectors_for(args)   # a bad spec or broken plugin stops here, before any training
    t0 = time.monotonic()
    results = run_selection(args, cases, detectors=detectors)
    scores = score_results(args, results, detectors)
    write_report(args, results, scores)
    print(f"bench finished in {time.monotonic() - t0:.1f}s")
    return exit_for(args, results, scores)
