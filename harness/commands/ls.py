"""`trainwreck ls`: the cases, or the names a case file may use."""

from __future__ import annotations

import sys
from pathlib import Path

from trainwreck import taxonomy
from trainwreck.case import load_corpus
from trainwreck.errors import EXIT_OK
from trainwreck.options import add_cases_dir

__all__ = ["register", "main"]

WHAT = ["cases", "datasets", "steps", "models", "transforms", "pipelines", "measures", "causes", "layers", "optimizers",
        "losses", "callbacks"]


def register(sub) -> None:
    p = sub.add_parser("ls", help="list cases or registered names")
    p.add_argument("what", choices=WHAT)
    p.add_argument("name", nargs="?", help="one component or layer class: print each parameter with its type, "
                                           "range and default")
    add_cases_dir(p)
    p.set_defaults(fn=main)


def main(args) -> int:
    from tabulate import tabulate

    from trainwreck.data_steps import DATA_STEPS
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
    tables = _keras_tables()
    if args.what in tables:
        return _print_keras(tables[args.what], args.what, args.name)
    reg = {"datasets": DATASETS, "steps": DATA_STEPS, "models": MODELS, "transforms": TRANSFORMS, "pipelines": PIPELINES,
           "measures": MEASURES}[args.what]
    if args.name is not None:
        return _print_params(reg, args.what, args.name)
    if args.what == "steps":
        from trainwreck.data_steps import WHERE

        print(tabulate([(n, WHERE[n], reg.get(n).doc) for n in sorted(reg.names(), key=lambda n: (_ORDER[WHERE[n]], n))],
                       headers=["name", "where", "what it is"], tablefmt="simple", maxcolwidths=[None, None, 90]))
        return EXIT_OK
    print(tabulate([(n, reg.get(n).doc) for n in reg.names()], headers=["name", "what it is"], tablefmt="simple"))
    return EXIT_OK


_ORDER = {"source": 0, "before": 1, "either": 2, "split": 3, "after": 4}


def _keras_tables() -> dict[str, dict[str, dict[str, tuple]]]:
    from trainwreck.case import CALLBACK_ARGS, LOSS_ARGS, OPTIMIZER_ARGS
    from trainwreck.models import LAYER_ARGS, layer_arg_table

    return {"layers": {c: layer_arg_table(c) for c in LAYER_ARGS}, "optimizers": OPTIMIZER_ARGS,
            "losses": LOSS_ARGS, "callbacks": CALLBACK_ARGS}


def _print_keras(table: dict[str, dict[str, tuple]], what: str, name: str | None) -> int:
    """The allowlisted Keras classes, or one class's arguments with their types (Keras documents the rest)."""
    from tabulate import tabulate

    from trainwreck.errors import EXIT_USAGE
    from trainwreck.registry import suggest

    if name is None:
        print(tabulate([(c, ", ".join(sorted(a)) or "-") for c, a in sorted(table.items())],
                       headers=["class", "arguments"], tablefmt="simple"))
        return EXIT_OK
    if name not in table:
        print(f"trainwreck: unknown {what[:-1]} '{name}'; {suggest(name, sorted(table))}"
              f"valid: {', '.join(sorted(table))}", file=sys.stderr)
        return EXIT_USAGE
    rows = [(a, " | ".join("null" if t is type(None) else t.__name__ for t in ts)) for a, ts in sorted(table[name].items())]
    print(tabulate(rows, headers=["argument", "type"], tablefmt="simple"))
    return EXIT_OK


def _print_params(reg, what: str, name: str) -> int:
    """Each parameter of one component: name, type, range, default and description, from its Params model."""
    from tabulate import tabulate

    from trainwreck.errors import EXIT_USAGE
    from trainwreck.registry import UnknownName

    try:
        entry = reg.get(name)
    except UnknownName as e:
        print(f"trainwreck: {e.args[0] if e.args else e}", file=sys.stderr)
        return EXIT_USAGE
    if not hasattr(entry, "params"):  # a measure: no parameters, only what it reads
        print(f"{name}: {entry.doc}")
        return EXIT_OK
    rows = []
    for field, info in entry.params.model_fields.items():
        kind = (info.annotation.__name__ if isinstance(info.annotation, type)
                else str(info.annotation).replace("typing.", "").replace("Literal", "one of"))
        bounds = [f"{op} {getattr(m, op)}" for m in info.metadata for op in ("gt", "ge", "lt", "le", "max_length")
                  if getattr(m, op, None) is not None]
        rows.append((field, kind, ", ".join(bounds) or "-", repr(info.get_default(call_default_factory=True)),
                     info.description or ""))
    print(f"{name}: {entry.doc}")
    print(tabulate(rows, headers=["parameter", "type", "range", "default", "what it does"], tablefmt="simple"))
    return EXIT_OK
