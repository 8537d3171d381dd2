"""Results that hold on any CPU: the platform in every record and key, platform-dependent oracles,
the robustness check's margins, and the perturbations really reaching the workers."""

from __future__ import annotations

import json
import math

import pytest

from trainwreck.case import Condition, load_case
from trainwreck.hardware import NUMERIC_FLAGS, PERTURBATIONS, PROBES, cpu_facts
from trainwreck.robust import MIN_MARGIN, _condition_robustness, settings_for
from trainwreck.environment import key_facts as fingerprint
from trainwreck.run import plan
from trainwreck.store import RunStore

from .conftest import CASES, ONE_WORKER, run_cli

NAN_CASE = CASES / "data" / "nan-inputs-relu-silent.yaml"


def test_cpu_facts_name_the_processor_and_its_numerics_flags():
    facts = cpu_facts()
    assert facts["cpu_model"] and facts["arch"]
    assert set(facts["cpu_flags"]) <= set(NUMERIC_FLAGS)
    fp = fingerprint("tensorflow", "cpu")
    for k in ("cpu_model", "cpu_vendor", "arch", "cpu_flags", "TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA", "threads"):
        assert k in fp, k


def test_cache_key_changes_with_every_setting_that_changes_kernels(corpus):
    case = next(c for c in corpus if c.id == "lr-divergence")
    keys = {name: plan([case], seeds=[0], **kw)[0].key for name, kw in {
        "default": {}, "onednn-off": {"env": {"TF_ENABLE_ONEDNN_OPTS": "0"}},
        "isa": {"env": {"ONEDNN_MAX_CPU_ISA": "AVX2"}}, "threads": {"threads": 2}}.items()}
    assert len(set(keys.values())) == len(keys)
    assert plan([case], seeds=[0])[0].key == keys["default"]


@pytest.mark.slow
def test_every_record_names_its_cpu_and_probe_readings(corpus_results):
    for r in corpus_results.values():
        env = r.record.environment
        if r.record.outcome.status in ("timeout",):
            continue
        assert env.cpu_model and env.arch and env.onednn in ("on", "off"), r.spec.label
        assert set(env.probes) == set(PROBES.names()), r.spec.label
        assert all(env.probes[p] in PROBES.get(p).values for p in env.probes)


@pytest.mark.slow
def test_platform_dependent_case_is_judged_by_the_behaviour_its_run_had(corpus_results):
    case = load_case(NAN_CASE)
    assert case.oracle_for("broken", {"relu_nan": "nan"})[0].measure == "outcome"
    assert case.oracle_for("broken", {"relu_nan": "zero"}) == case.oracle.broken
    assert case.oracle_for("fixed", {"relu_nan": "nan"}) == case.oracle.fixed   # not overridden: the case's
    runs = [r for (cid, _, _), r in corpus_results.items() if cid == case.id]
    assert runs
    for r in runs:
        reading = r.record.environment.probes["relu_nan"]
        expected = case.oracle_for(r.spec.variant, {"relu_nan": reading})
        assert [c.measure for c in r.verdict.conditions] == [c.measure for c in expected]
        if r.spec.variant == "broken" and reading == "nan":
            assert r.record.outcome.status == "nan"
        if r.spec.variant == "broken" and reading == "zero":
            assert r.record.outcome.status == "completed"


def test_platform_behaviour_chooses_oracle_and_scored_symptoms():
    case = load_case(NAN_CASE)
    assert case.oracle_for("broken", {"relu_nan": "nan"})[0].measure == "outcome"
    assert case.oracle_for("broken", {"relu_nan": "zero"}) == case.oracle.broken
    assert case.oracle_for("broken", {}) == case.oracle.broken
    assert "nan_loss" in case.symptoms_for({"relu_nan": "nan"})
    assert case.symptoms_for({"relu_nan": "zero"}) == case.symptoms and "nan_loss" not in case.symptoms


@pytest.mark.parametrize("old, new, field, hint", [
    ("probe: relu_nan", "probe: relu_nun", "platform_dependence.probe", "did you mean 'relu_nan'"),
    ("\n    nan:\n", "\n    nann:\n", "platform_dependence.oracle", "did you mean 'nan'"),
], ids=["unknown-probe", "unknown-reading"])
def test_bad_platform_dependence_is_a_located_error(tmp_path, old, new, field, hint):
    bad = tmp_path / "data" / "nan-inputs-relu-silent.yaml"
    bad.parent.mkdir()
    bad.write_text(NAN_CASE.read_text().replace(old, new))
    r = run_cli("validate", str(bad))
    assert r.returncode == 2
    assert field in r.stderr and hint in r.stderr


def _cond(**kw) -> Condition:
    return Condition.model_validate(kw)


def test_margin_is_worst_run_distance_in_seed_standard_deviations():
    cond = _cond(measure="best", key="val_accuracy", min=0.8)
    seeds = [("seeds", s, v, True) for s, v in enumerate([0.90, 0.92, 0.94, 0.92, 0.92])]
    r = _condition_robustness("fixed", cond, seeds + [("onednn-off", 0, 0.89, True)])
    sd = 0.01414
    assert r.seed_sd == pytest.approx(sd, rel=1e-3)
    assert r.margin == pytest.approx((0.89 - 0.8) / sd, rel=1e-3) and r.worst_setting == "onednn-off"
    assert r.robust
    close = _condition_robustness("fixed", cond, seeds + [("jax", 0, 0.805, True)])
    assert close.margin < MIN_MARGIN and not close.robust
    missed = _condition_robustness("fixed", cond, seeds + [("jax", 0, 0.7, False)])
    assert missed.margin < 0 and not missed.robust


def test_another_backend_is_measured_in_its_own_seed_spread():
    """TensorFlow lets a loss grow without bound where JAX clips it: the JAX runs' distance is judged by
    how much JAX runs scatter, not by TensorFlow's thousands."""
    cond = _cond(measure="best", key="loss", max=-1)
    seeds = [("seeds", s, v, True) for s, v in enumerate([-2755.0, -2218.0, -2609.0, -2106.0, -1210.0])]
    jax = [("jax", s, v, True) for s, v in enumerate([-10.05, -9.95, -9.96])]
    assert _condition_robustness("broken", cond, seeds + jax).margin < MIN_MARGIN
    r = _condition_robustness("broken", cond, seeds + jax, frozenset({"jax"}))
    assert r.robust and r.worst_setting == "seeds"
    near = [("jax", s, v, True) for s, v in enumerate([-1.5, -9.0, -20.0])]
    assert not _condition_robustness("broken", cond, seeds + near, frozenset({"jax"})).robust


def test_ratios_are_judged_on_a_log_scale():
    """A gradient ratio of 1.1 and one of 6.5 are the same healthy run; 0 is infinitely below 1e-6."""
    cond = _cond(measure="grad_ratio", min=0.1)
    seeds = [("seeds", s, v, True) for s, v in enumerate([3.6, 1.5, 3.7, 3.6, 2.7])]
    r = _condition_robustness("fixed", cond, seeds + [("jax", 0, 1.09, True)])
    assert r.log10 and r.robust and r.margin == pytest.approx((math.log10(1.09) + 1) / r.seed_sd)
    zero = _condition_robustness("broken", _cond(measure="max_grad_norm", max=1e-6),
                                 [("seeds", s, 0.0, True) for s in range(5)])
    assert zero.margin == math.inf and zero.robust


def test_discrete_measures_hold_everywhere_or_not_at_all():
    cond = _cond(measure="loss_nonfinite", min=1)
    ok = _condition_robustness("broken", cond, [("seeds", s, 1.0, True) for s in range(5)])
    assert ok.margin == math.inf and ok.robust
    bad = _condition_robustness("broken", cond, [("seeds", s, 1.0, True) for s in range(4)] + [("seeds", 4, 0.0, False)])
    assert bad.margin == -math.inf and not bad.robust and bad.held == 4


def test_settings_skip_what_does_not_apply_and_say_why(corpus):
    case = load_case(NAN_CASE)
    avx2_only = {"cpu_model": "x", "cpu_vendor": "", "arch": "x86_64", "cpu_flags": ["avx2", "fma"]}
    by_name = {s.name: s for s in settings_for(case, avx2_only)}
    assert set(by_name) == {"seeds", *PERTURBATIONS.names()}
    assert by_name["seeds"].seeds == (0, 1, 2, 3, 4)
    assert "AVX-512" in by_name["isa-avx2"].skipped and "backend note" in by_name["jax"].skipped
    assert by_name["onednn-off"].env == {"TF_ENABLE_ONEDNN_OPTS": "0"} and not by_name["onednn-off"].skipped
    avx512 = dict(avx2_only, cpu_flags=["avx2", "avx512f", "fma"])
    assert not {s.name: s for s in settings_for(case, avx512)}["isa-avx2"].skipped


def test_env_command_prints_platform_facts_and_probes():
    r = run_cli("env", "--json")
    assert r.returncode == 0, r.stderr
    facts = json.loads(r.stdout)
    assert facts["cpu_model"] and facts["tensorflow"] and facts["onednn"] in ("on", "off")
    assert facts["probe relu_nan"] in ("nan", "zero", "mixed")


@pytest.mark.slow
def test_new_case_template_passes_the_robustness_check(tmp_path, results_dir):
    """The template holds on seeds 0-4 and under every perturbation, with margin; the perturbed
    workers really ran with the perturbed settings (their records say so)."""
    r = run_cli("new-case", "optimization/my-robust-case", "--cases", str(tmp_path))
    assert r.returncode == 0, r.stderr
    path = tmp_path / "optimization" / "my-robust-case.yaml"
    out = run_cli("check-case", "--robust", str(path), "--results", str(results_dir), "-q", *ONE_WORKER, timeout=1800)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "robustness: 1/1 cases hold" in out.stdout
    case = load_case(path)
    store = RunStore(results_dir / "runs")
    for setting in settings_for(case):
        if setting.skipped:
            continue
        for spec in plan([case], backend=setting.backend, threads=setting.threads, env=setting.env,
                         any_seeds=list(setting.seeds)):
            env = store.get(spec.key).record["environment"]
            assert env["backend"] == setting.backend and env["threads"] == setting.threads
            assert env["numeric_env"]["TF_ENABLE_ONEDNN_OPTS"] == setting.env.get("TF_ENABLE_ONEDNN_OPTS", "")
            if setting.name == "onednn-off":
                assert env["onednn"] == "off"
