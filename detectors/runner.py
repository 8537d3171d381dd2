"""Running one detector on one record, inside a detector worker process.

The record arrives as plain data with an opaque key and is rebuilt as a
read-only `RunRecord` holding only the parts the detector declared. Online
detectors are replayed epoch by epoch; post-hoc detectors are replayed on
each prefix of the trace. The first prefix at which a cause (or symptom) is
named gives the detection latency, computed for every cause named, so the
scorer can look up the expected one without the detector ever seeing it.
The whole replay of an n-epoch run is held to `base.replay_budget(cls, n)`, the rule the
conformance kit checks by running this same function on a long record.
"""

from __future__ import annotations

import time

from trainwreck.record import RunRecord, truncate

from .base import Detector, Diagnosis, OnlineDetector, restrict

__all__ = ["diagnose_replay", "validate_output", "validate_features", "learned_features", "diagnose_learned"]


def validate_output(name: str, out) -> list[Diagnosis]:
    if out is None:
        return []
    if not isinstance(out, (list, tuple)):
        raise TypeError(f"{name} returned {type(out).__name__}, expected a list of Diagnosis")
    for d in out:
        if not isinstance(d, Diagnosis):
            raise TypeError(f"{name} returned a {type(d).__name__} among its diagnoses, expected Diagnosis")
    return list(out)


def _first_seen(first: dict, key: str | None, k: int) -> None:
    if key is not None and key not in first:
        first[key] = k


def validate_features(name: str, out) -> dict[str, float]:
    """A learned detector's `features` output, checked: a dict of str -> number (a bool is no number)."""
    if not isinstance(out, dict) or not all(isinstance(k, str) and isinstance(v, (int, float)) and
                                            not isinstance(v, bool) for k, v in out.items()):
        raise TypeError(f"{name}.features returned {type(out).__name__}, expected a dict of str -> float")
    return {k: float(v) for k, v in out.items()}


def learned_features(detector, record_dict: dict) -> dict[str, float]:
    """A learned detector's features of one run, from the parts of the record it declared."""
    return validate_features(detector.name,
                             detector.features(restrict(RunRecord.from_dict(record_dict), frozenset(detector.needs))))


def diagnose_learned(detector, records: dict, replay: bool) -> dict:
    """{key: (answer, "")} for a fold's records: replayed one by one, or (`replay` False) diagnosed in one
    `diagnose_many` call, each answer's latency then the run's length."""
    if replay:
        return {k: (diagnose_replay(detector, rec), "") for k, rec in records.items()}
    recs = {k: restrict(RunRecord.from_dict(rec), frozenset(detector.needs)) for k, rec in records.items()}
    t0 = time.perf_counter()
    outs = detector.diagnose_many(list(recs.values()))
    each = (time.perf_counter() - t0) / max(1, len(recs))
    return {k: (_answer(validate_output(detector.name, out), len(rec.trace), {}, {}, each), "")
            for (k, rec), out in zip(recs.items(), outs)}


def _answer(final: list[Diagnosis], n_epochs: int, first_cause: dict, first_symptom: dict, seconds: float) -> dict:
    """One run's answer: the final diagnoses, and for each cause and symptom the first epoch prefix that
    named it (a final diagnosis not named earlier counts at the run's end, epoch n)."""
    for d in final:
        _first_seen(first_cause, d.cause, n_epochs)
        _first_seen(first_symptom, d.symptom, n_epochs)
    return {"diagnoses": [d.to_dict() for d in final], "first_cause": first_cause,
            "first_symptom": first_symptom, "seconds": seconds}


def diagnose_replay(detector: Detector, record: dict | RunRecord, replay: bool = True) -> dict:
    if not isinstance(record, RunRecord):
        record = RunRecord.from_dict(record)
    record = restrict(record, frozenset(detector.needs))
    t0 = time.perf_counter()
    first_cause: dict[str, int] = {}
    first_symptom: dict[str, int] = {}
    if isinstance(detector, OnlineDetector):
        final = []
        fresh = type(detector)()
        for k, ds in fresh.replay(record):
            ds = validate_output(detector.name, ds)
            final += ds
            for d in ds:
                _first_seen(first_cause, d.cause, k)
                _first_seen(first_symptom, d.symptom, k)
    else:
        final = validate_output(detector.name, detector.diagnose(record))
        if replay:
            for k in range(len(record.trace)):
                for d in validate_output(detector.name, detector.diagnose(truncate(record, k))):
                    _first_seen(first_cause, d.cause, k)
                    _first_seen(first_symptom, d.symptom, k)
    # an online detector's final diagnoses were all named during its replay, so _answer adds nothing for them
    return _answer(final, len(record.trace), first_cause, first_symptom, time.perf_counter() - t0)
