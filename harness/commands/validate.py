"""`trainwreck validate [FILES]`: check case files against the schema and the registries."""

from __future__ import annotations

from pathlib import Path

from trainwreck.case import CaseErrors, load_case, load_corpus
from trainwreck.errors import EXIT_OK
from trainwreck.options import add_cases_dir

__all__ = ["register", "main"]


def register(sub) -> None:
    p = sub.add_parser("validate", help="check case files against the schema and registries",
                       epilog="exit codes: 0 every file valid, 2 a file is malformed (one line per problem)")
    p.add_argument("files", nargs="*", help="case files (default: the whole corpus)")
    add_cases_dir(p)
    p.set_defaults(fn=main)


def main(args) -> int:
    if args.files:
        errors = []
        for f in args.files:
            try:
                load_case(f)
            except CaseErrors as e:
                errors += e.errors
        if errors:
            raise CaseErrors(errors)
        print(f"{len(args.files)} case file(s) valid")
        return EXIT_OK
    cases = load_corpus(Path(args.cases))
    print(f"{len(cases)} cases valid")
    return EXIT_OK
