"""`trainwreck check-case FILE [--robust]`: validate one case file and prove it on its seeds."""

from __future__ import annotations

from trainwreck.case import load_case
from trainwreck.options import add_common

from .common import oracle_summary, run_selection, setting_runner

__all__ = ["register", "main"]


def register(sub) -> None:
    p = sub.add_parser("check-case", help="validate one case file, train both variants on its seeds, show the oracles",
                       epilog="exit codes: 0 every oracle holds (with --robust: with its margin), 1 one does not, "
                              "2 bad input")
    p.add_argument("file", help="the case file")
    p.add_argument("--robust", action="store_true",
                   help="also seeds 0-4 and every perturbation (oneDNN off, AVX2 kernels, 2 threads, JAX): "
                        "the margin of each oracle condition; fails a case whose margin is too small")
    add_common(p, running=True)
    p.set_defaults(fn=main)


def main(args) -> int:
    case = load_case(args.file)
    print(f"{args.file}: valid ({case.cause}; {len(case.seeds)} seeds)")
    if args.robust:
        from trainwreck.robust import check

        return check([case], setting_runner(args))[1]
    results = run_selection(args, [case])
    for r in results:
        print(f"  {r.spec.variant:<6} seed {r.spec.seed}: outcome {r.record.outcome.status:<13} "
              f"oracle {'holds' if r.verdict.holds else 'FAILS'}: {r.verdict.summary()}")
    return oracle_summary(results)
