"""How `make test` spreads the suite over processes (pytest-xdist, --dist loadgroup; see conftest.py)."""

from __future__ import annotations

import pytest


def test_groups_reach_the_scheduler(request):
    """Under `--dist loadgroup` every test carries its group in its node id, which is all the scheduler reads:
    if a pytest or xdist release stops passing it on (pytest-dev/pytest-xdist#1386), the corpus readers would
    spread over processes and wait on the corpus lock, and this test says so instead of the suite slowing."""
    if not getattr(request.config, "workerinput", None) or not request.config.getvalue("loadgroup"):
        pytest.skip("not run under pytest-xdist --dist loadgroup (make test runs it so)")
    assert request.node.nodeid.endswith("@tests/test_suite_layout.py"), request.node.nodeid
