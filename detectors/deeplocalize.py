"""deeplocalize: the `DeepLocalize` Keras callback (Wardat, Le, Rajan, ICSE 2021), over the per-step trace.

Source: Wardat-ISU/DeepLocalize @297bc3441b5903b5c85bc5ffd7c9881a3c0c75a2, `Our Callback/callbacks.py`:
`get_weight_grad` L271-278, `get_layer_output_grad_all` L299-306, `get_weights` L312-321,
`get_layer_output` L327-334, `meanResult` L339-343, `DeepLocalize.__init__` L345-378 and
`DeepLocalize.on_batch_end` L380-549. (The repository's other mechanism, `Our Tool/` -- its own NumPy
layers trained sample by sample, with 50-iteration windows, `network.py` L117-129 and `layers.py`
L278-340 -- does not run on a Keras model and is not ported.)

What the original does, at the end of every training batch (`on_batch_end`), on the batch slice
`inputs[batch*batch_size:(batch+1)*batch_size]` (L387-388), in this order; the first check that
holds prints "Batch b layer l: <message>, terminating training" and ends the process (`sys.exit(1)`),
so a run gets at most one finding. `counter` counts batches from 1 over the whole run (L357, L547,
never reset), N = 5 (L381), and a "block" check runs when counter % 5 == 0 over the 5 values
collected since the previous block, then clears them (non-overlapping blocks). "Equal" is
`meanResult`: np.mean(a) == np.max(a) (L339-343). "Zero often" is: the value is exactly 0 now, its
count of exact zeros is incremented, and the check holds when that count >= counter / 2 (so a zero
at the very first batch fires at once).

Rule table (callbacks.py @297bc34; "here" = what is read on the per-step trace, then on the
per-epoch fallback; every threshold is the original's):

| # | original | message | holds when | here: step trace / epoch fallback | symptom |
|---|---|---|---|---|---|
| 1a | L398-402 | Error in forward | mean output of a layer NaN or Inf | activation quantiles not finite (no finite output on the probe batch) / activation_mean not finite | nan_loss |
| 1b | L404-410 | Error in forward | mean output == 0, zero count >= counter/2 | every activation quantile 0 (min = max = 0) / activation_mean == 0 | dead_units |
| 1c | L412-419 | Error in forward | block: 5 equal mean outputs, layer name without 'flatten' | 5 equal quantile vectors / 5 equal activation_mean | unchanged_weights |
| 2a | L426-431 | Error in Weights | kernel mean NaN or Inf (every layer with weights, last first, L424) | weight_min or weight_max not finite / weight_mean not finite | exploding_gradient |
| 2b | L432-438 | Error in Weights | kernel mean == 0, zero count >= counter/2 | weight_min = weight_max = 0 / weight_mean == 0 | unchanged_weights |
| 2c | L440-448 | Error in Weights | block: Dense layers ('dense' in the name), 5 equal kernel means | 5 equal (weight_min, weight_max, weight_var) / 5 equal weight_mean | unchanged_weights |
| 3a | L455-459 | Invalid loss | batch loss NaN or Inf | StepTrace.loss / the epoch's logged loss | nan_loss |
| 3b | L460-466 | MDL | block: 5 equal batch losses | 5 equal StepTrace.loss / 5 equal epoch losses | plateau |
| 4a | L472-476 | Invalid accuracy | batch accuracy (`logs['acc']`) NaN or Inf | the epoch's logged accuracy, both modes | nan_loss |
| 4b | L477-483 | MDL | block: 5 equal batch accuracies | 5 equal epoch accuracies, both modes | plateau |
| 5a | L491-495 | Error in delta Weights | Dense layers, last first: mean kernel gradient NaN or Inf | StepTrace.grad_nonfinite > 0 or grad_mean_abs not finite / grad_mean not finite | exploding_gradient |
| 5b | L497-503 | Error in delta Weights | mean kernel gradient == 0, zero count >= counter/2 | grad_mean_abs == 0 (all-zero gradient) / grad_mean == 0 | unchanged_weights |
| 5c | L508-516 | Error in Delta Weights | block: 5 equal mean kernel gradients | 5 equal grad_mean_abs / 5 equal grad_mean | unchanged_weights |
| 6 | L520-546 | Error in Output Gradient | mean of dLoss/d(layer output) NaN/Inf, 0 often, or 5 equal | not evaluated (deviation 4) | - |

In step mode, the NaN/Inf rules 1a, 2a, 3a and 5a also run once at each completed epoch's end on the
epoch's own values, the fallback's columns (deviation 1), and 1a there also sees a partly non-finite
output (deviation 3).

Causes: none. The original's messages say when (batch), where (layer index) and in which quantity
(forward, weights, loss, accuracy, delta weights, output gradient) the check held, and nothing
else: no message names a fault or suggests a fix, so `causes = frozenset()`. (The paper also
localises faults to hyperparameters; the published callback does not, and the paper's text was
not available in this session.) The symptom column is this port's reading of each message, the
same as the `deepdiagnosis` port reads the same messages of its successor: a non-finite forward
value or loss makes the loss non-finite (nan_loss); non-finite weights or gradients are an
exploding update (exploding_gradient); an all-zero layer output is dead units (the taxonomy's
term names ReLU units, the original looks at no activation); a weight or gradient held at 0 or
unchanged, and a layer output that stops changing, are unchanged_weights; a loss or accuracy that
stops changing ("MDL", Model Does not Learn) is a plateau. The evidence carries the original's
message, its batch and layer index (position in the model summary, which like Keras 2's
`model.layers` of a Sequential model holds no InputLayer), the layer name and the value. The
original gives no confidence: 1.0.

Data: `needs` includes "steps" as an *optional* part (`optional = {"steps"}`): the per-step trace
(a StepTrace every k batches, TensorFlow) is read when the run was traced per step
(`trainwreck bench --trace-every 10`, or another selected detector requires it), but the default
bench does not switch the whole corpus to per-step tracing for this detector alone (it costs
about 1.4x the training time, `make perf`). So the leaderboard's default `deeplocalize` row is the
per-epoch reading below; `make bench ARGS="--trace-every 10"` gives the per-step one. A record with
no step trace (per-epoch resolution, or a backend without one) is read per epoch: every EpochTrace
is one "batch" of the original, on its statistics at the epoch end. The mode is fixed by the first
epoch with data: step mode when it has step records.

Deviations, and why:
1. Sampling: the original checks every batch; the step trace holds every k-th batch (k = the
   run's trace_every), so `counter`, the zero counts and the 5-value blocks count recorded steps,
   not batches (a block spans 4k+1 batches), and "zero on half the batches" is "zero on half the
   recorded steps". In the fallback they count epochs. A NaN/Inf that first appears between two
   recorded steps, in a run that then stops (Keras ends a NaN run), would be missed; so at each
   completed epoch's end the NaN/Inf checks (1a, 2a, 3a, 5a) also run once on the epoch's own
   values: activation_mean, weight_mean and grad_mean on the probe batch (NaN-propagating means)
   and the logged loss (the mean over every batch, non-finite when any batch's loss was).
2. Which batch: the original slices `inputs[batch*bs:(batch+1)*bs]`, which is the batch just
   trained only when `fit` does not shuffle (Keras's default shuffles), and evaluates it after the
   update. Here gradients (5) are those Keras applied on the actual batch, before the update; the
   batch loss (3) is that batch's; layer outputs (1) are on the run's fixed 64-row probe batch
   after the step; weights (2) are the kernels after the step. On a fixed probe, "5 equal layer
   outputs" (1c) means the layers up to it stopped changing what they compute (on varying batches
   it meant an output independent of the input); a frozen upstream layer makes it hold, as the
   original's 2c does for a frozen Dense layer.
3. Summaries: the step trace has no means of layer outputs, kernels or kernel gradients, only
   quantiles (outputs), min/max/variance (kernels) and mean |g|, max |g|, a non-finite count
   (gradients). The original's decisions are read off them: a mean is NaN/Inf exactly when some
   entry is (min/max and the non-finite count are NaN-propagating), a mean is exactly 0 in
   practice only when every entry is 0 (a signed mean that cancels to exactly 0 is not seen), and
   equal summaries over 5 steps stand for equal means. Activation quantiles are over the finite
   values only, so a layer output that is only partly non-finite is not seen at the step (its
   batch loss usually is, rule 3a), only at the epoch end (deviation 1). The fallback reads the
   means themselves (activation_mean, weight_mean, grad_mean: the original's statistics, on the
   probe batch). `meanResult` is
   computed as the original does on every one-number stream (losses, accuracies, the fallback's
   means, mean |dW|): np.mean == np.max in float32, which misses about 15% of runs of 5 identical
   float32 values (5x/5 rounds away from x), as the original does. On the vector summaries (output
   quantiles; kernel min, max, variance) "equal" is the 5 vectors exactly equal, since applying that
   rounding to every component would compound the misses.
4. Output gradients (rule 6) are not in the record: the trace has gradients with respect to the
   weights, not to layer outputs. Their NaN/Inf and zero cases are mostly reached first by rule 5,
   which runs before it in the same batch: a non-finite or zero gradient at a layer's output
   reaches the kernel gradient of that layer or a weighted layer below it. The "5 equal" case is
   not covered.
5. Accuracy: the step trace has no per-batch accuracy, so rules 4a/4b read the epoch's logged
   accuracy at each epoch end, with their own epoch counter, in both modes. The original reads
   `logs['acc']` (the key of Keras 2.2, its stated version; under `accuracy` it would never run);
   here `acc`, else `accuracy`. As in the original, a run whose training accuracy is the same (say
   1.0) on the 5 epochs of a block is reported as MDL, however good that accuracy is.
6. Layer roles: "Dense" (2c, 5) is `LayerInfo.kind == "Dense"`, where the original tested the
   layer name for 'dense' (Keras's default name); the name test is used when the record has no
   kind. Kernel means are of each layer's first weight (the kernel), where `get_weights` unpacked
   exactly two arrays (a layer with one or four, e.g. use_bias=False or BatchNormalization, crashed
   the callback), and each Dense layer's own kernel gradient is used where `index -= 2` (L488, L504)
   misaligned gradients in any model with a non-Dense weighted layer. Frozen layers have no
   gradient entries (the original's gradients are over trainable weights, L273); their kernels are
   still checked (2a-2c), as `get_weights` reads every layer.
7. A step loss recorded as NaN in an epoch whose logged loss is finite was not measured (Keras's
   loss tracker turns NaN for the rest of an epoch once a batch loss is), so it is skipped.
   Interrupted epochs: their recorded steps are checked (the original's on_batch_end ran for
   them); their epoch-end checks (deviation 1, rule 4) and, in the fallback, the whole epoch
   are skipped (Keras calls no on_epoch_end for them, and they hold no probe statistics).
"""

from __future__ import annotations

import math

import numpy as np

from .base import Diagnosis, OnlineDetector

N = 5   # on_batch_end L381
SYMPTOMS = frozenset({"nan_loss", "dead_units", "unchanged_weights", "exploding_gradient", "plateau"})

_FORWARD, _WEIGHTS, _DELTA = "Error in forward", "Error in Weights", "Error in delta Weights"
_DELTA_BLOCK = "Error in Delta Weights"   # the original's spelling in the block check (L512)


def _finite(v) -> bool:
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v)


def _mean_is_max(values) -> bool:
    """meanResult (L339-343) over exactly N values: for numbers, np.mean(a) == np.max(a) in float32 (the
    dtype of the original's Keras values), rounding included; for a vector summary (no one number to
    apply it to), the N vectors exactly equal."""
    if len(values) != N or any(v is None for v in values):
        return False
    if isinstance(values[0], tuple):
        return all(v == values[0] for v in values)   # NaN != NaN: a non-finite summary is never "equal"
    with np.errstate(all="ignore"):
        a = np.asarray(values, dtype=np.float32)
        return bool(np.mean(a) == np.max(a))


class _Stream:
    """One of the original's per-layer quantities: the values since the last block, each layer's zero count."""

    def __init__(self):
        self.block: dict[str, list] = {}
        self.zeros: dict[str, int] = {}


class DeepLocalize(OnlineDetector):
    """DeepLocalize's on_batch_end checks, on the per-step trace (else per epoch); the first finding ends the run."""
    name = "deeplocalize"
    version = "1.0"
    source = "Wardat-ISU/DeepLocalize@297bc3441b5903b5c85bc5ffd7c9881a3c0c75a2 Our Callback/callbacks.py"
    needs = frozenset({"model", "trace", "steps"})
    optional = frozenset({"steps"})   # read when recorded; the default bench stays per epoch (module docstring)
    causes = frozenset()          # the original's messages name no fault (module docstring)
    symptoms = SYMPTOMS

    def __init__(self):
        self.mode: str | None = None     # "steps" | "epochs", fixed by the first epoch with data
        self.done = False
        self.counter = 1                 # L357: observations (recorded steps, or epochs) from 1
        self.forward, self.weights, self.delta = _Stream(), _Stream(), _Stream()
        self.losses: list = []
        self.acc_counter = 1
        self.accs: list = []

    # -- layer roles ------------------------------------------------------------------------
    @staticmethod
    def _info(record, layer):
        return next((info for info in record.model.layers if info.name == layer), None)

    def _index(self, record, layer) -> str:
        names = [info.name for info in record.model.layers]
        return f"layer {names.index(layer)} ({layer})" if layer in names else f"layer {layer}"

    def _dense(self, record, layer) -> bool:
        info = self._info(record, layer)
        return info.kind == "Dense" if info is not None and info.kind else "dense" in layer

    def _flatten(self, record, layer) -> bool:
        info = self._info(record, layer)
        return "flatten" in layer or (info is not None and info.kind == "Flatten")

    def _trainable(self, record, layer) -> bool:
        info = self._info(record, layer)
        return info is None or info.trainable

    # -- findings ---------------------------------------------------------------------------
    def _emit(self, epoch, where, record, layer, message, symptom, detail) -> list[Diagnosis]:
        self.done = True   # sys.exit(1): the original reports one finding per run
        at = f"{where} {self._index(record, layer)}" if layer is not None else where
        return [Diagnosis(symptom=symptom, confidence=1.0, epoch=epoch,
                          evidence=f"DeepLocalize: {at}: {message}, terminating training ({detail})")]

    def _layers(self, stream, items, epoch, where, record, message, bad_symptom, zero_symptom, what):
        """The per-layer part of one section: non-finite, then zero often (L398-410, L426-438, L491-503)."""
        for layer, summary, bad, zero in items:
            stream.block.setdefault(layer, []).append(summary)
            if bad:
                return self._emit(epoch, where, record, layer, message, bad_symptom, f"{what}: not finite, {summary}")
            if zero:
                stream.zeros[layer] = stream.zeros.get(layer, 0) + 1
                if stream.zeros[layer] >= self.counter / 2:
                    return self._emit(epoch, where, record, layer, message, zero_symptom,
                                      f"{what}: exactly 0 at {stream.zeros[layer]} of {self.counter} "
                                      f"observations, >= half")
        return None

    def _block(self, stream, order, eligible, epoch, where, record, message, what):
        """The block check (L412-419, L440-448, L508-516): 5 equal values of an eligible layer; then clear."""
        if self.counter % N:
            return None
        for layer in order:
            if eligible(layer) and _mean_is_max(stream.block.get(layer, [])):
                return self._emit(epoch, where, record, layer, message, "unchanged_weights",
                                  f"{what} equal over the last {N} observations: {stream.block[layer][-1]}")
        stream.block = {}
        return None

    def _observe(self, obs, epoch, where, record, acc_trace=None):
        """One on_batch_end (L380-549) on one observation: the sections in the original's order (the
        accuracy section only in the fallback, from `acc_trace`; in step mode it runs at the epoch end)."""
        forward, weights, loss, delta, what = obs
        hit = self._layers(self.forward, forward, epoch, where, record, _FORWARD, "nan_loss", "dead_units",
                           what["forward"])
        hit = hit or self._block(self.forward, [l for l, *_ in forward], lambda l: not self._flatten(record, l),
                                 epoch, where, record, _FORWARD, what["forward"])
        hit = hit or self._layers(self.weights, weights, epoch, where, record, _WEIGHTS, "exploding_gradient",
                                  "unchanged_weights", what["weights"])
        hit = hit or self._block(self.weights, [l for l, *_ in weights], lambda l: self._dense(record, l),
                                 epoch, where, record, _WEIGHTS, what["weights"])
        if not hit and loss is not None:
            self.losses.append(loss)
            if not _finite(loss):
                hit = self._emit(epoch, where, record, None, "Invalid loss", "nan_loss", f"{what['loss']} = {loss}")
            elif self.counter % N == 0:
                if _mean_is_max(self.losses[-N:]):
                    hit = self._emit(epoch, where, record, None, "MDL", "plateau",
                                     f"{what['loss']} equal over the last {N} observations: {loss}")
                self.losses = []
        if not hit and acc_trace is not None:
            hit = self._accuracy(epoch, acc_trace, record, where)
        hit = hit or self._layers(self.delta, delta, epoch, where, record, _DELTA, "exploding_gradient",
                                  "unchanged_weights", what["delta"])
        hit = hit or self._block(self.delta, [l for l, *_ in delta], lambda l: True,
                                 epoch, where, record, _DELTA_BLOCK, what["delta"])
        self.counter += 1
        return hit

    # -- observations -----------------------------------------------------------------------
    def _step_obs(self, step, trace, record):
        forward = []
        for layer, q in step.activation_quantiles.items():
            q = tuple(q)
            if not q:
                continue
            bad = not all(_finite(v) for v in q)       # quantiles of the finite values: NaN when none is
            forward.append((layer, q, bad, not bad and q[0] == 0 and q[-1] == 0))
        weights = []
        for layer in reversed(list(step.weight_min)):
            lo, hi = step.weight_min.get(layer), step.weight_max.get(layer)
            if hi is None:
                continue
            bad = not (_finite(lo) and _finite(hi))
            summary = (lo, hi, step.weight_var.get(layer, math.nan))
            weights.append((layer, summary, bad, not bad and lo == 0 and hi == 0))
        delta = []
        for layer in reversed(list(step.grad_mean_abs)):
            if not (self._dense(record, layer) and self._trainable(record, layer)):
                continue
            g = step.grad_mean_abs[layer]
            bad = step.grad_nonfinite.get(layer, 0) > 0 or not _finite(g)
            delta.append((layer, g, bad, not bad and g == 0))
        loss = step.loss
        logged = trace.logs.get("loss")
        if not _finite(loss) and trace.completed and _finite(logged):
            loss = None   # deviation 7: not measured
        what = {"forward": "output quantiles on the probe batch", "weights": "kernel (min, max, var)",
                "loss": "batch loss", "delta": "mean |dW| of the batch"}
        return (forward, weights, loss, delta, what)

    def _epoch_obs(self, trace, record):
        forward = [(l, v, not _finite(v), _finite(v) and v == 0) for l, v in trace.activation_mean.items()]
        weights = [(l, v, not _finite(v), _finite(v) and v == 0) for l, v in reversed(list(trace.weight_mean.items()))]
        delta = [(l, v, not _finite(v), _finite(v) and v == 0) for l, v in reversed(list(trace.grad_mean.items()))
                 if self._dense(record, l) and self._trainable(record, l)]
        what = {"forward": "mean output on the probe batch", "weights": "kernel mean", "loss": "epoch loss",
                "delta": "mean dW on the probe batch"}
        return (forward, weights, trace.logs.get("loss"), delta, what)

    # -- epoch-level checks ---------------------------------------------------------------------
    def _epoch_end(self, epoch, trace, record, where):
        """Step mode, at a completed epoch's end (deviation 1): the NaN/Inf checks 1a, 2a, 3a and 5a on the
        epoch's own values, which cover the batches the sampling skipped (the logged loss is the mean over
        every batch; the probe statistics are NaN-propagating means), in the original's order with 4a/4b on
        the epoch's accuracy between 3a and 5a; no counter or block is touched but the accuracy's."""
        checks = [(_FORWARD, "nan_loss", "mean output on the probe batch", list(trace.activation_mean.items())),
                  (_WEIGHTS, "exploding_gradient", "kernel mean", list(reversed(list(trace.weight_mean.items()))))]
        for message, symptom, what, items in checks:
            for layer, v in items:
                if not _finite(v):
                    return self._emit(epoch, where, record, layer, message, symptom, f"{what} at the epoch end is {v}")
        loss = trace.logs.get("loss")
        if loss is not None and not _finite(loss):
            return self._emit(epoch, where, record, None, "Invalid loss", "nan_loss",
                              f"the epoch's mean batch loss is {loss}: a batch between the recorded steps")
        hit = self._accuracy(epoch, trace, record, where)
        if hit:
            return hit
        for layer, v in reversed(list(trace.grad_mean.items())):
            if self._dense(record, layer) and self._trainable(record, layer) and not _finite(v):
                return self._emit(epoch, where, record, layer, _DELTA, "exploding_gradient",
                                  f"mean dW on the probe batch at the epoch end is {v}")
        return []

    def _accuracy(self, epoch, trace, record, where):
        """Rules 4a/4b (L468-483) on the epoch's logged accuracy, with their own epoch counter."""
        acc = trace.logs.get("acc", trace.logs.get("accuracy"))
        if acc is None:
            return None
        self.accs.append(acc)
        out = None
        if not _finite(acc):
            out = self._emit(epoch, where, record, None, "Invalid accuracy", "nan_loss", f"epoch accuracy = {acc}")
        elif self.acc_counter % N == 0:
            if _mean_is_max(self.accs[-N:]):
                out = self._emit(epoch, where, record, None, "MDL", "plateau",
                                 f"epoch accuracy equal over the last {N} epochs: {acc}")
            self.accs = []
        self.acc_counter += 1
        return out

    def on_epoch_end(self, epoch, trace, record):
        if self.done:
            return []
        if self.mode is None and (trace.step_trace or trace.completed):
            self.mode = "steps" if trace.step_trace else "epochs"
        if self.mode == "steps":
            for step in trace.step_trace:
                where = f"Batch {step.batch} (step {step.step})"
                hit = self._observe(self._step_obs(step, trace, record), epoch, where, record)
                if hit:
                    return hit
            if not trace.completed:
                return []
            last = trace.steps - 1 if trace.steps else (trace.step_trace[-1].batch if trace.step_trace else 0)
            return self._epoch_end(epoch, trace, record, f"Batch {last} (end of epoch {epoch})")
        if self.mode == "epochs" and trace.completed:
            return self._observe(self._epoch_obs(trace, record), epoch, f"Epoch {epoch}", record, acc_trace=trace) or []
        return []
