"""`trainwreck run`: train every run the cache lacks and check the oracles."""

from __future__ import annotations

from trainwreck.options import add_common

from .common import oracle_figures, oracle_summary, run_selection, selected_cases

__all__ = ["register", "main"]


def register(sub) -> None:
    p = sub.add_parser("run", help="train every run the cache lacks and check the oracles",
                       epilog="exit codes: 0 every oracle holds, 1 an oracle does not, 2 bad input, 130 interrupted")
    add_common(p, running=True)
    p.set_defaults(fn=main)


def main(args) -> int:
    from tabulate import tabulate

    results = run_selection(args, selected_cases(args))
    if not args.quiet:
        print(tabulate(oracle_figures(results), headers=["case", "variant", "measure", "bound",
                                                          "value per seed", "holds"], tablefmt="simple"))
    return oracle_summary(results)
