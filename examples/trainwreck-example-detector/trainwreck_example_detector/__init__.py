"""An example plugin: flags a training loss that ends above where it started.

Install it (`pip install ./examples/trainwreck-example-detector`) and it appears in
`trainwreck detectors` and in every leaderboard; check it with
`python -c "from trainwreck.detectors.testing import check_detector; from trainwreck_example_detector import LossGoesUp; print(check_detector(LossGoesUp))"`.
"""

from __future__ import annotations

import math

from trainwreck.detectors import Diagnosis, OnlineDetector

__all__ = ["LossGoesUp", "BatchLossSpike"]


class LossGoesUp(OnlineDetector):
    name = "loss-goes-up"
    version = "0.1.0"
    needs = frozenset({"trace"})
    causes = frozenset({"lr_too_high"})      # its scope: what it can ever name
    symptoms = frozenset({"divergence"})

    def __init__(self):
        self.first = None
        self.fired = False

    def on_epoch_end(self, epoch, trace, record):
        loss = trace.logs.get("loss")
        if loss is None or self.fired:
            return []
        if self.first is None:
            self.first = loss
            return []
        if not math.isfinite(loss) or loss > 1.5 * self.first:
            self.fired = True
            return [Diagnosis(cause="lr_too_high", symptom="divergence", confidence=0.6, epoch=epoch,
                              evidence=f"loss rose from {self.first:.4g} to {loss:.4g} by epoch {epoch}")]
        return []


class BatchLossSpike(OnlineDetector):
    """Asks for the per-step trace: "steps" in `needs` makes `trainwreck bench` record every 10th
    batch (or every K-th with --trace-every K), and fills `trace.step_trace` with StepTrace rows
    (the batch's own loss, gradient percentiles on that batch, activation quantiles, ...)."""
    name = "batch-loss-spike"
    version = "0.1.0"
    needs = frozenset({"trace", "steps"})
    causes = frozenset()                     # symptom-only: scored "n/a" in the cause columns
    symptoms = frozenset({"divergence"})

    def on_epoch_end(self, epoch, trace, record):
        losses = [s.loss for s in trace.step_trace if math.isfinite(s.loss)]
        if len(losses) >= 2 and losses[-1] > 10 * min(losses):
            return [Diagnosis(symptom="divergence", confidence=0.5, epoch=epoch,
                              evidence=f"batch loss {min(losses):.4g} -> {losses[-1]:.4g} within epoch {epoch}")]
        return []
