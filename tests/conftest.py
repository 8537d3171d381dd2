"""Shared fixtures. The whole corpus is trained once per session (or reused from the
run cache, whose keys cover everything that changes a result) and shared by every
corpus-parametrized test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "cases"

from trainwreck.case import case_files, load_corpus  # noqa: E402


def pytest_report_header(config):
    return [f"trainwreck corpus: {len(case_files(CASES))} case files"]


@pytest.hookimpl(tryfirst=True)   # before xdist's own hook, which reads the groups into the node ids
def pytest_collection_modifyitems(config, items):
    """Groups for `pytest -n N --dist loadgroup` (pytest-xdist): every test that reads the corpus runs in the
    process that trains it, and every other test with the rest of its file, so that no module fixture and
    no corpus run is computed twice. Without xdist the marks do nothing."""
    for item in items:
        group = "corpus" if "corpus_results" in item.fixturenames else item.nodeid.split("::", 1)[0]
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def corpus():
    return load_corpus(CASES)


@pytest.fixture(scope="session")
def results_dir() -> Path:
    """The run cache shared by the corpus tests: $TRAINWRECK_TEST_RESULTS or the project's results/."""
    return Path(os.environ.get("TRAINWRECK_TEST_RESULTS") or ROOT / "results")


@pytest.fixture(scope="session")
def corpus_results(corpus, results_dir):
    """Every run of the corpus (case x variant x seed), trained once in real worker processes; under a file
    lock, so that a second test process (pytest-xdist) that needs it reads the cache instead of training."""
    from filelock import FileLock

    from trainwreck.run import Progress, default_jobs, execute, plan
    from trainwreck.store import RunStore

    specs = plan(corpus, device="cpu")
    (results_dir / "runs").mkdir(parents=True, exist_ok=True)
    with FileLock(results_dir / "runs" / ".corpus.lock"):
        results = execute(specs, RunStore(results_dir / "runs"), jobs=default_jobs(), timeout=600,
                          progress=Progress(len(specs), True), log=lambda *a: None)
    return {(r.spec.case.id, r.spec.variant, r.spec.seed): r for r in results}


# For a command that trains a few runs in a test: the corpus fixture's workers and the other pytest process
# already keep every core busy, so a second worker only adds a TensorFlow import (about 4 s of CPU) to the
# session. The tests that are about running in parallel (test_determinism, test_ray) keep their two.
ONE_WORKER = ("--jobs", "1")


def run_cli(*args: str, cwd: Path = ROOT, env: dict | None = None, timeout: float = 900,
            input: str | None = None) -> subprocess.CompletedProcess:
    """The real `trainwreck` command in a subprocess."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "trainwreck", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout, input=input)
