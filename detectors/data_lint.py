"""data-lint: static checks of the data profile and the batch shapes, in the style of data validators.

A post-hoc detector that reads only the data profile (`DataProfile`, computed before training)
and, for pipeline shape problems, `EpochTrace.batch_shapes`. Each rule, its threshold and where
the threshold comes from:

* nan_inputs: `nan_count + inf_count > 0`: no threshold, any non-finite input is a finding.
  UMLAUT's `check_nan_in_loss` (BerkeleyHCI/umlaut @68c2a02, `umlaut/heuristics.py` L130-139)
  tests the input for NaN too, but only once the loss is NaN; here the data alone is enough.
  Symptom out_of_range_values (the taxonomy's "non-finite values").
* unscaled_features: UMLAUT's `check_input_normalization` (heuristics.py L101-113) flags any input
  outside [-1, 1]. That alone fires on every standardised data set (z-scores routinely exceed 1),
  so here it must be combined with the taxonomy's "scales that differ by orders of magnitude":
  fire when the inputs leave [-1, 1] AND the largest per-feature std exceeds the smallest non-zero
  one by more than 1e3 (confidence 0.9), or when |x| exceeds 1e3, three orders of magnitude beyond
  UMLAUT's bound, whatever the spread (confidence 0.5). The 1e3 factors are ours; no validator we
  found ships a default for feature-scale spread (TFDV's domain bounds and Deepchecks' outlier
  checks have no such default).
* class_imbalance: least / most frequent training class < 0.1. The 0.1 is Deepchecks'
  `ClassImbalance.add_condition_class_ratio_less_than(class_imbalance_ratio_th=0.1)`
  (deepchecks/deepchecks @5cf992c, `deepchecks/tabular/checks/data_integrity/class_imbalance.py`);
  evalml's `ClassImbalanceDataCheck` uses the same 1:9 ratio (alteryx/evalml PR #1986).
* train_test_overlap: more than 5% of the validation rows also occur in training. The 5% is
  Deepchecks' `TrainTestSamplesMix.add_condition_duplicates_ratio_less_or_equal(max_ratio=0.05)`
  (`deepchecks/utils/abstracts/train_test_samples_mix.py`).
* target_leakage: some feature has |Pearson r| with the target > 0.95. Deepchecks'
  `FeatureLabelCorrelation` scores features by Predictive Power Score instead; the profile holds
  only |r|, and the 0.95 bound (a feature that is nearly a linear copy of the label) is ours.
* ragged_batches: the training batches seen in the trace have more than one feature shape (the
  batch axis is ignored, so a short last batch is fine). Symptom early_stop when some epoch ran
  fewer steps than expected.

No rule reads the model, the outcome or the learning curves; the findings have no epoch.

Rule table (rule -> source -> threshold -> deviation):

| rule | source | threshold | deviation |
|---|---|---|---|
| nan_inputs | umlaut heuristics.py L130-139 | any NaN/Inf input | fires on the data alone, not only once the loss is NaN |
| unscaled_features | umlaut heuristics.py L101-113 | outside [-1, 1] and std spread > 1e3, or abs(x) > 1e3 | the spread/magnitude factors are ours |
| class_imbalance | Deepchecks ClassImbalance @5cf992c | least/most < 0.1 | none |
| train_test_overlap | Deepchecks TrainTestSamplesMix | > 5% of validation rows | none |
| target_leakage | Deepchecks FeatureLabelCorrelation (PPS) | abs(r) > 0.95 | Pearson abs(r) instead of PPS; bound ours |
| ragged_batches | - (trainwreck) | > 1 feature shape among batches | a trainwreck rule, no published source |
"""

from __future__ import annotations

import math

from .base import Detector, Diagnosis

RANGE = 1.0                 # UMLAUT check_input_normalization: [-1, 1]
STD_SPREAD = 1e3
MAGNITUDE = 1e3
IMBALANCE = 0.1             # Deepchecks ClassImbalance class_imbalance_ratio_th
OVERLAP = 0.05              # Deepchecks TrainTestSamplesMix max_ratio
LEAKAGE = 0.95


def _finite(values) -> list[float]:
    return [float(v) for v in values if v is not None and isinstance(v, (int, float)) and math.isfinite(v)]


class DataLint(Detector):
    name = "data-lint"
    version = "1.0"
    source = "trainwreck (rules after BerkeleyHCI/umlaut@68c2a02 umlaut/heuristics.py and Deepchecks defaults)"
    causes = frozenset({"nan_inputs", "unscaled_features", "class_imbalance", "train_test_overlap",
                        "target_leakage", "ragged_batches"})
    symptoms = frozenset({"out_of_range_values", "early_stop"})
    needs = frozenset({"data", "trace"})
    time_budget_s = 5.0

    def diagnose(self, record):
        d = record.data
        out: list[Diagnosis] = []

        bad = (d.nan_count or 0) + (d.inf_count or 0)
        if bad > 0:
            out.append(Diagnosis(cause="nan_inputs", symptom="out_of_range_values", confidence=1.0,
                                 evidence=f"{d.nan_count} NaN and {d.inf_count} infinite input values"))

        lo, hi = _finite(d.feature_min), _finite(d.feature_max)
        stds = [s for s in _finite(d.feature_std) if s > 0]
        if lo and hi:
            bound = max(abs(min(lo)), abs(max(hi)))
            spread = max(stds) / min(stds) if stds else 1.0
            if bound > RANGE and spread > STD_SPREAD:
                out.append(Diagnosis(cause="unscaled_features", symptom="out_of_range_values", confidence=0.9,
                                     evidence=f"inputs span [{min(lo):.3g}, {max(hi):.3g}] (outside [-1, 1]) and "
                                              f"feature stds differ {spread:.3g}x (> {STD_SPREAD:g})"))
            elif bound > MAGNITUDE:
                out.append(Diagnosis(cause="unscaled_features", symptom="out_of_range_values", confidence=0.5,
                                     evidence=f"inputs reach |x| = {bound:.3g} (> {MAGNITUDE:g})"))

        counts = [int(c) for c in d.class_counts_train.values()] if d.class_counts_train else []
        if len(counts) >= 2 and max(counts) > 0:
            ratio = min(counts) / max(counts)
            if ratio < IMBALANCE:
                out.append(Diagnosis(cause="class_imbalance", confidence=0.8,
                                     evidence=f"least/most frequent training class = {min(counts)}/{max(counts)} "
                                              f"= {ratio:.3g} (< {IMBALANCE})"))

        if d.n_val and d.duplicate_rows_train_val:
            share = d.duplicate_rows_train_val / d.n_val
            if share > OVERLAP:
                out.append(Diagnosis(cause="train_test_overlap", confidence=0.9,
                                     evidence=f"{d.duplicate_rows_train_val} of {d.n_val} validation rows ({share:.1%}) "
                                              f"also occur in training (> {OVERLAP:.0%})"))

        corr = [(abs(v), j) for j, v in enumerate(d.feature_target_corr)
                if v is not None and isinstance(v, (int, float)) and math.isfinite(v)]
        if corr:
            r, j = max(corr)
            if r > LEAKAGE:
                out.append(Diagnosis(cause="target_leakage", confidence=0.8,
                                     evidence=f"feature {j} has |r| = {r:.3f} with the target (> {LEAKAGE})"))

        shapes, short = set(), False
        for ep in record.trace:
            for entry in ep.batch_shapes:
                if entry and len(entry) >= 1 and entry[0] is not None:
                    shapes.add(tuple(entry[0])[1:])
            short |= bool(ep.expected_steps) and ep.steps < ep.expected_steps
        if len(shapes) > 1:
            out.append(Diagnosis(cause="ragged_batches", symptom="early_stop" if short else None, confidence=0.9,
                                 evidence=f"batches with {len(shapes)} different feature shapes: "
                                          + ", ".join(str(list(s)) for s in sorted(shapes))))
        return out
