"""deepdiagnosis: the `mapFaluireToFix` callback of DeepDiagnosis (Wardat et al., ICSE 2022), over the trace.

Source: DeepDiagnosis/ICSE2022 @500b0176e38d53bf6744231526c545e0554a2230, `callback/callbacks.py`:
thresholds L378-447 and L553, `identifyDead`/`identifySaturated`/`identifyNumerical`/
`identifyVanishingGradient`/`identifyTensorVariance`/`identifyRange` (L379-510), the analyses
L512-657 and `mapFaluireToFix.on_epoch_end` L699-864.

Symptoms, in the original's order; the first one found ends the run (`raise SystemExit`), so
at most one symptom is ever reported. `counter` counts epochs from 1, N = 5, FRQ = 20:
 per tracked layer, first to last:
  1. out of range: epoch 0, last layer, output activation not softmax (`identifyRange` vs the labels);
  2. numerical error forward: mean layer output NaN, Inf or exactly 0;
  3. dead node: last planned epoch, ReLU layer, share of outputs <= 0 >= 0.7;
  4. saturated activation: counter % 5 == 0, sigmoid/tanh share with |pre-activation| >= 5 > 0.5;
 5. unchanged forward: counter % 5 == 0, the 5 mean outputs of a non-last layer exactly equal;
 6. invalid loss (NaN/Inf); loss not decreasing: counter % 5 == 0 and the 5 losses exactly equal;
 7. invalid accuracy (NaN, Inf or 0); accuracy not increasing: counter % 20 == 0, 20 equal values;
 per weighted layer, last to first: 8a. numerical error in dW, 8b. vanishing gradient
  mean|dW| < 1e-7, 8c. numerical error in W; then every 5 epochs 8d. unchanged dW, 8e. unchanged W.
"Exactly equal" is the original's `np.mean(a) == np.max(a)` over non-overlapping blocks.

Root cause (the original's analyses; the first predicate that holds wins):
  PW  "Poor Weight": some layer's kernel variance outside [1e-5, 10] -> bad_initialization;
  ND  "Normalize the data": training inputs outside [-1, 1]            -> unscaled_features;
  LR  "Learning Rate": some lr*||dW||/||W|| > 0.1 -> lr_too_high, < 1e-5 -> lr_too_low;
  then the symptom's own suggestion, mapped as follows:
  "change the activation function to softmax" (out of range), "change the activation at the last
  layer" (invalid loss/accuracy with a linear output) -> wrong_output_activation;
  "change the loss function OR the activation" (numerical error in dW of the output layer) ->
  wrong_loss and wrong_output_activation, 0.5 each;
  "change the activation at layer l+1" (numerical error elsewhere) -> by that layer's activation:
  relu -> dying_relu, sigmoid/tanh -> vanishing_gradient, the output layer -> wrong_output_activation;
  "change optimizer" (unchanged tensors, loss/accuracy not improving, invalid loss/accuracy) ->
  lr_too_low (the optimizer does not make progress; AUTOTRAINER's not_converge repair is the same);
  "add dropout layer or missing activation function" after dead nodes -> dying_relu, after
  saturation -> vanishing_gradient; "add/delete layer or change sigmoid" -> vanishing_gradient.

Rule table (callbacks.py at 500b0176; thresholds L378-447, L553):

| rule | original | threshold |
|---|---|---|
| out of range | `identifyRange` L455-510 | labels outside the output activation's range |
| numerical error (forward, dW, W) | `identifyNumerical` | NaN, Inf or exactly 0 |
| dead node | `identifyDead` L379-400 | share of ReLU outputs <= 0 >= threshold_layer_1 = 0.7 |
| saturated activation | `identifySaturated` L401-430 | share with abs(x) >= 5 > threshold_layer = 0.5 |
| vanishing gradient | `identifyVanishingGradient` | mean abs(dW) < threshold_VG = 1e-7 |
| unchanged tensor / loss / acc | `meanResult` L334, `UnchangeTensor` L524 | N = 5 (acc: FRQ = 20) equal values |
| PW (Poor Weight) | `identifyTensorVariance` L440-453 | var outside [1e-5, 10] |
| ND (Normalize the data) | L563, L587, L611, L622, L645 | np.min(X) < -1 or np.max(X) > 1 |
| LR | L553 | lr*norm(dW)/norm(W) > 1e-3*100 or < 1e-3/100 |

`deepdiagnosis-as-published` (`DeepDiagnosisAsPublished`) keeps the bugs of deviation 1 (a) and
(c): PW never fires and "loss not decreasing" never reports, so a reader sees what the repairs move.

Deviations from the original, and why:
1. Bugs not reproduced, intent implemented instead: (a) PW ran on one scalar mean per layer, whose
   ddof=1 variance is NaN, so it never fired; here it reads the kernel variance (EpochTrace.weight_var,
   ddof=0). (b) The LR proxy zipped per-layer weights against per-variable gradients; here it pairs
   each layer's kernel gradient norm with its kernel norm. (c) "Loss not decreasing" called
   `LossAnalysis` with 6 of 7 arguments (TypeError, so it never reported); here it runs the intended
   analysis (`AccuracyAnalysis`, identical to `LossAnalysis`). (d) `OutofRangAnalysis` always said
   "softmax" (an always-true `or`); both of its messages map to wrong_output_activation, so it is moot.
2. Layer roles come from `ModelSummary.layers[].activation` / `output_activation` instead of the
   original's layer-name heuristic, which recognised only standalone `Activation` layers and called
   every fused `Dense(..., activation=...)` output "dense" (so every fused softmax classifier with a
   categorical loss was "out of range" at epoch 0). Gradient and weight checks cover every weighted
   layer, not only layers named "dense".
3. Summaries are the trace's, on its 64-row probe batch: mean layer output (activation_mean);
   dW uses mean|dW| (grad_mean_abs) where the original used mean(dW), so "numerical error in dW"
   fires when every entry is 0 rather than when the signed mean is 0; W uses the kernel norm
   (non-finite or 0) instead of the kernel mean; "unchanged W" is 5 equal kernel norms or 5 zero
   update ratios in the block, instead of 5 equal kernel means.
4. Out of range needs the label range (`identifyRange` L455-458 reads np.min(y), np.max(y)):
   classification labels are [0, n_classes-1] (sparse) or [0, 1] (one-hot); for regression the
   training target's range, DataProfile.target_min/target_max (only a record without them falls
   back to the target mean, min(y) <= mean <= max(y), a sound but partial test). The linear-output test (output range > 10x label range) uses the
   probe batch's activation_min/max.
5. Interrupted epochs are skipped (Keras never calls on_epoch_end for them). Without 'accuracy' in
   the logs (regression) the accuracy checks are skipped, as in the original (acc is None).
6. "Normalize the data" reads np.min/np.max of the whole training input (L563 and its copies): NaN,
   so never firing, on data holding a NaN. DataProfile.input_min/max are NaN-stripped, so the
   detector treats a non-zero `nan_count` as that NaN. `nan_count` also counts validation NaNs, so a
   run whose NaNs are in the validation split alone is (unlike the original) exempted too.
7. Gradients are over trainable variables only (L269, `model.trainable_weights`): a layer whose
   `LayerInfo.trainable` is False gets no dW check (8a, 8b, 8d) and no LR-proxy term; its weights
   are still checked (8c, 8e), as `get_weights` (L306-313) reads every layer.
8. The original gives no confidence: 1.0, or 0.5 for each half of an "A or B" suggestion.
"""

from __future__ import annotations

import math

import numpy as np

from .autotrainer import accuracy, frozen_layers
from .base import Diagnosis, OnlineDetector

N, FRQ = 5, 20
DEAD = 0.7                  # threshold_layer_1
SATURATED = 0.5             # threshold_layer
VANISH = 1e-7               # threshold_VG
VAR_MIN, VAR_MAX = 1e-5, 10  # min_threshold, max_threshold
LR_HIGH, LR_LOW = 1e-3 * 100, 1e-3 / 100   # LearnRate_threshold * 100, / 100
CAUSES = frozenset({"bad_initialization", "unscaled_features", "lr_too_high", "lr_too_low",
                    "wrong_output_activation", "wrong_loss", "dying_relu", "vanishing_gradient"})
SYMPTOMS = frozenset({"nan_loss", "dead_units", "saturated_activation", "unchanged_weights", "plateau",
                      "chance_accuracy", "exploding_gradient", "vanishing_gradient"})
CATEGORICAL = ("categorical_crossentropy", "sparse_categorical_crossentropy")
_ACT_RANGE = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "relu": (0.0, math.inf), "elu": (-1.0, math.inf),
              "softmax": (0.0, 1.0)}


def input_range(data) -> tuple[float, float]:
    """(np.min(X_train), np.max(X_train)) as the original computes them: NaN when the inputs hold a NaN.

    DataProfile.input_min/max are NaN-stripped (np.nanmin), so a recorded NaN count restores the
    original's NaN. Records without input_min fall back to the per-feature extremes, NaN-propagating."""
    if data.nan_count:
        return math.nan, math.nan
    lo, hi = data.input_min, data.input_max
    if _nonfinite(lo) and _nonfinite(hi) and data.feature_min:
        lo, hi = float(np.min(np.asarray(data.feature_min, dtype="float64"))), \
            float(np.max(np.asarray(data.feature_max, dtype="float64")))
    return lo, hi


def _nonfinite(v) -> bool:
    return v is None or not math.isfinite(v)


def _numerical(v) -> bool:
    """identifyNumerical: NaN, Inf or exactly 0."""
    return _nonfinite(v) or v == 0


def _all_equal(values) -> bool:
    """meanResult: np.mean(a) == np.max(a), i.e. every value exactly equal."""
    a = np.asarray([np.nan if v is None else v for v in values], dtype="float64")
    return a.size > 0 and bool(np.mean(a) == np.max(a))


class DeepDiagnosis(OnlineDetector):
    """DeepDiagnosis's mapFaluireToFix, with the original's bugs repaired (deviation 1)."""
    name = "deepdiagnosis"
    version = "1.1"
    source = "DeepDiagnosis/ICSE2022@500b0176e38d53bf6744231526c545e0554a2230"
    needs = frozenset({"data", "model", "trace"})
    causes = CAUSES
    symptoms = SYMPTOMS
    repaired = True   # False: the published behaviour of deviation 1 (a) and (c)

    def __init__(self):
        self.counter = 1
        self.done = False
        self.forward: dict[str, list] = {}
        self.dw: dict[str, list] = {}
        self.w: dict[str, list] = {}
        self.upd: dict[str, list] = {}
        self.losses: list = []
        self.accs: list = []

    # -- root-cause predicates ------------------------------------------------------------
    def _pw(self, trace):
        if not self.repaired:   # as published: ddof=1 variance of one scalar is NaN, never outside the bounds
            return None
        for layer, v in trace.weight_var.items():
            if v is not None and (v < VAR_MIN or v > VAR_MAX):
                return "bad_initialization", f"Poor Weight: var(W) of {layer} = {v:.3g} outside [{VAR_MIN}, {VAR_MAX}]"
        return None

    def _nd(self, record):
        """"Normalize the data" (callbacks.py L563, L587, L611, L622, L645): `np.min(X_train) < -1 or
        np.max(X_train) > 1` over the whole array. np.min/np.max of an array holding a NaN is NaN and
        every comparison with NaN is False, so on NaN data the check never fires."""
        lo, hi = input_range(record.data)
        if lo < -1 or hi > 1:
            return "unscaled_features", f"Normalize the data: inputs span [{lo:.3g}, {hi:.3g}], outside [-1, 1]"
        return None

    def _lr(self, trace, record):
        lr = record.model.learning_rate
        if _nonfinite(lr):
            return None
        frozen = frozen_layers(record)
        for layer, g in trace.grad_norms.items():
            if layer in frozen:
                continue
            w = trace.weight_norms.get(layer)
            if _nonfinite(g) or w is None or math.isnan(w):
                continue
            eff = lr * g / w if w else (math.inf if g > 0 else math.nan)
            if eff > LR_HIGH:
                return "lr_too_high", f"Learning Rate: lr*||dW||/||W|| of {layer} = {eff:.3g} > {LR_HIGH:g}"
            if eff < LR_LOW:
                return "lr_too_low", f"Learning Rate: lr*||dW||/||W|| of {layer} = {eff:.3g} < {LR_LOW:g}"
        return None

    def _analyse(self, order, trace, record, fallback):
        """Run the predicates in `order` (a string of P, N, L), else the fallback [(cause, conf, text)]."""
        for step in order:
            hit = {"P": lambda: self._pw(trace), "N": lambda: self._nd(record),
                   "L": lambda: self._lr(trace, record)}[step]()
            if hit:
                return [(hit[0], 1.0, hit[1])]
        return fallback

    # -- layer roles ------------------------------------------------------------------------
    def _activation_of(self, record, layer):
        for info in record.model.layers:
            if info.name == layer:
                return info.activation
        return ""

    def _output_activation(self, record, trace):
        if record.model.output_activation:
            return record.model.output_activation
        names = list(trace.activation_mean) or [l.name for l in record.model.layers]
        return self._activation_of(record, names[-1]) if names else ""

    def _activation_cause(self, record, layer, is_output):
        if is_output:
            return "wrong_output_activation"
        act = self._activation_of(record, layer)
        return {"relu": "dying_relu", "sigmoid": "vanishing_gradient", "tanh": "vanishing_gradient"}.get(act)

    def _label_range(self, record):
        d = record.data
        if d.task_kind == "classification" or d.class_counts_train:
            if d.label_shape:
                return 0.0, 1.0, True
            keys = [int(k) for k in d.class_counts_train] or ([0, d.n_classes - 1] if d.n_classes else [])
            return (float(min(keys)), float(max(keys)), True) if keys else None
        if not (_nonfinite(d.target_min) or _nonfinite(d.target_max)):   # identifyRange L455-458: np.min(y), np.max(y)
            return d.target_min, d.target_max, True
        if not _nonfinite(d.target_mean):   # an older record without the range: min(y) <= mean <= max(y)
            return d.target_mean, d.target_mean, False
        return None

    def _out_of_range(self, trace, record, layer):
        act = self._output_activation(record, trace)
        if act in ("softmax", ""):   # softmax is exempt in the original; "" is unknown
            return None
        loss = record.model.loss
        if act in ("relu", "linear") and loss in CATEGORICAL:
            return f"output activation {act or 'linear'} with loss {loss}"
        labels = self._label_range(record)
        if labels is None:
            return None
        y_min, y_max, exact = labels
        if act == "linear":
            lo, hi = trace.activation_min.get(layer), trace.activation_max.get(layer)
            if exact and lo is not None and hi is not None and abs(hi - lo) > 10 * abs(y_max - y_min):
                return f"linear output spans {abs(hi - lo):.3g} > 10x the label range {abs(y_max - y_min):.3g}"
            return None
        a_min, a_max = _ACT_RANGE.get(act, (-math.inf, math.inf))
        if y_min < a_min or y_max > a_max:
            what = "labels" if exact else "the target mean"
            return f"{what} [{y_min:.3g}, {y_max:.3g}] outside the range [{a_min}, {a_max}] of {act}"
        return None

    # -- the per-epoch procedure ------------------------------------------------------------
    def _emit(self, trace, symptom, text, causes):
        self.done = True   # the original stops training at its first symptom
        out = [Diagnosis(cause=c, symptom=symptom, confidence=conf, epoch=trace.epoch,
                         evidence=f"DeepDiagnosis: {text}; root cause: {why}") for c, conf, why in causes if c]
        if not out and symptom:  # a suggestion with no taxonomy cause: report the symptom alone
            out = [Diagnosis(symptom=symptom, confidence=1.0, epoch=trace.epoch, evidence=f"DeepDiagnosis: {text}")]
        return out

    def _detect(self, epoch, trace, record):
        c = self.counter
        layers = list(trace.activation_mean)
        weighted = list(trace.weight_norms) or list(trace.grad_mean_abs)
        last_weighted = weighted[-1] if weighted else None
        # 1-4: forward, per layer
        for i, layer in enumerate(layers):
            mean = trace.activation_mean[layer]
            self.forward.setdefault(layer, []).append(mean)
            if i == len(layers) - 1 and epoch == 0:
                why = self._out_of_range(trace, record, layer)
                if why:
                    return self._emit(trace, None, f"out of range at output layer {layer}: {why}",
                                      [("wrong_output_activation", 1.0, "change the output activation")])
            if _numerical(mean):
                symptom = "nan_loss" if _nonfinite(mean) else ("dead_units" if layer in trace.relu_zero_fraction else None)
                fb = self._activation_cause(record, layer, i == len(layers) - 1)
                return self._emit(trace, symptom,
                                  f"numerical error forward: mean output of {layer} is {mean}",
                                  self._analyse("PNL", trace, record, [(fb, 1.0, f"change the activation at {layer}")]))
            if layer in trace.relu_zero_fraction and record.model.epochs and epoch == record.model.epochs - 1:
                z = trace.relu_zero_fraction[layer]
                if z is not None and z >= DEAD:
                    return self._emit(trace, "dead_units", f"dead nodes: {z:.0%} of {layer}'s outputs <= 0 (>= {DEAD:.0%})",
                                      self._analyse("NPL", trace, record,
                                                    [("dying_relu", 1.0, "add dropout or missing activation")]))
            if c % N == 0 and layer in trace.saturated_fraction:
                s = trace.saturated_fraction[layer]
                if s is not None and s > SATURATED:
                    return self._emit(trace, "saturated_activation",
                                      f"saturated activation: {s:.0%} of {layer}'s inputs have |x| >= 5 (> {SATURATED:.0%})",
                                      self._analyse("NPL", trace, record,
                                                    [("vanishing_gradient", 1.0, "add dropout or missing activation")]))
        # 5: unchanged forward
        if c % N == 0:
            for i, layer in enumerate(layers):
                if i != len(layers) - 1 and _all_equal(self.forward.get(layer, [])[-N:]):
                    return self._emit(trace, "unchanged_weights", f"unchanged mean output of {layer} over {N} epochs",
                                      self._analyse("PL", trace, record, [("lr_too_low", 1.0, "change optimizer")]))
                self.forward[layer] = []
        # 6-7: metrics
        invalid_fb = [("wrong_output_activation", 1.0, "change the output activation")] \
            if self._output_activation(record, trace) == "linear" else None
        loss = trace.logs.get("loss")
        if loss is not None:
            self.losses.append(loss)
            if _nonfinite(loss):
                return self._emit(trace, "nan_loss", f"invalid loss {loss}", invalid_fb or
                                  self._analyse("L", trace, record, [("lr_too_low", 1.0, "change optimizer")]))
            if c % N == 0:
                if self.repaired and _all_equal(self.losses[-N:]):
                    return self._emit(trace, "plateau", f"loss not decreasing: {N} equal losses {loss}",
                                      self._analyse("PNL", trace, record, [("lr_too_low", 1.0, "change optimizer")]))
                self.losses = []
        acc = accuracy(trace.logs)
        if acc is not None:
            self.accs.append(acc)
            if _numerical(acc):
                return self._emit(trace, "nan_loss" if _nonfinite(acc) else "chance_accuracy", f"invalid accuracy {acc}",
                                  invalid_fb or self._analyse("L", trace, record, [("lr_too_low", 1.0, "change optimizer")]))
            if c % FRQ == 0:
                if _all_equal(self.accs[-FRQ:]):
                    return self._emit(trace, "plateau", f"accuracy not increasing: {FRQ} equal accuracies {acc}",
                                      self._analyse("PNL", trace, record, [("lr_too_low", 1.0, "change optimizer")]))
                self.accs = []
        # 8: gradients and weights, last layer first; dW of trainable layers only (L269)
        frozen = frozen_layers(record)
        for layer in reversed(weighted):
            g = None if layer in frozen else trace.grad_mean_abs.get(layer)
            if g is not None:
                if _numerical(g):
                    if layer == last_weighted:
                        fb = [("wrong_loss", 0.5, "change the loss function"),
                              ("wrong_output_activation", 0.5, "or change the output activation")]
                    else:
                        fb = [(self._activation_cause(record, layer, False), 1.0, f"change the activation at {layer}")]
                    return self._emit(trace, "exploding_gradient" if _nonfinite(g) else "unchanged_weights",
                                      f"numerical error in dW of {layer}: mean|dW| = {g}", fb)
                if g < VANISH:
                    return self._emit(trace, "vanishing_gradient", f"vanishing gradient: mean|dW| of {layer} = {g:.3g} < {VANISH:g}",
                                      self._analyse("L", trace, record, [("vanishing_gradient", 1.0, "add/delete layer or change sigmoid")]))
                self.dw.setdefault(layer, []).append(g)
            w = trace.weight_norms.get(layer)
            self.w.setdefault(layer, []).append(w)
            self.upd.setdefault(layer, []).append(trace.update_ratios.get(layer))
            if w is not None and _numerical(w):
                fb = self._activation_cause(record, layer, layer == last_weighted)
                return self._emit(trace, "exploding_gradient" if _nonfinite(w) else None,
                                  f"numerical error in W of {layer}: ||W|| = {w}",
                                  self._analyse("PNL", trace, record, [(fb, 1.0, f"change the activation after {layer}")]))
        if c % N == 0:
            for layer in reversed(weighted):
                if layer not in frozen and _all_equal(self.dw.get(layer, [])[-N:]):
                    return self._emit(trace, "unchanged_weights", f"unchanged mean|dW| of {layer} over {N} epochs",
                                      self._analyse("PL", trace, record, [("lr_too_low", 1.0, "change optimizer")]))
                self.dw[layer] = []
                ws, ups = self.w.get(layer, [])[-N:], self.upd.get(layer, [])[-N:]
                if (len(ws) == N and _all_equal(ws)) or (len(ups) == N and all(u == 0 for u in ups)):
                    return self._emit(trace, "unchanged_weights", f"unchanged weights of {layer} over {N} epochs",
                                      self._analyse("PL", trace, record, [("lr_too_low", 1.0, "change optimizer")]))
                self.w[layer], self.upd[layer] = [], []
        return []

    def on_epoch_end(self, epoch, trace, record):
        if self.done or not trace.completed:
            return []
        out = self._detect(epoch, trace, record)
        self.counter += 1
        return out


class DeepDiagnosisAsPublished(DeepDiagnosis):
    """What the published callback does where `deepdiagnosis` repairs it (deviation 1 (a), (c)): the Poor
    Weight predicate never fires and "loss not decreasing" never reports. (b) and (d) stay repaired:
    (b) has no faithful reading on the trace's per-layer statistics, (d) is moot."""
    name = "deepdiagnosis-as-published"
    repaired = False
