"""Detectors that misbehave on purpose, for the failure-isolation tests."""

from __future__ import annotations

import os
import time

from trainwreck.detectors.base import Detector, Diagnosis, LearnedDetector


class Crashing(Detector):
    name, version, needs = "crashing", "0", frozenset({"trace"})

    def diagnose(self, record):
        raise RuntimeError("this detector always crashes")


class Hanging(Detector):
    """Never returns. A small budget keeps the time limits short: about 2 s a run in the bench, 3.2 s
    a check in the conformance kit (replay_budget)."""
    name, version, needs = "hanging", "0", frozenset({"trace"})
    time_budget_s = 0.02

    def diagnose(self, record):
        time.sleep(3600)


class Exits(Detector):
    """Ends its own process without a word, as a C extension calling exit() would."""
    name, version, needs = "exits", "0", frozenset({"trace"})

    def diagnose(self, record):
        os._exit(3)


class Segfaults(Detector):
    name, version, needs = "segfaults", "0", frozenset({"trace"})

    def diagnose(self, record):
        import ctypes

        ctypes.string_at(0)


class Garbage(Detector):
    name, version, needs = "garbage", "0", frozenset({"trace"})

    def diagnose(self, record):
        return ["not a diagnosis"]


class Mutating(Detector):
    name, version, needs = "mutating", "0", frozenset({"trace"})

    def diagnose(self, record):
        record.trace[0].logs["loss"] = 0.0 if record.trace else None
        return [Diagnosis(cause="healthy")]


class Impostor(Detector):
    """Named like a built-in: as a --detector-spec it must be refused, not replace the built-in's row."""
    name, version, needs = "autotrainer", "0", frozenset({"trace"})

    def diagnose(self, record):
        return []


class LearnedSpy(LearnedDetector):
    """A learned detector whose model is the list of runs it was fitted on (by their keys' first 12 hex
    digits, carried as a feature): its one diagnosis names them, so a test can check the folds."""
    name, version, needs = "learned-spy", "1.0", frozenset({"trace"})
    causes, symptoms = frozenset({"lr_too_high"}), frozenset()
    replay = False

    def features(self, record):
        return {"run": float(int(record.key[:12], 16)) if len(record.key) >= 12 else 0.0}

    @classmethod
    def fit(cls, features, labels, seed=0):
        return sorted(f"{int(f['run']):012x}" for f in features)

    def diagnose(self, record):
        return [Diagnosis(cause="lr_too_high", confidence=0.5, evidence=",".join(self.model))] if self.model else []
