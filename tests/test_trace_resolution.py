"""The trace's resolution is part of a run: its key, its worker job and its record; and runs are
scheduled longest-expected first, from past durations when the cache folder remembers them."""

from __future__ import annotations

import pytest

from trainwreck.case import load_case
from trainwreck.detectors import OnlineDetector
from trainwreck.run import execute, expected_seconds, longest_first, plan
from trainwreck.record import QUANTILES, RunRecord
from trainwreck.store import RunStore

from .conftest import CASES
from .test_cache_and_resume import _case_dir


def test_the_resolution_is_part_of_the_key():
    case = load_case(CASES / "optimization" / "lr-divergence.yaml")
    per_epoch = plan([case], seeds=[0])
    per_step = plan([case], seeds=[0], trace_every=10)
    assert {s.trace_every for s in per_step} == {10} and {s.trace_every for s in per_epoch} == {0}
    assert not {s.key for s in per_epoch} & {s.key for s in per_step}
    assert [s.key for s in plan([case], seeds=[0], trace_every=10)] == [s.key for s in per_step]
    with pytest.raises(ValueError, match="trace_every"):
        plan([case], seeds=[0], trace_every=-1)


class RequiresSteps(OnlineDetector):
    name, version, needs = "requires-steps", "1", frozenset({"trace", "steps"})


class PrefersSteps(RequiresSteps):
    name, optional = "prefers-steps", frozenset({"steps"})


def test_a_detector_that_requires_steps_switches_the_bench_one_that_can_do_without_does_not():
    from trainwreck import api
    from trainwreck.detectors.loading import DetectorInfo

    requires, prefers = (DetectorInfo(c.name, f"{__name__}:{c.__name__}", "test") for c in (RequiresSteps, PrefersSteps))
    builtins = api.resolve_detectors()
    assert api.trace_resolution(builtins) == 0, "no built-in requires the per-step trace"
    assert any("steps" in d.detector_class().optional for d in builtins), "deeplocalize reads it when present"
    assert api.trace_resolution([prefers]) == 0
    assert api.trace_resolution([prefers, requires]) == api.DEFAULT_TRACE_EVERY
    assert api.trace_resolution([prefers], trace_every=5) == 5


def test_longest_expected_first_by_size_then_by_past_duration():
    lstm = load_case(CASES / "optimization" / "deep-lstm-vanishing.yaml")
    mlp = load_case(CASES / "optimization" / "lr-divergence.yaml")
    specs = plan([mlp, lstm], seeds=[0], variants=("fixed",))
    assert [s.case.id for s in longest_first(specs, {})] == ["deep-lstm-vanishing", "lr-divergence"]
    # a remembered duration wins over the size estimate (remembered by backend, device, case, variant,
    # seed, sweep value and resolution)
    past = {}
    for s in specs:
        past["|".join(map(str, (s.backend, s.device, s.case.id, s.variant, s.seed, s.severity, s.trace_every)))] = \
            100.0 if s.case.id == "lr-divergence" else 1.0
    assert [s.case.id for s in longest_first(specs, past)] == ["lr-divergence", "deep-lstm-vanishing"]
    assert expected_seconds(specs[0], past) in (1.0, 100.0)


def test_a_cases_runs_are_scheduled_together_so_a_worker_reuses_its_compiled_probe():
    lstm = load_case(CASES / "optimization" / "deep-lstm-vanishing.yaml")
    mlp = load_case(CASES / "optimization" / "lr-divergence.yaml")
    specs = plan([mlp, lstm], seeds=[0, 1, 2])
    past = {"|".join(map(str, (s.backend, s.device, s.case.id, s.variant, s.seed, s.severity, s.trace_every))):
            (50.0 if s.seed == 1 else 1.0) if s.case.id == "lr-divergence" else 10.0 for s in specs}
    order = [(s.case.id, s.variant) for s in longest_first(specs, past)]
    # the case with the longest single run goes first, whole, one variant after the other
    assert order == [("lr-divergence", "broken")] * 3 + [("lr-divergence", "fixed")] * 3 + \
        [("deep-lstm-vanishing", "broken")] * 3 + [("deep-lstm-vanishing", "fixed")] * 3


@pytest.mark.slow
def test_a_worker_records_steps_at_the_requested_resolution(tmp_path):
    """A real worker run with trace_every: step records every k batches, a strict record, and the
    duration remembered for the next schedule."""
    case = load_case(_case_dir(tmp_path) / "test" / "tiny.yaml")
    specs = plan([case], seeds=[0], variants=("fixed",), trace_every=3)
    store = RunStore(tmp_path / "runs")
    (res,) = execute(specs, store, log=lambda *a: None)
    rec = res.record
    assert isinstance(rec, RunRecord) and rec.trace_every == 3
    first = rec.trace[0]
    assert [s.batch for s in first.step_trace] == list(range(0, first.steps, 3))
    step = first.step_trace[0]
    assert step.grad_norms and all(len(q) == len(QUANTILES) for q in step.activation_quantiles.values())
    assert rec.trace[0].learning_rate == pytest.approx(rec.model.learning_rate)
    assert (tmp_path / "runs" / "durations.tsv").read_text().count("\t") == 1
