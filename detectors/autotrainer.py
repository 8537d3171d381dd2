"""autotrainer: the problem monitor of AUTOTRAINER v1.0 (Zhang et al., ICSE 2021), over the trace.

Source: shiningrain/AUTOTRAINER @04f4033a6d46f7b430c00d4bd567eb6b29f97333 ("v1.0"):
`AutoTrainer/utils/monitor.py` (`gradient_issue` L162-183, `loss_issue` L102-139,
`max_delta_acc` L63-68, `ol_judge` L82-100, `IssueMonitor.determine` L265-285),
`utils.py` (`default_param` L23-34, `LossHistory.on_epoch_end` L105-122),
`modules.py` (`filtered_issue` L67-76) and `repair.py` (`repair_strategy` L328-337).

What is reproduced, rule by rule:

* parameters: the `params` dict every v1.0 driver passes (`demo_case/Gradient_Vanish_Case/demo.py`
  L68-79 and `demo_case/Oscillating_Loss_Case/demo.py` L68-79 at 04f4033a: beta_1=1e-3,
  beta_2=1e-4, beta_3=70, gamma=0.7, zeta=0.03, eta=0.2, delta=0.01, **Theta=0.6**), not
  `utils.py` `default_param` (L23-34, Theta=0.7), which a driver always overrides. DeepFD's copy of
  the monitor passes 0.6 too (ArabelaTso/DeepFD @9fe08951 `CodeBook/Config.py` L25), as does
  `AutoTrainer/reproduce.py` L100 (added after v1.0, at 03a463e); the post-v1.0 revision of the
  demo drivers at 03a463e passes 0.7 (`Gradient_Vanish_Case/demo.py` L87), so 0.6 is v1.0's value;
  `judgment_point=0.3`; the large-loss bound 1e5 of v1.0; `determine_threshold=1` (demo.py L83, what
  every shipped driver passes); check interval `epoch_3` (the `--check_interval` default), i.e.
  checks at 0-based epochs 0, 3, 6, ...
* gradients over trainable variables only (`utils.py` L98-99: `self.model.trainable_weights`,
  `optimizer.get_gradients(total_loss, weights)`): a layer whose `LayerInfo.trainable` is False is
  left out of first/last, as the original never sees it.
* gradient features, at every check: NaN/Inf in any gradient -> `nan_gradient`; otherwise, with
  `gra_rate = ||dW_first|| / ||dW_last||` over kernel gradients, `vanish += 1` if gra_rate < beta_1
  and ||dW_first|| < beta_2, `explode += 1` if gra_rate > beta_3, `relu += 1` if the global share
  of exactly-zero gradient entries >= gamma. The counters accumulate and are never reset.
* NaN/Inf weights -> `nan_weight`. NaN/Inf anywhere in the train or val loss history, or the
  last val_loss >= 1e5 -> `nan_loss` (and the accuracy features are skipped at that check).
* accuracy features, only once len(history) >= 0.3 * planned epochs: `not_converge` if
  max(val_acc) < Theta OR max(train_acc) < Theta (v1.0's OR); `sc_accuracy` if the largest one-epoch
  gain of val_acc and of train_acc are both < delta; `unstable` if `ol_judge` on train accuracy.
  All three latch once set.
* decision (`determine`, then `filtered_issue`): NaN features -> explode with no gating; gradient
  symptoms only when `not_converge or sc_accuracy`, in the order relu, explode, vanish, then
  `sc_accuracy` -> not_converge; `elif unstable` -> unstable. One issue survives by priority
  (vanish = explode = relu: 2 > not_converge = unstable: 1, ties to the first). The first non-empty
  issue list ends training in the original, so this detector reports once and then stays silent.

Rule table (rule -> original at 04f4033a -> threshold):

| rule | original | threshold |
|---|---|---|
| vanish | monitor.py `gradient_issue` L162-183 | gra_rate < beta_1=1e-3 and norm(dW_first) < beta_2=1e-4 |
| explode (gradient) | monitor.py `gradient_issue` L162-183 | gra_rate > beta_3=70 |
| relu | monitor.py `gradient_issue` L162-183 | zero-gradient share >= gamma=0.7 |
| explode (NaN) | monitor.py `loss_issue` L102-139 | NaN/Inf loss, weights, gradients; val_loss >= 1e5 |
| not_converge | monitor.py `loss_issue` L102-139 | max acc or max val_acc < Theta=0.6 |
| sc_accuracy | monitor.py `max_delta_acc` L63-68 | largest one-epoch gain < delta=0.01 |
| unstable | monitor.py `ol_judge` L82-100 | peak-valley >= zeta=0.03 in >= eta=20% of epochs |
| decision | monitor.py `determine` L265-285, modules.py `filtered_issue` L67-76 | determine_threshold=1 |

Scope. AUTOTRAINER reports *problems* (vanish, explode, relu, unstable, not_converge), never root
causes: `autotrainer` (this class) reports each problem as a taxonomy symptom only and declares
`causes = frozenset()`. `autotrainer-mapped` (`AutoTrainerMapped`) adds the problem -> cause mapping
below, which is trainwreck's, not the original's.

Symptom of each problem: vanish -> vanishing_gradient; explode -> nan_loss when a loss was
non-finite, else exploding_gradient; relu -> dead_units; unstable -> oscillation; not_converge ->
slow_convergence.

trainwreck's mapping to causes (`autotrainer-mapped` only), justified by the repairs AUTOTRAINER
applies (`repair_strategy('balance')`):
* vanish -> cause vanishing_gradient, symptom vanishing_gradient (fixes: selu, relu, BatchNorm:
  the textbook vanishing-gradient remedies; the detected feature is the same first/last ratio).
* explode -> cause exploding_gradient; symptom nan_loss when a loss was non-finite, else
  exploding_gradient (fixes: selu, relu, gradient clipping, tanh, BatchNorm).
* relu -> cause dying_relu, symptom dead_units (fixes: selu, BatchNorm, re-initialisation, LeakyReLU).
* unstable -> cause lr_too_high, symptom oscillation (fixes: Adam, lr_3 which *lowers* lr for
  every issue but not_converge, ReduceLROnPlateau, larger batches, momentum: all shrink the step).
* not_converge ("slow convergence") -> cause lr_too_low, symptom slow_convergence (fixes:
  another optimizer, lr_3 which *raises* lr for this issue only).

Deviations from the original, and why:
1. Gradients come from the trace's fixed probe batch (the first 64 training rows, learning phase
   0), not the first `batch_size` rows; kernel gradients are identified per weighted layer rather
   than by v1.0's alternating kernel/bias assumption (`grads[2*i]`), which breaks on BatchNorm.
2. The NaN/Inf test on gradients and weights reads `EpochTrace.nonfinite` (loss, weights or
   gradients non-finite) and the non-finiteness of grad_norms/weight_norms; the original inspects
   the arrays. Equivalent up to norm overflow.
3. The harness stops a run at a NaN loss (TerminateOnNaN), so the NaN epoch is often not a check
   epoch; the original would keep training and see the NaN at its next check (NaN weights stay
   NaN). So when training ends on a non-finite epoch that was not checked, `on_train_end` runs one
   last check on it.
4. Interrupted epochs (a crash mid-epoch) are skipped: Keras never calls `on_epoch_end` for them.
5. Regression (no 'accuracy' in the logs): the original needs accuracy (`loss_issue` reads
   `history['acc']`) and has no regression mode. Here the accuracy features are skipped, so the
   gate never opens: only the ungated NaN/large-loss -> explode rule can fire. A missing val_loss
   or val_accuracy is likewise skipped instead of crashing.
6. Frozen layers: a record written before the trace recorded trainability (every
   `LayerInfo.trainable` defaults to True) still carries zeros for frozen layers; nothing here can
   tell those from a truly zero gradient, so such a record is read as it says. The all-variable
   zero share (`grad_zero_fraction_all`) is the trace's, over trainable variables.
7. If the planned number of epochs is unknown (ModelSummary.epochs == 0), the 30% gate is open
   from the first check.
8. AUTOTRAINER gives no confidence; every diagnosis has confidence 1.0.
"""

from __future__ import annotations

import math

from .base import Diagnosis, OnlineDetector

PARAMS = {"beta_1": 1e-3, "beta_2": 1e-4, "beta_3": 70, "gamma": 0.7, "zeta": 0.03, "eta": 0.2,
          "delta": 0.01, "Theta": 0.6}   # demo.py L68-79 @04f4033a
CHECK_INTERVAL = 3          # checktype 'epoch_3'
JUDGMENT_POINT = 0.3        # loss_issue(judgment_point=0.3)
LARGE_LOSS = 1e5            # v1.0: test_loss[-1] >= 1e+5
DETERMINE_THRESHOLD = 1
PRIORITY = {"vanish": 2, "explode": 2, "relu": 2, "not_converge": 1, "unstable": 1}

_MAPPING = {  # issue -> (cause, symptom)
    "vanish": ("vanishing_gradient", "vanishing_gradient"),
    "explode": ("exploding_gradient", "exploding_gradient"),
    "relu": ("dying_relu", "dead_units"),
    "unstable": ("lr_too_high", "oscillation"),
    "not_converge": ("lr_too_low", "slow_convergence"),
}


SYMPTOMS = frozenset(s for _, s in _MAPPING.values()) | {"nan_loss"}


def _bad(v) -> bool:
    return v is None or not math.isfinite(v)


def max_delta_acc(acc: list) -> float:
    """monitor.py v1.0 L63-68: the largest one-step increase over the whole history."""
    max_delta = 0
    for i in range(len(acc) - 1):
        max_delta = max(max_delta, acc[i + 1] - acc[i])
    return max_delta


def ol_judge(acc: list, zeta: float, eta: float) -> bool:
    """monitor.py v1.0 L82-100: i-th local peak paired with i-th local valley of train accuracy."""
    maximum, minimum = [], []
    for i in range(1, len(acc) - 1):
        if acc[i] - acc[i - 1] >= 0 and acc[i] - acc[i + 1] >= 0:
            maximum.append(acc[i])
        if acc[i] - acc[i - 1] <= 0 and acc[i] - acc[i + 1] <= 0:
            minimum.append(acc[i])
    count = sum(1 for i in range(min(len(maximum), len(minimum))) if maximum[i] - minimum[i] >= zeta)
    return count >= eta * len(acc)


def accuracy(logs, prefix: str = "") -> float | None:
    """The epoch's accuracy in Keras's logs (prefix "val_" for validation): Keras 3's key, else the old `acc`."""
    return logs.get(f"{prefix}accuracy", logs.get(f"{prefix}acc"))


def frozen_layers(record) -> frozenset[str]:
    """Names of the layers the model summary marks non-trainable: the original's gradients
    (`model.trainable_weights`) never include them."""
    return frozenset(l.name for l in record.model.layers if not l.trainable)


class AutoTrainer(OnlineDetector):
    """AUTOTRAINER v1.0's problem monitor, symptom only (it names problems, not causes)."""
    name = "autotrainer"
    version = "1.1"
    source = "shiningrain/AUTOTRAINER@04f4033a6d46f7b430c00d4bd567eb6b29f97333"
    needs = frozenset({"model", "trace"})
    params = PARAMS
    causes = frozenset()
    symptoms = SYMPTOMS
    map_causes = False

    def __init__(self):
        self.hist = {"loss": [], "acc": [], "val_loss": [], "val_acc": []}
        self.feature = {"nan_gradient": False, "nan_weight": False, "nan_loss": False, "nonfinite_loss": False,
                        "vanish_gradient": 0, "explode_gradient": 0, "died_relu": 0,
                        "not_converge": False, "sc_accuracy": False, "unstable_loss": False}
        self.issue: str | None = None
        self.last_checked = -1
        self.last_epoch = None
        self.last_seen = None   # the latest completed EpochTrace
        self.evidence: dict[str, str] = {}   # feature -> why it was set, latest first

    def _why(self, feature: str, text: str) -> None:
        self.evidence[feature] = text

    # -- features -------------------------------------------------------------------------
    def _gradient_issue(self, trace, record) -> None:
        p, f = self.params, self.feature
        frozen = frozen_layers(record)
        norms = [g for layer, g in trace.grad_norms.items() if layer not in frozen]
        if trace.nonfinite or any(_bad(g) for g in norms):
            f["nan_gradient"] = True  # the trace's flag covers gradients and weights; both map to explode
            self._why("nan_gradient", f"non-finite gradients or weights at epoch {trace.epoch}")
            return
        if not norms:
            return
        first, last = float(norms[0]), float(norms[-1])
        if last == 0:  # numpy float division in the original: x/0 -> inf, 0/0 -> nan
            rate = math.inf if first > 0 else math.nan
        else:
            rate = first / last
        if rate < p["beta_1"] and first < p["beta_2"]:
            f["vanish_gradient"] += 1
            self._why("vanish_gradient", f"epoch {trace.epoch}: ||dW_first||/||dW_last|| = {rate:.3g} < {p['beta_1']} "
                                 f"and ||dW_first|| = {first:.3g} < {p['beta_2']}")
        if rate > p["beta_3"]:
            f["explode_gradient"] += 1
            self._why("explode_gradient", f"epoch {trace.epoch}: ||dW_first||/||dW_last|| = {rate:.3g} > {p['beta_3']}")
        zero = trace.grad_zero_fraction_all
        if zero is not None and zero >= p["gamma"]:
            f["died_relu"] += 1
            self._why("died_relu", f"epoch {trace.epoch}: {zero:.0%} of gradient entries are exactly 0 "
                                 f"(>= {p['gamma']})")

    def _weights_issue(self, trace) -> None:
        if any(_bad(w) for w in trace.weight_norms.values()):
            self.feature["nan_weight"] = True
            self._why("nan_weight", f"non-finite weights at epoch {trace.epoch}")

    def _loss_nonfinite(self) -> bool:
        return any(v is not None and not math.isfinite(v) for v in self.hist["loss"] + self.hist["val_loss"])

    def _loss_issue(self, epoch: int, total_epochs: int) -> None:
        p, f, h = self.params, self.feature, self.hist
        if self._loss_nonfinite():
            f["nan_loss"] = f["nonfinite_loss"] = True
            self._why("nan_loss", f"non-finite loss by epoch {epoch}")
            return
        if h["val_loss"] and h["val_loss"][-1] is not None and h["val_loss"][-1] >= LARGE_LOSS:
            f["nan_loss"] = True
            self._why("nan_loss", f"val_loss {h['val_loss'][-1]:.3g} >= {LARGE_LOSS:g} at epoch {epoch}")
            return
        if len(h["loss"]) < JUDGMENT_POINT * total_epochs:
            return
        acc = [a for a in h["acc"] if a is not None]
        val_acc = [a for a in h["val_acc"] if a is not None]
        if not acc:     # regression: no accuracy-based feature (deviation 5)
            return
        if ol_judge(acc, p["zeta"], p["eta"]) and not f["unstable_loss"]:
            f["unstable_loss"] = True
            self._why("unstable_loss", f"train accuracy oscillates (peak-valley >= {p['zeta']} in >= {p['eta']:.0%} "
                                 f"of {len(acc)} epochs)")
        if (val_acc and max(val_acc) < p["Theta"]) or max(acc) < p["Theta"]:
            if not f["not_converge"]:
                self._why("not_converge", f"max accuracy {max(acc):.3f} / val {max(val_acc) if val_acc else math.nan:.3f}"
                                     f" below Theta={p['Theta']}")
            f["not_converge"] = True
        if max_delta_acc(acc) < p["delta"] and (not val_acc or max_delta_acc(val_acc) < p["delta"]):
            if not f["sc_accuracy"]:
                self._why("sc_accuracy", f"largest one-epoch accuracy gain {max_delta_acc(acc):.4f} < delta={p['delta']}")
            f["sc_accuracy"] = True

    def _determine(self) -> list[str]:
        f, t = self.feature, DETERMINE_THRESHOLD
        issues = []
        if f["nan_loss"] or f["nan_weight"] or f["nan_gradient"]:
            issues.append("explode")
        if f["not_converge"] or f["sc_accuracy"]:
            if f["died_relu"] >= t:
                issues.append("relu")
            elif f["explode_gradient"] >= t:
                issues.append("explode")
            elif f["vanish_gradient"] >= t:
                issues.append("vanish")
            elif f["sc_accuracy"]:
                issues.append("not_converge")
        elif f["unstable_loss"]:
            issues.append("unstable")
        return issues

    # -- the check ------------------------------------------------------------------------
    def _check(self, trace, record) -> list[Diagnosis]:
        self.last_checked = trace.epoch
        if self.issue is not None:
            return []
        self._gradient_issue(trace, record)
        self._weights_issue(trace)
        self._loss_issue(trace.epoch, int(record.model.epochs or 0))
        issues = self._determine()
        if not issues:
            return []
        self.issue = max(issues, key=lambda i: PRIORITY[i])  # max keeps the first of equal priority
        cause, symptom = _MAPPING[self.issue]
        if self.issue == "explode" and self.feature["nonfinite_loss"]:
            symptom = "nan_loss"
        feats = {"explode": ("nan_loss", "nan_weight", "nan_gradient", "explode_gradient"), "relu": ("died_relu",),
                 "vanish": ("vanish_gradient",), "not_converge": ("sc_accuracy",), "unstable": ("unstable_loss",)}
        why = [self.evidence[k] for k in feats[self.issue] if k in self.evidence]
        evidence = f"AUTOTRAINER issue '{self.issue}' at epoch {trace.epoch}: " + "; ".join(why[:2])
        return [Diagnosis(cause=cause if self.map_causes else None, symptom=symptom, confidence=1.0,
                          epoch=trace.epoch, evidence=evidence)]

    def on_epoch_end(self, epoch, trace, record):
        if not trace.completed:
            return []
        logs = trace.logs
        self.hist["loss"].append(logs.get("loss"))
        self.hist["acc"].append(accuracy(logs))
        self.hist["val_loss"].append(logs.get("val_loss"))
        self.hist["val_acc"].append(accuracy(logs, "val_"))
        self.last_seen = trace
        if epoch % CHECK_INTERVAL != 0:
            return []
        return self._check(trace, record)

    def on_train_end(self, record):
        t = self.last_seen
        if self.issue is None and t is not None and t.epoch != self.last_checked:
            if t.nonfinite or self._loss_nonfinite():   # deviation 3
                return self._check(t, record)
        return []


class AutoTrainerMapped(AutoTrainer):
    """`autotrainer` plus trainwreck's problem -> cause mapping (see the module docstring): the causes
    are this project's reading of AUTOTRAINER's repairs, not something the original reports."""
    name = "autotrainer-mapped"
    causes = frozenset(c for c, _ in _MAPPING.values())
    map_causes = True
