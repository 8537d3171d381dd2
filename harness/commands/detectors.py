"""`trainwreck detectors`: the installed detectors, built-in and plugins, with the source each
implements and its scope (the causes and symptoms it can name at all)."""

from __future__ import annotations

from trainwreck.errors import EXIT_OK

__all__ = ["register", "main", "scope_text"]


def register(sub) -> None:
    p = sub.add_parser("detectors", help="list installed detectors (built-in and plugins): version, source, scope")
    p.add_argument("--detector-spec", action="append", metavar="MODULE:CLASS", help="also list this class")
    p.add_argument("--wide", action="store_true", help="list every cause and symptom instead of counts")
    p.set_defaults(fn=main)


def scope_text(terms: frozenset | None, wide: bool) -> str:
    """'undeclared' (None: claims everything), 'none' (an empty scope), a count, or the sorted terms."""
    if terms is None:
        return "undeclared"
    if not terms:
        return "none"
    return ", ".join(sorted(terms)) if wide else f"{len(terms)}"


def main(args) -> int:
    from tabulate import tabulate

    from trainwreck.detectors.loading import available

    avail = available(args.detector_spec or [])
    wide = bool(getattr(args, "wide", False))
    rows = []
    for d in avail.values():
        causes, symptoms = d.scope()
        source = str(getattr(d.detector_class(), "source", "") or "")
        rows.append((d.name, d.version, source or "-", scope_text(causes, wide), scope_text(symptoms, wide),
                     d.origin, d.spec))
    print(tabulate(rows, headers=["name", "version", "source", "causes", "symptoms", "origin", "class"],
                   tablefmt="simple", disable_numparse=True, maxcolwidths=[None, None, 48, 60 if wide else None, 60 if wide else None,
                                                    None, None]))
    return EXIT_OK
