"""`trainwreck reproduce results/<table>.json`: retrain what a table names and diff the numbers."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from trainwreck import api
from trainwreck.case import load_corpus
from trainwreck.errors import UsageError
from trainwreck.options import add_common
from trainwreck.reproduce import compare_rows, read_table_file

from .common import oracle_summary, run_selection

__all__ = ["register", "main"]


def register(sub) -> None:
    p = sub.add_parser("reproduce", help="retrain and rescore what a results JSON names, and diff the numbers",
                       epilog="exit codes: 0 identical, 1 the rows differ, 2 bad input")
    p.add_argument("file", help="a results/<table>.json file")
    add_common(p, running=True)
    p.set_defaults(fn=main)


def main(args) -> int:
    from trainwreck.report import comparable

    doc = read_table_file(Path(args.file))
    fp, table = doc["fingerprint"], doc["table"]
    corpus = {c.id: c for c in load_corpus(Path(args.cases))}
    missing = [c for c in fp["case_ids"] if c not in corpus]
    if missing:
        raise UsageError(f"{args.file}: cases {missing} it names are not in the corpus under {args.cases}")
    cases = [corpus[c] for c in fp["case_ids"]]
    args.seeds = ",".join(map(str, fp["seeds"]))
    args.results = args.results or tempfile.mkdtemp(prefix="trainwreck-reproduce-")
    print(f"retraining {len(cases)} cases on seeds {fp['seeds']} into {args.results}")
    detectors = api.resolve_detectors(list(fp["detectors"]))
    results = run_selection(args, cases)
    oracle_summary(results)
    rep = api.report(results, api.score(results, detectors, jobs=args.jobs))
    new_fp = rep.fingerprint
    if new_fp["corpus_hash"] != fp["corpus_hash"]:
        print(f"note: the corpus changed since the file was written ({fp['corpus_hash']} -> {new_fp['corpus_hash']})")
    for k in ("tensorflow", "keras", "numpy", "sklearn", "backend", "device"):
        if new_fp[k] != fp[k]:
            print(f"note: {k} differs: {fp[k]} -> {new_fp[k]} (numbers may legitimately differ)")
    new = next(t for t in rep.tables if t.name == table)
    new_rows = json.loads(json.dumps(new.rows))
    diffs = compare_rows(comparable(doc["headers"], doc["rows"]), comparable(new.headers, new_rows))
    if not diffs:
        print(f"identical: {len(new_rows)} rows of '{table}' reproduced exactly (timing columns not compared)")
        return 0
    print(f"DIFFERENT: {len(diffs)} of {len(new_rows)} rows of '{table}' differ")
    for d in diffs:
        print("  " + d)
    return 1


