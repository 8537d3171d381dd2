"""The Python API under the CLI: a notebook gets the same tables as the command line, and the
package's import graph has no cycle and no module reaches into another's private names."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from .conftest import CASES, ROOT, run_cli
from .imports import graph as import_graph, imported, modules

TWO = ["lr-divergence", "validation-leakage"]
def test_import_graph_has_no_cycle():
    graph = import_graph()
    # __init__ re-exports are edges from a package to its own modules; a module importing its package's
    # __init__ would then look like a cycle, so package inits are kept only as leaves
    inits = {m for m, p in modules().items() if p.name == "__init__.py"}
    graph = {m: (set() if m in inits else deps) for m, deps in graph.items()}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str):
        state[m] = 1
        path.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(d):] + [d]))
            if d not in state:
                visit(d)
        path.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_no_module_imports_a_private_name_of_another():
    mods = modules()
    bad = [f"{p.relative_to(ROOT)} imports {n} from {t}"
           for m, p in mods.items() for t, names in imported(m, p, set(mods)) if t != m
           for n in names if n.startswith("_") and n != "__version__"]
    assert not bad, "\n".join(bad)


def test_commands_never_import_each_other_or_the_cli():
    mods = modules()
    cmds = {m for m in mods if m.startswith("trainwreck.commands.") and m != "trainwreck.commands.common"}
    graph = import_graph()
    bad = [f"{m} imports {t}" for m in mods if m not in ("trainwreck.cli", "trainwreck.__main__")
           for t in graph[m] if t == "trainwreck.cli" or (m in cmds and t in cmds)]
    assert not bad, "\n".join(bad)


def test_import_trainwreck_is_light():
    code = "import sys, trainwreck; trainwreck.bench; print(sorted(m for m in ('tensorflow', 'keras', 'jax', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_notebook_bench_gives_the_cli_leaderboard(corpus_results, results_dir, tmp_path):
    import trainwreck
    from trainwreck.report import comparable

    res = trainwreck.bench(cases=CASES, case=TWO, seeds=[0], detectors=["autotrainer", "nan-guard"],
                           results=results_dir, sweeps=False, plots=False)
    assert {r.spec.case.id for r in res.results} == set(TWO)
    assert all(r.source == "cached" for r in res.results)   # the notebook shares the CLI's cache
    assert not res.oracle_failures
    r = run_cli("bench", "--case", TWO[0], "--case", TWO[1], "--seeds", "0", "--no-sweeps", "-d", "autotrainer",
                "-d", "nan-guard", "--no-plots", "--results", str(results_dir), "--out", str(tmp_path), "-q")
    assert r.returncode == 0, r.stderr + r.stdout
    cli = json.loads((tmp_path / "leaderboard.json").read_text())
    board = res.leaderboard
    assert comparable(board.headers, json.loads(json.dumps(board.rows))) == comparable(cli["headers"], cli["rows"])


@pytest.mark.slow
def test_readme_python_example_runs(corpus_results, results_dir):
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    example = next(b for b in blocks if "trainwreck.bench(" in b)
    out = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True, timeout=600, cwd=ROOT,
                         env={**__import__("os").environ, "TRAINWRECK_RESULTS": str(results_dir)})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "autotrainer" in out.stdout and "0 oracle failures" in out.stdout, out.stdout


def test_the_worker_does_not_import_the_planner():
    graph = import_graph()
    assert "trainwreck.run" not in graph["trainwreck.train"]
    assert "trainwreck.environment" in graph["trainwreck.train"] and "trainwreck.environment" in graph["trainwreck.run"]


@pytest.mark.slow
def test_key_record_and_fingerprint_read_one_environment(corpus_results):
    from trainwreck.environment import key_facts
    from trainwreck.report import fingerprint_for

    r = next(iter(corpus_results.values()))
    key = key_facts("tensorflow", "cpu")
    env = r.record.environment
    fp = fingerprint_for([r], [], "")
    for k in ("python", "tensorflow", "keras", "numpy", "sklearn"):
        assert getattr(env, k) == key[k] == fp[k], k
    assert (env.backend, env.device, env.cpu_model) == (key["backend"], key["device"], key["cpu_model"])
