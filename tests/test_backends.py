"""The founding cases on Keras's JAX backend as well as TensorFlow, and the cross-backend table.

A case that behaves differently on a backend goes into KNOWN_DIFFERENCES with the reason:
the test then expects the difference instead of hiding the case.
"""

from __future__ import annotations

import json

import pytest

from harness.case import load_case
from harness.run import Progress, default_jobs, execute, plan
from harness.store import RunStore

from .conftest import CASES, run_cli

jax = pytest.importorskip("jax", reason="the jax extra is not installed (pip install 'trainwreck[jax]')")
pytestmark = pytest.mark.slow

FOUNDING = {"ragged-generator": "pipeline", "unscaled-features": "data", "deep-lstm-vanishing": "optimization",
            "lr-divergence": "optimization", "validation-leakage": "data"}
KNOWN_DIFFERENCES: dict[str, str] = {}   # case id -> why it behaves differently on JAX


def _founding_seed0(results_dir, backend: str) -> dict:
    cases = [load_case(CASES / fam / f"{cid}.yaml") for cid, fam in FOUNDING.items()]
    specs = plan(cases, seeds=[0], backend=backend)
    results = execute(specs, RunStore(results_dir / "runs"), jobs=default_jobs(), backend=backend, timeout=600,
                      progress=Progress(len(specs), True), log=lambda *a: None)
    return {(r.spec.case.id, r.spec.variant): r for r in results}


@pytest.fixture(scope="module")
def jax_results(results_dir):
    return _founding_seed0(results_dir, "jax")


@pytest.mark.parametrize("variant", ["broken", "fixed"])
@pytest.mark.parametrize("case_id", sorted(FOUNDING))
def test_founding_case_holds_on_jax(jax_results, case_id, variant):
    r = jax_results[(case_id, variant)]
    assert r.record.environment.backend == "jax" and r.record.environment.jax
    if variant == "fixed" or r.record.outcome.status != "crashed":
        assert any(e.grad_norms for e in r.record.trace), "the gradient probe ran on JAX"
    if case_id in KNOWN_DIFFERENCES:
        pytest.xfail(KNOWN_DIFFERENCES[case_id])
    assert r.verdict.holds, r.verdict.summary()


def test_backend_table(jax_results, results_dir, tmp_path):
    _founding_seed0(results_dir, "tensorflow")   # cached already when the corpus fixture ran
    args = ["backends", "--results", str(results_dir), "--out", str(tmp_path), "--seeds", "0",
            "-d", "nan-guard", "-d", "autotrainer"]
    for cid in FOUNDING:
        args += ["--case", cid]
    r = run_cli(*args)
    assert r.returncode == (1 if KNOWN_DIFFERENCES else 0), r.stdout + r.stderr
    doc = json.loads((tmp_path / "backends.json").read_text())
    assert doc["headers"][:3] == ["case", "tensorflow", "jax"]
    assert {row[0] for row in doc["rows"]} == set(FOUNDING)
    assert set(doc["data"]["differs"]) == set(KNOWN_DIFFERENCES)
    assert set(doc["fingerprint"]["backends"]) == {"tensorflow", "jax"}
