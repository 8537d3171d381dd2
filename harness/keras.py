"""Detectors on your own training: a Keras callback that records a run as the benchmark does and
runs detectors on it while it trains.

    import trainwreck.keras

    rec = trainwreck.keras.Recorder("run.json", detectors=["autotrainer", "nan-guard"],
                                    x_train=x, y_train=y, x_val=x_val, y_val=y_val, batch_size=32)
    model.fit(x, y, batch_size=32, epochs=20, validation_data=(x_val, y_val), callbacks=[rec])

A Keras callback never sees the arrays `fit` trains on, so the Recorder is given them:

* `x_train`, `y_train` (and `x_val`, `y_val` if you validate): the arrays, or anything with
  `__array__` (a DataFrame, a tensor), you pass to `fit`. They give the data profile and, by default,
  the probe batch (their first `PROBE_SIZE` rows, as in the corpus). Without them (a `tf.data`
  pipeline, a generator, several inputs) the data profile is left empty, which a detector reading
  `data` sees as "nothing known", and the probe batch must be given as `probe_x`, `probe_y`.
* `batch_size`: the one you pass to `fit` (Keras's default is 32). It goes into the model summary,
  and with `x_train` it gives each epoch's batch shapes; without it both are left empty (0, none).
* `seed`: the seed you passed to `keras.utils.set_random_seed`, recorded as the run's seed.
* `trace_every`: k > 0 also records a step every k batches (TensorFlow; see `trainwreck.trace`), for
  detectors that declare "steps" in their `needs`.

The trace is the harness's own (`trainwreck.trace.TraceCallback`, which this class extends), and
the data profile, model summary, outcome and environment are built by the same functions
`trainwreck.train.run_task` uses, so a detector cannot tell this record from a corpus record.
Training is left as you wrote it: nothing is added to `fit` (no TerminateOnNaN, no early stopping).
The probe needs a Sequential or functional model (the trace reads `model.inputs` and each layer's
output), as in the corpus.

Detectors are named as for `trainwreck bench` (installed names or `module:Class` specs) and run
through `trainwreck.detectors.live`: online detectors after every epoch, each diagnosis printed as it
is made when `verbose`; post-hoc detectors when training ends. A detector that raises is reported as
an error line and dropped; training goes on.

The file written at train end (atomically, JSON; NaN and infinities as in the run cache)::

    {"record":    {...},                     # exactly a corpus record: RunRecord.from_dict(doc["record"])
     "diagnoses": {"autotrainer": [{"cause": ..., "symptom": ..., "confidence": ..., "epoch": ...,
                                    "evidence": ...}, ...], "nan-guard": [], ...},
     "errors":    {"my-detector": "ValueError: ..."},     # detectors that raised, and what
     "detectors": {"autotrainer": "1.0", ...}}            # the version of each detector that ran

`trainwreck diagnose run.json` runs any detector on it later, and gives the same diagnoses the
Recorder printed. A run that raises inside `fit` is recorded (outcome `crashed`) only when `fit`
is called inside `with Recorder(...) as rec:`; otherwise Keras never tells the callback.

Importing this module imports Keras and its backend; `import trainwreck` does not.
"""

from __future__ import annotations

import hashlib
import math
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from trainwreck.detectors.live import LiveDetectors, format_diagnosis, format_error
from trainwreck.profile import profile_data
from trainwreck.record import SCHEMA_VERSION, RunRecord
from trainwreck.store import atomic_write_text, canonical, digest
from trainwreck.summary import array_batch_shapes, layer_config, model_summary, run_status
from trainwreck.trace import PROBE_SIZE, TraceCallback

__all__ = ["Recorder", "compiled_facts", "PROBE_SIZE"]

PREFIX = "trainwreck: "


def _array(v) -> np.ndarray | None:
    """`v` as a NumPy array when it is one or converts like one (a DataFrame, a tensor), else None."""
    if v is None or isinstance(v, (list, tuple, dict)):
        return None
    if isinstance(v, np.ndarray):
        return v
    return np.asarray(v) if hasattr(v, "__array__") else None


def _name(obj) -> str:
    """The name a loss or metric was given to `compile` by, from its serialised form."""
    if obj is None:
        return ""
    if isinstance(obj, str):
        return obj
    if isinstance(obj, dict) and "class_name" in obj:
        return str((obj.get("config") or {}).get("name") or obj["class_name"])
    if isinstance(obj, dict):
        return ",".join(_name(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return ",".join(_name(v) for v in obj)
    return str(getattr(obj, "name", None) or getattr(obj, "__name__", None) or type(obj).__name__)


def _metric_names(metrics) -> list[str]:
    if metrics is None:
        return []
    if isinstance(metrics, dict):
        metrics = [m for v in metrics.values() for m in (v if isinstance(v, (list, tuple)) else [v])]
    return [_name(m) for m in (metrics if isinstance(metrics, (list, tuple)) else [metrics])]


def _learning_rate(optimizer) -> float:
    """The current learning rate; float32 printed shortest, so `SGD(0.1)` records 0.1 as a case file does."""
    import keras

    try:
        return float(str(np.float32(keras.ops.convert_to_numpy(optimizer.learning_rate))))
    except Exception:  # noqa: BLE001 - an optimizer without a readable rate records NaN, as unknown
        return math.nan


def _output_spec(model) -> tuple[int, str]:
    """Units of the last layer that has units, activation of the last layer that has one."""
    units, act = None, None
    for layer in reversed(model.layers):
        cfg = layer_config(layer)
        if units is None and (cfg.get("units") or cfg.get("filters")):
            units = int(cfg.get("units") or cfg.get("filters"))
        if act is None and cfg.get("activation") is not None:
            act = str(cfg["activation"])
        if units is not None and act is not None:
            break
    return units or 0, act or ""


def compiled_facts(model) -> dict:
    """What `model_summary` needs beyond the layers, read from a compiled model: the names a case file
    would give (`sgd`, `binary_crossentropy`, `accuracy`) where the model was compiled with them."""
    cfg = model.get_compile_config() if hasattr(model, "get_compile_config") else None
    cfg = cfg or {"loss": getattr(model, "loss", None), "metrics": None}
    opt = getattr(model.optimizer, "inner_optimizer", model.optimizer)
    units, act = _output_spec(model)
    return {"optimizer": type(opt).__name__.lower() if opt is not None else "",
            "learning_rate": _learning_rate(opt) if opt is not None else math.nan,
            "loss": _name(cfg.get("loss")), "metrics": _metric_names(cfg.get("metrics")),
            "output_units": units, "output_activation": act}


def _profile(x_train, y_train, x_val, y_val) -> tuple[dict, str]:
    """(the data profile, '' or why it is empty)."""
    x, y = _array(x_train), _array(y_train)
    if x is None or y is None:
        return {}, "no x_train/y_train arrays were given"
    xv, yv = _array(x_val), _array(y_val)
    if xv is None or yv is None:
        xv, yv = x[:0], y[:0]
    try:
        return profile_data(x, y, xv, yv), ""
    except Exception as e:  # noqa: BLE001 - data the profile cannot read leaves it empty, never the fit broken
        return {}, f"the arrays could not be profiled ({type(e).__name__}: {e})"


def _resolve(detectors: Sequence) -> list:
    if not detectors:
        return []
    from trainwreck.api import resolve_detectors

    return resolve_detectors(list(detectors))


def _short(e: BaseException) -> str:
    from trainwreck.train import short_message

    return short_message(e)


class Recorder(TraceCallback):
    """Record a `model.fit` run as a trainwreck run record and run detectors on it (see the module docstring).

    After training: `record` (the record, plain data), `diagnoses` ({detector: [Diagnosis]}),
    `errors` ({detector: message}); the file at `path`, if given.
    """

    def __init__(self, path: str | Path | None = None, detectors: Sequence = ("autotrainer",), *,
                 x_train: Any = None, y_train: Any = None, x_val: Any = None, y_val: Any = None,
                 probe_x: Any = None, probe_y: Any = None, batch_size: int | None = None, seed: int = 0,
                 verbose: bool = True, trace_every: int = 0):
        px = _array(probe_x) if probe_x is not None else _array(x_train)
        py = _array(probe_y) if probe_y is not None else _array(y_train)
        if px is None or py is None:
            raise ValueError("Recorder needs training data for its gradient probe: pass x_train= and y_train= "
                             "(arrays), or probe_x= and probe_y= (a batch of training inputs and targets)")
        super().__init__(px[:PROBE_SIZE], py[:PROBE_SIZE], None, None, trace_every=trace_every)
        self.path = Path(path) if path is not None else None
        self.infos = _resolve(detectors)
        self._data = (x_train, y_train, x_val, y_val)
        self.batch_size, self.seed, self.verbose = batch_size, int(seed), verbose
        self.live = LiveDetectors(self.infos)
        self.record: dict | None = None
        self._base: dict = {}
        self._began = self._ended = False
        self._reported: set[str] = set()
        self._pending: list[tuple[str, Any]] = []

    @property
    def diagnoses(self) -> dict:
        return self.live.diagnoses

    @property
    def errors(self) -> dict:
        return self.live.errors

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if isinstance(exc, Exception) and self._began and not self._ended:
            self._crashed(exc)
        return False

    # -- the Keras callback
    def on_train_begin(self, logs=None):
        self.epochs, self.record = [], None
        self._began, self._ended, self._reported, self._pending = True, False, set(), []
        super().on_train_begin(logs)
        self._t0_run = time.perf_counter()
        self.array_shapes = self._array_shapes()
        self._base = self._base_record()
        self._say(self.live.begin(self._snapshot()))

    def on_epoch_begin(self, epoch, logs=None):
        self._flush()
        super().on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        self._say(self.live.epoch_end(self._snapshot()))

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        self._finish({"status": run_status(self.epochs, int(self.params.get("epochs") or 0)),
                      "exception_type": "", "message": ""})

    # -- building the record
    def _array_shapes(self) -> list | None:
        """fit's batch shapes over x_train, when the batch size is known and agrees with the steps fit runs."""
        x = _array(self._data[0])
        steps = int(self.params.get("steps") or 0)
        if x is None or not self.batch_size or steps != math.ceil(len(x) / self.batch_size):
            return None
        return array_batch_shapes(len(x), self.batch_size, x.shape[1:])

    def _base_record(self) -> dict:
        import keras

        from trainwreck.train import environment, visible_device

        data, why = _profile(*self._data)
        if why and self.verbose:
            print(f"{PREFIX}the data profile is empty: {why}", flush=True)
        backend = keras.backend.backend()
        model = model_summary(self.model, batch_size=int(self.batch_size or 0),
                              epochs=int(self.params.get("epochs") or 0), **compiled_facts(self.model))
        env = environment(backend, visible_device(backend))
        probe = hashlib.sha256(np.ascontiguousarray(self.x_probe).tobytes()
                               + np.ascontiguousarray(self.y_probe).tobytes()).hexdigest()
        key = digest({"data": data, "model": model, "seed": self.seed, "environment": env, "probe": probe,
                      **({"trace_every": self.trace_every} if self.trace_every else {})})[:24]
        return {"key": key, "schema_version": SCHEMA_VERSION, "seed": self.seed, "trace_every": self.trace_every,
                "data": data, "model": model, "environment": env}

    def _record(self, outcome: dict) -> dict:
        return {**self._base, "trace": self.epochs, "outcome": outcome}

    def _snapshot(self) -> RunRecord:
        """The record so far; LiveDetectors presents it as running."""
        return RunRecord.from_dict(self._record({}))

    def _crashed(self, exc: Exception) -> None:
        self.finish_interrupted()
        if self.epochs and not self.epochs[-1]["completed"]:
            self._say(self.live.epoch_end(self._snapshot()))   # replay feeds the interrupted epoch too
        self._finish({"status": "crashed", "exception_type": type(exc).__name__, "message": _short(exc)})

    def _finish(self, outcome: dict) -> None:
        self._ended = True
        done = sum(1 for e in self.epochs if e["completed"])
        outcome = {**outcome, "epochs_run": done, "wall_seconds": time.perf_counter() - self._t0_run}
        self.record = self._record(outcome)
        self._say(self.live.end(RunRecord.from_dict(self.record)))
        if self.path is not None:
            atomic_write_text(self.path, canonical(self.document()))
        if self.verbose:
            self._summary()
        self._flush()

    def document(self) -> dict:
        """What the file at `path` holds (see the module docstring)."""
        return {"record": self.record,
                "diagnoses": {n: [d.to_dict() for d in ds] for n, ds in self.live.diagnoses.items()},
                "errors": dict(self.live.errors), "detectors": {i.name: i.version for i in self.infos}}

    # -- output
    def _say(self, findings) -> None:
        """Queue the lines for `_flush`: Keras's progress bar ends its epoch line after this callback's
        `on_epoch_end`, so a line printed there would land in the middle of it."""
        if not self.verbose:
            return
        self._pending += [(PREFIX + format_diagnosis(name, d), sys.stdout) for name, d in findings]
        for name, message in self.live.errors.items():
            if name not in self._reported:
                self._reported.add(name)
                self._pending.append((PREFIX + format_error(name, message), sys.stderr))

    def _flush(self) -> None:
        for line, stream in self._pending:
            print(line, file=stream, flush=True)
        self._pending = []

    def _summary(self) -> None:
        n = sum(len(ds) for ds in self.live.diagnoses.values())
        names = ", ".join(i.name for i in self.infos) or "no detector"
        said = f"{n} diagnos{'is' if n == 1 else 'es'}" if n else "no diagnosis"
        saved = f"; record saved to {self.path}" if self.path is not None else ""
        self._pending.append((f"{PREFIX}{said} from {names} ({self.record['outcome']['status']}, "
                              f"{self.record['outcome']['epochs_run']} epochs){saved}", sys.stdout))
