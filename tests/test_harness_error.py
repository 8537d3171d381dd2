"""A failure of the harness's own code is a `harness_error`, never a `crashed` run: it is not
cached and satisfies no oracle, so a harness bug cannot pass for a case that is meant to crash.
The rule (harness/train.py run_task): what `model.fit` raises, the case's input pipeline included,
is the run's own crash; anything else (task, dataset, transforms, model builder, compile, fit input,
the trace callback, profile, summary) is the harness's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from pydantic import ValidationError

from trainwreck.case import Condition, load_case, resolve_variant
from trainwreck.detectors.testing import healthy_dict
from trainwreck.executor import Job, JobResult
from trainwreck.oracle import evaluate
from trainwreck.record import OUTCOMES, RunRecord
from trainwreck.run import _result, _settle, execute, plan
from trainwreck.store import RunStore, canonical

from .test_cache_and_resume import _case_dir


def _harness_error_record() -> RunRecord:
    d = healthy_dict(epochs=0)
    d["outcome"] = {"status": "harness_error", "exception_type": "ValueError", "message": "boom"}
    return RunRecord.from_dict(d)


def test_harness_error_is_an_outcome():
    assert "harness_error" in OUTCOMES


@pytest.mark.parametrize("conditions", [
    [{"measure": "outcome", "in": ["crashed"]}, {"measure": "epochs_run", "max": 0}],
    [{"measure": "epochs_run", "max": 0}],
    [],                                             # a sweep point: no claim, still not a valid run
])
def test_a_harness_error_never_satisfies_an_oracle(conditions):
    verdict = evaluate([Condition.model_validate(c) for c in conditions], _harness_error_record(), {})
    assert not verdict.holds
    assert len(verdict.conditions) == max(1, len(conditions))    # positions still match the case's conditions
    assert not any(c.holds for c in verdict.conditions)
    assert "harness error" in verdict.summary() and "ValueError: boom" in verdict.summary()


@pytest.mark.parametrize("bad", [["harness_error"], ["exploded"], ["crashed", "runnning"]])
def test_an_outcome_condition_names_only_statuses_a_run_can_meet(bad):
    with pytest.raises(ValidationError) as info:
        Condition.model_validate({"measure": "outcome", "in": bad})
    assert "in" in str(info.value)


def test_a_job_whose_handler_raised_is_a_harness_error_and_not_cached(tmp_path):
    case = load_case(_case_dir(tmp_path) / "test" / "tiny.yaml")
    spec = plan([case], seeds=[0], variants=("broken",))[0]
    store = RunStore(tmp_path / "runs")
    res = JobResult(Job(spec.key, {}, 60.0), "error", None,
                    "ValueError: boom at step 3\nTraceback (most recent call last):\n  ...", 1.5)
    result = _result(spec, *_settle(spec, res, store))
    out = result.record.outcome
    assert (out.status, out.exception_type, out.message) == ("harness_error", "ValueError", "boom at step 3")
    assert store.keys() == [] and not result.verdict.holds


TRACE_FAILS = """\
import json, sys
from trainwreck.train import run_task, setup_worker
setup_worker("tensorflow", "cpu", 1)
import trainwreck.trace

def broken(self):
    raise KeyError("no probe for dense_9")

trainwreck.trace.EpochProbe.measure    # the method replaced below exists (setting a new one would prove nothing)
trainwreck.trace.EpochProbe.measure = broken    # a bug in the harness's trace, run inside fit
try:
    out = run_task(json.loads(sys.argv[1]), 0, "k", "tensorflow", "cpu")
    print("returned", out["record"]["outcome"]["status"])
except KeyError as e:
    print("raised", type(e).__name__, e)
"""


@pytest.mark.slow
def test_an_exception_from_the_trace_callback_is_the_harness_s(tmp_path):
    """Keras runs the harness's trace callback inside fit: what it raises propagates out of run_task
    (a harness error), instead of being recorded as the run's crash. In a subprocess: it imports Keras."""
    case = load_case(_case_dir(tmp_path) / "test" / "tiny.yaml")
    task = json.dumps(resolve_variant(case, "fixed").model_dump(mode="json", by_alias=True))
    r = subprocess.run([sys.executable, "-c", TRACE_FAILS, task], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert r.stdout.strip().splitlines()[-1:] == ["raised KeyError 'no probe for dense_9'"], r.stdout + r.stderr


RAGGED = """\
id: ragged
title: A tiny ragged pipeline and a dataset the harness cannot build
description: The broken run crashes in fit; the fixed run's dataset builder raises in the harness.
provenance: trainwreck test suite
cause: ragged_batches
symptoms: [crash]
seeds: [0, 1, 2]
base:
  dataset: {name: tabular_classification, params: {n_samples: 300, n_features: 5, n_informative: 3}}
  model: {name: mlp, params: {hidden: [8]}}
  pipeline: {name: pydataset}
  compile: {optimizer: adam, learning_rate: 0.01, loss: binary_crossentropy}
  fit: {epochs: 3, batch_size: 32}
broken:
  pipeline: {params: {bad_batch: 2, drop_features: 2}}
fixed:
  dataset: {params: {n_classes: 50}}
oracle:
  broken:
    - {measure: outcome, in: [crashed]}
  fixed:
    - {measure: outcome, in: [crashed]}
"""


@pytest.mark.slow
def test_real_runs_a_crash_in_fit_is_crashed_a_harness_failure_is_harness_error(tmp_path):
    """Real workers: a batch missing features crashes in fit (crashed, cached, written as the validated
    dataclasses); a dataset sklearn cannot generate (50 classes from 3 informative features) raises
    in the harness before training (harness_error, not cached, never a valid run)."""
    d = tmp_path / "cases" / "test"
    d.mkdir(parents=True)
    (d / "ragged.yaml").write_text(textwrap.dedent(RAGGED))
    specs = plan([load_case(d / "ragged.yaml")], seeds=[0])
    store = RunStore(tmp_path / "runs")
    results = {r.spec.variant: r for r in execute(specs, store, jobs=1, timeout=240, log=lambda *a: None)}

    crash, harness = results["broken"], results["fixed"]
    assert crash.record.outcome.status == "crashed" and crash.verdict.holds
    assert harness.record.outcome.status == "harness_error" and not harness.verdict.holds
    assert harness.record.outcome.exception_type == "ValueError"
    assert "n_classes(50)" in harness.record.outcome.message
    assert store.keys() == [crash.spec.key]

    stored = json.loads((tmp_path / "runs" / f"{crash.spec.key}.json").read_text())["record"]
    assert not stored["trace"][-1]["completed"]
    assert canonical(RunRecord.finished(stored).to_dict()) == canonical(stored)   # every field written
