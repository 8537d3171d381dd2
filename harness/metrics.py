"""Aggregate score rows into per-detector metrics, with scikit-learn.

Every rate is computed over valid runs only (the oracle held) and reported
as the mean and standard deviation over seeds, with the number of runs, so a
reader can tell a 2/3 from a 200/300.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from .score import ScoreRow

__all__ = ["Rate", "DetectorMetrics", "detector_metrics", "per_cause_recall", "confusion", "severity_onsets", "NONE"]

NONE = "(none)"


@dataclass(frozen=True)
class Rate:
    mean: float
    std: float
    n: int

    def __str__(self) -> str:
        if self.n == 0 or math.isnan(self.mean):
            return "–"
        return f"{self.mean:.2f} ± {self.std:.2f}"

    def to_dict(self) -> dict:
        return {"mean": None if math.isnan(self.mean) else round(self.mean, 6),
                "std": None if math.isnan(self.std) else round(self.std, 6), "n": self.n}


def _by_seed(rows: list[ScoreRow], value) -> Rate:
    """Mean over seeds of the per-seed mean of value(row); std over seeds."""
    per_seed: dict[int, list[float]] = defaultdict(list)
    for r in rows:
        per_seed[r.seed].append(float(value(r)))
    if not per_seed:
        return Rate(math.nan, math.nan, 0)
    means = [float(np.mean(v)) for v in per_seed.values()]
    return Rate(float(np.mean(means)), statistics.pstdev(means) if len(means) > 1 else 0.0, len(rows))


def _accuracy_by_seed(rows: list[ScoreRow]) -> Rate:
    per_seed: dict[int, list[ScoreRow]] = defaultdict(list)
    for r in rows:
        per_seed[r.seed].append(r)
    if not per_seed:
        return Rate(math.nan, math.nan, 0)
    means = [accuracy_score([r.expected_cause for r in rs], [r.predicted_cause or NONE for r in rs])
             for rs in per_seed.values()]
    return Rate(float(np.mean(means)), statistics.pstdev(means) if len(means) > 1 else 0.0, len(rows))


@dataclass(frozen=True)
class DetectorMetrics:
    detector: str
    version: str
    detection: Rate
    cause_accuracy: Rate
    macro_precision: float
    macro_recall: float
    macro_f1: float
    symptom_recall: Rate
    false_alarm: Rate
    errors: int
    runs: int
    median_latency_epochs: float
    median_latency_seconds: float
    ms_per_run: float

    def to_dict(self) -> dict:
        out = {}
        for k, v in self.__dict__.items():
            out[k] = v.to_dict() if isinstance(v, Rate) else (None if isinstance(v, float) and math.isnan(v) else v)
        return out


def _symptom_recall(r: ScoreRow) -> float:
    if not r.expected_symptoms:
        return math.nan
    return len(set(r.expected_symptoms) & set(r.symptoms)) / len(r.expected_symptoms)


def _main(rows: list[ScoreRow]) -> list[ScoreRow]:
    """The rows the leaderboard counts: the case's own broken and fixed runs, not sweep points."""
    return [r for r in rows if r.severity is None]


def detector_metrics(rows: list[ScoreRow]) -> list[DetectorMetrics]:
    rows = _main(rows)
    out = []
    for det in dict.fromkeys(r.detector for r in rows):
        mine = [r for r in rows if r.detector == det]
        scored = [r for r in mine if r.valid and not r.error]
        faults = [r for r in scored if r.is_fault]
        healthy = [r for r in scored if not r.is_fault]
        labels = sorted({r.expected_cause for r in faults})
        if faults:
            p, rc, f1, _ = precision_recall_fscore_support(
                [r.expected_cause for r in faults], [r.predicted_cause or NONE for r in faults],
                labels=labels, average="macro", zero_division=0)
        else:
            p = rc = f1 = math.nan
        with_symptoms = [r for r in faults if r.expected_symptoms]
        lat = [r.latency_epochs for r in faults if r.latency_epochs is not None and r.predicted_cause == r.expected_cause]
        lat_s = [r.latency_seconds for r in faults if r.latency_seconds is not None and r.predicted_cause == r.expected_cause]
        out.append(DetectorMetrics(
            detector=det, version=mine[0].detector_version,
            detection=_by_seed(faults, lambda r: r.flagged),
            cause_accuracy=_accuracy_by_seed(faults),
            macro_precision=float(p), macro_recall=float(rc), macro_f1=float(f1),
            symptom_recall=_by_seed(with_symptoms, _symptom_recall),
            false_alarm=_by_seed(healthy, lambda r: r.flagged),
            errors=sum(1 for r in mine if r.error and r.valid), runs=len(scored),
            median_latency_epochs=float(np.median(lat)) if lat else math.nan,
            median_latency_seconds=float(np.median(lat_s)) if lat_s else math.nan,
            ms_per_run=1000 * float(np.mean([r.detector_seconds for r in scored])) if scored else math.nan))
    return out


def per_cause_recall(rows: list[ScoreRow]) -> dict[str, dict[str, Rate]]:
    """cause -> detector -> share of valid broken runs of that cause whose top cause is right."""
    out: dict[str, dict[str, Rate]] = defaultdict(dict)
    rows = _main(rows)
    faults = [r for r in rows if r.is_fault and r.valid and not r.error]
    for cause in sorted({r.expected_cause for r in faults}):
        for det in dict.fromkeys(r.detector for r in rows):
            sel = [r for r in faults if r.detector == det and r.expected_cause == cause]
            out[cause][det] = _by_seed(sel, lambda r: r.predicted_cause == r.expected_cause)
    return dict(out)


def confusion(rows: list[ScoreRow], detector: str) -> tuple[list[str], list[str], np.ndarray]:
    """Expected cause (rows) vs diagnosed top cause (columns, '(none)' when silent), sklearn's matrix."""
    faults = [r for r in _main(rows) if r.is_fault and r.valid and not r.error and r.detector == detector]
    y_true = [r.expected_cause for r in faults]
    y_pred = [r.predicted_cause or NONE for r in faults]
    true_labels = sorted(set(y_true))
    pred_labels = sorted(set(y_pred) - {NONE}) + ([NONE] if NONE in y_pred else [])
    labels = list(dict.fromkeys(true_labels + pred_labels))
    if not faults:
        return [], [], np.zeros((0, 0), dtype=int)
    m = confusion_matrix(y_true, y_pred, labels=labels)
    rows_idx = [labels.index(t) for t in true_labels]
    cols_idx = [labels.index(p) for p in pred_labels]
    return true_labels, pred_labels, m[np.ix_(rows_idx, cols_idx)]


def severity_onsets(rows: list[ScoreRow]) -> dict[tuple[str, str], list[tuple[object, str]]]:
    """(case, detector) -> [(sweep value, outcome label)] in sweep order, for severity tables."""
    out: dict[tuple[str, str], list[tuple[object, str]]] = defaultdict(list)
    for r in rows:
        if r.severity is not None:
            out[(r.case_id, r.detector)].append((r.severity, r.label))
    return dict(out)
