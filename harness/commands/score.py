"""`trainwreck score` (and `report`): rescore cached runs and write every table; never trains."""

from __future__ import annotations

import time

from trainwreck.options import add_common

from .common import cached_selection, detectors_for, exit_for, score_results, selected_cases, write_report

__all__ = ["register", "main"]


def register(sub) -> None:
    for name, help_ in (("score", "score detectors on cached runs (never trains) and write the tables"),
                        ("report", "the same as score: rescore from the cache and write every table")):
        p = sub.add_parser(name, help=help_, epilog="exit codes: 0 ok, 1 an oracle does not hold (or a detector "
                           "errored, with --strict), 2 bad input or runs missing from the cache")
        add_common(p, scoring=True)
        p.set_defaults(fn=main)


def main(args) -> int:
    t0 = time.monotonic()
    cases = selected_cases(args)
    detectors = detectors_for(args)
    results = cached_selection(args, cases)
    scores = score_results(args, results, detectors)
    write_report(args, results, scores)
    print(f"rescored from cache in {time.monotonic() - t0:.2f}s")
    return exit_for(args, results, scores)
