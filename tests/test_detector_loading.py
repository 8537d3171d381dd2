"""Detector loading through the real paths: built-ins, installed entry points and `module:Class` specs.

A plugin distribution is faked the way importlib.metadata finds an installed one: a
`<name>-<version>.dist-info` folder (METADATA, entry_points.txt) and its module on a temporary
sys.path entry, in a fresh subprocess, so no pip install is needed and nothing leaks into the
test process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trainwreck.detectors.loading import BUILTINS, DetectorLoadError, resolve_detectors
from trainwreck.registry import UnknownName

from .conftest import ROOT

MODULE = """from trainwreck.detectors.base import Detector


class {cls}(Detector):
    name, version, needs = {name!r}, "1.0", frozenset({{"trace"}})

    def diagnose(self, record):
        return []
"""

PROBE = """
import json, sys
from trainwreck.detectors.loading import BUILTINS, DetectorLoadError, available, resolve_detectors

def rows(infos):
    return [[i.name, i.origin, i.spec] for i in infos]

try:
    out = {{"value": {expr}}}
except DetectorLoadError as e:
    out = {{"error": str(e)}}
modules = [s.partition(":")[0] for s in BUILTINS.values()]
out["imported"] = sorted(m for m in sys.modules if m.startswith("fake_") or m in modules)
print(json.dumps(out))
"""


def fake_dist(root: Path, dist: str, version: str, entry_points: dict[str, str]) -> None:
    """An 'installed' distribution under root: its metadata and its entry points, nothing else."""
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[trainwreck.detectors]\n{lines}")


def fake_module(root: Path, module: str, cls: str, name: str) -> None:
    (root / f"{module}.py").write_text(MODULE.format(cls=cls, name=name))


def probe(root: Path, expr: str, autoload: bool = True) -> dict:
    """Evaluate `expr` (loading.* in scope) in a fresh interpreter that sees the fake distributions under root:
    {"value": ...} or {"error": message}, and "imported": the fake and built-in modules it imported."""
    env = {k: v for k, v in os.environ.items() if k != "TRAINWRECK_DISABLE_PLUGIN_AUTOLOAD"}
    env["PYTHONPATH"] = os.pathsep.join([str(root), str(ROOT)])
    if not autoload:
        env["TRAINWRECK_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    r = subprocess.run([sys.executable, "-c", PROBE.format(expr=expr)], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.fixture
def good_plugin(tmp_path) -> Path:
    fake_dist(tmp_path, "fake-good", "1.0", {"good-plugin": "fake_good:Good"})
    fake_module(tmp_path, "fake_good", "Good", "good-plugin")
    return tmp_path


def test_listing_imports_no_detector_module(good_plugin):
    out = probe(good_plugin, "sorted(available())")
    assert out["value"] == sorted([*BUILTINS, "good-plugin"])
    assert out["imported"] == []
    out = probe(good_plugin, "rows(resolve_detectors(['good-plugin', 'nan-guard']))")
    assert out["value"] == [["good-plugin", "fake-good 1.0", "fake_good:Good"],
                            ["nan-guard", "builtin", BUILTINS["nan-guard"]]]
    assert out["imported"] == ["fake_good", "trainwreck.detectors.nan_guard"]   # only what was selected


def test_versions_are_read_on_demand(good_plugin):
    out = probe(good_plugin, "{n: i.version for n, i in available().items()}")
    assert out["value"]["good-plugin"] == "1.0" and out["value"]["nan-guard"] == "1.0"


def test_entry_point_named_like_a_builtin_is_an_error_naming_both(tmp_path):
    fake_dist(tmp_path, "fake-clash", "0.2", {"autotrainer": "fake_clash:Auto"})
    fake_module(tmp_path, "fake_clash", "Auto", "autotrainer")
    for expr in ("sorted(available())", "rows(resolve_detectors(['nan-guard']))"):
        out = probe(tmp_path, expr)
        assert "error" in out, out
        msg = out["error"]
        assert "the installed plugin 'autotrainer' of fake-clash 0.2" in msg
        assert "entry point 'autotrainer = fake_clash:Auto'" in msg
        assert f"the built-in detector 'autotrainer' ({BUILTINS['autotrainer']})" in msg
        assert "TRAINWRECK_DISABLE_PLUGIN_AUTOLOAD=1" in msg
        assert out["imported"] == []            # found from the metadata alone
    assert probe(tmp_path, "rows(resolve_detectors(['autotrainer']))", autoload=False)["value"] == [
        ["autotrainer", "builtin", BUILTINS["autotrainer"]]]


def test_two_distributions_with_one_entry_point_name_is_an_error_naming_both(tmp_path):
    fake_dist(tmp_path, "fake-a", "1.0", {"dup": "fake_a:A"})
    fake_dist(tmp_path, "fake-b", "2.0", {"dup": "fake_b:B"})
    fake_module(tmp_path, "fake_a", "A", "dup")
    fake_module(tmp_path, "fake_b", "B", "dup")
    out = probe(tmp_path, "sorted(available())")
    msg = out.get("error", "")
    assert "the installed plugin 'dup' of fake-a 1.0 (entry point 'dup = fake_a:A'" in msg, out
    assert "the installed plugin 'dup' of fake-b 2.0 (entry point 'dup = fake_b:B'" in msg
    assert "Uninstall one of them" in msg and out["imported"] == []


def test_spec_named_like_a_builtin_is_refused_not_a_silent_replacement(tmp_path):
    out = probe(tmp_path, "rows(resolve_detectors(None, ['tests.bad_detectors:Impostor']))")
    assert out.get("error") == (f"detector spec 'tests.bad_detectors:Impostor': its name 'autotrainer' is already "
                                f"the built-in detector 'autotrainer' ({BUILTINS['autotrainer']}); "
                                f"give your class another name"), out


def test_spec_named_like_an_installed_plugin_is_refused(good_plugin):
    fake_module(good_plugin, "fake_user", "Mine", "good-plugin")
    out = probe(good_plugin, "rows(resolve_detectors(['nan-guard'], ['fake_user:Mine']))")
    assert out.get("error", "").startswith("detector spec 'fake_user:Mine': its name 'good-plugin' is already "
                                           "the installed plugin 'good-plugin' of fake-good 1.0"), out


def test_spec_of_an_installed_class_is_that_row(good_plugin):
    specs = [BUILTINS["nan-guard"], "fake_good:Good", BUILTINS["nan-guard"]]
    out = probe(good_plugin, f"rows(resolve_detectors(['nan-guard', 'good-plugin'], {specs!r}))")
    assert out["value"] == [["nan-guard", "builtin", BUILTINS["nan-guard"]],
                            ["good-plugin", "fake-good 1.0", "fake_good:Good"]]


def test_broken_plugin_is_blamed_on_the_plugin_never_on_a_spec(tmp_path):
    fake_dist(tmp_path, "fake-broken", "0.3", {"broken": "fake_broken:Broken"})
    (tmp_path / "fake_broken.py").write_text("import fake_dependency_that_is_not_installed\n")
    spec = ["tests.bad_detectors:Crashing"]
    listed = probe(tmp_path, f"sorted(available({spec!r}))")
    assert "broken" in listed["value"] and "crashing" in listed["value"]       # listing is lazy
    out = probe(tmp_path, f"rows(resolve_detectors(None, {spec!r}))")
    msg = out.get("error", "")
    assert msg.startswith("the installed plugin 'broken' of fake-broken 0.3 (entry point "
                          "'broken = fake_broken:Broken' in group trainwreck.detectors): cannot be loaded: "
                          "ModuleNotFoundError: No module named 'fake_dependency_that_is_not_installed'"), out
    assert "that plugin's fault" in msg and "fake-broken" in msg and "detector spec" not in msg
    assert probe(tmp_path, f"rows(resolve_detectors(['nan-guard'], {spec!r}))")["value"] == [
        ["nan-guard", "builtin", BUILTINS["nan-guard"]], ["crashing", "command line", spec[0]]]
    hermetic = probe(tmp_path, "sorted(available())", autoload=False)
    assert hermetic["value"] == sorted(BUILTINS)


def test_entry_point_name_must_be_the_detector_name(tmp_path):
    fake_dist(tmp_path, "fake-alias", "1.0", {"alias": "fake_named:Named"})
    fake_module(tmp_path, "fake_named", "Named", "really-named")
    out = probe(tmp_path, "rows(resolve_detectors(['alias']))")
    assert out.get("error", "").startswith("the installed plugin 'alias' of fake-alias 1.0"), out
    assert "its class is named 'really-named'" in out["error"]


def test_unknown_name_is_a_load_error_with_a_suggestion():
    with pytest.raises(DetectorLoadError, match="unknown detector 'nan-gaurd'; did you mean 'nan-guard'?") as e:
        resolve_detectors(["nan-gaurd"], [])
    assert isinstance(e.value, UnknownName)      # what callers catching UnknownName expect
