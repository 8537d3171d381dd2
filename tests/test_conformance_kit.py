"""The conformance kit catches detectors that break the protocol."""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap
import time

import pytest

from trainwreck.detectors.base import Detector, Diagnosis, LearnedDetector, OnlineDetector, replay_budget
from trainwreck.detectors.loading import DetectorInfo
from trainwreck.detectors.nan_guard import NanGuard
from trainwreck.detectors.testing import (CHECKS, LONG_TRACE_EPOCHS, check_detector, long_dict,
                                          parametrize_with_checks, worker_spec)
from trainwreck.executor import Job, WorkerPool

from .conftest import ROOT


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
    """Quick on short runs, too slow on long ones: 2 ms per epoch against a budget of 10 ms per step."""
    name, needs, time_budget_s = "too-slow", frozenset({"trace"}), 0.01

    def diagnose(self, record):
        time.sleep(0.002 * len(record.trace))
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


class QuadraticInTrace(Detector):
    """Well within its budget on every short record (at most 3.6 ms a call against 10 ms), far over it
    on a long replay (about 7 s for 60 epochs against 2.6 s): what one call per record cannot see."""
    name, needs, time_budget_s = "quadratic", frozenset({"trace"}), 0.01

    def diagnose(self, record):
        time.sleep(1e-4 * len(record.trace) ** 2)
        return []


class Steady(Detector):
    """40 ms a call against 50 ms a step: within the rule on any run, yet over the bench's old flat limit
    (3 x time_budget_s, at least 2 s) on a run of 60 epochs (61 calls, 2.4 s)."""
    name, needs, time_budget_s = "steady", frozenset({"trace"}), 0.05

    def diagnose(self, record):
        time.sleep(0.04)
        return []


class OutOfScopeCause(Detector):
    """Declares itself symptom-only, then names a cause."""
    name, needs = "out-of-scope-cause", frozenset()
    causes, symptoms = frozenset(), frozenset({"nan_loss"})

    def diagnose(self, record):
        return [Diagnosis(cause="lr_too_high", symptom="nan_loss")]


class OutOfScopeSymptom(Detector):
    name, needs = "out-of-scope-symptom", frozenset()
    causes, symptoms = frozenset({"lr_too_high"}), frozenset({"nan_loss"})

    def diagnose(self, record):
        return [Diagnosis(cause="lr_too_high", symptom="divergence")]


class BadScopeTerm(Detector):
    name, needs = "bad-scope-term", frozenset()
    causes = frozenset({"lr_too_hgh"})

    def diagnose(self, record):
        return []


class InScope(Detector):
    name, needs = "in-scope", frozenset()
    causes, symptoms = frozenset({"lr_too_high"}), frozenset()

    def diagnose(self, record):
        return [Diagnosis(cause="lr_too_high")]


class RaggedFeatures(LearnedDetector):
    """Its features have other keys on different records: no table to fit on."""
    name, needs = "ragged-features", frozenset({"trace"})

    def features(self, record):
        return {f"epoch_{i}": 1.0 for i, _ in enumerate(record.trace)}

    @classmethod
    def fit(cls, features, labels, seed=0):
        return None

    def diagnose(self, record):
        return []


class FittedOutOfScope(LearnedDetector):
    """Silent untrained; once fitted, names a cause outside its declared scope."""
    name, needs = "fitted-out-of-scope", frozenset({"trace"})
    causes = frozenset({"lr_too_high"})

    def features(self, record):
        return {"epochs": float(len(record.trace))}

    @classmethod
    def fit(cls, features, labels, seed=0):
        return "fitted"

    def diagnose(self, record):
        return [Diagnosis(cause="lr_too_low")] if self.model else []


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
    (OutOfScopeCause, "check_within_scope"),
    (OutOfScopeSymptom, "check_within_scope"),
    (BadScopeTerm, "check_metadata"),
    (RaggedFeatures, "check_learned"),
    (FittedOutOfScope, "check_learned"),
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


def test_scope_check_names_the_term_and_passes_an_in_scope_detector():
    with pytest.raises(AssertionError, match="cause 'lr_too_high' is outside the declared causes"):
        CHECKS["check_within_scope"](OutOfScopeCause)
    with pytest.raises(AssertionError, match="symptom 'divergence' is outside the declared symptoms"):
        CHECKS["check_within_scope"](OutOfScopeSymptom)
    assert set(check_detector(InScope).values()) == {"passed"}


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


# -- one time rule for the kit and the bench -----------------------------------------------------
def test_kit_times_a_long_replay_not_one_call():
    with pytest.raises(AssertionError) as err:
        CHECKS["check_time_budget"](QuadraticInTrace)
    limit = replay_budget(QuadraticInTrace, LONG_TRACE_EPOCHS)
    assert str(err.value).startswith(f"check_time_budget failed for detector 'quadratic': the replay of a "
                                     f"{LONG_TRACE_EPOCHS}-epoch record did not return within {limit:g} s"), err.value


def test_bench_gives_a_run_the_budget_the_kit_checks():
    from trainwreck.score import _budget

    info = DetectorInfo("steady", worker_spec(Steady), "command line")
    for n in (0, 6, LONG_TRACE_EPOCHS):
        assert _budget(info, n) == replay_budget(Steady, n)
    CHECKS["check_time_budget"](Steady)                       # the kit passes it ...
    job = Job("long", {"record": long_dict()}, _budget(info, LONG_TRACE_EPOCHS))
    with WorkerPool("detect", (info.spec,)) as pool:            # ... and so does the bench, as score_runs runs it
        (result,) = list(pool.run([job]))
    assert result.status == "ok", result.message


# -- the detector runs in a worker: the caller survives it ---------------------------------------
KIT = """
import time
from trainwreck.detectors.testing import check_detector
from tests.bad_detectors import {cls}
t0 = time.monotonic()
try:
    check_detector({cls})
except AssertionError as e:
    print(f"FAILED {{time.monotonic() - t0:.1f}}: {{e}}")
print("the caller is still here")
"""


@pytest.mark.parametrize("cls,message", [
    ("Hanging", "check_returns_list failed for detector 'hanging': the detector did not return within 3.22 s"),
    ("Exits", "check_returns_list failed for detector 'exits': the detector ended its worker process "
              "(worker process died: exit code 3)"),
    ("Segfaults", "check_returns_list failed for detector 'segfaults': the detector ended its worker process "
                  "(worker process died: killed by signal 11 (SIGSEGV))"),
], ids=["hangs", "exits", "segfaults"])
def test_a_detector_that_hangs_or_dies_fails_a_check_and_the_caller_goes_on(cls, message):
    r = subprocess.run([sys.executable, "-c", KIT.format(cls=cls)], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    failed, survived = r.stdout.strip().splitlines()[-2:]
    assert failed.partition(": ")[2].startswith(message), failed
    assert float(failed.split()[1].rstrip(":")) < 30
    assert survived == "the caller is still here"


def test_a_class_no_worker_can_import_is_a_clear_error():
    class Local(Detector):
        name = "local"

        def diagnose(self, record):
            return []

    with pytest.raises(ValueError, match=r"defined inside a function .*define it at the top level of a module"):
        check_detector(Local)
    r = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        from trainwreck.detectors.base import Detector
        from trainwreck.detectors.testing import check_detector
        class Typed(Detector):
            name = "typed"
            def diagnose(self, record):
                return []
        check_detector(Typed)
        """)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "ValueError" in r.stderr and "put it in a .py module" in r.stderr, r.stderr


def test_a_class_in_a_script_can_be_checked(tmp_path):
    script = tmp_path / "my_detector.py"
    script.write_text(textwrap.dedent("""
        from trainwreck.detectors.base import Detector
        from trainwreck.detectors.testing import check_detector

        class Mine(Detector):
            name, needs = "mine", frozenset({"trace"})

            def diagnose(self, record):
                return []

        if __name__ == "__main__":
            print(sorted(set(check_detector(Mine).values())))
        """))
    r = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "['passed']", r.stdout + r.stderr
