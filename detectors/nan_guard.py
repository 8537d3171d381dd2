"""nan-guard: what Keras's `TerminateOnNaN` callback does, as a detector.

Source: keras-team/keras, `keras/src/callbacks/terminate_on_nan.py` (commit
1f74f983): at the end of every batch, if the loss is NaN or infinite, stop
training. Here the check runs on each epoch's logged training loss (the trace
holds per-epoch logs; a NaN batch loss makes the epoch mean NaN, so the
verdict is the same) and on the run outcome `nan`. It names only a symptom:
TerminateOnNaN says nothing about the cause.

Rule table:

| rule | original | threshold | deviation |
|---|---|---|---|
| TerminateOnNaN | terminate_on_nan.py `on_batch_end` | loss NaN or Inf | per epoch (the mean of a batch with a NaN loss is NaN), plus outcome "nan" |
"""

from __future__ import annotations

import math

from .base import Diagnosis, OnlineDetector


class NanGuard(OnlineDetector):
    name = "nan-guard"
    version = "1.0"
    source = "keras-team/keras@1f74f983 keras/src/callbacks/terminate_on_nan.py"
    causes = frozenset()                 # TerminateOnNaN names no cause
    symptoms = frozenset({"nan_loss"})
    needs = frozenset({"trace", "outcome"})

    def __init__(self):
        self._fired = False

    def on_epoch_end(self, epoch, trace, record):
        loss = trace.logs.get("loss")
        if not self._fired and loss is not None and not math.isfinite(loss):
            self._fired = True
            return [Diagnosis(symptom="nan_loss", confidence=1.0, epoch=epoch,
                              evidence=f"training loss is {loss} at epoch {epoch}")]
        return []

    def on_train_end(self, record):
        if not self._fired and record.outcome.status == "nan":
            self._fired = True
            return [Diagnosis(symptom="nan_loss", confidence=1.0, epoch=max(0, len(record.trace) - 1),
                              evidence="training was terminated on a NaN loss")]
        return []
