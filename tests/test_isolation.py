"""A detector cannot read the answer: nothing reachable from what it receives names the
case, its title, cause or symptoms; and the record it gets is read-only."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import pytest

from trainwreck.detectors.base import restrict
from trainwreck.record import RunRecord


def _strings(obj):
    """Every string value and mapping key reachable from obj (dataclass field names are schema, not data)."""
    if isinstance(obj, str):
        yield obj
    elif dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            yield from _strings(getattr(obj, f.name))
    elif isinstance(obj, (dict, MappingProxyType)):
        for k, v in obj.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for v in obj:
            yield from _strings(v)


@pytest.mark.slow
def test_no_ground_truth_reachable_from_any_record(corpus_results):
    for (cid, variant, seed), r in corpus_results.items():
        case = r.spec.case
        record = RunRecord.from_dict(r.record.to_dict())   # exactly what a detector worker rebuilds
        values = {s.lower() for s in _strings(record)}
        text = "\n".join(values)
        # distinctive strings must not appear anywhere, even inside another string
        for term in (case.id, case.title, case.description[:60], case.provenance[:60]):
            assert term.lower() not in text, f"{cid}/{variant}/{seed}: record contains {term!r}"
        # taxonomy terms and the family are ordinary words: no value may *be* one
        for term in (case.cause, *case.symptoms, case.family):
            assert term.lower() not in values, f"{cid}/{variant}/{seed}: record holds the value {term!r}"
        assert r.spec.key == record.key and cid not in record.key


@pytest.mark.slow
def test_record_is_read_only(corpus_results):
    r = next(iter(corpus_results.values()))
    rec = r.record
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.seed = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        rec.data.class_counts_train["0"] = 1  # type: ignore[index]
    if rec.trace:
        with pytest.raises(TypeError):
            rec.trace[0].logs["loss"] = 0.0  # type: ignore[index]
    with pytest.raises(AttributeError):
        rec.trace.append(None)  # type: ignore[attr-defined]


def test_restrict_blanks_undeclared_parts():
    rec = RunRecord.from_dict({"key": "k", "data": {"n_train": 5}, "trace": [{"epoch": 0}],
                               "outcome": {"status": "nan"}})
    only_trace = restrict(rec, frozenset({"trace"}))
    assert only_trace.data.n_train == 0 and only_trace.outcome.status == "unknown"
    assert len(only_trace.trace) == 1
