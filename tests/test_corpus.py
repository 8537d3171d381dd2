"""Every case proves itself: on each declared seed the broken variant meets its failure
oracle and the fixed variant its success oracle. Parametrized over the case files, so a
new file is tested the moment it lands (`pytest -k <case-id>` runs one)."""

from __future__ import annotations

import pytest

from trainwreck.case import case_files, load_case

from .conftest import CASES

FILES = case_files(CASES)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["broken", "fixed"])
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_oracle_holds_on_every_seed(path, variant, corpus_results):
    case = load_case(path)
    if case.status != "active":
        pytest.skip(f"deprecated: {case.deprecated_reason}")
    failures = []
    for seed in case.seeds:
        r = corpus_results[(case.id, variant, seed)]
        if not r.verdict.holds:
            failures.append(f"seed {seed}: outcome {r.record.outcome.status} "
                            f"({r.record.outcome.message[:120]}); {r.verdict.summary()}")
    assert not failures, f"{case.id} {variant} oracle fails:\n" + "\n".join(failures)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_case_file_is_valid(path):
    case = load_case(path)
    assert case.family == path.parent.name
    assert len(case.seeds) >= 3
