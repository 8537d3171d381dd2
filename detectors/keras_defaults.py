"""keras-defaults: what the Keras callbacks a user already has would have flagged, at their defaults.

Source: keras-team/keras 3.15.1 (the version installed here), `keras/src/callbacks/`:
`terminate_on_nan.py` (`on_batch_end`), `early_stopping.py` (`__init__` L66-76, `on_epoch_end`
L95-125), `reduce_lr_on_plateau.py` (`__init__` L48-59, `on_epoch_end` L99-140) and
`monitor_callback.py` (`_is_improvement` L101-104; for mode "min" the sign of min_delta is flipped,
so an improvement is `current + |min_delta| < best`; a NaN is never an improvement).

Rule table:

| rule | original | parameters | reported as |
|---|---|---|---|
| TerminateOnNaN | terminate_on_nan.py `on_batch_end` | loss NaN or Inf | symptom nan_loss |
| EarlyStopping | early_stopping.py L95-125 | monitor val_loss, mode min, min_delta 0, **patience 5**, baseline None, start_from_epoch 0 | symptom plateau |
| ReduceLROnPlateau | reduce_lr_on_plateau.py L99-140 | monitor val_loss, factor 0.1, patience 10, min_delta 1e-4, cooldown 0, min_lr 0 | symptom plateau |

Each callback reports once, at the epoch it would first have acted (stopped training, or cut the
learning rate); the diagnoses of the three are independent, since a user may have any subset.

Choices and deviations, and why:
1. EarlyStopping's default patience is 0 (stop at the first epoch that does not improve), which
   nobody runs; patience=5 is our stated choice of what a user sets (the value the Keras and
   TensorFlow guides use most for small models). `PATIENCE_EARLY_STOPPING` changes it.
2. TerminateOnNaN checks every batch; the trace holds per-epoch logs, and a non-finite batch loss
   makes the epoch's mean loss non-finite, so the verdict is the same (an epoch cut short by the
   harness's own TerminateOnNaN ends the run with outcome "nan", read at train end).
3. None of these callbacks names a cause: `causes = frozenset()`. What "would stop" or "would cut
   the learning rate" means in the taxonomy is ours: the monitored loss stopped improving
   (plateau).
4. Without val_loss in the logs the two monitors are skipped (Keras warns and does nothing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .base import Diagnosis, OnlineDetector

PATIENCE_EARLY_STOPPING = 5      # our choice (deviation 1); Keras's default is 0
MIN_DELTA_EARLY_STOPPING = 0.0
PATIENCE_REDUCE_LR = 10
MIN_DELTA_REDUCE_LR = 1e-4
FACTOR_REDUCE_LR = 0.1
MONITOR = "val_loss"


def improves(current: float, best: float | None, min_delta: float) -> bool:
    """MonitorCallback._is_improvement for mode "min": np.less(current - (-min_delta), best)."""
    if best is None:
        return True
    return bool(current + abs(min_delta) < best)


@dataclass
class EarlyStoppingState:
    """early_stopping.py L95-125: `wait` counts every epoch and is reset by an improvement."""
    patience: int
    min_delta: float
    best: float | None = None
    wait: int = 0

    def step(self, epoch: int, current: float) -> bool:
        self.wait += 1
        if improves(current, self.best, self.min_delta):
            self.best, self.wait = current, 0
            return False
        return self.wait >= self.patience and epoch > 0


@dataclass
class ReduceLRState:
    """reduce_lr_on_plateau.py L99-140 with cooldown 0: `wait` counts non-improving epochs."""
    patience: int
    min_delta: float
    best: float = math.inf      # _reset: best = inf for mode min
    wait: int = 0

    def step(self, current: float) -> bool:
        if improves(current, self.best, self.min_delta):
            self.best, self.wait = current, 0
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.wait = 0
            return True
        return False


class KerasDefaults(OnlineDetector):
    """TerminateOnNaN, EarlyStopping and ReduceLROnPlateau, replayed on the run's logs."""
    name = "keras-defaults"
    version = "1.0"
    source = "keras-team/keras 3.15.1 keras/src/callbacks/{terminate_on_nan,early_stopping,reduce_lr_on_plateau}.py"
    needs = frozenset({"trace", "outcome"})
    causes = frozenset()
    symptoms = frozenset({"nan_loss", "plateau"})

    def __init__(self):
        self.early = EarlyStoppingState(PATIENCE_EARLY_STOPPING, MIN_DELTA_EARLY_STOPPING)
        self.reduce = ReduceLRState(PATIENCE_REDUCE_LR, MIN_DELTA_REDUCE_LR)
        self.fired: set[str] = set()

    def _once(self, rule: str, diagnosis: Diagnosis) -> list[Diagnosis]:
        if rule in self.fired:
            return []
        self.fired.add(rule)
        return [diagnosis]

    def on_epoch_end(self, epoch, trace, record):
        if not trace.completed:
            return []
        out: list[Diagnosis] = []
        loss = trace.logs.get("loss")
        if loss is not None and not math.isfinite(loss):
            out += self._once("nan", Diagnosis(symptom="nan_loss", epoch=epoch,
                                               evidence=f"TerminateOnNaN: loss {loss} at epoch {epoch}"))
        current = trace.logs.get(MONITOR)
        if current is None:
            return out
        if self.early.step(epoch, current):
            out += self._once("early", Diagnosis(
                symptom="plateau", confidence=1.0, epoch=epoch,
                evidence=f"EarlyStopping(patience={self.early.patience}): {MONITOR} has not improved on "
                         f"{self.early.best:.4g} for {self.early.wait} epochs; training stops at epoch {epoch}"))
        if self.reduce.step(current):
            out += self._once("reduce", Diagnosis(
                symptom="plateau", confidence=1.0, epoch=epoch,
                evidence=f"ReduceLROnPlateau(patience={PATIENCE_REDUCE_LR}, min_delta={MIN_DELTA_REDUCE_LR:g}): "
                         f"{MONITOR} not below {self.reduce.best:.4g} - {MIN_DELTA_REDUCE_LR:g}; "
                         f"lr x {FACTOR_REDUCE_LR} at epoch {epoch}"))
        return out

    def on_train_end(self, record):
        if record.outcome.status == "nan":
            return self._once("nan", Diagnosis(symptom="nan_loss", epoch=max(0, len(record.trace) - 1),
                                               evidence="TerminateOnNaN: the run ended on a non-finite loss"))
        return []
