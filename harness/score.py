"""Scoring: run every detector on every run record, compare with the case's labels.

Detectors run in their own worker processes (one pool per detector), each
receiving only the record's content under its opaque key. A detector that
raises, returns garbage or exceeds its time budget yields an error row for
that (detector, run); everything else goes on. Only here, after the detector
has answered, are the answers joined with the case's cause and symptoms.
Runs whose oracle failed are excluded from scoring and listed as invalid.

Each `ScoreRow` carries everything a table needs (the run's outcome and oracle verdict, the
detector's declared scope, the sweep parameter), so `results/scores.json` alone rebuilds every
table: `trainwreck report` reads it back with `read_scores` and never runs a detector.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

from trainwreck.detectors.loading import DetectorInfo

from .answers import AnswerCache, cacheable
from .crossfit import crossfit, label_of
from .errors import UsageError
from .executor import Job, WorkerPool
from .run import RunResult
from .store import atomic_write_text
from .taxonomy import HEALTHY

__all__ = ["ScoreRow", "score_runs", "OUTCOME_LABELS", "SCORE_VERSION", "SCORES_FILE", "write_scores",
           "read_scores", "ScoresFileError"]

OUTCOME_LABELS = ("hit", "wrong_cause", "symptom_only", "missed", "false_alarm", "quiet", "error", "invalid")
# The version of a ScoreRow's fields and of the file's layout; a scores.json of another version is refused,
# never half-read. 3: the facts of a run are written once, in "runs", not in each detector's row.
SCORE_VERSION = 3
SCORES_FILE = "scores.json"
_TUPLES = ("expected_symptoms", "diagnoses", "causes", "symptoms")
_SCOPES = ("detector_causes", "detector_symptoms")
#: The row fields that every detector's row of one run shares: scores.json keeps each distinct set of them
#: once, in its "runs" list, and a row names its entry by index ("run"), so the committed file of the whole
#: corpus stays a few MB (the oracle's detail alone is 1.2 MB when repeated for 13 detectors).
_RUN_FIELDS = ("family", "expected_cause", "expected_symptoms", "case_title", "sweep_path", "outcome", "oracle",
               "oracle_detail", "probes", "platform_probe")


@dataclass(frozen=True)
class ScoreRow:
    """One (detector, run) answer joined with the case's labels, and what the tables say about the run."""
    detector: str
    detector_version: str
    case_id: str
    family: str
    variant: str
    seed: int
    expected_cause: str
    expected_symptoms: tuple
    is_fault: bool                 # a broken variant of a real fault (not a trap, not fixed)
    valid: bool                    # the oracle held for this run
    error: str = ""
    diagnoses: tuple = ()          # the detector's Diagnosis dicts (cause, symptom, confidence, epoch, evidence)
    predicted_cause: str | None = None      # top-confidence cause, if any
    causes: tuple = ()
    symptoms: tuple = ()
    latency_epochs: int | None = None       # first epoch prefix naming the expected cause
    latency_seconds: float | None = None
    detector_seconds: float = 0.0
    run_key: str = ""
    severity: object = None                 # sweep value for severity-sweep runs (not in the leaderboard)
    extra: dict = field(default_factory=dict)
    version: int = SCORE_VERSION
    """The field set of this row (SCORE_VERSION when written)."""
    case_title: str = ""
    sweep_path: str | None = None
    """The swept parameter of a severity run (e.g. compile.learning_rate)."""
    outcome: str = ""
    """The run's outcome status (completed, nan, crashed, ...)."""
    oracle: str = ""
    """The oracle verdict in one line, for the invalid-runs table."""
    oracle_detail: dict = field(default_factory=dict)
    """OracleVerdict.to_dict(): every condition's measure, value, bound and whether it holds."""
    probes: dict = field(default_factory=dict)
    """The platform probes the run's worker measured."""
    platform_probe: str | None = None
    """The probe a platform-dependent case is judged by; None for other cases."""
    detector_causes: tuple | None = None
    """The causes the detector declares it can name (None: undeclared, taken as every cause)."""
    detector_symptoms: tuple | None = None
    """The symptoms the detector declares it can name (None: undeclared)."""

    @property
    def flagged(self) -> bool:
        return bool(self.diagnoses)

    @property
    def is_trap(self) -> bool:
        return self.expected_cause == HEALTHY

    @property
    def label(self) -> str:
        """hit / wrong_cause / symptom_only / missed on faults; false_alarm / quiet on healthy runs; error; invalid.

        symptom_only: the detector flagged the run but named no cause (e.g. nan-guard).
        """
        if not self.valid:
            return "invalid"
        if self.error:
            return "error"
        if self.is_fault:
            if not self.flagged:
                return "missed"
            if self.predicted_cause is None:
                return "symptom_only"
            return "hit" if self.predicted_cause == self.expected_cause else "wrong_cause"
        return "false_alarm" if self.flagged else "quiet"

    def to_dict(self) -> dict:
        """Plain JSON data (with the derived `label`, for readers of scores.json; ignored on reading)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for k in _TUPLES:
            out[k] = list(out[k])
        for k in _SCOPES:
            out[k] = None if out[k] is None else list(out[k])
        return _finite(out) | {"label": self.label}

    @classmethod
    def from_dict(cls, d: dict) -> "ScoreRow":
        """The row `to_dict` wrote; a ValueError for another version, an unknown or a missing field."""
        if d.get("version") != SCORE_VERSION:
            raise ValueError(f"score row version {d.get('version')!r}, expected {SCORE_VERSION}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names - {"label"})
        if unknown:
            raise ValueError(f"unknown score row field(s) {unknown}")
        kw = {k: v for k, v in d.items() if k in names}
        for k in _TUPLES:
            if k in kw:
                kw[k] = tuple(kw[k])
        for k in _SCOPES:
            if kw.get(k) is not None:
                kw[k] = tuple(kw[k])
        try:
            return cls(**kw)
        except TypeError as e:
            raise ValueError(str(e)) from None


def _finite(o):
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {str(k): _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    return o


class ScoresFileError(UsageError):
    """scores.json is absent, unreadable or of another version: say which, and what to run."""


def _line(obj) -> str:
    return json.dumps(obj, allow_nan=False, separators=(",", ":"))


def write_scores(path: Path, fingerprint: dict, rows: list[ScoreRow]) -> Path:
    """One run and one row per line: the file is committed beside the tables, so a rescoring shows in
    `git diff` as the rows that changed. A run's facts (`_RUN_FIELDS`) are written once, in "runs"."""
    head = json.dumps({"format": "trainwreck-scores", "version": SCORE_VERSION,
                       "fingerprint": _finite(fingerprint)}, indent=1, allow_nan=False)
    runs: dict[str, int] = {}
    lines = []
    for r in rows:
        d = r.to_dict()
        facts = _line({k: d.pop(k) for k in _RUN_FIELDS})
        lines.append(_line({"run": runs.setdefault(facts, len(runs)), **d}))
    facts_lines, body = ",\n".join(runs), ",\n".join(lines)
    atomic_write_text(Path(path), f'{head[:-2]},\n "runs": [\n{facts_lines}\n ],\n "rows": [\n{body}\n ]\n}}\n')
    return Path(path)


def _with_run(row: dict, runs: list) -> dict:
    """A row of the file with its run's facts put back: the dict `ScoreRow.to_dict` wrote."""
    row = dict(row)
    i = row.pop("run", None)
    if not isinstance(i, int) or not 0 <= i < len(runs) or not isinstance(runs[i], dict):
        raise ValueError(f"row names run {i!r}, which the file's {len(runs)} runs do not hold")
    return {**runs[i], **row}


def read_scores(path: Path) -> tuple[dict, list[ScoreRow]]:
    """(fingerprint, rows) of a scores.json; a ScoresFileError naming the file and what to run otherwise."""
    path = Path(path)
    fix = "run `trainwreck score` (rescores the cached runs) or `trainwreck bench` to write it"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScoresFileError(f"{path}: no saved scores here; {fix}") from None
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise ScoresFileError(f"{path}: unreadable ({type(e).__name__}); {fix}") from None
    if not isinstance(doc, dict) or doc.get("version") != SCORE_VERSION or "rows" not in doc or "runs" not in doc:
        got = doc.get("version") if isinstance(doc, dict) else None
        raise ScoresFileError(f"{path}: scores of version {got!r}, this trainwreck reads version {SCORE_VERSION}; "
                              f"{fix}")
    try:
        rows = [ScoreRow.from_dict(_with_run(r, doc["runs"])) for r in doc["rows"]]
    except (ValueError, TypeError, AttributeError) as e:
        raise ScoresFileError(f"{path}: a malformed score row ({e}); {fix}") from None
    return doc.get("fingerprint") or {}, rows


def _top_cause(diagnoses: list[dict]) -> str | None:
    with_cause = [d for d in diagnoses if d.get("cause")]
    if not with_cause:
        return None
    # highest confidence; ties keep the detector's own order
    return max(enumerate(with_cause), key=lambda t: (t[1]["confidence"], -t[0]))[1]["cause"]


def _scope(info: DetectorInfo) -> tuple[tuple | None, tuple | None]:
    """The detector's declared scope as sorted tuples (None: undeclared, or the class does not load)."""
    try:
        causes, symptoms = info.scope()
    except Exception:  # noqa: BLE001 - a class that does not load gets error rows, reported elsewhere
        return None, None
    return (None if causes is None else tuple(sorted(causes)),
            None if symptoms is None else tuple(sorted(symptoms)))


def _run_facts(res: RunResult) -> dict:
    """What the tables say about the run itself, whichever detector scored it."""
    case = res.spec.case
    dep = case.platform_dependence
    return dict(case_title=case.title, sweep_path=case.sweep.path if res.spec.severity is not None else None,
                outcome=res.record.outcome.status, oracle=res.verdict.summary(),
                oracle_detail=res.verdict.to_dict(), probes=dict(res.record.environment.probes),
                platform_probe=dep.probe if dep is not None else None)


def _row(info: DetectorInfo, res: RunResult, answer: dict | None, error: str,
         scope: tuple[tuple | None, tuple | None] = (None, None)) -> ScoreRow:
    case = res.spec.case
    is_fault = res.spec.variant == "broken" and case.cause != HEALTHY
    base = dict(detector=info.name, detector_version=info.version, case_id=case.id, family=case.family,
                variant=res.spec.variant, seed=res.spec.seed, expected_cause=case.cause,
                expected_symptoms=tuple(case.symptoms_for(res.record.environment.probes)), is_fault=is_fault,
                valid=res.verdict.holds, run_key=res.spec.key, severity=res.spec.severity,
                detector_causes=scope[0], detector_symptoms=scope[1], **_run_facts(res))
    if answer is None:
        return ScoreRow(**base, error=error or "no answer")
    if "fold" in answer:
        base["extra"] = {"fold": answer["fold"]}
    ds = answer["diagnoses"]
    lat = answer["first_cause"].get(case.cause)
    lat_s = None
    if lat is not None:
        lat_s = float(sum(e.seconds for e in res.record.trace[:lat]))
    return ScoreRow(**base, diagnoses=tuple(ds), predicted_cause=_top_cause(ds),
                    causes=tuple(sorted({d["cause"] for d in ds if d.get("cause")})),
                    symptoms=tuple(sorted({d["symptom"] for d in ds if d.get("symptom")})),
                    latency_epochs=lat if is_fault else None, latency_seconds=lat_s if is_fault else None,
                    detector_seconds=answer["seconds"])


def score_runs(results: list[RunResult], detectors: list[DetectorInfo], *, jobs: int = 1,
               log=print, answers: AnswerCache | None = None) -> list[ScoreRow]:
    """One row per (detector, run). The built-ins are replayed together (`_replay_grouped`), a learned
    detector is cross-fitted (`crossfit`), every other detector gets workers of its own. With `answers`,
    a built-in's stored answer to an unchanged record is read instead of replayed (answers.py)."""
    rows: list[ScoreRow] = []
    by_key = {r.spec.key: r for r in results}
    plain = _Plain(by_key)   # each record as plain data once, and only if some detector reads it
    learned = {i.spec for i in detectors if _learned(i)}
    batched = [i for i in detectors if i.origin == "builtin" and i.spec not in learned]
    stored = {i.spec: answers.get(i, results) for i in detectors
              if answers is not None and cacheable(i) and i.spec not in learned}
    t0 = time.monotonic()
    # only the detectors, and the runs, that some stored answer is missing for
    replay = [i for i in batched if any(k not in stored.get(i.spec, {}) for k in by_key)]
    todo = {k: r for k, r in by_key.items() if any(k not in stored.get(i.spec, {}) for i in replay)}
    grouped = _replay_grouped(replay, todo, plain, jobs) if len(replay) > 1 else {}
    if grouped:
        log(f"scored {len(replay)} built-in detectors together on {len(todo)} runs in {time.monotonic() - t0:.1f}s"
            + (f" ({len(by_key) - len(todo)} answered from the answer cache)" if len(todo) < len(by_key) else ""))
    for info in detectors:
        t0 = time.monotonic()
        answers_of: dict[str, tuple[dict | None, str]] = {}
        try:
            if info.spec in learned:
                answers_of = _crossfit(info, results, plain, jobs, log, answers)
            else:
                answers_of = {k: (a, "") for k, a in stored.get(info.spec, {}).items()}
                rest = {k: r for k, r in by_key.items() if k not in answers_of}
                if info.spec in grouped:
                    answers_of.update({k: v for k, v in grouped[info.spec].items() if k in rest})
                elif rest:
                    answers_of.update(_replay_all(info, rest, plain, jobs))
                if info.spec in stored:
                    answers.put(info, results, answers_of)
        except RuntimeError as e:  # the detector could not even be loaded
            answers_of = {k: (None, f"load error: {e}") for k in by_key}
        scope = _scope(info)
        for r in results:
            ans, err = answers_of.get(r.spec.key, (None, "not run"))
            rows.append(_row(info, r, ans, err, scope))
        log(f"scored {info.name:<16} on {len(by_key)} runs in {time.monotonic() - t0:.1f}s")
    return rows


class _Plain(dict):
    """{run key: record as plain data}, converted on first use (a warm rescoring that reads every answer from
    the answer cache converts none)."""

    def __init__(self, by_key: dict):
        super().__init__()
        self._by_key = by_key

    def __missing__(self, key: str) -> dict:
        value = self[key] = self._by_key[key].record.to_dict()
        return value


def _crossfit(info: DetectorInfo, results: list[RunResult], plain: dict, jobs: int, log,
              answers: AnswerCache | None) -> dict[str, tuple[dict | None, str]]:
    """A learned detector's cross-fitted answers; read whole from the answer cache when every record and
    every training label is the same as when they were stored."""
    ident = None
    if answers is not None and cacheable(info) and all(r.checksum for r in results):
        ident = answers.crossfit_id(results, [label_of(r) for r in results])
        hit = answers.get_crossfit(info, ident)
        if hit is not None and set(hit) == {r.spec.key for r in results}:
            log(f"  {info.name}: cross-fit read from the answer cache")
            return {k: (a, "") for k, a in hit.items()}
    out, _ = crossfit(info.spec, results, plain, lambda n: _budget(info, n), jobs=jobs, log=log)
    if ident is not None:
        answers.put_crossfit(info, ident, out)
    return out


def _replay_all(info: DetectorInfo, by_key: dict, plain: dict, jobs: int) -> dict[str, tuple[dict | None, str]]:
    """{run key: (answer, error)}: every run replayed in the detector's workers."""
    answers = {}
    with WorkerPool("detect", (info.spec,), n=jobs) as pool:
        for jr in pool.run([Job(k, {"record": plain[k]}, _budget(info, len(r.record.trace)))
                            for k, r in by_key.items()]):
            answers[jr.job.key] = (jr.value, "") if jr.status == "ok" else (None, jr.brief())
    return answers


def _replay_grouped(infos: list[DetectorInfo], by_key: dict, plain: dict,
                    jobs: int) -> dict[str, dict[str, tuple[dict | None, str]]]:
    """{spec: {run key: (answer, error)}} for detectors replayed together, one job per run (the
    built-ins: the project's own, conformance-checked code). A run whose job dies or hangs is replayed
    again by each detector in its own worker (`_replay_all`), so the culprit alone gets the error row;
    {} when the shared workers cannot start (every detector then gets its own)."""
    specs = tuple(i.spec for i in infos)
    out: dict[str, dict] = {s: {} for s in specs}
    failed = []
    try:
        with WorkerPool("detect_many", (specs,), n=jobs) as pool:
            job_list, by_epochs = [], {}
            for k, r in by_key.items():
                n = len(r.record.trace)
                if n not in by_epochs:
                    by_epochs[n] = {i.spec: _budget(i, n) for i in infos}
                budgets = by_epochs[n]
                job_list.append(Job(k, {"record": plain[k], "budgets": budgets}, sum(budgets.values())))
            for jr in pool.run(job_list):
                if jr.status != "ok":
                    failed.append(jr.job.key)
                    continue
                for spec, (answer, error) in jr.value.items():
                    out[spec][jr.job.key] = (answer, error)
    except RuntimeError:   # a detector that does not load: each is loaded alone, and its load error reported
        return {}
    if failed:
        for info in infos:
            out[info.spec].update(_replay_all(info, {k: by_key[k] for k in failed}, plain, jobs))
    return out


def _learned(info: DetectorInfo) -> bool:
    """A LearnedDetector subclass: scored by grouped cross-fitting (trainwreck.crossfit)."""
    from trainwreck.detectors.base import LearnedDetector
    from trainwreck.detectors.loading import resolve_class

    try:
        return issubclass(resolve_class(info.spec), LearnedDetector)
    except Exception:  # noqa: BLE001 - a class that does not load gets its load error from the worker
        return False


def _budget(info: DetectorInfo, n_epochs: int) -> float:
    """The time limit of one run's replay: `replay_budget`, the rule the conformance kit checks."""
    from trainwreck.detectors.base import replay_budget
    from trainwreck.detectors.loading import resolve_class

    try:
        return replay_budget(resolve_class(info.spec), n_epochs)
    except Exception:  # noqa: BLE001 - a broken class is reported when its worker starts
        return 30.0
