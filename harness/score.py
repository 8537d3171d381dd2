"""Scoring: run every detector on every run record, compare with the case's labels.

Detectors run in their own worker processes (one pool per detector), each
receiving only the record's content under its opaque key. A detector that
raises, returns garbage or exceeds its time budget yields an error row for
that (detector, run); everything else goes on. Only here, after the detector
has answered, are the answers joined with the case's cause and symptoms.
Runs whose oracle failed are excluded from scoring and listed as invalid.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from trainwreck.detectors.loading import DetectorInfo

from .executor import Job, WorkerPool
from .run import RunResult
from .taxonomy import HEALTHY

__all__ = ["ScoreRow", "score_runs", "OUTCOME_LABELS"]

OUTCOME_LABELS = ("hit", "wrong_cause", "symptom_only", "missed", "false_alarm", "quiet", "error", "invalid")


@dataclass(frozen=True)
class ScoreRow:
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
    diagnoses: tuple = ()
    predicted_cause: str | None = None      # top-confidence cause, if any
    causes: tuple = ()
    symptoms: tuple = ()
    latency_epochs: int | None = None       # first epoch prefix naming the expected cause
    latency_seconds: float | None = None
    detector_seconds: float = 0.0
    run_key: str = ""
    severity: object = None                 # sweep value for severity-sweep runs (not in the leaderboard)
    extra: dict = field(default_factory=dict)

    @property
    def flagged(self) -> bool:
        return bool(self.diagnoses)

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


def _top_cause(diagnoses: list[dict]) -> str | None:
    with_cause = [d for d in diagnoses if d.get("cause")]
    if not with_cause:
        return None
    # highest confidence; ties keep the detector's own order
    return max(enumerate(with_cause), key=lambda t: (t[1]["confidence"], -t[0]))[1]["cause"]


def _row(info: DetectorInfo, res: RunResult, answer: dict | None, error: str) -> ScoreRow:
    case = res.spec.case
    is_fault = res.spec.variant == "broken" and case.cause != HEALTHY
    base = dict(detector=info.name, detector_version=info.version, case_id=case.id, family=case.family,
                variant=res.spec.variant, seed=res.spec.seed, expected_cause=case.cause,
                expected_symptoms=tuple(case.symptoms_for(res.record.environment.probes)), is_fault=is_fault, valid=res.verdict.holds,
                run_key=res.spec.key, severity=res.spec.severity)
    if answer is None:
        return ScoreRow(**base, error=error or "no answer")
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
               log=print) -> list[ScoreRow]:
    rows: list[ScoreRow] = []
    by_key = {r.spec.key: r for r in results}
    for info in detectors:
        t0 = time.monotonic()
        jobs_list = [Job(r.spec.key, {"record": r.record.to_dict()}, _budget(info, len(r.record.trace)))
                     for r in by_key.values()]
        answers: dict[str, tuple[dict | None, str]] = {}
        try:
            with WorkerPool("detect", (info.spec,), n=jobs) as pool:
                for jr in pool.run(jobs_list):
                    if jr.status == "ok":
                        answers[jr.job.key] = (jr.value, "")
                    else:
                        answers[jr.job.key] = (None, f"{jr.status}: {jr.message.splitlines()[0] if jr.message else ''}")
        except RuntimeError as e:  # the detector could not even be loaded
            answers = {k: (None, f"load error: {e}") for k in by_key}
        for r in results:
            ans, err = answers.get(r.spec.key, (None, "not run"))
            rows.append(_row(info, r, ans, err))
        log(f"scored {info.name:<16} on {len(by_key)} runs in {time.monotonic() - t0:.1f}s")
    return rows


def _budget(info: DetectorInfo, n_epochs: int) -> float:
    """The time limit of one run's replay: `replay_budget`, the rule the conformance kit checks."""
    from trainwreck.detectors.base import replay_budget
    from trainwreck.detectors.loading import resolve_class

    try:
        return replay_budget(resolve_class(info.spec), n_epochs)
    except Exception:  # noqa: BLE001 - a broken class is reported when its worker starts
        return 30.0
