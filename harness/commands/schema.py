"""`trainwreck schema`: write cases/schema.json, docs/taxonomy.md and docs/metrics.md from the definitions."""

from __future__ import annotations

import sys
from pathlib import Path

from trainwreck import taxonomy
from trainwreck.api import ROOT
from trainwreck.errors import EXIT_FAILED, EXIT_OK
from trainwreck.options import add_cases_dir

__all__ = ["register", "main"]


def register(sub) -> None:
    p = sub.add_parser("schema", help="write cases/schema.json and docs/taxonomy.md from the definitions")
    p.add_argument("--check", action="store_true", help="only check that the committed schema is current")
    add_cases_dir(p)
    p.set_defaults(fn=main)


def main(args) -> int:
    import json

    from trainwreck.case import case_schema
    from trainwreck.docs import metrics_markdown

    text = json.dumps(case_schema(), indent=2) + "\n"
    target = Path(args.cases) / "schema.json"
    if args.check:
        if not target.exists() or target.read_text() != text:
            print(f"{target} is out of date; run `trainwreck schema`", file=sys.stderr)
            return EXIT_FAILED
        print(f"{target} is up to date")
        return EXIT_OK
    target.write_text(text)
    (ROOT / "docs").mkdir(exist_ok=True)
    (ROOT / "docs" / "taxonomy.md").write_text(taxonomy.markdown_table())
    (ROOT / "docs" / "metrics.md").write_text(metrics_markdown())
    print(f"wrote {target}, docs/taxonomy.md and docs/metrics.md")
    return EXIT_OK
