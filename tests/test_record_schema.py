"""The run record is strict: an unknown or missing field, a wrong type or a status that is no
outcome is refused with the path of the problem, when a worker writes a record and when anything
reads one; every cached record still loads, and a record survives to_dict/from_dict unchanged."""

from __future__ import annotations

import copy
import json
from types import MappingProxyType

import pytest

from trainwreck.detectors.base import restrict
from trainwreck.detectors.testing import healthy_dict
from trainwreck.record import OUTCOMES, RunRecord, truncate
from trainwreck.store import RunStore, canonical

from .conftest import ROOT

CACHE = ROOT / "results" / "runs"


def _problem(d: dict) -> str:
    """The error from_dict raises for d (a ValueError naming every problem, one per line)."""
    with pytest.raises(ValueError) as info:
        RunRecord.from_dict(d)
    return str(info.value)


def test_unknown_trace_field_names_its_path_and_suggests():
    d = healthy_dict()
    d["trace"][3]["grad_norm"] = d["trace"][3].pop("grad_norms")
    assert "trace[3].grad_norm: unknown field (did you mean 'grad_norms'?)" in _problem(d)


def test_unknown_field_suggests_from_its_own_part_of_the_record():
    d = healthy_dict()
    d["outcome"]["epoch_run"] = 3
    d["model"]["layers"][1]["unit"] = 8
    msg = _problem(d)
    assert "outcome.epoch_run: unknown field (did you mean 'epochs_run'?)" in msg
    assert "model.layers[1].unit: unknown field (did you mean 'units'?)" in msg   # every problem, at once


@pytest.mark.parametrize("drop, where", [
    (lambda d: d.pop("key"), "key"),
    (lambda d: d["trace"][1].pop("epoch"), "trace[1].epoch"),
    (lambda d: d["model"]["layers"][0].pop("name"), "model.layers[0].name"),
])
def test_missing_required_field_is_named(drop, where):
    d = healthy_dict()
    drop(d)
    assert f"{where}: required field is missing" in _problem(d)


def test_outcome_status_must_be_an_outcome():
    d = healthy_dict()
    d["outcome"]["status"] = "exploded"
    msg = _problem(d)
    assert "outcome.status:" in msg and "'exploded'" in msg
    assert all(s in msg for s in OUTCOMES)


@pytest.mark.parametrize("mutate, where", [
    (lambda d: d["trace"][0].update(logs=[0.5]), "trace[0].logs"),
    (lambda d: d.update(trace={"0": {"epoch": 0}}), "trace"),
    (lambda d: d["data"].update(n_train="1000"), "data.n_train"),
    (lambda d: d["data"].update(feature_std="wide"), "data.feature_std"),
    (lambda d: d["model"].update(learning_rate="0.001"), "model.learning_rate"),
    (lambda d: d["outcome"].update(message=3), "outcome.message"),
    (lambda d: d["trace"][2]["grad_norms"].update(dense_1="big"), "trace[2].grad_norms.dense_1"),
    (lambda d: d["trace"][0].update(completed="yes"), "trace[0].completed"),
    (lambda d: d.update(environment={"probes": {"relu_nan": 0}}), "environment.probes.relu_nan"),
    (lambda d: d["model"]["layers"][0].update(dropout_rate="high"), "model.layers[0].dropout_rate"),
    (lambda d: d["model"]["layers"][0].update(trainable=0), "model.layers[0].trainable"),
    (lambda d: d["trace"][0].update(learning_rate="0.1"), "trace[0].learning_rate"),
    (lambda d: d["trace"][0].update(step_trace=[{"step": "1"}]), "trace[0].step_trace[0].step"),
    (lambda d: d["trace"][0].update(step_trace=[{"step": 0, "grad_nonfinite": {"dense_1": 0.5}}]),
     "trace[0].step_trace[0].grad_nonfinite.dense_1"),
    (lambda d: d["trace"][0].update(step_trace=[{"step": 0, "activation_quantiles": {"dense_1": 0.5}}]),
     "trace[0].step_trace[0].activation_quantiles.dense_1"),
    (lambda d: d.update(trace_every=1.5), "trace_every"),
])
def test_types_are_checked(mutate, where):
    d = healthy_dict()
    mutate(d)
    assert f"{where}: " in _problem(d)


def test_a_record_that_is_not_a_mapping_is_refused():
    assert "expected a mapping" in _problem(["key", "k"])  # type: ignore[arg-type]


def test_strict_records_are_deeply_read_only():
    rec = RunRecord.from_dict(healthy_dict())
    assert isinstance(rec.trace, tuple) and isinstance(rec.trace[0].logs, MappingProxyType)
    assert isinstance(rec.data.class_counts_train, MappingProxyType) and isinstance(rec.model.layers, tuple)
    assert isinstance(rec.trace[0].batch_shapes[0][0], tuple)
    with pytest.raises(TypeError):
        rec.trace[0].grad_norms["dense_1"] = 0.0  # type: ignore[index]


def test_a_worker_record_must_be_finished():
    """What a worker writes is a finished run: a view's status, or no outcome at all, fails at write time."""
    d = healthy_dict()
    assert RunRecord.finished(d).outcome.status == "completed"
    for status in ("running", "unknown"):
        d["outcome"]["status"] = status
        with pytest.raises(ValueError, match="outcome.status: .*not a finished run"):
            RunRecord.finished(d)
    del d["outcome"]
    with pytest.raises(ValueError, match="outcome: required"):
        RunRecord.finished(d)


def test_views_round_trip():
    """truncate's 'running' and restrict's blank 'unknown' outcome are in-memory views, but they round-trip too."""
    rec = RunRecord.from_dict(healthy_dict())
    for view in (truncate(rec, 2), restrict(rec, frozenset({"trace"})), RunRecord(key="blank")):
        assert canonical(RunRecord.from_dict(view.to_dict()).to_dict()) == canonical(view.to_dict())


def _stored_records(tmp_path_factory, corpus) -> list[dict]:
    """The records of the corpus's runs that the project's cache holds (what scoring reads), or one tiny run
    trained now when it holds none. The cache also keeps every older run key, which nothing reads again: in a
    working copy those grow with every code change (2,500 records, 17 s, where the corpus has 412)."""
    from trainwreck.case import load_case
    from trainwreck.run import execute, plan

    store = RunStore(CACHE)
    held = set(store.keys()) & {s.key for s in plan(corpus, device="cpu")}
    if held:
        return [store.get(k).record for k in sorted(held)]

    from .test_cache_and_resume import _case_dir

    tmp = tmp_path_factory.mktemp("tiny")
    specs = plan([load_case(_case_dir(tmp) / "test" / "tiny.yaml")], seeds=[0], variants=("fixed",))
    execute(specs, RunStore(tmp / "runs"), log=lambda *a: None)
    store = RunStore(tmp / "runs")
    return [store.get(k).record for k in store.keys()]


def _contains(big, small) -> bool:
    """Every value of `small` is in `big` at the same place (big may add defaults)."""
    if isinstance(small, dict):
        return isinstance(big, dict) and all(k in big and _contains(big[k], v) for k, v in small.items())
    if isinstance(small, list):
        return isinstance(big, list) and len(big) == len(small) and all(map(_contains, big, small))
    return json.dumps(big, allow_nan=True) == json.dumps(small, allow_nan=True)


def test_every_cached_record_loads_strictly_and_round_trips(tmp_path_factory, corpus):
    records = _stored_records(tmp_path_factory, corpus)
    assert records
    for d in records:
        rec = RunRecord.from_dict(d)
        out = rec.to_dict()
        assert canonical(RunRecord.from_dict(out).to_dict()) == canonical(out), d["key"]
        assert _contains(out, d), d["key"]       # nothing stored is lost or changed


def test_round_trip_keeps_the_stored_record_exactly():
    """A worker writes `to_dict()` of the validated record, so reading it back gives the same JSON."""
    d = healthy_dict()
    d["trace"].append({"epoch": 6, "completed": False, "steps": 5, "expected_steps": 32,
                       "batch_shapes": [[[32, 20], 5]], "logs": {}, "seconds": 0.01})
    written = RunRecord.finished(copy.deepcopy(d)).to_dict()
    assert canonical(RunRecord.from_dict(json.loads(canonical(written))).to_dict()) == canonical(written)
    assert _contains(written, d)
