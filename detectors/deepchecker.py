"""deepchecker: TheDeepChecker's data pre-checks (Ben Braiek and Khomh), re-implemented from its
published thresholds.

Source: thedeepchecker/thedeepchecker @d0a2b3a5339b50c3f0b147231e295d3db25017fb,
`deep_checker/config/settings.yaml` (PreCheck.Data) for the thresholds, and the behaviour
described by `checkers.py` `PreCheck._pre_check_features` / `_pre_check_targets` and
`metadata.py` (label balance). The repository has no licence file, so nothing is copied: the
rules below are written from the thresholds and the described semantics.

Rule table:

| check | settings.yaml | rule | reported as |
|---|---|---|---|
| features constant | - | a feature's std == 0 | not reported (no taxonomy term) |
| features normalised | normalized_data_mins [0.0, -1.0], normalized_data_maxs [1.0] | max within 0.01 of 1 and min within 0.01 of 0 or -1: the check stops (every later feature passes) | - |
| features unnormalized | - | otherwise, not (std within 0.01 of 1 and mean within 0.01 of 0) | cause unscaled_features |
| unbalanced labels | labels_perp_min_thresh 0.5 | (exp(H(p)) - 1) / (k - 1) < 0.5, p the label frequencies | cause class_imbalance |
| targets unnormalized (regression) | - | as for features, on the target | not reported (no taxonomy term) |

"Almost equal" is an absolute difference <= 0.01 (utils.almost_equal's rtol=1e-2 is applied to
the absolute error). Homogeneous data (images: inputs of rank > 1) are checked as one feature,
over all values; here the global mean and std are pooled from the per-channel ones (exact, since
every channel has the same count).

Not evaluable from the record (they need the weights, a session to run, or their own training
protocol): PreCheck Initial_Weight (F-test of the initial weight variance against LeCun/He/Glorot,
f_test_alpha 0.1), Initial_Bias, Initial_Loss, Gradient (numerical gradient check), Proper_Fitting
and Instance_wise_Operation; every OverfitCheck (they run on TheDeepChecker's own single-batch
overfitting loop, with its start/period/patience in iterations, not on the user's training run)
and PostCheck Corrupted_Labels.

Deviations: the checks read DataProfile (per-feature min/max/mean/std over the training split)
where the original computes them on its own sample of the data; labels of a sparse multi-class
task use the class counts (the original expects one-hot or binary targets, whose column means are
the same frequencies). No confidence in the original: 1.0.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from .base import Detector, Diagnosis

NORMALIZED_MINS, NORMALIZED_MAXS = (0.0, -1.0), (1.0,)
LABELS_PERP_MIN = 0.5
ATOL = 1e-2


def almost_equal(a: float, b: float) -> bool:
    return abs(a - b) <= ATOL


def label_balance(counts: list[int]) -> float:
    """Normalised perplexity of the label distribution: 0 one label only, 1 uniform."""
    k = max(len(counts), 2)
    p = np.asarray(counts, dtype="float64")
    p = p / p.sum()
    return float((math.exp(stats.entropy(p)) - 1) / (k - 1))


def feature_columns(data) -> list[tuple[float, float, float, float]]:
    """(min, max, mean, std) per feature, or one tuple over everything for homogeneous inputs."""
    cols = list(zip(data.feature_min, data.feature_max, data.feature_mean, data.feature_std))
    if len(data.input_shape) > 1 and cols:   # images: one feature over all values
        means = np.asarray([c[2] for c in cols], dtype="float64")
        stds = np.asarray([c[3] for c in cols], dtype="float64")
        mean = float(means.mean())
        std = float(np.sqrt(np.mean(stds ** 2 + (means - mean) ** 2)))
        return [(min(c[0] for c in cols), max(c[1] for c in cols), mean, std)]
    return cols


class DeepChecker(Detector):
    """TheDeepChecker's PreCheck.Data rules on the data profile."""
    name = "deepchecker"
    version = "1.0"
    source = "thedeepchecker/thedeepchecker@d0a2b3a5339b50c3f0b147231e295d3db25017fb deep_checker/config/settings.yaml"
    needs = frozenset({"data"})
    causes = frozenset({"unscaled_features", "class_imbalance"})
    symptoms = frozenset()
    time_budget_s = 2.0

    def _features(self, data) -> list[Diagnosis]:
        for idx, (lo, hi, mean, std) in enumerate(feature_columns(data)):
            if any(v is None or not math.isfinite(v) for v in (lo, hi, mean, std)):
                continue
            if std == 0.0:
                continue        # "features constant": no taxonomy term
            if any(almost_equal(hi, m) for m in NORMALIZED_MAXS) and any(almost_equal(lo, m) for m in NORMALIZED_MINS):
                return []       # the original stops checking at the first normalised feature
            if not (almost_equal(std, 1.0) and almost_equal(mean, 0.0)):
                return [Diagnosis(cause="unscaled_features", evidence=(
                    f"DeepChecker: feature {idx} seems to be unnormalized (range [{lo:.3g}, {hi:.3g}], "
                    f"mean {mean:.3g}, std {std:.3g})"))]
        return []

    def _targets(self, data) -> list[Diagnosis]:
        counts = [int(v) for v in data.class_counts_train.values()]
        if data.task_kind != "classification" or len(counts) < 1 or sum(counts) == 0:
            return []
        balance = label_balance(counts)
        if balance < LABELS_PERP_MIN:
            return [Diagnosis(cause="class_imbalance", evidence=(
                f"DeepChecker: labels are unbalanced: normalised perplexity {balance:.3f} < {LABELS_PERP_MIN}"))]
        return []

    def diagnose(self, record):
        return self._features(record.data) + self._targets(record.data)
