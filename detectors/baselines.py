"""Floor baselines: what a detector that knows nothing about the run scores.

* `RandomCause` ("random"): one cause drawn uniformly from the taxonomy, seeded from the record's
  opaque key (SHA-256), so the same run always gets the same answer and the bench is reproducible.
* `MajorityCause` ("majority"): always the same cause, the mode of a fixed prior.

Both read nothing of the record but its key (`needs` is empty) and name no symptom.

Decisions:
* "healthy" is excluded from the choices. A detector says "healthy" by emitting no diagnosis, so
  a baseline that drew "healthy" would emit nothing; keeping the baselines always-answering makes
  them a floor for recall and a ceiling for false alarms (they alarm on every trap case), and the
  confidence 1/len(choices) is the uniform probability of the draw. Both use that confidence so
  their ranking-based scores are comparable.
* The majority prior is not a measured frequency. Humbatova et al., "Taxonomy of Real Faults in
  Deep Learning Systems" (ICSE 2020), report "Training" as the largest of their top-level fault
  categories, but we could not verify leaf-level counts, and the benchmark corpus must not be
  used (that would leak ground truth). So the prior is stated, not estimated: the mode is
  `lr_too_high`, the first cause of the taxonomy's optimisation group (Humbatova's "Training >
  Hyperparameters"), and the learning rate is the root cause both AUTOTRAINER (unstable) and
  DeepDiagnosis ("Learning Rate") name for training that misbehaves. Change `PRIOR_MODE` to
  re-run the baseline with another prior.

Rule table: none. Neither baseline implements a published tool; `source` says so, and the scope
is what each can emit (random: every cause but healthy; majority: PRIOR_MODE alone; no symptoms).
"""

from __future__ import annotations

import hashlib
import random

from trainwreck import taxonomy

from .base import Detector, Diagnosis

CHOICES = tuple(c for c in taxonomy.cause_names() if c != taxonomy.HEALTHY)


class RandomCause(Detector):
    name = "random"
    version = "1.0"
    source = "trainwreck (floor baseline)"
    causes = frozenset(CHOICES)
    symptoms = frozenset()
    needs = frozenset()
    time_budget_s = 1.0

    def diagnose(self, record):
        seed = int.from_bytes(hashlib.sha256(str(record.key).encode()).digest()[:8], "big")
        cause = random.Random(seed).choice(CHOICES)
        return [Diagnosis(cause=cause, confidence=1.0 / len(CHOICES),
                          evidence=f"uniform draw over {len(CHOICES)} causes, seeded from the run key")]


class MajorityCause(Detector):
    name = "majority"
    version = "1.0"
    needs = frozenset()
    time_budget_s = 1.0
    PRIOR_MODE = "lr_too_high"
    source = "trainwreck (floor baseline; prior after Humbatova et al., ICSE 2020)"
    causes = frozenset({PRIOR_MODE})
    symptoms = frozenset()

    def diagnose(self, record):
        return [Diagnosis(cause=self.PRIOR_MODE, confidence=1.0 / len(CHOICES),
                          evidence=f"always the mode of a fixed prior ({self.PRIOR_MODE})")]
