"""The founding cases on Keras's other backends (JAX in CI; torch where installed), and the cross-backend tables.

A case that behaves differently on a backend says why in its file (`backend_notes`): the test
then accepts the difference for that case and backend (as an xfail carrying the reason)
instead of hiding the case; a difference no note explains fails.
"""

from __future__ import annotations

import importlib.util
import json

import pytest

from trainwreck.case import load_case
from trainwreck.run import Progress, check_backend, default_jobs, execute, plan
from trainwreck.store import RunStore

from .conftest import CASES, run_cli

FOUNDING = {"ragged-generator": "pipeline", "unscaled-features": "data", "deep-lstm-vanishing": "optimization",
            "lr-divergence": "optimization", "validation-leakage": "data"}
OTHER_BACKENDS = [pytest.param(b, marks=pytest.mark.skipif(importlib.util.find_spec(b) is None,
                                                           reason=f"{b} is not installed ({how})"))
                  for b, how in (("jax", "make setup installs it"), ("torch", "make setup-torch"))]


def _founding_seed0(results_dir, backend: str) -> dict:
    cases = [load_case(CASES / fam / f"{cid}.yaml") for cid, fam in FOUNDING.items()]
    specs = plan(cases, seeds=[0], backend=backend)
    results = execute(specs, RunStore(results_dir / "runs"), jobs=default_jobs(), timeout=600,
                      progress=Progress(len(specs), True), log=lambda *a: None)
    return {(r.spec.case.id, r.spec.variant): r for r in results}


@pytest.fixture(scope="module", params=OTHER_BACKENDS)
def backend_results(request, results_dir):
    return request.param, _founding_seed0(results_dir, request.param)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["broken", "fixed"])
@pytest.mark.parametrize("case_id", sorted(FOUNDING))
def test_founding_case_holds_on_other_backend(backend_results, case_id, variant):
    backend, results = backend_results
    r = results[(case_id, variant)]
    env = r.record.environment
    assert env.backend == backend and getattr(env, backend), "the record names the backend and its version"
    if variant == "fixed" or r.record.outcome.status != "crashed":
        assert any(e.grad_norms for e in r.record.trace), f"the gradient probe ran on {backend}"
    note = r.spec.case.backend_notes.get(backend)
    if note and not r.verdict.holds:
        pytest.xfail(f"{backend}: {note}")
    assert r.verdict.holds, r.verdict.summary()


@pytest.mark.slow
def test_backend_tables(backend_results, results_dir, tmp_path):
    backend, _ = backend_results
    _founding_seed0(results_dir, "tensorflow")   # cached already when the corpus fixture ran
    args = ["backends", "--results", str(results_dir), "--out", str(tmp_path), "--seeds", "0",
            "--backends", f"tensorflow,{backend}", "-d", "nan-guard", "-d", "autotrainer"]
    for cid in FOUNDING:
        args += ["--case", cid]
    r = run_cli(*args)
    doc = json.loads((tmp_path / "backends.json").read_text())
    assert doc["data"]["unexplained"] == [], r.stdout
    assert r.returncode == 0, r.stdout + r.stderr
    assert doc["headers"][:3] == ["case", "tensorflow", backend]
    assert {row[0] for row in doc["rows"]} == set(FOUNDING)
    assert set(doc["fingerprint"]["backends"]) == {"tensorflow", backend}
    agreement = doc["data"]["agreement"]
    assert set(agreement) == {"nan-guard", "autotrainer"}
    assert all(a["runs"] == 2 * len(FOUNDING) and 0 <= a["same"] <= a["runs"] for a in agreement.values())
    summary = json.loads((tmp_path / "backend_summary.json").read_text())
    assert [row[0] for row in summary["rows"]] == ["tensorflow", backend]
    assert all(summary["data"][b]["runs"] == 2 * len(FOUNDING) for b in ("tensorflow", backend))


def test_missing_backend_is_a_clear_error_before_any_worker(monkeypatch):
    from trainwreck.run import BackendUnavailable

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    with pytest.raises(BackendUnavailable, match="make setup-torch"):
        check_backend("torch", "cpu")


def test_gpu_requested_without_one_is_exit_2(tmp_path):
    r = run_cli("run", "--device", "gpu", "--case", "lr-divergence", "--seeds", "0", "--results", str(tmp_path),
                env={"CUDA_VISIBLE_DEVICES": "-1"})
    assert r.returncode == 2, r.stdout + r.stderr
    assert "--device gpu was requested" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir()), "nothing ran"
