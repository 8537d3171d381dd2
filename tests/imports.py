"""The trainwreck package's import graph, read from the sources (no import): what the architecture tests
and the run-key coverage test walk."""

from __future__ import annotations

import ast
from pathlib import Path

from .conftest import ROOT

__all__ = ["PACKAGES", "modules", "imported", "graph"]

PACKAGES = {"trainwreck": ROOT / "harness", "trainwreck.detectors": ROOT / "detectors"}


def modules() -> dict[str, Path]:
    out = {}
    for pkg, root in PACKAGES.items():
        for p in sorted(root.rglob("*.py")):
            rel = p.relative_to(root).with_suffix("").parts
            name = ".".join((pkg, *rel))
            out[name.removesuffix(".__init__")] = p
    return out


def imported(module: str, path: Path, known: set[str]) -> list[tuple[str, list[str]]]:
    """(module imported, names taken from it) for every import in the file, function-level ones included."""
    is_pkg = path.name == "__init__.py"
    base = module if is_pkg else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = base.split(".")
                target = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [a.name for a in node.names]
            out.append((target, names))
            out += [(f"{target}.{n}", []) for n in names if f"{target}.{n}" in known]
    return [(t, n) for t, n in out if t in known]


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {m: {t for t, _ in imported(m, p, known) if t != m} for m, p in mods.items()}
