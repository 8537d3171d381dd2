"""`trainwreck robust`: the robustness check over the corpus (see trainwreck.robust)."""

from __future__ import annotations

from pathlib import Path

from trainwreck.options import add_common, command_line, results_dir
from trainwreck.robust import MIN_MARGIN, check, robustness_fingerprint, write_robustness

from .common import selected_cases, setting_runner

__all__ = ["register", "main"]


def register(sub) -> None:
    import trainwreck.robust as robust

    p = sub.add_parser("robust", help="the robustness check over the corpus: seeds 0-4 and every perturbation, "
                                      "margins per oracle condition; writes results/robustness.{md,json}",
                       description=robust.__doc__.split("\n\n")[1],
                       epilog=f"exit codes: 0 every case holds with margin >= {MIN_MARGIN:g}, 1 some case does not, "
                              "2 bad input")
    add_common(p, running=True)
    p.add_argument("--out", default=None, help="where to write robustness.{md,json} (default: the results directory)")
    p.add_argument("--verbose", "-v", action="store_true", help="also print every condition's values and margin")
    p.set_defaults(fn=main)


def main(args) -> int:
    report, code = check(selected_cases(args), setting_runner(args), verbose=args.verbose)
    out = Path(args.out) if args.out else results_dir(args)
    if not (args.case or args.family):
        paths = write_robustness(report, robustness_fingerprint(args.device, command_line(args)), out)
        print(f"wrote {', '.join(str(p) for p in paths)}")
    else:
        print("a filtered selection: results/robustness.* left as they are (run without --case/--family to write)")
    return code
