"""The detector conformance kit, in the spirit of scikit-learn's `check_estimator`.

    from trainwreck.detectors.testing import check_detector, parametrize_with_checks

    check_detector(MyDetector)                       # raises AssertionError on the first failure

    @parametrize_with_checks([MyDetector, Other])    # one pytest test per (detector, check)
    def test_conformance(detector_class, check):
        check(detector_class)

Each check runs fresh instances on small fixed synthetic records (built below, no training),
each restricted to the parts the detector declares in `needs`, as the harness does:
a healthy converging run, a run that turns NaN, a run that crashed before its first epoch
(empty trace), a run that crashed mid-epoch, a record with only a key and a bare loss trace,
and an entirely blank record. `check_time_budget` replays a LONG_TRACE_EPOCHS-epoch record
exactly as the bench does and holds it to the bench's own limit, `base.replay_budget`.
A failure raises `AssertionError("<check> failed for detector '<name>': ...")`.
`expected_failed_checks` ({check_name: reason}) marks known failures.

Every check but `check_metadata` runs the detector in a supervised worker process (the
harness's `WorkerPool`, handler "detect"), under a time limit of `replay_budget(cls,
LONG_TRACE_EPOCHS)`: a detector that never returns fails that check with "did not return
within N s", and one that kills its process (`os._exit`, a segfault) fails it with the
worker's death message, while the caller goes on. The worker imports the class by its
`module:Class` spec, as the bench does, so the class must be importable in a fresh process:
defined at the top level of a module (a test module pytest collects is fine; so is a script
whose own work is under `if __name__ == "__main__":`), not inside a function, a notebook or
`python -c`. For a class that is not, the checks raise ValueError saying so.
"""

from __future__ import annotations

import copy
import functools
import sys
from contextlib import contextmanager
from typing import Callable, Iterator

from trainwreck import taxonomy
from trainwreck.executor import Job, JobResult, WorkerPool, WorkerStartError
from trainwreck.record import RunRecord

from .base import (REPLAY_OVERHEAD_S, RECORD_PARTS, Detector, Diagnosis, LearnedDetector, OnlineDetector, replay_budget,
                   restrict)
from .runner import validate_features

__all__ = ["check_detector", "parametrize_with_checks", "CHECKS", "synthetic_records", "healthy_dict", "long_dict",
           "LONG_TRACE_EPOCHS", "check_time_limit", "worker_spec", "DetectorWorker", "run_check"]

LAYERS = ("dense_1", "dense_2", "dense_3")
LONG_TRACE_EPOCHS = 60      # the longest run in the corpus: a detector fast enough here is fast enough there
WORKER_STARTUP_S = 120.0    # importing a plugin's libraries (TensorFlow, say) can take a while


def _epoch(i: int) -> dict:
    decay = 1.0 / (1 + i)
    return {
        "epoch": i, "completed": True, "steps": 32, "expected_steps": 32, "seconds": 0.1,
        "logs": {"loss": 0.69 * 0.8 ** i, "accuracy": 0.6 + 0.06 * i,
                 "val_loss": 0.7 * 0.82 ** i, "val_accuracy": 0.58 + 0.06 * i},
        "batch_shapes": [[[32, 20], 31], [[8, 20], 1]],
        "weight_norms": {"dense_1": 4.0 + 0.1 * i, "dense_2": 3.0 + 0.1 * i, "dense_3": 1.0 + 0.05 * i},
        "weight_var": {"dense_1": 0.05, "dense_2": 0.06, "dense_3": 0.1},
        "update_ratios": {name: 0.02 * decay for name in LAYERS},
        "grad_norms": {"dense_1": 0.5 * decay, "dense_2": 0.6 * decay, "dense_3": 0.8 * decay},
        "grad_mean_abs": {name: 1e-2 * decay for name in LAYERS},
        "grad_zero_fraction": {name: 0.05 for name in LAYERS},
        "grad_zero_fraction_all": 0.1,
        "dead_relu_fraction": {"dense_1": 0.0, "dense_2": 0.0},
        "relu_zero_fraction": {"dense_1": 0.45, "dense_2": 0.5},
        "saturated_fraction": {"dense_3": 0.05},
        "activation_mean": {"dense_1": 0.3 + 0.01 * i, "dense_2": 0.25 + 0.01 * i, "dense_3": 0.5 + 0.005 * i},
        "activation_std": {name: 0.2 for name in LAYERS},
        "activation_min": {"dense_1": 0.0, "dense_2": 0.0, "dense_3": 0.1},
        "activation_max": {"dense_1": 2.0, "dense_2": 2.0, "dense_3": 0.9},
        "nonfinite": False,
    }


def healthy_dict(epochs: int = 6, key: str = "synthetic-healthy") -> dict:
    """A plain-data record of a small binary classifier that converges; tests modify copies of it."""
    n_feat = 20
    return {
        "key": key, "seed": 0,
        "data": {"n_train": 1000, "n_val": 250, "input_shape": [n_feat], "x_dtype": "float32", "y_dtype": "int64",
                 "task_kind": "classification", "label_shape": [], "n_classes": 2,
                 "feature_min": [-3.1] * n_feat, "feature_max": [3.2] * n_feat,
                 "feature_mean": [0.0] * n_feat, "feature_std": [1.0] * n_feat,
                 "nan_count": 0, "inf_count": 0,
                 "class_counts_train": {"0": 500, "1": 500}, "class_counts_val": {"0": 125, "1": 125},
                 "duplicate_rows_train_val": 0, "feature_target_corr": [0.1 + 0.015 * j for j in range(n_feat)],
                 "target_mean": 0.5, "target_std": 0.5},
        "model": {"layers": [{"name": "dense_1", "kind": "Dense", "activation": "relu", "units": 16, "params": 336,
                              "kernel_initializer": "GlorotUniform"},
                             {"name": "dense_2", "kind": "Dense", "activation": "relu", "units": 8, "params": 136,
                              "kernel_initializer": "GlorotUniform"},
                             {"name": "dense_3", "kind": "Dense", "activation": "sigmoid", "units": 1, "params": 9,
                              "kernel_initializer": "GlorotUniform"}],
                  "total_params": 481, "trainable_params": 481, "optimizer": "adam", "learning_rate": 0.001,
                  "loss": "binary_crossentropy", "metrics": ["accuracy"], "batch_size": 32, "epochs": epochs,
                  "output_units": 1, "output_activation": "sigmoid"},
        "trace": [_epoch(i) for i in range(epochs)],
        "outcome": {"status": "completed", "epochs_run": epochs, "wall_seconds": 0.1 * epochs},
    }


def _nan_dict() -> dict:
    d = healthy_dict(epochs=10, key="synthetic-nan")
    d["trace"] = d["trace"][:3]
    e = d["trace"][2]
    nan = float("nan")
    e["logs"] = {"loss": nan, "accuracy": 0.5, "val_loss": nan, "val_accuracy": 0.5}
    e["nonfinite"] = True
    for k in ("weight_norms", "grad_norms", "grad_mean_abs", "activation_mean"):
        e[k] = {name: nan for name in e[k]}
    d["outcome"] = {"status": "nan", "epochs_run": 3}
    return d


def _crashed_empty_dict() -> dict:
    d = healthy_dict(key="synthetic-crashed-empty")
    d["trace"] = []
    d["outcome"] = {"status": "crashed", "exception_type": "InvalidArgumentError",
                    "message": "Incompatible shapes", "epochs_run": 0}
    return d


def _crashed_midway_dict() -> dict:
    d = healthy_dict(key="synthetic-crashed-midway")
    d["trace"] = d["trace"][:1] + [{"epoch": 1, "completed": False, "steps": 5, "expected_steps": 32,
                                     "batch_shapes": [[[32, 20], 5], [[32, 17], 1]], "logs": {}}]
    d["outcome"] = {"status": "crashed", "exception_type": "InvalidArgumentError", "epochs_run": 1}
    return d


def long_dict(epochs: int = LONG_TRACE_EPOCHS) -> dict:
    """The healthy run, `epochs` long (accuracies capped below 1): the record `check_time_budget` replays."""
    d = healthy_dict(epochs, key="synthetic-long")
    for e in d["trace"]:
        for k in ("accuracy", "val_accuracy"):
            e["logs"][k] = min(0.99, e["logs"][k])
    return d


def synthetic_records() -> dict[str, RunRecord]:
    """The fixed records every check runs on, by name (full records: checks restrict them)."""
    return {
        "healthy": RunRecord.from_dict(healthy_dict()),
        "nan": RunRecord.from_dict(_nan_dict()),
        "crashed_empty": RunRecord.from_dict(_crashed_empty_dict()),
        "crashed_midway": RunRecord.from_dict(_crashed_midway_dict()),
        "sparse": RunRecord.from_dict({"key": "synthetic-sparse",
                                       "trace": [{"epoch": 0, "logs": {"loss": 0.7}}, {"epoch": 1, "logs": {}}]}),
        "blank": RunRecord(key="synthetic-blank"),
    }


# -- helpers ------------------------------------------------------------------------------------
def _name(cls) -> str:
    return getattr(cls, "name", "") or getattr(cls, "__name__", repr(cls))


def _fail(check: str, cls, message: str):
    raise AssertionError(f"{check} failed for detector {_name(cls)!r}: {message}")


def _inputs(cls) -> list[tuple[str, RunRecord]]:
    needs = frozenset(getattr(cls, "needs", RECORD_PARTS))
    return [(name, restrict(rec, needs)) for name, rec in synthetic_records().items()]


def _run(check: str, cls, record: RunRecord, label: str, instance=None) -> list:
    """Call diagnose on a fresh instance; any exception or malformed output fails `check`."""
    try:
        det = instance if instance is not None else cls()
        out = det.diagnose(record)
    except Exception as e:  # the harness would record an error row
        _fail(check, cls, f"diagnose raised {type(e).__name__}: {e} (record {label!r})")
    if not isinstance(out, (list, tuple)):
        _fail(check, cls, f"diagnose returned {type(out).__name__}, expected a list of Diagnosis (record {label!r})")
    for d in out:
        if not isinstance(d, Diagnosis):
            _fail(check, cls, f"diagnose returned a {type(d).__name__} among its diagnoses (record {label!r})")
    return list(out)


def _dicts(out: list) -> list[dict]:
    return [d.to_dict() for d in out]


# -- isolation: checks run in a supervised detector worker ---------------------------------------
def worker_spec(cls: type) -> str:
    """The `module:Class` spec a fresh worker process imports cls by, as the harness does.

    ValueError when no fresh process could import it: a class defined inside a function, in an
    interactive session, a notebook or `python -c`, or one its module does not name.
    """
    module, qual = getattr(cls, "__module__", None), getattr(cls, "__qualname__", "") or ""
    where = (f"check_detector runs {qual or cls!r} in a worker process, which imports it by 'module:Class' "
             f"as the bench does")
    if "<locals>" in qual:
        raise ValueError(f"{where}, but it is defined inside a function ({qual}): define it at the top level of a module")
    mod = sys.modules.get(module) if isinstance(module, str) else None
    if mod is None or (module == "__main__" and not getattr(mod, "__file__", None)):
        raise ValueError(f"{where}, but it is defined in {module!r}, which a fresh process cannot import "
                         f"(an interactive session, a notebook or `python -c`?): put it in a .py module and import it")
    obj = mod
    for part in qual.split("."):
        obj = getattr(obj, part, None)
    if obj is not cls:
        raise ValueError(f"{where}, but {module}:{qual} does not name this class (redefined, or made dynamically?)")
    return f"{module}:{qual}"


def check_time_limit(cls) -> float:
    """How long any one check may take: what the bench gives a replay of the kit's long record."""
    try:
        return replay_budget(cls, LONG_TRACE_EPOCHS)
    except ValueError:   # check_metadata reports the bad budget; the other checks still get a limit
        return replay_budget(Detector, LONG_TRACE_EPOCHS)


class DetectorWorker:
    """A supervised worker process holding the detector (WorkerPool, handler "detect").

    One serves all the checks of a `check_detector` call; the pool replaces a worker that hung or
    died, and one that could not start is tried afresh by the next check.
    """

    def __init__(self, cls: type):
        self.cls, self.spec = cls, worker_spec(cls)
        self._pool: WorkerPool | None = None

    def run(self, key: str, payload: dict, timeout: float) -> JobResult | str:
        """The job's result, or (a str) why no worker holding the detector could start."""
        if self._pool is None:
            self._pool = WorkerPool("detect", (self.spec,), n=1, startup_timeout=max(WORKER_STARTUP_S, timeout))
        try:
            return list(self._pool.run([Job(key, payload, timeout)]))[0]
        except WorkerStartError as e:
            self.close()
            return str(e)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> "DetectorWorker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextmanager
def _worker_for(cls, worker: DetectorWorker | None) -> Iterator[DetectorWorker]:
    """The caller's worker, or a fresh one for this check alone (as parametrize_with_checks runs them)."""
    if worker is not None:
        yield worker
        return
    with DetectorWorker(cls) as own:
        yield own


def _answer(check: str, cls, result: JobResult | str, limit: float, what: str, why_limit: str) -> object:
    """The value of a job that finished; anything else fails `check` with what became of the worker."""
    if isinstance(result, str):
        _fail(check, cls, f"it could not be loaded in a worker process ({result})")
    if result.status == "ok":
        return result.value
    if result.status == "timeout":
        _fail(check, cls, f"{what} did not return within {limit:g} s ({why_limit})")
    if result.status == "crashed":
        _fail(check, cls, f"{what} ended its worker process ({result.message})")
    first = result.message.splitlines()[0] if result.message else result.status
    _fail(check, cls, f"{what} raised {first}")


def _isolated(body: Callable) -> Callable:
    """The check `body` as the kit runs it: in a detector worker, within check_time_limit(cls)."""
    name = body.__name__

    @functools.wraps(body)
    def check(cls, worker: DetectorWorker | None = None) -> None:
        limit = check_time_limit(cls)
        with _worker_for(cls, worker) as w:
            answer = _answer(name, cls, w.run(name, {"check": name}, limit), limit, "the detector",
                             f"each check's limit: replay_budget for a {LONG_TRACE_EPOCHS}-epoch run")
        failure = answer["failure"]
        if failure:
            raise AssertionError(failure)

    check.body = body
    return check


def run_check(cls, name: str) -> dict:
    """One check's body, run here (in the detector worker): {"failure": its message, or None}."""
    try:
        CHECKS[name].body(cls)
    except AssertionError as e:
        return {"failure": str(e)}
    except Exception as e:  # noqa: BLE001 - e.g. the constructor raised; the harness would fail too
        return {"failure": f"{name} failed for detector {_name(cls)!r}: {type(e).__name__}: {e}"}
    return {"failure": None}


# -- the checks ---------------------------------------------------------------------------------
def check_metadata(cls, worker: DetectorWorker | None = None):
    """A Detector subclass with a name, a version, `needs` within the record parts and a positive budget.

    Reads class attributes only, so it runs in the caller's process.
    """
    if not (isinstance(cls, type) and issubclass(cls, Detector)):
        _fail("check_metadata", cls, "not a subclass of detectors.base.Detector")
    if not isinstance(cls.name, str) or not cls.name:
        _fail("check_metadata", cls, "empty `name`")
    extra = set(cls.needs) - RECORD_PARTS
    if extra:
        _fail("check_metadata", cls, f"`needs` has unknown parts {sorted(extra)}; valid: {sorted(RECORD_PARTS)}")
    try:
        replay_budget(cls, 0)
    except ValueError as e:
        _fail("check_metadata", cls, str(e))
    for attr, valid in (("causes", taxonomy.is_cause), ("symptoms", taxonomy.is_symptom)):
        declared = getattr(cls, attr, None)
        if declared is None:
            continue
        if not isinstance(declared, frozenset):
            _fail("check_metadata", cls, f"`{attr}` must be a frozenset of taxonomy terms or None, got {declared!r}")
        unknown = sorted(t for t in declared if not (isinstance(t, str) and valid(t)))
        if unknown:
            _fail("check_metadata", cls, f"`{attr}` declares unknown terms {unknown}")


def _out_of_scope(cls, d) -> str | None:
    causes, symptoms = getattr(cls, "causes", None), getattr(cls, "symptoms", None)
    if causes is not None and d.cause is not None and d.cause not in causes:
        return f"cause {d.cause!r} is outside the declared causes {sorted(causes)}"
    if symptoms is not None and d.symptom is not None and d.symptom not in symptoms:
        return f"symptom {d.symptom!r} is outside the declared symptoms {sorted(symptoms)}"
    return None


@_isolated
def check_returns_list(cls):
    """diagnose returns a list of Diagnosis on every synthetic record, without raising."""
    for label, rec in _inputs(cls):
        _run("check_returns_list", cls, rec, label)


@_isolated
def check_valid_terms(cls):
    """Every diagnosis names a taxonomy cause or symptom (re-validated, in case validation was bypassed)."""
    for label, rec in _inputs(cls):
        for d in _run("check_valid_terms", cls, rec, label):
            if d.cause is None and d.symptom is None:
                _fail("check_valid_terms", cls, f"a diagnosis with neither cause nor symptom (record {label!r})")
            if d.cause is not None and not taxonomy.is_cause(d.cause):
                _fail("check_valid_terms", cls, f"unknown cause {d.cause!r} (record {label!r})")
            if d.symptom is not None and not taxonomy.is_symptom(d.symptom):
                _fail("check_valid_terms", cls, f"unknown symptom {d.symptom!r} (record {label!r})")
            if d.epoch is not None and (not isinstance(d.epoch, int) or d.epoch < 0):
                _fail("check_valid_terms", cls, f"epoch {d.epoch!r} is not a non-negative int (record {label!r})")


@_isolated
def check_within_scope(cls):
    """Every diagnosis stays inside the declared scope: its cause in `causes`, its symptom in `symptoms`
    (a None scope is undeclared and claims everything)."""
    for label, rec in _inputs(cls):
        for d in _run("check_within_scope", cls, rec, label):
            why = _out_of_scope(cls, d)
            if why:
                _fail("check_within_scope", cls, f"{why} (record {label!r})")


@_isolated
def check_confidence_range(cls):
    """Every confidence is a number in [0, 1]."""
    for label, rec in _inputs(cls):
        for d in _run("check_confidence_range", cls, rec, label):
            c = d.confidence
            if isinstance(c, bool) or not isinstance(c, (int, float)) or not (0.0 <= c <= 1.0):
                _fail("check_confidence_range", cls, f"confidence {c!r} outside [0, 1] (record {label!r})")


@_isolated
def check_deterministic(cls):
    """Two fresh instances give the same output on the same record (and one instance twice)."""
    for label, rec in _inputs(cls):
        a = _dicts(_run("check_deterministic", cls, rec, label))
        b = _dicts(_run("check_deterministic", cls, rec, label))
        if repr(a) != repr(b):
            _fail("check_deterministic", cls, f"two fresh instances disagree on record {label!r}: {a} vs {b}")
        det = cls()
        c = _dicts(_run("check_deterministic", cls, rec, label, det))
        d = _dicts(_run("check_deterministic", cls, rec, label, det))
        if repr(c) != repr(d) or repr(c) != repr(a):
            _fail("check_deterministic", cls, f"repeated calls on one instance disagree on record {label!r}")


@_isolated
def check_no_mutation(cls):
    """diagnose leaves the record as it found it."""
    for label, rec in _inputs(cls):
        before = copy.deepcopy(rec.to_dict())
        _run("check_no_mutation", cls, rec, label)
        if repr(rec.to_dict()) != repr(before):
            _fail("check_no_mutation", cls, f"the record {label!r} changed during diagnose")


@_isolated
def check_tolerates_missing_fields(cls):
    """Empty traces, empty mappings, missing logs and blank parts do not break diagnose."""
    records = synthetic_records()
    for label in ("crashed_empty", "crashed_midway", "sparse", "blank"):
        _run("check_tolerates_missing_fields", cls, records[label], label)   # unrestricted, too
        _run("check_tolerates_missing_fields", cls, restrict(records[label], frozenset()), label + " (nothing)")


@_isolated
def check_online_agreement(cls):
    """For an OnlineDetector, diagnose(record) is the concatenation of what a replay emits."""
    if not (isinstance(cls, type) and issubclass(cls, OnlineDetector)):
        return
    for label, rec in _inputs(cls):
        whole = _dicts(_run("check_online_agreement", cls, rec, label))
        try:
            replayed = [d for _, ds in cls().replay(rec) for d in (ds or [])]
        except Exception as e:
            _fail("check_online_agreement", cls, f"replay raised {type(e).__name__}: {e} (record {label!r})")
        if repr(whole) != repr(_dicts(replayed)):
            _fail("check_online_agreement", cls, f"diagnose and replay disagree on record {label!r}: "
                                                 f"{whole} vs {_dicts(replayed)}")


def check_time_budget(cls, worker: DetectorWorker | None = None):
    """A replay of a LONG_TRACE_EPOCHS-epoch record, run as the bench runs it (a "detect" worker job,
    `runner.diagnose_replay`), finishes within `replay_budget(cls, LONG_TRACE_EPOCHS)`: the very time
    limit the bench would give that run."""
    limit = check_time_limit(cls)
    why = (f"replay_budget: time_budget_s={getattr(cls, 'time_budget_s', None)!r} x {LONG_TRACE_EPOCHS + 1} "
           f"steps + {REPLAY_OVERHEAD_S:g} s, the bench's limit for this run")
    with _worker_for(cls, worker) as w:
        result = w.run("check_time_budget", {"record": long_dict()}, limit)
    _answer("check_time_budget", cls, result, limit, f"the replay of a {LONG_TRACE_EPOCHS}-epoch record", why)


@_isolated
def check_learned(cls):
    """A learned detector (`LearnedDetector`), as the bench's cross-fitting uses it: `features` gives the
    same float-valued keys on every synthetic record; `fit` on those (with labels) returns a model; an
    instance on that model returns valid, in-scope diagnoses, the same for two fits. Others pass."""
    if not (isinstance(cls, type) and issubclass(cls, LearnedDetector)):
        return
    inputs = _inputs(cls)
    feats = []
    for label, rec in inputs:
        try:
            out = cls().features(rec)
        except Exception as e:  # noqa: BLE001 - the bench would record an error row
            _fail("check_learned", cls, f"features raised {type(e).__name__}: {e} (record {label!r})")
        try:
            f = validate_features(_name(cls), out)     # the check the bench's worker makes
        except TypeError as e:
            _fail("check_learned", cls, f"{e} (record {label!r})")
        if feats and set(f) != set(feats[0]):
            _fail("check_learned", cls, f"features gives other keys on record {label!r} than on {inputs[0][0]!r}")
        feats.append(f)
    causes = sorted(getattr(cls, "causes", None) or taxonomy.cause_names())
    labels = [causes[i % len(causes)] if name == "nan" else taxonomy.HEALTHY for i, (name, _) in enumerate(inputs)]
    outs = []
    for _ in range(2):
        try:
            model = cls.fit(feats, labels, 0)
        except Exception as e:  # noqa: BLE001
            _fail("check_learned", cls, f"fit raised {type(e).__name__}: {e}")
        outs.append([_dicts(_run("check_learned", cls, rec, label, cls(model))) for label, rec in inputs])
        for (label, _), ds in zip(inputs, outs[-1]):
            for d in ds:
                why = _out_of_scope(cls, Diagnosis(**d))
                if why:
                    _fail("check_learned", cls, f"{why} (record {label!r}, fitted)")
    if repr(outs[0]) != repr(outs[1]):
        _fail("check_learned", cls, "two fits on the same features and labels diagnose differently")


CHECKS: dict[str, Callable] = {f.__name__: f for f in (
    check_metadata, check_returns_list, check_valid_terms, check_within_scope, check_confidence_range,
    check_deterministic,
    check_no_mutation, check_tolerates_missing_fields, check_online_agreement, check_learned, check_time_budget)}


def _expected(cls, expected_failed_checks) -> dict:
    if expected_failed_checks is None:
        return {}
    if callable(expected_failed_checks):
        return dict(expected_failed_checks(cls) or {})
    unknown = set(expected_failed_checks) - set(CHECKS)
    if unknown:
        raise ValueError(f"unknown checks in expected_failed_checks: {sorted(unknown)}; valid: {list(CHECKS)}")
    return dict(expected_failed_checks)


def check_detector(detector, expected_failed_checks=None) -> dict[str, str]:
    """Run every check on a detector class (or an instance's class).

    Raises AssertionError at the first unexpected failure. `expected_failed_checks` is
    {check_name: reason} (or a callable class -> such a dict): those checks may fail.
    Returns {check_name: "passed" | "xfail: <reason>" | "xpass"}. The checks share one worker
    process (restarted when a check kills it); ValueError if no worker could import the class.
    """
    cls = detector if isinstance(detector, type) else type(detector)
    expected = _expected(cls, expected_failed_checks)
    results = {}
    with DetectorWorker(cls) as worker:
        for name, check in CHECKS.items():
            try:
                check(cls, worker)
            except AssertionError:
                if name not in expected:
                    raise
                results[name] = f"xfail: {expected[name]}"
                continue
            results[name] = "xpass" if name in expected else "passed"
    return results


def parametrize_with_checks(classes, expected_failed_checks=None):
    """A pytest.mark.parametrize over (detector_class, check), ids like 'autotrainer-check_deterministic'."""
    import pytest

    params = []
    for cls in classes:
        expected = _expected(cls, expected_failed_checks)
        for name, check in CHECKS.items():
            marks = [pytest.mark.xfail(reason=expected[name])] if name in expected else []
            params.append(pytest.param(cls, check, id=f"{_name(cls)}-{name}", marks=marks))
    return pytest.mark.parametrize("detector_class, check", params)
