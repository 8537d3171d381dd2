"""Detectors fed a run while it trains, in the training process: what `trainwreck.keras.Recorder` drives.

The calls and records are those of the replay the benchmark scores (`runner.diagnose_replay`), so a
detector cannot tell live from replayed: an online detector gets `on_train_begin` with the data
profile and model summary, `on_epoch_end(epoch, trace, record)` after each epoch with the trace so
far and the outcome `running` (what `record.truncate` gives a prefix), and `on_train_end` with the
final record; a post-hoc detector gets `diagnose` on the final record. Each sees only the parts it
declares in `needs`, and a detector that does not read the trace is not fed epochs (replay has none
to feed it). One difference is unavoidable: at the last epoch, replay already holds the final
outcome, while live it is still `running`.

A detector that raises, or returns something other than a list of `Diagnosis`, is dropped for the
rest of the run with an error message and keeps what it said before: it must never stop the
training it watches.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Sequence

from trainwreck.record import Outcome, RunRecord

from .base import Detector, Diagnosis, OnlineDetector, restrict
from .loading import DetectorInfo, load_detector
from .runner import validate_output

__all__ = ["LiveDetectors", "Finding", "format_diagnosis", "format_error"]

Finding = tuple[str, Diagnosis]   # (detector name, what it said)


def format_diagnosis(detector: str, d: Diagnosis | dict) -> str:
    """One line per diagnosis, the same from the Recorder and from `trainwreck diagnose`."""
    d = d.to_dict() if isinstance(d, Diagnosis) else d
    what = ", ".join(f"{k} {d[k]}" for k in ("cause", "symptom") if d.get(k))
    epoch = "-" if d.get("epoch") is None else d["epoch"]
    return f"epoch {epoch} | {detector} | {what} | confidence {float(d['confidence']):.2f} | {d.get('evidence', '')}"


def format_error(detector: str, message: str) -> str:
    return f"{detector} | error | {message}"


def _message(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0] if lines else ''}"[:300]


def _running(record: RunRecord) -> RunRecord:
    """A record still training, as `truncate` presents a prefix of the trace."""
    return replace(record, outcome=Outcome(status="running", epochs_run=len(record.trace),
                                           wall_seconds=sum(e.seconds for e in record.trace)))


class LiveDetectors:
    """Fresh instances of `infos` for one run, fed as it happens; `diagnoses` and `errors` by detector name."""

    def __init__(self, infos: Sequence[DetectorInfo]):
        self.infos = list(infos)
        self.diagnoses: dict[str, list[Diagnosis]] = {}
        self.errors: dict[str, str] = {}
        self._active: dict[str, Detector] = {}

    def begin(self, record: RunRecord) -> list[Finding]:
        self.diagnoses = {info.name: [] for info in self.infos}
        self.errors, self._active = {}, {}
        for info in self.infos:
            try:
                self._active[info.name] = load_detector(info.spec)
            except Exception as e:  # noqa: BLE001 - a detector's own failure is its error line
                self.errors[info.name] = _message(e)
        return self._each(record, lambda det, r: det.on_train_begin(_running(r)), online_only=True)

    def epoch_end(self, record: RunRecord) -> list[Finding]:
        """After the last epoch of `record.trace`."""
        def call(det, r):
            if "trace" not in det.needs or not r.trace:
                return []
            return det.on_epoch_end(r.trace[-1].epoch, r.trace[-1], _running(r))
        return self._each(record, call, online_only=True)

    def end(self, record: RunRecord) -> list[Finding]:
        """With the final record: online detectors' `on_train_end`, post-hoc detectors' `diagnose`."""
        return self._each(record, lambda det, r: det.on_train_end(r) if isinstance(det, OnlineDetector)
                          else det.diagnose(r), online_only=False)

    def _each(self, record: RunRecord, call: Callable, *, online_only: bool) -> list[Finding]:
        found: list[Finding] = []
        for name, det in list(self._active.items()):
            if online_only and not isinstance(det, OnlineDetector):
                continue
            try:
                out = validate_output(name, call(det, restrict(record, frozenset(det.needs))))
            except Exception as e:  # noqa: BLE001 - see the module docstring
                self.errors[name] = _message(e)
                del self._active[name]
                continue
            self.diagnoses[name] += out
            found += [(name, d) for d in out]
        return found
