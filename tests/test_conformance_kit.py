"""The conformance kit catches detectors that break the protocol."""

from __future__ import annotations

import itertools
import time

import pytest

from trainwreck.detectors.base import Detector, Diagnosis, OnlineDetector
from trainwreck.detectors.nan_guard import NanGuard
from trainwreck.detectors.testing import CHECKS, check_detector, parametrize_with_checks


def unchecked(**fields) -> Diagnosis:
    """A Diagnosis built around its own validation, as a careless plugin might."""
    d = object.__new__(Diagnosis)
    for k, v in {"cause": None, "symptom": None, "confidence": 1.0, "epoch": None, "evidence": "", **fields}.items():
        object.__setattr__(d, k, v)
    return d


class Good(Detector):
    name, version, needs = "good", "1", frozenset({"trace"})

    def diagnose(self, record):
        return [Diagnosis(cause="lr_too_high", confidence=0.5)] if record.trace else []


class UnknownCause(Detector):
    name, needs = "unknown-cause", frozenset()

    def diagnose(self, record):
        return [Diagnosis(cause="gremlins")]           # raises InvalidDiagnosis


class UnknownCauseBypassed(Detector):
    name, needs = "unknown-cause-bypassed", frozenset()

    def diagnose(self, record):
        return [unchecked(cause="gremlins")]


_calls = itertools.count()


class NonDeterministic(Detector):
    name, needs = "non-deterministic", frozenset()

    def diagnose(self, record):
        return [Diagnosis(cause="lr_too_high", confidence=(next(_calls) % 10) / 10)]


class BadConfidence(Detector):
    name, needs = "bad-confidence", frozenset()

    def diagnose(self, record):
        return [unchecked(cause="lr_too_high", confidence=2.0)]


class BadConfidenceValidated(Detector):
    name, needs = "bad-confidence-validated", frozenset()

    def diagnose(self, record):
        return [Diagnosis(cause="lr_too_high", confidence=2.0)]   # raises InvalidDiagnosis


class NonList(Detector):
    name, needs = "non-list", frozenset()

    def diagnose(self, record):
        return Diagnosis(cause="lr_too_high")


class NoneReturner(Detector):
    name, needs = "none-returner", frozenset()

    def diagnose(self, record):
        return None


class TooSlow(Detector):
    name, needs, time_budget_s = "too-slow", frozenset(), 0.002

    def diagnose(self, record):
        time.sleep(0.01)
        return []


class Crashes(Detector):
    name, needs = "crashes", frozenset({"trace"})

    def diagnose(self, record):
        return [Diagnosis(symptom="nan_loss", epoch=record.trace[-1].epoch)]   # IndexError on an empty trace


class Mutates(Detector):
    name, needs = "mutates", frozenset()

    def diagnose(self, record):
        object.__setattr__(record, "key", record.key + "!")
        return []


class DisagreesOnline(OnlineDetector):
    name, needs = "disagrees-online", frozenset({"trace"})

    def on_epoch_end(self, epoch, trace, record):
        return [Diagnosis(symptom="plateau", epoch=epoch)]

    def diagnose(self, record):        # overrides the replay it should equal
        return []


class NoName(Detector):
    def diagnose(self, record):
        return []


def test_good_detector_passes():
    assert set(check_detector(Good).values()) == {"passed"}
    assert set(check_detector(NanGuard()).values()) == {"passed"}   # an instance is accepted too


@pytest.mark.parametrize("cls,check", [
    (UnknownCause, "check_returns_list"),
    (UnknownCauseBypassed, "check_valid_terms"),
    (NonDeterministic, "check_deterministic"),
    (BadConfidence, "check_confidence_range"),
    (BadConfidenceValidated, "check_returns_list"),
    (NonList, "check_returns_list"),
    (NoneReturner, "check_returns_list"),
    (TooSlow, "check_time_budget"),
    (Crashes, "check_returns_list"),
    (Mutates, "check_no_mutation"),
    (DisagreesOnline, "check_online_agreement"),
    (NoName, "check_metadata"),
])
def test_kit_catches_bad_detector(cls, check):
    with pytest.raises(AssertionError) as err:
        check_detector(cls)
    message = str(err.value)
    assert message.startswith(f"{check} failed for detector"), message
    assert (cls.name or cls.__name__) in message


def test_each_named_check_catches_its_own_fault():
    with pytest.raises(AssertionError, match="check_time_budget failed for detector 'too-slow'"):
        CHECKS["check_time_budget"](TooSlow)
    with pytest.raises(AssertionError, match="check_confidence_range failed for detector 'bad-confidence'"):
        CHECKS["check_confidence_range"](BadConfidence)
    with pytest.raises(AssertionError, match="check_deterministic failed for detector 'non-deterministic'"):
        CHECKS["check_deterministic"](NonDeterministic)
    with pytest.raises(AssertionError, match="check_valid_terms failed for detector 'unknown-cause-bypassed'"):
        CHECKS["check_valid_terms"](UnknownCauseBypassed)


def test_expected_failed_checks():
    results = check_detector(TooSlow, expected_failed_checks={"check_time_budget": "sleeps on purpose"})
    assert results["check_time_budget"] == "xfail: sleeps on purpose"
    assert results["check_returns_list"] == "passed"
    assert check_detector(Good, {"check_time_budget": "not really"})["check_time_budget"] == "xpass"
    results = check_detector(TooSlow, lambda cls: {"check_time_budget": f"{cls.name} is slow"})
    assert results["check_time_budget"] == "xfail: too-slow is slow"
    with pytest.raises(ValueError, match="unknown checks"):
        check_detector(Good, {"check_nonsense": "typo"})


def test_parametrize_with_checks_ids_and_marks():
    mark = parametrize_with_checks([Good, TooSlow], expected_failed_checks=lambda cls:
                                   {"check_time_budget": "slow"} if cls is TooSlow else {})
    names, params = mark.args
    assert names == "detector_class, check"
    ids = [p.id for p in params]
    assert "good-check_deterministic" in ids and "too-slow-check_time_budget" in ids
    assert len(ids) == 2 * len(CHECKS)
    slow = next(p for p in params if p.id == "too-slow-check_time_budget")
    assert [m.name for m in slow.marks] == ["xfail"]
    assert all(not p.marks for p in params if p.id != "too-slow-check_time_budget")


@parametrize_with_checks([Good, TooSlow], expected_failed_checks=lambda cls:
                         {"check_time_budget": "sleeps on purpose"} if cls is TooSlow else {})
def test_parametrized_kit_runs(detector_class, check):
    check(detector_class)
