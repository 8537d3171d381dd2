"""`trainwreck detectors`: the installed detectors, built-in and plugins."""

from __future__ import annotations

from trainwreck.errors import EXIT_OK

__all__ = ["register", "main"]


def register(sub) -> None:
    p = sub.add_parser("detectors", help="list installed detectors (built-in and plugins)")
    p.add_argument("--detector-spec", action="append", metavar="MODULE:CLASS", help="also list this class")
    p.set_defaults(fn=main)


def main(args) -> int:
    from tabulate import tabulate

    from trainwreck.detectors.loading import available

    avail = available(args.detector_spec or [])
    print(tabulate([(d.name, d.version, d.origin, d.spec) for d in avail.values()],
                   headers=["name", "version", "origin", "class"], tablefmt="simple"))
    return EXIT_OK
