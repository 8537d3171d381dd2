"""smdebug: SageMaker Debugger's built-in rules, at their documented defaults, over the trace.

Source: the Amazon SageMaker developer guide, "List of Debugger built-in rules"
(docs.aws.amazon.com/sagemaker/latest/dg/debugger-built-in-rules.html and the per-rule pages
vanishing-gradient.html, dead-relu.html, overfit.html), read 2026-12-02. The rules' code is not
public: awslabs/sagemaker-debugger @3b82de3 ships only the rule framework (`smdebug/rules/rule.py`)
and awslabs/sagemaker-debugger-rulesconfig @afeb292 `ruleConfigs.json` only the rule names and
their tensor collections (e.g. DeadRelu reads `.*relu_output`, VanishingGradient `gradients`),
so each rule here is re-implemented from its documented description and defaults.

Rule table:

| rule | documented default | here | reported as |
|---|---|---|---|
| VanishingGradient | threshold 0.0000001 (1e-7): mean of abs(gradient) below it | EpochTrace.grad_mean_abs per trainable layer < 1e-7 | symptom vanishing_gradient |
| DeadRelu | threshold_inactivity 1.0 (%), threshold_layer 50.0 (%) | EpochTrace.dead_relu_fraction * 100 > 50 | symptom dead_units |
| Overfit | start_step 0, patience 1, ratio_threshold 0.1: (mean val loss - mean train loss) / mean train loss | (val_loss - loss) / loss > 0.1 on 1 evaluation | symptom train_val_gap |
| ExplodingTensor | only_nan False: any NaN or infinite value in a tensor | non-finite loss, weights or gradients (EpochTrace.nonfinite, the logs) | symptom nan_loss (loss) / exploding_gradient |

Deviations, and why:
1. Steps are epochs: Debugger evaluates every saved step (save_interval 500 in ruleConfigs.json);
   the trace has one set of statistics per epoch, on its 64-row probe batch.
2. DeadRelu: a unit is dead when active less than 1% of the time; on the 64-row probe batch that
   means active on none of the rows, which is exactly what dead_relu_fraction counts.
3. Overfit's "patience" is read as the number of consecutive evaluations over the ratio before it
   fires (1: the first one).
4. Debugger's rules name conditions, not causes: `causes = frozenset()`.

Not evaluated (the record lacks the signal, or a default could not be verified):
* LossNotDecreasing, Overtraining, StalledTrainingRule: defaults (num_steps, diff_percent,
  patience_train/validation, delta) not read from the documentation in this session.
* PoorWeightInitialization (variance of relu_input per layer), SaturatedActivation (tanh/sigmoid
  input bounds), TensorVariance, WeightUpdateRatio, AllZero, UnchangedTensor: need per-step tensors
  (pre-activation values, per-step weights) that the default trace does not hold.
* ClassImbalance, Confusion, CheckInputImages, NLPSequenceRatio, SimilarAcrossRuns, TreeDepth,
  FeatureImportanceOverweight: need predictions, images, token sequences, a second trial or XGBoost.
"""

from __future__ import annotations

import math

from .autotrainer import frozen_layers
from .base import Diagnosis, OnlineDetector

VANISH_THRESHOLD = 1e-7
DEAD_LAYER_PERCENT = 50.0
OVERFIT_RATIO, OVERFIT_PATIENCE, OVERFIT_START = 0.1, 1, 0


def _finite(v) -> bool:
    return v is not None and math.isfinite(v)


class SMDebug(OnlineDetector):
    """VanishingGradient, DeadRelu, Overfit and ExplodingTensor, each reported once."""
    name = "smdebug"
    version = "1.0"
    source = "Amazon SageMaker developer guide, debugger-built-in-rules (2026-12-02)"
    needs = frozenset({"model", "trace"})
    causes = frozenset()
    symptoms = frozenset({"vanishing_gradient", "dead_units", "train_val_gap", "nan_loss", "exploding_gradient"})

    def __init__(self):
        self.fired: set[str] = set()
        self.over = 0

    def _findings(self, epoch, trace, record) -> list[tuple[str, Diagnosis]]:
        out = []
        loss = trace.logs.get("loss")
        if trace.nonfinite or (loss is not None and not math.isfinite(loss)):
            nan_loss = loss is not None and not math.isfinite(loss)
            out.append(("exploding", Diagnosis(symptom="nan_loss" if nan_loss else "exploding_gradient", epoch=epoch,
                                               evidence=f"ExplodingTensor: non-finite {'loss' if nan_loss else 'tensor'}"
                                                        f" at epoch {epoch}")))
        frozen = frozen_layers(record)
        for layer, g in trace.grad_mean_abs.items():
            if layer not in frozen and _finite(g) and g < VANISH_THRESHOLD:
                out.append(("vanish", Diagnosis(symptom="vanishing_gradient", epoch=epoch,
                                                evidence=f"VanishingGradient: mean abs(dW) of {layer} = {g:.3g} "
                                                         f"< {VANISH_THRESHOLD:g}")))
                break
        for layer, frac in trace.dead_relu_fraction.items():
            if _finite(frac) and frac * 100 > DEAD_LAYER_PERCENT:
                out.append(("dead", Diagnosis(symptom="dead_units", epoch=epoch,
                                              evidence=f"DeadRelu: {frac:.0%} of {layer}'s units active < 1% "
                                                       f"(> {DEAD_LAYER_PERCENT:g}%)")))
                break
        val = trace.logs.get("val_loss")
        if epoch >= OVERFIT_START and _finite(loss) and _finite(val) and loss > 0:
            ratio = (val - loss) / loss
            self.over = self.over + 1 if ratio > OVERFIT_RATIO else 0
            if self.over >= OVERFIT_PATIENCE:
                out.append(("overfit", Diagnosis(symptom="train_val_gap", epoch=epoch,
                                                 evidence=f"Overfit: (val_loss - loss) / loss = {ratio:.3g} "
                                                          f"> {OVERFIT_RATIO}")))
        return out

    def on_epoch_end(self, epoch, trace, record):
        if not trace.completed:
            return []
        out = []
        for key, d in self._findings(epoch, trace, record):
            if key not in self.fired:
                self.fired.add(key)
                out.append(d)
        return out
