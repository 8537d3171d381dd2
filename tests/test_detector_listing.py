"""`trainwreck detectors` lists every built-in with its version, the source it implements and its
scope, and every built-in declares them."""

from __future__ import annotations

import pytest

from trainwreck import taxonomy
from trainwreck.detectors.loading import BUILTINS, resolve_class

from .conftest import run_cli


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_builtin_declares_version_source_and_scope(name):
    cls = resolve_class(BUILTINS[name])
    assert cls.name == name
    assert cls.version and cls.version != "0"
    assert isinstance(getattr(cls, "source", None), str) and cls.source
    assert isinstance(cls.causes, frozenset) and isinstance(cls.symptoms, frozenset)
    assert all(taxonomy.is_cause(c) for c in cls.causes)
    assert all(taxonomy.is_symptom(s) for s in cls.symptoms)
    assert cls.causes or cls.symptoms


def test_listing_shows_version_source_and_scope():
    r = run_cli("detectors", "--wide", env={"TRAINWRECK_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].split()[:5] == ["name", "version", "source", "causes", "symptoms"]
    rows = {ln.split()[0]: ln for ln in r.stdout.splitlines()[2:] if ln and not ln.startswith(" ")}
    assert set(BUILTINS) <= set(rows)
    assert len(BUILTINS) >= 12
    at = rows["autotrainer"].split()
    assert at[1] == "1.1" and at[2].startswith("shiningrain/AUTOTRAINER@04f4033a")
    assert "none" in rows["autotrainer"]            # symptom-only: no causes
    assert "exploding_gradient" in r.stdout and "slow_convergence" in r.stdout
