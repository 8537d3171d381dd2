"""An example plugin: flags a training loss that ends above where it started.

Install it (`pip install ./examples/trainwreck-example-detector`) and it appears in
`trainwreck detectors` and in every leaderboard; check it with
`python -c "from trainwreck.detectors.testing import check_detector; from trainwreck_example_detector import LossGoesUp; print(check_detector(LossGoesUp))"`.
"""

from __future__ import annotations

import math

from trainwreck.detectors import Diagnosis, OnlineDetector

__all__ = ["LossGoesUp"]


class LossGoesUp(OnlineDetector):
    name = "loss-goes-up"
    version = "0.1.0"
    needs = frozenset({"trace"})

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
