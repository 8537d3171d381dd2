"""One training run, inside a worker process: task + seed in, record + oracle extras out.

This is the only module that trains. It seeds everything (Python, NumPy and
the backend through `keras.utils.set_random_seed`, plus op determinism on
TensorFlow and torch), clears the Keras session so a pooled worker gives the same
record as a fresh one, builds data, model and pipeline from the registries,
trains with the trace callback, and evaluates on the clean test split for the
oracle only.
"""

from __future__ import annotations

import math
import platform
import time
import traceback
from dataclasses import dataclass

import numpy as np

from .case import Task
from .environment import record_facts
from .hardware import run_probes
from .data_steps import load_steps
from .datasets import load_dataset
from .models import MODELS, LayersModel, build_layers_model, build_model, layers_output_spec, output_spec
from .pipelines import make_fit_input
from .profile import profile_data
from .record import SCHEMA_VERSION
from .summary import array_batch_shapes, model_summary, run_status
from .transforms import apply_transforms

__all__ = ["run_task", "prepare_fit", "PreparedFit", "environment", "visible_device", "setup_worker", "short_message"]

_ENV: dict | None = None


def setup_worker(backend: str, device: str, threads: int, env: dict | None = None) -> None:
    """Process-wide settings that must precede the first TensorFlow op (`env`: numerics-relevant
    variables such as TF_ENABLE_ONEDNN_OPTS, which TensorFlow reads when it is imported)."""
    import os

    os.environ.update(env or {})
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
        os.environ["JAX_PLATFORMS"] = "cpu"
    else:
        # --jobs N workers share one GPU: JAX would otherwise preallocate 75% of its memory in
        # each of them (and TensorFlow all of it, see below), so the second worker could not start.
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    if backend == "jax":
        os.environ["XLA_FLAGS"] = (f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} "
                                   f"intra_op_parallelism_threads={threads}")
    if backend == "torch":
        import torch

        torch.set_num_threads(threads)
        torch.set_num_interop_threads(threads)
        torch.use_deterministic_algorithms(True, warn_only=True)
    import tensorflow as tf  # also the data pipeline of PyDataset/generators on every backend

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    tf.get_logger().setLevel("ERROR")
    if device != "cpu" and backend != "tensorflow":
        tf.config.set_visible_devices([], "GPU")   # TensorFlow only feeds data here; the GPU is the backend's
    elif device != "cpu":
        for gpu in tf.config.list_physical_devices("GPU"):
            tf.config.experimental.set_memory_growth(gpu, True)
    if device == "gpu" and not _gpus(backend):
        hint = {"tensorflow": "make setup-gpu installs the CUDA build of TensorFlow",
                "jax": "install a CUDA build of jaxlib, e.g. pip install 'jax[cuda12]'",
                "torch": "install a CUDA build of torch"}[backend]
        raise RuntimeError(f"--device gpu was requested but the {backend} backend sees no GPU ({hint})")
    import keras
    keras.utils.disable_interactive_logging()


def _gpus(backend: str) -> list[str]:
    """The names of the GPUs the backend sees."""
    if backend == "jax":
        import jax

        return [str(d) for d in jax.devices() if d.platform == "gpu"]
    if backend == "torch":
        import torch

        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    import tensorflow as tf

    return [tf.config.experimental.get_device_details(g).get("device_name", g.name)
            for g in tf.config.list_physical_devices("GPU")]


def _intra_op_threads() -> int:
    """The thread count setup_worker gave TensorFlow, read back rather than remembered."""
    import tensorflow as tf

    return tf.config.threading.get_intra_op_parallelism_threads()


def visible_device(backend: str) -> str:
    """'gpu' when the backend sees a GPU, else 'cpu': the device a run in this process trains on."""
    return "gpu" if _gpus(backend) else "cpu"


def environment(backend: str, device: str) -> dict:
    """The record's environment, measured once per worker (the probes run a small model)."""
    global _ENV
    if _ENV is None:
        gpus = _gpus(backend) if device == "gpu" else []
        name = gpus[0] if gpus else platform.processor() or platform.machine()
        _ENV = record_facts(backend, device, name, _intra_op_threads(), run_probes())
    return _ENV


def _model(task: Task, data):
    """The uncompiled model and its output (units, activation), from layers or from a named builder."""
    if isinstance(task.model, LayersModel):
        return build_layers_model(task.model, data.x_train.shape[1:]), layers_output_spec(task.model)
    model = build_model(task.model.name, task.model.params, data.x_train.shape[1:], data.task, data.n_classes)
    return model, output_spec(MODELS.get(task.model.name).params(**task.model.params), data.task, data.n_classes)


def _loss(c):
    """A loss name, or a built-in loss class with its arguments ({BinaryCrossentropy: {label_smoothing: 0.1}})."""
    import keras

    if isinstance(c.loss, str):
        return c.loss
    (name, kw), = c.loss.items()
    return keras.losses.get({"class_name": name, "config": dict(kw), "module": "keras.losses"})


def _optimizer(c):
    import keras

    if isinstance(c.optimizer, dict):
        (name, kw), = c.optimizer.items()
        return keras.optimizers.get({"class_name": name, "config": dict(kw), "module": "keras.optimizers"})
    kw = {"learning_rate": c.learning_rate}
    if c.clipnorm:
        kw["clipnorm"] = c.clipnorm
    if c.optimizer == "sgd":
        kw["momentum"] = c.momentum
    return keras.optimizers.get({"class_name": c.optimizer, "config": kw})


def _class_weight(y: np.ndarray) -> dict:
    from sklearn.utils.class_weight import compute_class_weight

    labels = y.argmax(-1) if y.ndim > 1 else y
    classes = np.unique(labels)
    return dict(zip(classes.tolist(), compute_class_weight("balanced", classes=classes, y=labels).tolist()))


def _data(task: Task, seed: int):
    """The three splits: from the `data` steps, or from a registered dataset and its transforms."""
    if task.data is not None:
        return load_steps(task.data, seed)
    data = load_dataset(task.dataset.name, task.dataset.params, seed)
    return apply_transforms(data, [(t.name, t.params) for t in task.transforms], seed)


def _splits(data, validation_split: float | None) -> dict:
    """The splits the oracle's `test`, `val` and `train` measures read: with fit's validation_split, the
    validation rows are the ones Keras held out (the last fraction, split where Keras 3 splits)."""
    if not validation_split:
        return {"test": (data.x_test, data.y_test), "val": (data.x_val, data.y_val),
                "train": (data.x_train, data.y_train)}
    at = int(math.ceil(len(data.x_train) * (1.0 - validation_split)))
    return {"test": (data.x_test, data.y_test), "val": (data.x_train[at:], data.y_train[at:]),
            "train": (data.x_train[:at], data.y_train[:at])}


# The largest split scored in one call: up to it, Keras's `test_on_batch` and `predict_on_batch` score
# the whole split as one batch, without the tf.data pipeline and epoch loop `evaluate` and `predict`
# build per call (about 0.05 s each, six per run: 0.3 s of a 3 s run); a larger split goes through
# `evaluate` and `predict` in batches of 256, so memory stays bounded. Both give Keras's own loss
# (regularization included) and compiled metrics, equal to float rounding (tests/test_evaluation.py).
ONE_BATCH_ROWS = 4096


def _keras_scores(model, x, y) -> tuple[dict, np.ndarray]:
    """Keras's loss and compiled metrics on (x, y) with the model in inference mode, and its predictions."""
    if len(x) <= ONE_BATCH_ROWS:
        vals, p = model.test_on_batch(x, y, return_dict=True), model.predict_on_batch(x)
    else:
        vals = model.evaluate(x, y, verbose=0, return_dict=True, batch_size=256)
        p = model.predict(x, verbose=0, batch_size=256)
    return {k: float(v) for k, v in vals.items()}, np.asarray(p)


def _evaluate(model, x, y, task: str) -> dict:
    """Keras's metrics on the clean split, plus class-balance-aware scores from scikit-learn."""
    try:
        out, p = _keras_scores(model, x, y)
    except Exception as e:  # a model that cannot even evaluate has no test score
        return {"error": f"{type(e).__name__}: {e}"[:300]}
    from sklearn.metrics import balanced_accuracy_score, f1_score, r2_score, recall_score

    if not np.all(np.isfinite(p)):
        return out
    if task == "regression":
        out["r2"] = float(r2_score(y.reshape(len(y), -1), p.reshape(len(p), -1)))
        return out
    pred = p.argmax(-1) if p.ndim > 1 and p.shape[-1] > 1 else (p.reshape(-1) > 0.5).astype(int)
    true = y.argmax(-1) if y.ndim > 1 else y
    labels, counts = np.unique(true, return_counts=True)
    minority = labels[counts.argmin()]
    out.update(balanced_accuracy=float(balanced_accuracy_score(true, pred)),
               macro_f1=float(f1_score(true, pred, average="macro", zero_division=0)),
               minority_recall=float(recall_score(true, pred, labels=[minority], average="macro", zero_division=0)),
               top_class_share=float(np.bincount(pred).max() / len(pred)))
    return out


@dataclass
class PreparedFit:
    """Everything `model.fit` is called with, built from a task: what `run_task` trains, and what
    `make perf` times with and without the trace callback (`probe` None when built untraced)."""
    data: object
    model: object
    x: object
    y: object
    kwargs: dict
    probe: object
    units: int
    activation: str
    started: float   # perf_counter once the previous run's session is cleared: the run's wall clock starts here


def prepare_fit(task: Task, seed: int, trace_every: int = 0, traced: bool = True) -> PreparedFit:
    """A fresh, seeded session; the data, the compiled model, the fit input and fit's arguments."""
    import keras
    import tensorflow as tf

    from .trace import PROBE_SIZE, TraceCallback

    keras.backend.clear_session(free_memory=True)
    started = time.perf_counter()
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        tf.config.experimental.enable_op_determinism()
    data = _data(task, seed)
    model, (units, act) = _model(task, data)
    c, f = task.compile, task.fit
    model.compile(optimizer=_optimizer(c), loss=_loss(c), metrics=list(c.metrics))

    fit_in = make_fit_input(task.pipeline.name, task.pipeline.params, data.x_train, data.y_train,
                            f.batch_size, seed)
    probe = None
    callbacks = [keras.callbacks.TerminateOnNaN()]
    if traced:
        array_shapes = (array_batch_shapes(len(data.x_train), f.batch_size, data.x_train.shape[1:])
                        if fit_in.shapes_seen is None else None)
        probe = TraceCallback(data.x_train[:PROBE_SIZE], data.y_train[:PROBE_SIZE], fit_in.shapes_seen,
                              array_shapes, trace_every=trace_every)
        callbacks.insert(0, probe)
    if f.early_stopping:
        callbacks.append(keras.callbacks.EarlyStopping(**f.early_stopping.model_dump()))
    # each name is one of case.CALLBACK_ARGS' allowlist, checked (with its arguments) when the case was read
    callbacks += [getattr(keras.callbacks, n)(**kw) for cb in f.callbacks for n, kw in cb.items()]
    kwargs = dict(fit_in.fit_kwargs, epochs=f.epochs, verbose=0, callbacks=callbacks, initial_epoch=f.initial_epoch)
    if f.steps_per_epoch is not None:  # the case's own count wins over the pipeline's one pass
        kwargs["steps_per_epoch"] = f.steps_per_epoch
    if f.validation_split:  # Keras holds out the last fraction of x/y; the logs still carry val_* keys
        kwargs["validation_split"] = f.validation_split
    else:
        kwargs["validation_data"] = (data.x_val, data.y_val)
    if fit_in.y is not None:
        kwargs["shuffle"] = f.shuffle
    if f.class_weight == "balanced":
        kwargs["class_weight"] = _class_weight(data.y_train)
    elif isinstance(f.class_weight, dict):
        kwargs["class_weight"] = {int(k): float(v) for k, v in f.class_weight.items()}
    return PreparedFit(data, model, fit_in.x, fit_in.y, kwargs, probe, units, act, started)


def run_task(task_dict: dict, seed: int, key: str, backend: str, device: str, trace_every: int = 0) -> dict:
    """Train one run; never raises for a failure of the run itself (that is the outcome).

    Who failed, when something raises:
    - The training code under test is `model.fit` and everything it calls: Keras's train and validation
      steps, the loss and metrics, Keras's own callbacks, and the case's input pipeline, whose PyDataset
      or generator fit consumes (pydataset-len-cnn's lying __len__, ragged-generator's short batch and
      onehot-labels-sparse-loss-cnn's rank check all raise there). What it raises is the run's own
      failure: outcome `crashed`, with the exception type and its first informative line.
    - Everything else is the harness: reading the task, the dataset, the transforms, the model builder,
      the optimizer and `model.compile` (whose arguments are schema-checked names; Keras 3 only resolves
      them there, so a raise means the harness or a Keras API is wrong, not the fault under test),
      building the fit input, the trace callback (harness code Keras runs inside fit), the data profile,
      the model summary, the environment and the record's own validation. Such an exception propagates;
      the worker reports it as a job error, which becomes outcome `harness_error` with its type and
      message: never cached and never a valid run (oracle.evaluate fails it whatever the conditions).
    """
    import keras

    from . import trace as trace_module
    from .record import RunRecord

    task = Task.model_validate(task_dict)
    fit = prepare_fit(task, seed, trace_every)
    data, model, probe, f, c = fit.data, fit.model, fit.probe, task.fit, task.compile

    status, exc_type, message = "completed", "", ""
    try:
        model.fit(fit.x, fit.y, **fit.kwargs)
    except Exception as e:  # the broken run is allowed, even expected, to raise
        if any(frame.f_code.co_filename == trace_module.__file__ for frame, _ in traceback.walk_tb(e.__traceback__)):
            raise  # the harness's trace callback failed inside fit: a harness error, not the run's crash
        probe.finish_interrupted()
        status, exc_type = "crashed", type(e).__name__
        message = short_message(e)
    done = [e for e in probe.epochs if e["completed"]]
    if status == "completed":
        status = run_status(probe.epochs, f.epochs)

    wall = time.perf_counter() - fit.started
    record = {
        "key": key, "schema_version": SCHEMA_VERSION, "seed": seed, "trace_every": trace_every,
        "data": profile_data(data.x_train, data.y_train, data.x_val, data.y_val),
        "model": model_summary(model, optimizer=c.optimizer_name, learning_rate=c.lr, loss=c.loss_name,
                               metrics=c.metrics, batch_size=f.batch_size, epochs=f.epochs,
                               output_units=fit.units, output_activation=fit.activation),
        "trace": probe.epochs,
        "outcome": {"status": status, "exception_type": exc_type, "message": message,
                    "epochs_run": len(done), "wall_seconds": wall},
        "environment": environment(keras.backend.backend(), device),
    }
    extras = {split: _evaluate(model, x, y, data.task) for split, (x, y) in _splits(data, f.validation_split).items()}
    # built as the record's dataclasses and checked here, so a misspelled field fails at write time
    return {"record": RunRecord.finished(record).to_dict(), "extras": extras}


def short_message(e: BaseException) -> str:
    """The first informative lines of an exception; TF graph errors bury the cause."""
    text = str(e)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in lines:
        if any(w in ln for w in ("Error:", "yielded", "expected", "Incompatible", "incompatible")):
            return ln[:500]
    return (lines[0] if lines else traceback.format_exception_only(type(e), e)[-1].strip())[:500]
