"""deepfd: DeepFD's runtime features and classifier family (Cao et al., ICSE 2022), trained on the corpus.

Source: ArabelaTso/DeepFD @9fe089510cf10af35b0c2cba024d9732a1048df4 (Apache-2.0), under `CodeBook/`:
`Callbacks/Monitor.py` (the features), `Callbacks/LossHistory.py` (when they are taken),
`Utils/analysis_utils.py` and `Utils/cal_stats.py` (the aggregation), `Config.py` (parameters),
`MultiLabelClassification/MultiLabelClassifier.py` and `predictClassifier.py` (the classifiers).

DeepFD is a learned diagnoser: a monitor writes one row of 22 values at every snapshot of a run, the
rows are summarised by 8 statistics into one feature vector per run, and classifiers trained on
labelled runs predict the fault types. Here the classifiers are trained by the harness
(`trainwreck.crossfit`) on the corpus's own runs, with grouped cross-validation: the runs of a case are
only ever diagnosed by a model fitted on other cases. The detector never receives a label: `fit` gets
the features and labels of the training cases; `diagnose` gets one record and the fitted model.

Rule table (rule -> original at 9fe08951 -> threshold):

| rule | original | threshold / value |
|---|---|---|
| parameters | Config.py L15-26 | beta_1=1e-3, beta_2=1e-4, beta_3=70, gamma=0.7, zeta=0.03, eta=0.2, delta=0.01, Theta=0.6 |
| nan_gradient | Monitor.py `gradient_issue` L213-216 | any non-finite gradient (and the other gradient rules skipped) |
| vanish_gradient | Monitor.py L218-219, `gradient_norm` L80-89 | gra_rate = norm(dW_first)/norm(dW_last) < beta_1 and norm(dW_first) < beta_2 |
| explode_gradient | Monitor.py L220-221 | gra_rate > beta_3 |
| died_relu | Monitor.py L222-223, `gradient_zero_radio` L39-53 | share of exactly-zero gradient entries >= gamma |
| nan_weight | Monitor.py `weights_issue` L189-192 | any non-finite weight (the other weight rules skipped) |
| large_weight | Monitor.py L193-196 | some tensor with max abs(w) > 5, counted once per snapshot |
| cons_mean_weight / cons_std_weight | Monitor.py L198-202 | tensors whose mean / std equals the previous snapshot's |
| weight_change_little | Monitor.py L268 | never updated: always 0 |
| nan_loss | Monitor.py `loss_issue` L126-130 | non-finite loss or val_loss, or val_loss >= 1e5 (the loss rules below skipped) |
| nan_acc | Monitor.py L132-135 | non-finite accuracy (the rules below skipped) |
| judgment point | Monitor.py L136-140 | the rules below only once len(history) >= 0.3 * planned epochs |
| test_not_well | Monitor.py L141-144 | acc - val_acc >= 0.1 (>= 0.07 when acc > 0.9) |
| test_turn_bad | Monitor.py L151-160 | the last step: loss falls by > 1e-2 while val_loss rises by > 1e-2 |
| unstable_loss | Monitor.py `ol_judge` L92-110 | peak-valley >= zeta in >= eta of the history |
| not_converge | Monitor.py L164-166 | max(val_acc) < Theta or max(acc) < Theta |
| sc_accuracy | Monitor.py L167-168, `max_delta_acc` L72-77 | largest one-step gain of acc and of val_acc < delta |
| increase_loss / decrease_acc | Monitor.py L170-174 | counters of loss[-1] > loss[-2], acc[-1] < acc[-2] |
| loss, acc, val_loss, val_acc | Monitor.py L121-124 | the last history entry (0.0 when falsy) |
| aggregation | cal_stats.py L245-246, analysis_utils.py `extract_feature` L53-73, Config.py L1 | the snapshots' NaN filled with 0, then mean, std, skew, median, var, sem, max, min per column (pandas: ddof 1, bias-corrected skew) |
| final metrics | cal_stats.py L206-217 | ft_loss, ft_accuracy, ft_val_loss, ft_val_accuracy of the last epoch |
| preprocessing | MultiLabelClassifier.py L188-196 | inf -> NaN -> 0; min-max per feature, constant features -> 0 |
| classifiers | MultiLabelClassifier.py L221-240 | KNN(n_neighbors=5), DecisionTree(gini, max_depth=5), RandomForest(max_depth=10, n_estimators=32, max_features=60) |
| labels | cal_stats.py L196-198, Config.py L3 | one binary output per fault type, a correct run all zeros |
| combination | predictClassifier.py L162-205, analysis_utils.py `cal_metrics_voting` L91-98 | union of the three classifiers' predictions |

Which columns. `LossHistory` writes the CSV header once from the monitor's first 18 keys (L111), then
rows of 22 values (the monitor adds loss, acc, val_loss and val_acc later, Monitor.py L121-124), so
`pd.read_csv` takes the first four values as the row index: the released classifiers were trained
without not_converge, unstable_loss, nan_loss and test_not_well, and every later column holds the
value four places on (their `ft_increase_loss_*` is the training loss). `deepfd` trains on exactly the
columns the released classifiers saw, named here by what they hold: 18 columns x 8 statistics + 4 final
metrics = 148 features, the `n_features_in_` of the shipped Decision Tree and Random Forest pickles.

Deviations, each with its reason:
1. Labels are trainwreck's causes (one binary output per cause in the training folds, a fixed or trap
   run all zeros), not DeepFD's five mutation types (opt, lr, act, loss, epoch): the classifiers are
   retrained on this corpus, as the issue asks; the shipped pickles cannot be used (their labels are
   DeepFD's, and scikit-learn >= 1.3 refuses to load them).
2. Snapshots: one per epoch, at its end, on the trace's probe batch. The original takes one at every
   256th batch of an epoch (`checktype='batch_256'`, run_all.py L106), on the first `batch_size`
   training samples, and its history mixes per-batch entries (whose val_loss/val_acc are None, stored
   as 0) with per-epoch ones. On this corpus's datasets (< 256 batches an epoch) the original too
   snapshots once an epoch, but at its first batch; with per-epoch history the validation columns hold
   real values and the rules guarded by `val_acc is not None` run as written.
3. Weights: the trace keeps each kernel's norm, mean and variance, not biases and not the maximum.
   cons_mean/std_weight compare kernels only; large_weight uses the per-step trace's kernel min/max
   when the run has one (`optional = {"steps"}`) and otherwise fires only when it is certain
   (root mean square sqrt(var + mean^2) > 5, a lower bound of max abs(w)).
4. gra_rate uses the trainable kernels (the trace has no bias gradients); the original's even/odd index
   split of `trainable_weights` breaks on layers without a bias and on LSTMs (three weights).
5. Regression runs have no accuracy: the accuracy values are NaN, which DeepFD's own NaN fill turns to 0
   (cal_stats.py L246); the original raises KeyError on `history['acc']`.
6. Preprocessing is fitted on the training folds and applied to the held-out run. The original min-max
   scales the whole table before its train/test split (MultiLabelClassifier.py L188-200) and rescales
   each prediction set by itself (predictClassifier.py L148-155), which would make one run's diagnosis
   depend on the others'.
7. Seeds: the decision tree and the forest get `random_state=seed` (the original passes none), so the
   bench is reproducible. KNN keeps n_neighbors=5: the original passes `len(labels)`, which is 5 in
   its label set.
8. Not reproduced: the prediction script's post-hoc offsets `[0, 2, 3, 6, 5]` subtracted from the vote
   sums of 9-run blocks (predictClassifier.py L193-203), tuned to DeepFD's benchmark and label set;
   a run is diagnosed by itself here. The MLP classifier is trained by the original but never used to
   predict (L162-205), so it is left out. Latency: DeepFD diagnoses a finished run, so the bench does
   not replay it epoch by epoch; its latency is the run's length.
9. Confidence: DeepFD gives none; here it is the share of the three classifiers that predict the cause.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from trainwreck import taxonomy

from .autotrainer import accuracy, frozen_layers, max_delta_acc, ol_judge
from .base import Diagnosis, LearnedDetector

__all__ = ["DeepFD", "PARAMS", "COLUMNS", "OPERATORS", "snapshot_rows", "aggregate", "run_features"]

PARAMS = {"beta_1": 1e-3, "beta_2": 1e-4, "beta_3": 70, "gamma": 0.7, "zeta": 0.03, "eta": 0.2,
          "delta": 0.01, "Theta": 0.6}       # Config.py L15-26
JUDGMENT_POINT = 0.3                         # Monitor.py L114
EPSILON = 10e-3                              # Monitor.py L114
LARGE_WEIGHT = 5                             # Monitor.py L179
LARGE_LOSS = 1e5                             # Monitor.py L128
OPERATORS = ("mean", "std", "skew", "median", "var", "sem", "max", "min")   # Config.py L1
MONITOR_KEYS = ("not_converge", "unstable_loss", "nan_loss", "test_not_well", "test_turn_bad", "sc_accuracy",
                "died_relu", "vanish_gradient", "explode_gradient", "nan_gradient", "large_weight", "nan_weight",
                "weight_change_little", "decrease_acc", "increase_loss", "cons_mean_weight", "cons_std_weight",
                "nan_acc", "loss", "acc", "val_loss", "val_acc")     # a row's 22 values, in order (Monitor.py L252-276)
# The columns the released classifiers were trained on: the header shift drops the first four values.
COLUMNS = MONITOR_KEYS[4:]
FINAL = ("loss", "accuracy", "val_loss", "val_accuracy")             # cal_stats.py L206-217
CLASSIFIERS = ("knn", "decision_tree", "random_forest")


def _nonfinite(values) -> bool:
    return any(v is not None and not math.isfinite(v) for v in values)


class _Monitor:
    """Monitor.py's `IssueMonitor` feature dict, updated at each snapshot (its flags latch, counters grow)."""

    def __init__(self, total_epochs: int, frozen: frozenset):
        self.f = {k: 0.0 for k in MONITOR_KEYS}
        self.total, self.frozen = total_epochs, frozen
        self.last_kernels: dict | None = None

    def gradient_issue(self, e) -> None:
        f, p = self.f, PARAMS
        norms = [g for layer, g in e.grad_norms.items() if layer not in self.frozen]
        if e.grads_nonfinite or _nonfinite(norms):
            f["nan_gradient"] = 1.0
            return
        if not norms:
            return
        first, last = float(norms[0]), float(norms[-1])
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = float(np.float64(first) / np.float64(last))
        if rate < p["beta_1"] and first < p["beta_2"]:
            f["vanish_gradient"] += 1
        if rate > p["beta_3"]:
            f["explode_gradient"] += 1
        if e.grad_zero_fraction_all is not None and e.grad_zero_fraction_all >= p["gamma"]:
            f["died_relu"] += 1

    def weights_issue(self, e) -> None:
        f = self.f
        if e.weights_nonfinite or _nonfinite(e.weight_norms.values()):
            f["nan_weight"] = 1.0
            return
        if self._large(e):
            f["large_weight"] += 1
        kernels = {k: (e.weight_mean.get(k), e.weight_var.get(k)) for k in e.weight_norms}
        if self.last_kernels is not None:
            for k, (mean, var) in kernels.items():
                if k in self.last_kernels:
                    f["cons_mean_weight"] += mean == self.last_kernels[k][0]
                    f["cons_std_weight"] += var == self.last_kernels[k][1]
        self.last_kernels = kernels

    @staticmethod
    def _large(e) -> bool:
        if e.step_trace:   # the last recorded step's kernel extremes (deviation 3)
            s = e.step_trace[-1]
            return any(max(abs(lo), abs(hi)) > LARGE_WEIGHT for lo, hi in
                       zip(s.weight_min.values(), s.weight_max.values()))
        return any(math.sqrt(max(0.0, v + m * m)) > LARGE_WEIGHT
                   for m, v in zip(e.weight_mean.values(), e.weight_var.values()))

    def loss_issue(self, h: dict) -> None:
        f, p = self.f, PARAMS
        for k in ("loss", "acc", "val_loss", "val_acc"):
            v = h[k][-1]
            f[k] = v if v else 0.0
        if _nonfinite(h["loss"]) or _nonfinite(h["val_loss"]) or (h["val_loss"][-1] is not None
                                                                   and h["val_loss"][-1] >= LARGE_LOSS):
            f["nan_loss"] += 1
            return
        if _nonfinite(h["acc"]) or _nonfinite(h["val_acc"]):
            f["nan_acc"] += 1
            return
        if len(h["loss"]) < JUDGMENT_POINT * self.total:
            return
        acc, val_acc, loss, val_loss = h["acc"], h["val_acc"], h["loss"], h["val_loss"]
        if None in acc:    # regression (deviation 5): no accuracy rule can run
            return
        if val_acc[-1] is not None and ((acc[-1] <= 0.9 and acc[-1] - val_acc[-1] >= 0.1)
                                        or (acc[-1] > 0.9 and acc[-1] - val_acc[-1] >= 0.07)):
            f["test_not_well"] += 1
        if len(loss) > 1 and None not in (loss[-1], loss[-2], val_loss[-1], val_loss[-2]):
            f["test_turn_bad"] = float(loss[-1] - loss[-2] < -EPSILON and val_loss[-1] - val_loss[-2] > EPSILON)
        if ol_judge(acc, p["zeta"], p["eta"]):
            f["unstable_loss"] = 1.0
        if val_acc[0] is not None and None not in val_acc:
            if max(val_acc) < p["Theta"] or max(acc) < p["Theta"]:
                f["not_converge"] = 1.0
            if max_delta_acc(val_acc) < p["delta"] and max_delta_acc(acc) < p["delta"]:
                f["sc_accuracy"] = 1.0
        if len(loss) > 1:
            f["increase_loss"] += float(loss[-1] > loss[-2])
        if len(acc) > 1:
            f["decrease_acc"] += float(acc[-1] < acc[-2])


def snapshot_rows(record) -> list[dict]:
    """One row of MONITOR_KEYS per completed epoch: `IssueMonitor.determine`'s order, gradients, weights, loss."""
    mon = _Monitor(int(record.model.epochs or 0), frozen_layers(record))
    h: dict[str, list] = {"loss": [], "acc": [], "val_loss": [], "val_acc": []}
    rows = []
    for e in record.trace:
        if not e.completed:
            continue
        h["loss"].append(e.logs.get("loss"))
        h["acc"].append(accuracy(e.logs))
        h["val_loss"].append(e.logs.get("val_loss"))
        h["val_acc"].append(accuracy(e.logs, "val_"))
        mon.gradient_issue(e)
        mon.weights_issue(e)
        mon.loss_issue(h)
        rows.append({k: (math.nan if v is None else float(v)) for k, v in mon.f.items()})
    return rows


def _stat(op: str, x: np.ndarray) -> float:
    """pandas' `DataFrame.agg(op)` on one column: NaN skipped, ddof 1, bias-corrected skew."""
    x = x[~np.isnan(x)]
    n = len(x)
    if op in ("mean", "median", "max", "min"):
        return float(getattr(np, op)(x)) if n else math.nan
    if op in ("std", "var", "sem"):
        if n < 2:
            return math.nan
        var = float(np.var(x, ddof=1))
        return {"var": var, "std": math.sqrt(var), "sem": math.sqrt(var) / math.sqrt(n)}[op]
    if n < 3:    # skew
        return math.nan
    d = x - x.mean()
    m2, m3 = float(np.mean(d ** 2)), float(np.mean(d ** 3))
    if m2 <= 1e-14 * max(1.0, float(np.mean(x ** 2))):   # pandas zeroes a variance that is rounding error
        return 0.0
    return math.sqrt(n * (n - 1)) / (n - 2) * m3 / m2 ** 1.5


def aggregate(rows: list[dict]) -> dict[str, float]:
    """`extract_feature`: ft_{column}_{statistic} over the snapshots, for the COLUMNS the classifiers saw,
    after the snapshot table's NaN are filled with 0 (`df.fillna(0.0)`, cal_stats.py L245-246; an
    infinity stays one)."""
    out = {}
    for col in COLUMNS:
        x = np.array([r[col] for r in rows], dtype=np.float64)
        x[np.isnan(x)] = 0.0
        with np.errstate(all="ignore"):
            for op in OPERATORS:
                out[f"ft_{col}_{op}"] = _stat(op, x)
    return out


def run_features(record) -> dict[str, float]:
    """The 148 features of one run (NaN where a value is unknown; `fit` and `diagnose` fill it with 0)."""
    out = aggregate(snapshot_rows(record))
    done = [e for e in record.trace if e.completed]
    last = done[-1].logs if done else {}
    for k in FINAL:
        v = last.get(k, last.get(k.replace("accuracy", "acc")))
        out[f"ft_{k}"] = math.nan if v is None else float(v)
    return out


def _matrix(rows: list[Mapping[str, float]], names: list[str]) -> np.ndarray:
    x = np.array([[r.get(n, math.nan) for n in names] for r in rows], dtype=np.float64)
    x[~np.isfinite(x)] = 0.0     # inf -> NaN -> 0 (MultiLabelClassifier.py L190-192)
    return x


class FittedDeepFD:
    """The three classifiers, the min-max scaling of their training rows, and the label columns."""

    def __init__(self, names: list[str], lo: np.ndarray, span: np.ndarray, labels: list[str], models: dict):
        self.names, self.lo, self.span, self.labels, self.models = names, lo, span, labels, models

    def scale(self, x: np.ndarray) -> np.ndarray:
        keep = self.span > 0
        return np.where(keep, (x - self.lo) / np.where(keep, self.span, 1.0), 0.0)

    def votes(self, features: list[Mapping[str, float]]) -> list[dict[str, int]]:
        """Per run, how many of the classifiers predict each label (their union: any vote > 0)."""
        x = self.scale(_matrix(features, self.names))
        total = np.zeros((len(features), len(self.labels)), dtype=int)
        for model in self.models.values():
            total += (np.asarray(model.predict(x)).reshape(len(features), len(self.labels)) > 0)
        return [dict(zip(self.labels, map(int, row))) for row in total]


class DeepFD(LearnedDetector):
    """DeepFD's features and classifiers, fitted per fold by the harness (see the module docstring)."""
    name = "deepfd"
    version = "1.0"
    source = "ArabelaTso/DeepFD@9fe089510cf10af35b0c2cba024d9732a1048df4"
    needs = frozenset({"model", "trace", "steps"})
    optional = frozenset({"steps"})
    causes = frozenset(taxonomy.cause_names()) - {taxonomy.HEALTHY}
    symptoms = frozenset()
    replay = False   # a post-mortem tool: diagnosed once, on the finished run (deviation 8)

    def features(self, record) -> dict[str, float]:
        return run_features(record)

    @classmethod
    def fit(cls, features: list[Mapping[str, float]], labels: list[str], seed: int = 0) -> FittedDeepFD:
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.neighbors import KNeighborsClassifier
        from sklearn.tree import DecisionTreeClassifier

        names = sorted({n for f in features for n in f})
        x = _matrix(features, names)
        lo, span = x.min(axis=0), x.max(axis=0) - x.min(axis=0)
        causes = sorted({c for c in labels if c != taxonomy.HEALTHY})
        fitted = FittedDeepFD(names, lo, span, causes, {})
        if not causes:   # nothing but healthy runs to learn from: a model that names nothing
            return fitted
        y = np.array([[int(label == c) for c in causes] for label in labels])
        xs = fitted.scale(x)
        fitted.models = {
            "knn": KNeighborsClassifier(n_neighbors=min(5, len(xs))),
            "decision_tree": DecisionTreeClassifier(criterion="gini", max_depth=5, random_state=seed),
            "random_forest": RandomForestClassifier(max_depth=10, n_estimators=32, max_features=min(60, len(names)),
                                                    random_state=seed),
        }
        for m in fitted.models.values():
            m.fit(xs, y)
        return fitted

    def diagnose(self, record) -> list[Diagnosis]:
        return self.diagnose_many([record])[0]

    def diagnose_many(self, records) -> list[list[Diagnosis]]:
        """One predict call per classifier for all the records (a fold's held-out runs, in the bench)."""
        out: list[list[Diagnosis]] = [[] for _ in records]
        todo = [i for i, r in enumerate(records) if any(e.completed for e in r.trace)]
        if self.model is None or not self.model.labels or not todo:
            return out
        n_models = len(self.model.models)
        for i, votes in zip(todo, self.model.votes([self.features(records[i]) for i in todo])):
            out[i] = [Diagnosis(cause=c, confidence=round(n / n_models, 4),
                                evidence=f"DeepFD: {n} of {n_models} classifiers ({', '.join(self.model.models)}) "
                                         f"predict {c}")
                      for c, n in sorted(votes.items(), key=lambda t: -t[1]) if n > 0]
        return out
