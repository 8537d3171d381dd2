"""`trainwreck backends`: compare cached runs of the corpus across Keras backends (see trainwreck.backends)."""

from __future__ import annotations

import time
from pathlib import Path

from trainwreck.backends import DOC, backend_table, cached_backends, summary_table
from trainwreck.errors import UsageError
from trainwreck.options import add_common, command_line, results_dir, seeds
from trainwreck.run import BACKENDS, resolve_device
from trainwreck.store import RunStore

from .common import cached_selection, detectors_for, selected_cases

__all__ = ["register", "main"]


def register(sub) -> None:
    p = sub.add_parser("backends", help="compare cached runs of the corpus across Keras backends",
                       description=DOC, epilog="exit codes: 0 no unexplained difference, "
                       "1 a case differs across backends and its file gives no reason, 2 runs missing from the cache")
    add_common(p, scoring=True)
    p.add_argument("--backends", default="auto",
                   help="comma-separated backends, or auto: every backend the cache holds the selection on "
                        "(default: %(default)s)")
    p.set_defaults(fn=main)


def _backends(args, cases) -> list[str]:
    if args.backends != "auto":
        chosen = args.backends.split(",")
        for b in chosen:
            if b not in BACKENDS:
                raise UsageError(f"unknown backend '{b}' in --backends (expected: {', '.join(BACKENDS)})")
        return chosen
    found = cached_backends(cases, seeds(args), resolve_device(args.device), RunStore(results_dir(args) / "runs"))
    if len(found) < 2:
        raise UsageError(f"the run cache holds the whole selection on {len(found)} backend(s) "
                         f"({', '.join(found) or 'none'}); run `trainwreck run --backend B` for at least "
                         f"two of: {', '.join(BACKENDS)}")
    return found


def main(args) -> int:
    from trainwreck import api
    from trainwreck.report import fingerprint_for, render_md, write_tables

    t0 = time.monotonic()
    cases = selected_cases(args)
    detectors = detectors_for(args)
    per_backend, rows_by_backend = {}, {}
    for b in _backends(args, cases):
        per_backend[b] = cached_selection(args, cases, backend=b, sweeps=False)
        rows_by_backend[b] = api.score(per_backend[b], detectors, jobs=args.jobs).rows
    table, summary = backend_table(per_backend, rows_by_backend), summary_table(per_backend)
    all_results = [r for rs in per_backend.values() for r in rs]
    fp = fingerprint_for(all_results, detectors, command_line(args))
    fp["backends"] = {b: summary.data[b]["version"] for b in per_backend}
    fp["backend"] = ", ".join(per_backend)   # the header names every backend compared, not the first
    write_tables([table, summary], fp, Path(args.out) if args.out else results_dir(args))
    if not args.quiet:
        print(render_md(summary, fp))
        print(render_md(table, fp))
        for n in table.notes[1:]:  # the agreement totals and every difference, with its reason
            print(f"- {n}")
    unexplained = table.data["unexplained"]
    print(f"compared {len(per_backend)} backends over {len(table.rows)} cases in {time.monotonic() - t0:.1f}s: "
          f"{len(table.data['differs'])} differ, {len(unexplained)} without a reason in the case file"
          + (f" ({', '.join(unexplained)})" if unexplained else ""))
    return 1 if unexplained else 0
