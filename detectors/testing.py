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
and an entirely blank record. A failure raises `AssertionError("<check> failed for detector
'<name>': ...")`. `expected_failed_checks` ({check_name: reason}) marks known failures.
"""

from __future__ import annotations

import copy
import time
from typing import Callable

from trainwreck import taxonomy
from trainwreck.record import RunRecord

from .base import RECORD_PARTS, Detector, Diagnosis, OnlineDetector, restrict

__all__ = ["check_detector", "parametrize_with_checks", "CHECKS", "synthetic_records", "healthy_dict"]

LAYERS = ("dense_1", "dense_2", "dense_3")


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


# -- the checks ---------------------------------------------------------------------------------
def check_metadata(cls):
    """A Detector subclass with a name, a version, `needs` within the record parts and a positive budget."""
    if not (isinstance(cls, type) and issubclass(cls, Detector)):
        _fail("check_metadata", cls, "not a subclass of detectors.base.Detector")
    if not isinstance(cls.name, str) or not cls.name:
        _fail("check_metadata", cls, "empty `name`")
    extra = set(cls.needs) - RECORD_PARTS
    if extra:
        _fail("check_metadata", cls, f"`needs` has unknown parts {sorted(extra)}; valid: {sorted(RECORD_PARTS)}")
    if not (isinstance(cls.time_budget_s, (int, float)) and cls.time_budget_s > 0):
        _fail("check_metadata", cls, f"time_budget_s must be positive, got {cls.time_budget_s!r}")


def check_returns_list(cls):
    """diagnose returns a list of Diagnosis on every synthetic record, without raising."""
    for label, rec in _inputs(cls):
        _run("check_returns_list", cls, rec, label)


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


def check_confidence_range(cls):
    """Every confidence is a number in [0, 1]."""
    for label, rec in _inputs(cls):
        for d in _run("check_confidence_range", cls, rec, label):
            c = d.confidence
            if isinstance(c, bool) or not isinstance(c, (int, float)) or not (0.0 <= c <= 1.0):
                _fail("check_confidence_range", cls, f"confidence {c!r} outside [0, 1] (record {label!r})")


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


def check_no_mutation(cls):
    """diagnose leaves the record as it found it."""
    for label, rec in _inputs(cls):
        before = copy.deepcopy(rec.to_dict())
        _run("check_no_mutation", cls, rec, label)
        if repr(rec.to_dict()) != repr(before):
            _fail("check_no_mutation", cls, f"the record {label!r} changed during diagnose")


def check_tolerates_missing_fields(cls):
    """Empty traces, empty mappings, missing logs and blank parts do not break diagnose."""
    records = synthetic_records()
    for label in ("crashed_empty", "crashed_midway", "sparse", "blank"):
        _run("check_tolerates_missing_fields", cls, records[label], label)   # unrestricted, too
        _run("check_tolerates_missing_fields", cls, restrict(records[label], frozenset()), label + " (nothing)")


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


def check_time_budget(cls):
    """Each diagnose call finishes within the class's time_budget_s."""
    budget = float(cls.time_budget_s)
    for label, rec in _inputs(cls):
        t0 = time.perf_counter()
        _run("check_time_budget", cls, rec, label)
        took = time.perf_counter() - t0
        if took > budget:
            _fail("check_time_budget", cls, f"diagnose took {took:.3f}s > time_budget_s={budget:g} (record {label!r})")


CHECKS: dict[str, Callable] = {f.__name__: f for f in (
    check_metadata, check_returns_list, check_valid_terms, check_confidence_range, check_deterministic,
    check_no_mutation, check_tolerates_missing_fields, check_online_agreement, check_time_budget)}


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
    Returns {check_name: "passed" | "xfail: <reason>" | "xpass"}.
    """
    cls = detector if isinstance(detector, type) else type(detector)
    expected = _expected(cls, expected_failed_checks)
    results = {}
    for name, check in CHECKS.items():
        try:
            check(cls)
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
