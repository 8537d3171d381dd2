"""`trainwreck reproduce results/<table>.json [--case X] [--seeds N]`: retrain what a table names and diff.

The scratch folder is derived from the table and the filters, so running the same command again
resumes where an interrupted one stopped; it is removed once the comparison is made.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from trainwreck import api
from trainwreck.case import load_corpus
from trainwreck.errors import EXIT_FAILED, EXIT_OK, UsageError
from trainwreck.options import add_common, seeds
from trainwreck.reproduce import compare_rows, compare_scores, read_table_file, scratch_name

from .common import oracle_summary, run_selection

__all__ = ["register", "main"]


def register(sub) -> None:
    p = sub.add_parser("reproduce", help="retrain and rescore what a results JSON names, and diff the numbers",
                       epilog="exit codes: 0 identical, 1 the rows differ, 2 bad input. With --case or --seeds only "
                              "those runs are retrained and compared run by run with the scores.json beside the "
                              "table. --results: keep the scratch runs there (default: a folder named after the "
                              "table and filters under the temp directory, removed when done)")
    p.add_argument("file", help="a results/<table>.json file")
    add_common(p, running=True)
    p.set_defaults(fn=main)


def _selection(args, fp: dict, corpus: dict) -> tuple[list, list[int]]:
    """The cases and seeds to retrain: the table's, narrowed by --case/--family/--seeds; none is an error."""
    missing = [c for c in fp["case_ids"] if c not in corpus]
    if missing:
        raise UsageError(f"{args.file}: cases {missing} it names are not in the corpus under {args.cases}")
    ids = [c for c in fp["case_ids"] if (not args.case or c in args.case)
           and (not args.family or corpus[c].family in args.family)]
    wanted = seeds(args)
    chosen = [s for s in fp["seeds"] if wanted is None or s in wanted]
    if not ids or not chosen:
        raise UsageError(f"{args.file}: no run matches the filters: the table covers cases {fp['case_ids']} on "
                         f"seeds {fp['seeds']}")
    return [corpus[c] for c in ids], chosen


def main(args) -> int:
    doc = read_table_file(Path(args.file))
    fp, table = doc["fingerprint"], doc["table"]
    corpus = {c.id: c for c in load_corpus(Path(args.cases))}
    cases, chosen = _selection(args, fp, corpus)
    filtered = len(cases) < len(fp["case_ids"]) or len(chosen) < len(fp["seeds"])
    own_scratch = args.results is None
    scratch = Path(args.results) if args.results else Path(tempfile.gettempdir()) / scratch_name(
        Path(args.file), fp, [c.id for c in cases], chosen)
    args.results, args.seeds = str(scratch), ",".join(map(str, chosen))
    print(f"retraining {len(cases)} cases on seeds {chosen} into {scratch} (run the same command to resume)")
    detectors = api.resolve_detectors(list(fp["detectors"]))
    results = run_selection(args, cases, detectors=detectors)
    oracle_summary(results)
    scores = api.score(results, detectors, jobs=args.jobs)
    code = (_compare_runs(args, scores.rows) if filtered
            else _compare_table(results, scores, fp, table, doc))
    if own_scratch:
        shutil.rmtree(scratch, ignore_errors=True)
        print(f"removed the scratch folder {scratch}")
    return code


def _compare_table(results, scores, fp: dict, table: str, doc: dict) -> int:
    from trainwreck.report import comparable

    rep = api.report(results, scores, selection=fp.get("selection"))
    new_fp = rep.fingerprint
    if new_fp["corpus_hash"] != fp["corpus_hash"]:
        print(f"note: the corpus changed since the file was written ({fp['corpus_hash']} -> {new_fp['corpus_hash']})")
    for k in ("tensorflow", "keras", "numpy", "sklearn", "backend", "device"):
        if new_fp.get(k) != fp.get(k):
            print(f"note: {k} differs: {fp.get(k)} -> {new_fp.get(k)} (numbers may legitimately differ)")
    new = next(t for t in rep.tables if t.name == table)
    new_rows = json.loads(json.dumps(new.rows))
    diffs = compare_rows(comparable(doc["headers"], doc["rows"]), comparable(new.headers, new_rows))
    return _verdict(diffs, f"identical: {len(new_rows)} rows of '{table}' reproduced exactly (timing columns not "
                           f"compared)", f"{len(diffs)} of {len(new_rows)} rows of '{table}' differ")


def _compare_runs(args, rows) -> int:
    """A filtered reproduction covers part of the table, so it is compared run by run with the saved scores."""
    scores_file = Path(args.file).parent / "scores.json"
    _, saved = api.read_scores(scores_file)
    diffs, n = compare_scores(saved, rows)
    return _verdict(diffs, f"identical: the {n} (detector, run) outcomes of the selection match {scores_file}",
                    f"{len(diffs)} of {n} (detector, run) outcomes differ from {scores_file}")


def _verdict(diffs: list[str], same: str, different: str) -> int:
    if not diffs:
        print(same)
        return EXIT_OK
    print(f"DIFFERENT: {different}")
    for d in diffs:
        print("  " + d)
    return EXIT_FAILED
