"""umlaut: the heuristics of UMLAUT (Schoop, Huang and Hartmann, CHI 2021), over the record.

Source: BerkeleyHCI/umlaut @68c2a0226d14c1ef8c8bc7856d594b8a4a3c6c68, `umlaut/heuristics.py`
(Apache-2.0), error titles in `umserver/errors.py`. `run_pretrain_heuristics` (L55-62) runs once
before training, `run_epoch_heuristics` (L65-75) at the end of every epoch.

Rule table (heuristic -> heuristics.py line -> threshold -> taxonomy):

| heuristic | line | threshold | reported as |
|---|---|---|---|
| check_softmax_computed_before_loss | L142-153 | last layer's name lacks "softmax" and the loss is not from_logits | cause wrong_output_activation |
| check_missing_activations | L194-208 | a non-last layer whose config activation is "linear" | cause underfitting |
| check_no_activation_last_layer | L211-223 | last (or, after a "softmax"-named layer, second-to-last) activation != "linear" | cause wrong_output_activation |
| check_dropout_p_less_than_half | L226-234 | a Dropout layer (not last) with rate > 0.5 | cause underfitting |
| check_input_normalization | L101-113 | np.min(x) < -1 or np.max(x) > 1 | cause unscaled_features, symptom out_of_range_values |
| check_nan_in_loss | L130-139 | loss NaN and np.isnan(x).any() | cause nan_inputs, symptom nan_loss |
| check_learning_rate_range | L156-163 | lr > 0.01 (high) or lr < 1e-7 (low) | cause lr_too_high / lr_too_low |
| check_overfitting | L166-176 | val_loss rose and loss did not, epoch over epoch | cause overfitting, symptom train_val_gap |
| check_high_validation_acc | L179-191 | epoch >= 3 and (val_acc > 0.95 or val_acc - acc > 0.05) | symptom inflated_validation |

Not evaluable / not reported:
* check_input_shape (L86-98, images not N,H,W,C) and check_input_is_floating (L116-127): both are
  evaluable from DataProfile.input_shape / x_dtype, but the taxonomy has no term for a wrong image
  layout or an integer input, so they are not reported (stated here rather than forced onto a term).
* check_accuracy_is_added_to_metrics, check_validation_is_added_to_fit (L78-83): `NotImplemented`
  in the original.

Mapping to the taxonomy is ours, from each error's title and subtitle in `umserver/errors.py`:
"Missing activation functions ... collapse" and "High dropout rate ... can prevent your model from
learning" -> underfitting (too little effective capacity); "Missing Softmax layer before loss" and
"Last model layer has nonlinear activation" -> wrong_output_activation; "Check validation accuracy"
names no cause ("labeling or splitting"), so symptom only.

Deviations, and why:
1. The input checks read the training split's profile (DataProfile.input_min/max, nan_count) where
   UMLAUT reads the last batch it saw (its own TODO, L117); np.min/np.max semantics are kept: a
   NaN anywhere makes both NaN, so check_input_normalization never fires on NaN data
   (`deepdiagnosis.input_range`). nan_count also counts validation inputs.
2. The loss is taken as a string (the record's compile config), so from_logits is False, as for
   every string loss in the original (L146-149).
3. UMLAUT lists an error once with every epoch it fired at; here each error is reported once, at the
   first epoch (pretrain errors with epoch None).
4. The original raises KeyError when val_loss or accuracy is missing from the logs (regression,
   no validation data); here those two checks are skipped.
5. The learning rate is the epoch's (EpochTrace.learning_rate, schedules applied) as
   `K.eval(model.optimizer.lr)` reads it, else the compiled one.
6. No confidence in the original: 1.0.
"""

from __future__ import annotations

import math

from .base import Diagnosis, OnlineDetector
from .deepdiagnosis import input_range

LR_HIGH, LR_LOW = 0.01, 1e-7
VAL_ACC_HIGH, VAL_OVER_TRAIN = 0.95, 0.05
WARMUP_EPOCHS = 3
DROPOUT_MAX = 0.5


def _finite(v) -> bool:
    return v is not None and math.isfinite(v)


def _acc(logs, val: bool):
    """_get_acc_key L14-20: 'acc' if present and truthy, else 'accuracy'."""
    p = "val_" if val else ""
    return logs.get(p + "acc") or logs.get(p + "accuracy")


def pretrain_findings(model) -> list[tuple[str, Diagnosis]]:
    """run_pretrain_heuristics L55-62 on the model summary."""
    out = []
    layers = list(model.layers)
    if not layers:
        return out
    last_softmax = "softmax" in layers[-1].name
    if not last_softmax:    # L142-153: from_logits is False for a string loss
        out.append(("no_softmax", Diagnosis(cause="wrong_output_activation", epoch=None,
                                            evidence=f"UMLAUT: Missing Softmax layer before loss (last layer "
                                                     f"{layers[-1].name!r}, loss {model.loss!r} not from_logits)")))
    linear = [(i, l.name) for i, l in enumerate(layers[:-1]) if l.activation == "linear"
              and not (i == len(layers) - 2 and last_softmax)]
    if linear:              # L194-208
        out.append(("missing_activation", Diagnosis(cause="underfitting", epoch=None,
                                                    evidence="UMLAUT: Missing activation functions: " + ", ".join(
                                                        f"layer {i} ({n}) is linear" for i, n in linear))))
    last = layers[-2] if last_softmax and len(layers) > 1 else layers[-1]
    if last.activation and last.activation != "linear":   # L211-223: only layers with an activation key
        out.append(("final_activation", Diagnosis(cause="wrong_output_activation", epoch=None,
                                                  evidence=f"UMLAUT: Last model layer {last.name!r} has nonlinear "
                                                           f"activation {last.activation!r}")))
    high = [(i, l.name, l.dropout_rate) for i, l in enumerate(layers[:-1])
            if l.kind == "Dropout" and l.dropout_rate > DROPOUT_MAX]
    if high:                # L226-234
        out.append(("high_dropout", Diagnosis(cause="underfitting", epoch=None,
                                              evidence="UMLAUT: High dropout rate: " + ", ".join(
                                                  f"layer {i} ({n}) rate {r}" for i, n, r in high))))
    return out


class Umlaut(OnlineDetector):
    """UMLAUT's pretrain and per-epoch heuristics."""
    name = "umlaut"
    version = "1.0"
    source = "BerkeleyHCI/umlaut@68c2a0226d14c1ef8c8bc7856d594b8a4a3c6c68 umlaut/heuristics.py (Apache-2.0)"
    needs = frozenset({"data", "model", "trace"})
    causes = frozenset({"wrong_output_activation", "underfitting", "unscaled_features", "nan_inputs",
                        "lr_too_high", "lr_too_low", "overfitting"})
    symptoms = frozenset({"out_of_range_values", "nan_loss", "train_val_gap", "inflated_validation"})

    def __init__(self):
        self.fired: set[str] = set()
        self.prev: dict | None = None   # the previous epoch's logs: model.history.history[...][-1]

    def _keep(self, found: list[tuple[str, Diagnosis]]) -> list[Diagnosis]:
        out = []
        for key, d in found:
            if key not in self.fired:
                self.fired.add(key)
                out.append(d)
        return out

    def on_train_begin(self, record):
        return self._keep(pretrain_findings(record.model))

    def _epoch_findings(self, epoch, trace, record) -> list[tuple[str, Diagnosis]]:
        logs, data, found = trace.logs, record.data, []
        lo, hi = input_range(data)
        if lo < -1 or hi > 1:        # L101-113
            found.append(("input_normalization", Diagnosis(
                cause="unscaled_features", symptom="out_of_range_values", epoch=epoch,
                evidence=f"UMLAUT: Input data exceeds typical limits: min {lo:.3g}, max {hi:.3g} outside [-1, 1]")))
        loss = logs.get("loss")
        if loss is not None and math.isnan(loss) and data.nan_count:   # L130-139
            found.append(("nan_input", Diagnosis(cause="nan_inputs", symptom="nan_loss", epoch=epoch,
                                                 evidence=f"UMLAUT: NaN in input ({data.nan_count} values) and NaN loss")))
        lr = trace.learning_rate if _finite(trace.learning_rate) else record.model.learning_rate
        if _finite(lr) and (lr > LR_HIGH or lr < LR_LOW):   # L156-163
            high = lr > LR_HIGH
            found.append(("lr_high" if high else "lr_low", Diagnosis(
                cause="lr_too_high" if high else "lr_too_low", epoch=epoch,
                evidence=f"UMLAUT: Learning Rate is {'high' if high else 'low'}: {lr:g}")))
        prev = self.prev
        if prev is not None and all(_finite(v) for v in (prev.get("loss"), prev.get("val_loss"),
                                                         logs.get("loss"), logs.get("val_loss"))):
            d_loss, d_val = logs["loss"] - prev["loss"], logs["val_loss"] - prev["val_loss"]
            if d_val > 0 and d_loss <= 0:       # L166-176
                found.append(("overfitting", Diagnosis(
                    cause="overfitting", symptom="train_val_gap", epoch=epoch,
                    evidence=f"UMLAUT: Possible overfitting: loss changed by {d_loss:.2f}, val_loss by {d_val:.2f}")))
        acc, val_acc = _acc(logs, False), _acc(logs, True)
        if epoch >= WARMUP_EPOCHS and _finite(acc) and _finite(val_acc) and \
                (val_acc > VAL_ACC_HIGH or val_acc - acc > VAL_OVER_TRAIN):   # L179-191
            found.append(("val_acc", Diagnosis(
                symptom="inflated_validation", epoch=epoch,
                evidence=f"UMLAUT: Check validation accuracy: val {val_acc:.2%}, train {acc:.2%}")))
        return found

    def on_epoch_end(self, epoch, trace, record):
        if not trace.completed:
            return []
        found = self._epoch_findings(epoch, trace, record)
        self.prev = dict(trace.logs)
        return self._keep(found)
