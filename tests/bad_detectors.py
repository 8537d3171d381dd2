"""Detectors that misbehave on purpose, for the failure-isolation tests."""

from __future__ import annotations

import time

from trainwreck.detectors.base import Detector, Diagnosis


class Crashing(Detector):
    name, version, needs = "crashing", "0", frozenset({"trace"})

    def diagnose(self, record):
        raise RuntimeError("this detector always crashes")


class Hanging(Detector):
    name, version, needs = "hanging", "0", frozenset({"trace"})
    time_budget_s = 0.5

    def diagnose(self, record):
        time.sleep(3600)


class Garbage(Detector):
    name, version, needs = "garbage", "0", frozenset({"trace"})

    def diagnose(self, record):
        return ["not a diagnosis"]


class Mutating(Detector):
    name, version, needs = "mutating", "0", frozenset({"trace"})

    def diagnose(self, record):
        record.trace[0].logs["loss"] = 0.0 if record.trace else None
        return [Diagnosis(cause="healthy")]
