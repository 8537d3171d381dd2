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

__all__ = ["compare_rows", "read_table_file", "scratch_name", "compare_scores", "outcome_of"]


def compare_rows(old: list, new: list) -> list[str]:
    diffs = []
    for i in range(max(len(old), len(new))):
        a = old[i] if i < len(old) else None
        b = new[i] if i < len(new) else None
        if a != b:
            diffs.append(f"row {i}: {a} -> {b}")
    return diffs


def scratch_name(table: Path, fingerprint: dict, case_ids: list[str], seeds: list[int]) -> str:
    """A folder name fixed by the table and the filters, so the same command resumes in the same place."""
    from .store import digest

    key = digest({"table": str(Path(table).resolve()), "date": fingerprint.get("date"),
                  "corpus": fingerprint.get("corpus_hash"), "cases": sorted(case_ids), "seeds": sorted(seeds)})
    return f"trainwreck-reproduce-{key[:12]}"


def outcome_of(row) -> tuple:
    """What a reproduction must match of one (detector, run): the outcome, the causes and symptoms named."""
    return (row.label, row.predicted_cause, tuple(row.causes), tuple(row.symptoms))


def compare_scores(saved: list, new: list) -> tuple[list[str], int]:
    """(differences, runs compared): each new (detector, case, variant, seed) against the saved row."""
    index = {(r.detector, r.case_id, r.variant, r.seed): r for r in saved if r.severity is None}
    diffs, n = [], 0
    for r in new:
        if r.severity is not None:
            continue
        n += 1
        key = (r.detector, r.case_id, r.variant, r.seed)
        old = index.get(key)
        if old is None:
            diffs.append(f"{key}: not in the saved scores")
        elif outcome_of(old) != outcome_of(r):
            diffs.append(f"{key}: {outcome_of(old)} -> {outcome_of(r)}")
    return diffs, n


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
