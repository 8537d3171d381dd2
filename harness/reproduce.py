"""`trainwreck reproduce results/<table>.json`: rerun what a table names, diff the numbers.

The fingerprint of every results file lists the cases, seeds and detectors it
covers. Reproducing retrains those runs from nothing in a scratch results
directory (the cache is not trusted for this), rescores them with the same
detectors, rebuilds the same table and compares its rows with the file's.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

__all__ = ["add_command", "cmd_reproduce", "compare_rows"]


def compare_rows(old: list, new: list) -> list[str]:
    diffs = []
    for i in range(max(len(old), len(new))):
        a = old[i] if i < len(old) else None
        b = new[i] if i < len(new) else None
        if a != b:
            diffs.append(f"row {i}: {a} -> {b}")
    return diffs


def _table_file(path: Path) -> dict:
    """A results/*.json table (fingerprint, table, headers, rows); a UsageError naming the file otherwise."""
    from .cli import UsageError

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


def cmd_reproduce(args) -> int:
    from .case import load_corpus
    from .cli import _oracle_summary, _run
    from .report import build_tables, comparable, fingerprint_for
    from .score import score_runs

    from trainwreck.detectors.loading import select

    doc = _table_file(Path(args.file))
    fp, table = doc["fingerprint"], doc["table"]
    corpus = {c.id: c for c in load_corpus(Path(args.cases))}
    missing = [c for c in fp["case_ids"] if c not in corpus]
    if missing:
        print(f"trainwreck: error: cases {missing} named in {args.file} are not in the corpus")
        return 2
    cases = [corpus[c] for c in fp["case_ids"]]
    args.seeds = ",".join(map(str, fp["seeds"]))
    args.results = args.results or tempfile.mkdtemp(prefix="trainwreck-reproduce-")
    print(f"retraining {len(cases)} cases on seeds {fp['seeds']} into {args.results}")
    results = _run(args, cases, print)
    _oracle_summary(results, print)
    detectors = select(list(fp["detectors"]))
    rows = score_runs(results, detectors, jobs=args.jobs, log=lambda *_: None)
    new_fp = fingerprint_for(results, detectors, "")
    if new_fp["corpus_hash"] != fp["corpus_hash"]:
        print(f"note: the corpus changed since the file was written ({fp['corpus_hash']} -> {new_fp['corpus_hash']})")
    for k in ("tensorflow", "keras", "numpy", "sklearn", "backend", "device"):
        if new_fp[k] != fp[k]:
            print(f"note: {k} differs: {fp[k]} -> {new_fp[k]} (numbers may legitimately differ)")
    new = next(t for t in build_tables(rows, results) if t.name == table)
    new_rows = json.loads(json.dumps(new.rows))
    diffs = compare_rows(comparable(doc["headers"], doc["rows"]), comparable(new.headers, new_rows))
    if not diffs:
        print(f"identical: {len(new_rows)} rows of '{table}' reproduced exactly (timing columns not compared)")
        return 0
    print(f"DIFFERENT: {len(diffs)} of {len(new_rows)} rows of '{table}' differ")
    for d in diffs:
        print("  " + d)
    return 1


def add_command(sub, common) -> None:
    p = sub.add_parser("reproduce", help="retrain and rescore what a results JSON names, and diff the numbers")
    p.add_argument("file", help="a results/<table>.json file")
    common(p, running=True)
    p.set_defaults(fn=cmd_reproduce)
