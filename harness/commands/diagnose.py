"""`trainwreck diagnose RUN.json`: run detectors on one saved run record and print what each says.

RUN.json is a file `trainwreck.keras.Recorder` wrote, a corpus record from `results/runs/` (its
checksum is checked) or a bare record. Each detector runs as the benchmark runs it
(`runner.diagnose_replay`: only the parts it declares in `needs`, an online detector replayed epoch
by epoch), in this process, so it gives the diagnoses the Recorder printed live. A detector that
raises is reported on stderr and the others go on. Nothing here imports a backend.
"""

from __future__ import annotations

import json
from pathlib import Path

from trainwreck.errors import EXIT_OK, UsageError

__all__ = ["register", "main", "load_record"]


def register(sub) -> None:
    p = sub.add_parser("diagnose", help="run detectors on one saved run record (a Recorder file or results/runs/*.json)",
                       description="Run detectors on one saved run record and print each diagnosis: a file written "
                                   "by trainwreck.keras.Recorder, a corpus record from results/runs/, or a bare record.",
                       epilog="exit codes: 0 ok (detector errors are reported, not fatal), "
                              "2 a missing, unreadable or invalid file, or an unknown detector")
    p.add_argument("file", metavar="RUN.json", help="the saved run")
    p.add_argument("--detector", "-d", action="append", help="only this detector (repeatable; default: every installed one)")
    p.add_argument("--detector-spec", action="append", metavar="MODULE:CLASS", help="also run this detector class (repeatable)")
    p.add_argument("--json", action="store_true", help="print {key, diagnoses, errors} as JSON")
    p.set_defaults(fn=main)


def load_record(path: str | Path) -> dict:
    """The run record a file holds, as plain data; UsageError naming the file when there is none."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{p}: no such file" if not p.exists() else f"{p}: not a file")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise UsageError(f"{p}: not readable as JSON ({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
    record = doc.get("record") if isinstance(doc, dict) and "record" in doc else doc
    if isinstance(doc, dict) and "checksum" in doc:
        _check_sum(p, doc)
    _check_record(p, record)
    return record


def _check_sum(p: Path, doc: dict) -> None:
    from trainwreck.store import digest

    if doc.get("checksum") != digest({"record": doc.get("record"), "extras": doc.get("extras")}):
        raise UsageError(f"{p}: checksum mismatch (the file was truncated or edited)")


def _check_record(p: Path, record) -> None:
    from trainwreck.record import RunRecord

    try:
        RunRecord.from_dict(record)
    except (KeyError, TypeError, ValueError) as e:
        problems = getattr(e, "problems", None) or [str(e)]
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise UsageError(f"{p}: not a valid run record: {'; '.join(problems[:3])}{more}") from None


def _detectors(args) -> list:
    from trainwreck.api import resolve_detectors
    from trainwreck.detectors.loading import DetectorLoadError
    from trainwreck.registry import UnknownName

    try:
        return resolve_detectors(args.detector or None, args.detector_spec or [])
    except (UnknownName, DetectorLoadError) as e:
        raise UsageError(str(e)) from None


def _run(info, record: dict) -> tuple[list[dict], str]:
    """(diagnoses, '' or the error) of one detector on the record."""
    from trainwreck.detectors.base import LearnedDetector
    from trainwreck.detectors.loading import load_detector
    from trainwreck.detectors.runner import diagnose_replay

    try:
        detector = load_detector(info.spec)
        if isinstance(detector, LearnedDetector) and detector.model is None:
            return [], ("not trained: a learned detector is fitted only inside the bench, by grouped "
                        "cross-validation over the corpus (trainwreck.crossfit), so it names nothing here")
        return diagnose_replay(detector, record, replay=False)["diagnoses"], ""
    except Exception as e:  # noqa: BLE001 - a detector's failure is its error line, not the command's
        lines = str(e).strip().splitlines()
        return [], f"{type(e).__name__}: {lines[0] if lines else ''}"[:300]


def main(args) -> int:
    import sys

    from trainwreck.detectors.live import format_diagnosis, format_error

    record = load_record(args.file)
    infos = _detectors(args)
    diagnoses, errors = {}, {}
    for info in infos:
        diagnoses[info.name], err = _run(info, record)
        if err:
            errors[info.name] = err
    if args.json:
        print(json.dumps({"key": record["key"], "diagnoses": diagnoses, "errors": errors}, indent=2))
        return EXIT_OK
    for name, ds in diagnoses.items():
        for d in ds:
            print(format_diagnosis(name, d))
        if name in errors:
            print(format_error(name, errors[name]), file=sys.stderr)
    if not any(diagnoses.values()):
        print(f"no diagnosis from {', '.join(diagnoses) or 'no detector'}")
    return EXIT_OK
