"""`trainwreck ls`: the cases, or the names a case file may use."""

from __future__ import annotations

from pathlib import Path

from trainwreck import taxonomy
from trainwreck.case import load_corpus
from trainwreck.errors import EXIT_OK
from trainwreck.options import add_cases_dir

__all__ = ["register", "main"]

WHAT = ["cases", "datasets", "models", "transforms", "pipelines", "measures", "causes"]


def register(sub) -> None:
    p = sub.add_parser("ls", help="list cases or registered names")
    p.add_argument("what", choices=WHAT)
    add_cases_dir(p)
    p.set_defaults(fn=main)


def main(args) -> int:
    from tabulate import tabulate

    from trainwreck.datasets import DATASETS
    from trainwreck.models import MODELS
    from trainwreck.oracle import MEASURES
    from trainwreck.pipelines import PIPELINES
    from trainwreck.transforms import TRANSFORMS

    if args.what == "cases":
        cases = load_corpus(Path(args.cases))
        print(tabulate([(c.family, c.id, c.cause, ",".join(c.symptoms), len(c.seeds)) for c in cases],
                       headers=["family", "id", "cause", "symptoms", "seeds"], tablefmt="simple"))
        return EXIT_OK
    if args.what == "causes":
        print(taxonomy.markdown_table())
        return EXIT_OK
    reg = {"datasets": DATASETS, "models": MODELS, "transforms": TRANSFORMS, "pipelines": PIPELINES,
           "measures": MEASURES}[args.what]
    print(tabulate([(n, reg.get(n).doc) for n in reg.names()], headers=["name", "what it is"], tablefmt="simple"))
    return EXIT_OK
