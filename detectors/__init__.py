"""trainwreck's detectors: the protocol a plugin implements, the built-ins, loading and the conformance kit.

A plugin author needs only this import::

    from trainwreck.detectors import Detector, OnlineDetector, Diagnosis, RunRecord
"""

from .base import Detector, Diagnosis, LearnedDetector, OnlineDetector, RunRecord

__all__ = ["Detector", "Diagnosis", "LearnedDetector", "OnlineDetector", "RunRecord"]
