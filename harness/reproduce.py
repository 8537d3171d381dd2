"""`trainwreck reproduce results/<table>.json`: rerun what a table names, diff the numbers.

The fingerprint of every results file lists the cases, seeds and detectors it
covers. Reproducing retrains those runs from nothing in a scratch results
directory (the cache is not trusted for this), rescores them with the same
detectors, rebuilds the same table and compares its rows with the file's.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import UsageError

__all__ = ["compare_rows", "read_table_file"]


def compare_rows(old: list, new: list) -> list[str]:
    diffs = []
    for i in range(max(len(old), len(new))):
        a = old[i] if i < len(old) else None
        b = new[i] if i < len(new) else None
        if a != b:
            diffs.append(f"row {i}: {a} -> {b}")
    return diffs


def read_table_file(path: Path) -> dict:
    """A results/*.json table (fingerprint, table, headers, rows); a UsageError naming the file otherwise."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if not all(k in doc for k in ("fingerprint", "table", "headers", "rows")):
            raise KeyError("fingerprint")
        return doc
    except OSError as e:
        raise UsageError(f"{path}: {e.strerror or e}; give a table written by trainwreck, e.g. "
                         f"results/leaderboard.json") from None
    except (ValueError, UnicodeDecodeError, KeyError, TypeError):
        raise UsageError(f"{path}: not a trainwreck table (expected JSON with its 'fingerprint', 'table', 'headers' and 'rows', "
                         f"e.g. results/leaderboard.json)") from None
