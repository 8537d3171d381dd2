"""One import name: the distribution installs `trainwreck` (harness/) and `trainwreck.detectors`
(detectors/) and nothing else at top level, and no code imports the folder names."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import ROOT

SOURCES = ["harness", "detectors", "tests", "benchmarks", "examples"]
FOLDER_NAMES = {"harness", "detectors"}


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def test_no_code_imports_the_folder_names():
    bad = [f"{p.relative_to(ROOT)}:{line} imports {name}"
           for d in SOURCES for p in sorted((ROOT / d).rglob("*.py"))
           for line, name in _imports(p) if name.split(".")[0] in FOLDER_NAMES]
    assert not bad, "import trainwreck.… instead:\n" + "\n".join(bad)


def test_the_installed_package_maps_the_folders():
    import trainwreck
    import trainwreck.detectors as detectors
    from trainwreck.detectors import Detector, Diagnosis  # noqa: F401  the plugin author's import

    assert Path(trainwreck.__file__).parent == ROOT / "harness"
    assert Path(detectors.__file__).parent == ROOT / "detectors"


@pytest.mark.slow
def test_wheel_installs_only_trainwreck_at_top_level(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path),
                            str(ROOT)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("trainwreck-*.whl")
    tops = {n.split("/")[0] for n in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"trainwreck"}, tops
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"trainwreck/cli.py", "trainwreck/detectors/base.py", "trainwreck/detectors/autotrainer.py"} <= names

    target = tmp_path / "site"
    inst = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target),
                           str(wheel)], capture_output=True, text=True, timeout=600)
    assert inst.returncode == 0, inst.stderr[-2000:]
    installed = {p.name for p in target.iterdir() if not p.name.endswith(".dist-info")}
    assert installed - {"bin"} == {"trainwreck"}, installed   # bin/: the console script
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import trainwreck.detectors as d; "
             "from trainwreck.detectors import Detector, Diagnosis; from trainwreck.detectors.loading import BUILTINS; "
             "from trainwreck.detectors.loading import resolve_class; "
             "[resolve_class(s) for s in BUILTINS.values()]; print(d.__file__)")
    out = subprocess.run([sys.executable, "-c", probe, str(target)], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().startswith(str(target)), out.stdout
