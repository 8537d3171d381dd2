"""The detector protocol: the one file a plugin author needs to read.

A detector receives a read-only `RunRecord` (see `harness/record.py`): the
data profile, the model summary, the per-epoch trace and the outcome of one
training run, under an opaque key. It never sees which case produced the run
or what is wrong with it. It returns zero or more `Diagnosis` objects whose
`cause` and `symptom` are terms of `harness/taxonomy.py`.

Two styles:

* post-hoc: subclass `Detector` and implement `diagnose(record)`;
* online: subclass `OnlineDetector` and implement `on_epoch_end(epoch, trace, record)`
  (the Keras callback vocabulary); it is fed the trace one epoch at a time,
  and `diagnose` replays that for you, so both styles agree at the last epoch.

Declare in `causes` and `symptoms` the taxonomy terms the detector can name at all (its
scope: a symptom-only tool sets `causes = frozenset()`), and in `needs` which parts of the
record you read ("data", "model", "trace", "outcome"); the harness hands you a record with only those parts
filled, so an undeclared dependency shows up as missing data, not as a silent
advantage. Register a plugin through the entry-point group
`trainwreck.detectors` (see `examples/trainwreck-example-detector`), and check
it with `detectors.testing.check_detector`.

Example::

    from trainwreck.detectors import Detector, Diagnosis

    class LossGoesUp(Detector):
        name, version, needs = "loss-goes-up", "1.0", frozenset({"trace"})

        def diagnose(self, record):
            losses = [e.logs.get("loss") for e in record.trace if e.completed]
            if len(losses) > 1 and losses[-1] > losses[0]:
                return [Diagnosis(cause="lr_too_high", symptom="divergence", confidence=0.5,
                                  epoch=len(losses) - 1, evidence=f"loss {losses[0]:.3g} -> {losses[-1]:.3g}")]
            return []
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import ClassVar

from trainwreck import taxonomy
from trainwreck.record import EpochTrace, RunRecord, truncate

__all__ = ["Diagnosis", "Detector", "OnlineDetector", "LearnedDetector", "RECORD_PARTS", "InvalidDiagnosis", "RunRecord",
           "EpochTrace", "replay_budget", "REPLAY_OVERHEAD_S"]

# "steps": the per-step records inside each epoch (EpochTrace.step_trace), recorded when a run's
# trace_every is set; a detector that does not declare it sees every epoch's step_trace empty.
RECORD_PARTS = frozenset({"data", "model", "trace", "outcome", "steps"})

# Seconds of a run's time limit that are not the detector's: moving the record into the worker,
# rebuilding it, and the supervisor's polling. Generous, since the machine may be busy.
REPLAY_OVERHEAD_S = 2.0


class InvalidDiagnosis(ValueError):
    pass


@dataclass(frozen=True)
class Diagnosis:
    """One finding. `cause` and `symptom` are taxonomy terms; at least one is given.

    confidence: in [0, 1]. epoch: the 0-based epoch the finding refers to
    (None for findings about the data or the model alone). evidence: one line a
    person can check against the trace.
    """
    cause: str | None = None
    symptom: str | None = None
    confidence: float = 1.0
    epoch: int | None = None
    evidence: str = ""

    def __post_init__(self):
        if self.cause is None and self.symptom is None:
            raise InvalidDiagnosis("a diagnosis names a cause, a symptom, or both")
        if self.cause is not None and not taxonomy.is_cause(self.cause):
            raise InvalidDiagnosis(f"unknown cause {self.cause!r}; valid: {', '.join(taxonomy.cause_names())}")
        if self.symptom is not None and not taxonomy.is_symptom(self.symptom):
            raise InvalidDiagnosis(f"unknown symptom {self.symptom!r}; valid: {', '.join(taxonomy.symptom_names())}")
        if not (isinstance(self.confidence, (int, float)) and 0.0 <= self.confidence <= 1.0
                and not math.isnan(self.confidence)):
            raise InvalidDiagnosis(f"confidence must be in [0, 1], got {self.confidence!r}")
        if self.epoch is not None and (not isinstance(self.epoch, int) or self.epoch < 0):
            raise InvalidDiagnosis(f"epoch must be a non-negative int or None, got {self.epoch!r}")

    def to_dict(self) -> dict:
        return {"cause": self.cause, "symptom": self.symptom, "confidence": float(self.confidence),
                "epoch": self.epoch, "evidence": self.evidence}


class Detector:
    """Base class of post-hoc detectors. Subclasses set the class attributes and `diagnose`."""
    name: ClassVar[str] = ""
    version: ClassVar[str] = "0"
    needs: ClassVar[frozenset] = RECORD_PARTS
    # Parts of `needs` read when the record has them but not worth recording for this detector alone:
    # {"steps"} means the per-step trace is used when a run was traced per step (`--trace-every K`, or
    # another selected detector requires it), and the harness does not switch to per-step for it.
    optional: ClassVar[frozenset] = frozenset()
    online: ClassVar[bool] = False
    # Seconds per replay step. The harness replays a run of n epochs in n + 1 steps (post-hoc:
    # `diagnose` on each trace prefix, then on the whole record; online: the hooks, epoch by
    # epoch) and gives the whole replay `replay_budget(cls, n)` seconds; past that the run is an
    # error row. The conformance kit checks a long replay against the same rule.
    time_budget_s: ClassVar[float] = 10.0
    # Scope: the taxonomy causes and symptoms this detector can ever name. Scoring uses it to tell
    # "wrong" from "outside what this tool claims" (within-scope recall; "n/a" cause columns for a
    # detector with no causes). None means undeclared: the detector is taken to claim everything.
    causes: ClassVar[frozenset[str] | None] = None
    symptoms: ClassVar[frozenset[str] | None] = None

    def diagnose(self, record: RunRecord) -> list[Diagnosis]:
        raise NotImplementedError


class LearnedDetector(Detector):
    """Base class of detectors whose rules are learned from labelled runs (DeepFD's classifiers).

    A learned detector never sees a label of the run it diagnoses, by construction: the harness
    (`trainwreck.crossfit`) asks it for each run's `features(record)` (no label), then calls the class's
    `fit(features, labels, seed)` on the runs of the *other* cases of a fold (grouped cross-validation
    by case), and diagnoses each held-out run with an instance built on that fold's model,
    `cls(model)`. `fit` must return something picklable (it travels to the detector worker).
    Without a model (`cls()`, as the conformance kit builds it) a learned detector names nothing.
    `replay = False` diagnoses the finished run only (latency: the run's length).
    """
    replay: ClassVar[bool] = True

    def __init__(self, model=None):
        self.model = model

    def features(self, record: RunRecord) -> dict[str, float]:
        raise NotImplementedError

    @classmethod
    def fit(cls, features: list, labels: list[str], seed: int = 0):
        raise NotImplementedError

    def diagnose_many(self, records: list[RunRecord]) -> list[list[Diagnosis]]:
        """`diagnose` of each record; override to predict a fold's runs in one call."""
        return [self.diagnose(r) for r in records]


class OnlineDetector(Detector):
    """A detector fed one epoch at a time, like a Keras callback.

    `on_train_begin(record)` sees the data profile and model summary,
    `on_epoch_end(epoch, trace, record)` each finished epoch (with `record.trace`
    holding epochs 0..epoch), `on_train_end(record)` the final outcome. Each returns the
    diagnoses it makes at that point. A fresh instance is used for every run.
    """
    online: ClassVar[bool] = True

    def on_train_begin(self, record: RunRecord) -> list[Diagnosis]:
        return []

    def on_epoch_end(self, epoch: int, trace: EpochTrace, record: RunRecord) -> list[Diagnosis]:
        return []

    def on_train_end(self, record: RunRecord) -> list[Diagnosis]:
        return []

    def replay(self, record: RunRecord):
        """Yield (epochs_seen, diagnoses made at that point) over the whole record."""
        yield 0, list(self.on_train_begin(truncate(record, 0)))
        for i, ep in enumerate(record.trace):
            yield i + 1, list(self.on_epoch_end(ep.epoch, ep, truncate(record, i + 1)))
        yield len(record.trace), list(self.on_train_end(record))

    def diagnose(self, record: RunRecord) -> list[Diagnosis]:
        fresh = type(self)()
        return [d for _, ds in fresh.replay(record) for d in ds]


def replay_budget(detector_cls: type, n_epochs: int) -> float:
    """Seconds one run's replay may take: `time_budget_s` for each of its n_epochs + 1 steps, plus
    REPLAY_OVERHEAD_S.

    The one time rule: the harness's time limit per (detector, run) and the conformance kit's
    `check_time_budget` both come from here, so a detector that passes the kit on a run as long
    as the kit's (60 epochs, the corpus's longest) does not time out in the bench. It scales with
    the run because a post-hoc detector is called once per epoch prefix. Raises ValueError when
    `time_budget_s` is not a finite positive number.
    """
    per_step = getattr(detector_cls, "time_budget_s", None)
    if isinstance(per_step, bool) or not isinstance(per_step, (int, float)) \
            or not (math.isfinite(per_step) and per_step > 0):
        raise ValueError(f"time_budget_s must be a finite positive number of seconds, got {per_step!r}")
    return REPLAY_OVERHEAD_S + float(per_step) * (max(0, int(n_epochs)) + 1)


def restrict(record: RunRecord, needs: frozenset) -> RunRecord:
    """The record with only the declared parts filled in."""
    from trainwreck.record import DataProfile, ModelSummary, Outcome

    blank = {"data": DataProfile(), "model": ModelSummary(), "trace": (), "outcome": Outcome()}
    out = replace(record, **{k: v for k, v in blank.items() if k not in needs})
    if "steps" not in needs and any(e.step_trace for e in out.trace):
        out = replace(out, trace=tuple(replace(e, step_trace=()) for e in out.trace))
    return out
