"""Per-detector metrics at the level each tool works, with the case as the unit of evidence.

Seeds of one case are not independent evidence, so every rate is computed per case first (the
mean over that case's valid runs) and then averaged over cases; its 95% confidence interval is a
percentile bootstrap over cases, stratified by the case's cause, with a fixed resampling seed so a
table is the same on every rebuild. All detectors share the same resamples, which makes the
paired comparisons of `significance` paired. Every definition is written once, in `METRICS`, and
docs/metrics.md is generated from it (`trainwreck.docs.metrics_markdown`, run by `make schema`).

A detector's declared scope (`causes`, `symptoms` on its class; None = undeclared = claims
everything) decides "within scope"; a detector that declares no causes at all gets "n/a" in the
cause columns, never a cause the project invented for it.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy.stats import binomtest
from sklearn.metrics import confusion_matrix, f1_score

from .score import ScoreRow

__all__ = ["Metric", "METRICS", "Estimate", "DetectorMetrics", "detector_metrics", "per_cause_recall", "confusion",
           "severity_onsets", "significance", "Comparison", "Resamples", "resamples", "NONE", "BOOTSTRAP_SEED",
           "BOOTSTRAP_RESAMPLES", "COMPARED", "CI_NOTE", "CONFIDENCE", "in_scope", "names_causes"]

NONE = "(none)"
BOOTSTRAP_SEED = 16
BOOTSTRAP_RESAMPLES = 2000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Metric:
    """One figure of the tables: its column title, the runs it is computed over, and what it means."""
    name: str
    column: str
    population: str
    definition: str
    cause: bool = False          # a cause column: "n/a" for a detector that declares no causes
    higher_is_better: bool = True


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("detection", "detection", "broken runs of fault cases",
           "Share of runs with at least one diagnosis of any kind."),
    Metric("false_alarm_fixed", "false alarms (fixed)", "fixed runs of fault cases",
           "Share of runs with at least one diagnosis: the fix removed the fault, so any finding is false.",
           higher_is_better=False),
    Metric("false_alarm_trap", "false alarms (traps)", "every run of a healthy trap case",
           "Share of runs with at least one diagnosis. Traps look suspicious (a high learning rate, heavy "
           "dropout) but train as intended.", higher_is_better=False),
    Metric("symptom_hit", "symptom hit", "broken runs of fault cases that expect at least one symptom",
           "Share of runs where the detector reports any of the symptoms the case expects. A tool that stops at "
           "its first finding is not penalised for the symptoms it never got to."),
    Metric("symptom_precision", "symptom precision", "broken runs of fault cases where the detector reports a symptom",
           "Per run, the share of the reported symptoms that the case expects; then averaged."),
    Metric("cause_accuracy", "cause acc.", "broken runs of fault cases",
           "Share of runs whose top-confidence cause is the case's cause; a silent run counts as wrong. "
           "Mixes detection with diagnosis.", cause=True),
    Metric("cause_accuracy_flagged", "cause acc. (flagged)", "broken runs of fault cases the detector flagged",
           "Share of flagged runs whose top-confidence cause is the case's cause (a flag that names no cause "
           "counts as wrong): diagnosis quality given detection.", cause=True),
    Metric("scope_recall", "in-scope recall", "broken runs of fault cases whose cause the detector declares",
           "Share of runs whose top-confidence cause is the case's cause, over the cases of the causes the "
           "detector claims it can name (all causes when it declares none).", cause=True),
    Metric("scope_coverage", "scope coverage", "fault cases",
           "Share of fault cases whose cause the detector declares it can name: the ceiling of its cause "
           "accuracy on this corpus (1 for an undeclared scope). Fixed by the corpus, so its interval is a point.",
           cause=True),
    Metric("macro_f1", "macro F1", "broken runs of fault cases, pooled over seeds",
           "Unweighted mean over the corpus's fault causes of the F1 of 'top cause = c' (scikit-learn, "
           "zero_division=0); a silent run predicts '(none)'.", cause=True),
    Metric("macro_f1_scope", "macro F1 (in scope)", "broken runs of fault cases, pooled over seeds",
           "As macro F1, averaged only over the causes the detector declares; every run still counts, so a "
           "declared cause named on another case's run lowers its precision.", cause=True),
)}

# The figures the significance table compares between detectors (every detector has them on the same cases).
COMPARED = ("detection", "cause_accuracy", "false_alarm_fixed", "false_alarm_trap", "symptom_hit")

CI_NOTE = (f"[a, b]: {int(CONFIDENCE * 100)}% percentile bootstrap interval over cases (seeds averaged within a "
           f"case first; resampled within each cause; {BOOTSTRAP_RESAMPLES} resamples, seed {BOOTSTRAP_SEED})")


def names_causes(scope: tuple | None) -> bool:
    """Whether a detector with this declared cause scope names causes at all (None: undeclared, so yes)."""
    return scope is None or len(scope) > 0


def in_scope(row: ScoreRow) -> bool:
    """Whether the case's cause is one the row's detector declares it can name."""
    return row.detector_causes is None or row.expected_cause in row.detector_causes


# -- which runs each metric counts, and what one run contributes ------------------------------------------
def _symptom_precision(r: ScoreRow) -> float:
    return len(set(r.symptoms) & set(r.expected_symptoms)) / len(r.symptoms)


_RUN_VALUE: dict[str, tuple[Callable[[ScoreRow], bool], Callable[[ScoreRow], float]]] = {
    "detection": (lambda r: r.is_fault, lambda r: float(r.flagged)),
    "false_alarm_fixed": (lambda r: r.variant == "fixed" and not r.is_trap, lambda r: float(r.flagged)),
    "false_alarm_trap": (lambda r: r.is_trap, lambda r: float(r.flagged)),
    "symptom_hit": (lambda r: r.is_fault and bool(r.expected_symptoms),
                    lambda r: float(bool(set(r.symptoms) & set(r.expected_symptoms)))),
    "symptom_precision": (lambda r: r.is_fault and bool(r.symptoms), _symptom_precision),
    "cause_accuracy": (lambda r: r.is_fault, lambda r: float(r.predicted_cause == r.expected_cause)),
    "cause_accuracy_flagged": (lambda r: r.is_fault and r.flagged,
                               lambda r: float(r.predicted_cause == r.expected_cause)),
    "scope_recall": (lambda r: r.is_fault and in_scope(r), lambda r: float(r.predicted_cause == r.expected_cause)),
    "scope_coverage": (lambda r: r.is_fault, lambda r: float(in_scope(r))),
}


def _scored(rows: list[ScoreRow]) -> list[ScoreRow]:
    """The rows a figure counts: a case's own broken and fixed runs (not sweep points), oracle held, no error."""
    return [r for r in rows if r.severity is None and r.valid and not r.error]


# -- resampling cases -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Resamples:
    """The bootstrap resamples of the selection's cases: `counts[b, i]` = how often case i is drawn in b."""
    cases: tuple[str, ...]
    counts: np.ndarray

    def index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.cases)}


def resamples(case_causes: dict[str, str], n: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> Resamples:
    """Stratified by cause: each resample draws, within every cause, as many of its cases as it has, with
    replacement (numpy's seeded Generator), so every cause keeps its weight and appears in every resample."""
    cases = tuple(sorted(case_causes))
    rng = np.random.default_rng(seed)
    counts = np.zeros((n, len(cases)), dtype=np.int64)
    strata: dict[str, list[int]] = defaultdict(list)
    for i, c in enumerate(cases):
        strata[case_causes[c]].append(i)
    for cause in sorted(strata):
        idx = np.array(strata[cause])
        draws = rng.integers(0, len(idx), size=(n, len(idx)))
        for j in range(len(idx)):
            counts[:, idx[j]] = (draws == j).sum(axis=1)
    return Resamples(cases, counts)


@dataclass(frozen=True)
class Estimate:
    """A figure over cases: the point value, its bootstrap interval, and how many cases and runs it rests on."""
    value: float
    low: float
    high: float
    cases: int
    runs: int
    applicable: bool = True

    @classmethod
    def na(cls) -> "Estimate":
        return cls(math.nan, math.nan, math.nan, 0, 0, False)

    def __str__(self) -> str:
        if not self.applicable:
            return "n/a"
        if self.cases == 0 or math.isnan(self.value):
            return "–"
        return f"{self.value:.2f} [{self.low:.2f}, {self.high:.2f}]"

    def to_dict(self) -> dict:
        def f(x):
            return None if math.isnan(x) else round(float(x), 6)
        return {"value": f(self.value), "ci95": [f(self.low), f(self.high)], "cases": self.cases, "runs": self.runs,
                "applicable": self.applicable}


def _interval(boot: np.ndarray) -> tuple[float, float]:
    boot = boot[~np.isnan(boot)]
    if boot.size == 0:
        return math.nan, math.nan
    lo, hi = np.percentile(boot, [100 * (1 - CONFIDENCE) / 2, 100 * (1 + CONFIDENCE) / 2])
    return float(lo), float(hi)


def _case_values(rows: list[ScoreRow], metric: str, rs: Resamples) -> tuple[np.ndarray, int]:
    """Per case of `rs`, the mean over its runs in the metric's population (NaN where it has none)."""
    member, value = _RUN_VALUE[metric]
    per: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        if member(r):
            per[r.case_id].append(value(r))
    v = np.full(len(rs.cases), np.nan)
    index = rs.index()
    for cid, vals in per.items():
        v[index[cid]] = float(np.mean(vals))
    return v, sum(len(x) for x in per.values())


def _weighted(v: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Mean of v over each resample's drawn cases that have a value (NaN for a resample with none)."""
    w = (~np.isnan(v)).astype(float)
    num = counts @ np.nan_to_num(v)
    den = counts @ w
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _mean_estimate(rows: list[ScoreRow], metric: str, rs: Resamples) -> Estimate:
    v, n_runs = _case_values(rows, metric, rs)
    n_cases = int((~np.isnan(v)).sum())
    if n_cases == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, 0)
    lo, hi = _interval(_weighted(v, rs.counts))
    return Estimate(float(np.nanmean(v)), lo, hi, n_cases, n_runs)


def _f1_estimate(faults: list[ScoreRow], labels: list[str], rs: Resamples) -> Estimate:
    """Macro F1 over `labels` (scikit-learn for the value); its interval recomputes F1 from per-case counts
    of each resample, the same arithmetic over the same confusion counts."""
    if not faults or not labels:
        return Estimate(math.nan, math.nan, math.nan, 0, 0)
    y_true = [r.expected_cause for r in faults]
    y_pred = [r.predicted_cause or NONE for r in faults]
    value = f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
    idx, lab = rs.index(), {c: j for j, c in enumerate(labels)}
    tp, pred, true = (np.zeros((len(rs.cases), len(labels))) for _ in range(3))
    for r in faults:
        i = idx[r.case_id]
        p = r.predicted_cause or NONE
        if r.expected_cause in lab:
            true[i, lab[r.expected_cause]] += 1
        if p in lab:
            pred[i, lab[p]] += 1
        if p == r.expected_cause and p in lab:
            tp[i, lab[p]] += 1
    TP, P, T = rs.counts @ tp, rs.counts @ pred, rs.counts @ true
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(P + T > 0, 2 * TP / np.where(P + T > 0, P + T, 1), 0.0)
    lo, hi = _interval(f1.mean(axis=1))
    return Estimate(float(value), lo, hi, len({r.case_id for r in faults}), len(faults))


@dataclass(frozen=True)
class DetectorMetrics:
    detector: str
    version: str
    causes: tuple | None            # declared cause scope (None: undeclared)
    symptoms: tuple | None          # declared symptom scope (None: undeclared)
    figures: dict = field(default_factory=dict)   # METRICS name -> Estimate
    errors: int = 0
    runs: int = 0
    cases: int = 0
    median_latency_epochs: float = math.nan
    ms_per_run: float = math.nan

    def __getattr__(self, name):
        figures = self.__dict__.get("figures", {})
        if name in figures:
            return figures[name]
        raise AttributeError(name)

    def to_dict(self) -> dict:
        def f(x):
            return None if isinstance(x, float) and math.isnan(x) else x
        return {"detector": self.detector, "version": self.version,
                "scope": {"causes": None if self.causes is None else list(self.causes),
                          "symptoms": None if self.symptoms is None else list(self.symptoms)},
                **{k: v.to_dict() for k, v in self.figures.items()},
                "errors": self.errors, "runs": self.runs, "cases": self.cases,
                "median_latency_epochs": f(self.median_latency_epochs), "ms_per_run": f(self.ms_per_run)}


def _case_causes(rows: list[ScoreRow]) -> dict[str, str]:
    return {r.case_id: r.expected_cause for r in rows if r.severity is None}


def _detectors(rows: list[ScoreRow]) -> list[str]:
    return list(dict.fromkeys(r.detector for r in rows))


def detector_metrics(rows: list[ScoreRow], rs: Resamples | None = None) -> list[DetectorMetrics]:
    """Every METRICS figure for each detector, in the order the rows first name them."""
    rs = rs or resamples(_case_causes(rows))
    out = []
    for det in _detectors(rows):
        mine = [r for r in rows if r.detector == det]
        scored = _scored(mine)
        causes, symptoms = mine[0].detector_causes, mine[0].detector_symptoms
        figures = {}
        for name, m in METRICS.items():
            if m.cause and not names_causes(causes):
                figures[name] = Estimate.na()
            elif name in _RUN_VALUE:
                figures[name] = _mean_estimate(scored, name, rs)
        faults = [r for r in scored if r.is_fault]
        labels = sorted({r.expected_cause for r in faults})
        if names_causes(causes):
            figures["macro_f1"] = _f1_estimate(faults, labels, rs)
            figures["macro_f1_scope"] = _f1_estimate(
                faults, [c for c in labels if causes is None or c in causes], rs)
        figures = {k: figures[k] for k in METRICS}
        lat = [r.latency_epochs for r in faults if r.latency_epochs is not None and r.predicted_cause == r.expected_cause]
        out.append(DetectorMetrics(
            detector=det, version=mine[0].detector_version, causes=causes, symptoms=symptoms, figures=figures,
            errors=sum(1 for r in mine if r.error and r.valid and r.severity is None), runs=len(scored),
            cases=len({r.case_id for r in scored}),
            median_latency_epochs=float(np.median(lat)) if lat else math.nan,
            ms_per_run=1000 * float(np.mean([r.detector_seconds for r in scored])) if scored else math.nan))
    return out


def per_cause_recall(rows: list[ScoreRow], rs: Resamples | None = None) -> dict[str, dict[str, Estimate]]:
    """cause -> detector -> share of broken runs of that cause whose top cause is right (cases as the unit);
    "n/a" for a detector that names no causes."""
    rs = rs or resamples(_case_causes(rows))
    out: dict[str, dict[str, Estimate]] = defaultdict(dict)
    scored = _scored(rows)
    causes = sorted({r.expected_cause for r in scored if r.is_fault})
    for det in _detectors(rows):
        mine = [r for r in scored if r.detector == det]
        scope = next((r.detector_causes for r in rows if r.detector == det), None)
        for cause in causes:
            if not names_causes(scope):
                out[cause][det] = Estimate.na()
                continue
            out[cause][det] = _mean_estimate([r for r in mine if r.expected_cause == cause], "cause_accuracy", rs)
    return dict(out)


def confusion(rows: list[ScoreRow], detector: str) -> tuple[list[str], list[str], np.ndarray]:
    """Expected cause (rows) vs diagnosed top cause (columns, '(none)' when silent), sklearn's matrix; runs pooled."""
    faults = [r for r in _scored(rows) if r.is_fault and r.detector == detector]
    y_true = [r.expected_cause for r in faults]
    y_pred = [r.predicted_cause or NONE for r in faults]
    true_labels = sorted(set(y_true))
    pred_labels = sorted(set(y_pred) - {NONE}) + ([NONE] if NONE in y_pred else [])
    labels = list(dict.fromkeys(true_labels + pred_labels))
    if not faults:
        return [], [], np.zeros((0, 0), dtype=int)
    with warnings.catch_warnings():   # one label only (a one-case selection) is a fine matrix
        warnings.simplefilter("ignore", UserWarning)
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


# -- paired comparisons -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Comparison:
    """Detector a vs detector b on one figure, over the cases where both have it."""
    metric: str
    a: str
    b: str
    cases: int
    value_a: float
    value_b: float
    difference: float
    low: float
    high: float
    p_bootstrap: float
    a_only: int          # cases where a's figure is >= 0.5 over seeds and b's is not
    b_only: int
    p_mcnemar: float

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and math.isnan(v) else (round(v, 6) if isinstance(v, float) else v))
                for k, v in self.__dict__.items()}


def _compare(metric: str, a: str, b: str, va: np.ndarray, vb: np.ndarray, rs: Resamples) -> Comparison | None:
    both = ~np.isnan(va) & ~np.isnan(vb)
    if not both.any():
        return None
    d = np.where(both, va - vb, np.nan)
    boot = _weighted(d, rs.counts)
    boot = boot[~np.isnan(boot)]
    lo, hi = _interval(boot)
    # two-sided, (k + 1) / (B + 1) so that a finite number of resamples never claims p = 0
    p_boot = (float(min(1.0, 2 * (min((boot <= 0).sum(), (boot >= 0).sum()) + 1) / (boot.size + 1)))
              if boot.size else math.nan)
    sa, sb = va[both] >= 0.5, vb[both] >= 0.5
    a_only, b_only = int((sa & ~sb).sum()), int((sb & ~sa).sum())
    p_mc = float(binomtest(a_only, a_only + b_only, 0.5).pvalue) if a_only + b_only else 1.0
    return Comparison(metric, a, b, int(both.sum()), float(np.mean(va[both])), float(np.mean(vb[both])),
                      float(np.mean(d[both])), lo, hi, p_boot, a_only, b_only, p_mc)


def significance(rows: list[ScoreRow], rs: Resamples | None = None) -> list[Comparison]:
    """Every pair of detectors on each COMPARED figure: the paired bootstrap interval of the difference (the
    same case resamples for both) and an exact McNemar test (binomial, scipy) on per-case outcomes, a case
    scoring 1 for a detector when the figure is at least 0.5 over its seeds (else 0)."""
    rs = rs or resamples(_case_causes(rows))
    scored = _scored(rows)
    dets = _detectors(rows)
    scope = {d: next(r.detector_causes for r in rows if r.detector == d) for d in dets}
    out = []
    for metric in COMPARED:
        vals = {d: _case_values([r for r in scored if r.detector == d], metric, rs)[0] for d in dets}
        usable = [d for d in dets if not (METRICS[metric].cause and not names_causes(scope[d]))]
        for i, a in enumerate(usable):
            for b in usable[i + 1:]:
                c = _compare(metric, a, b, vals[a], vals[b], rs)
                if c is not None:
                    out.append(c)
    return out
