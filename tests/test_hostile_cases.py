"""Case files from strangers: malformed or hostile input gets one clear line and exit 2,
never a traceback, and nothing in a case file can make trainwreck run code."""

from __future__ import annotations

import ast
import string
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trainwreck.case import MAX_DEPTH, MAX_FILE_BYTES, CaseErrors, load_case

from .conftest import CASES, ROOT, run_cli

GOOD = yaml.safe_load((CASES / "optimization" / "lr-divergence.yaml").read_text())

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                      st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20))
json_value = st.recursive(json_leaf, lambda kids: st.one_of(
    st.lists(kids, max_size=4), st.dictionaries(st.text(string.ascii_lowercase + "_", max_size=10), kids, max_size=4)),
    max_leaves=12)


def _paths(doc, prefix=()):
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield prefix + (i,)
            yield from _paths(v, prefix + (i,))


PATHS = list(_paths(GOOD))


def _set(doc, path, value):
    import copy

    doc = copy.deepcopy(doc)
    node = doc
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return doc


def _check_one_line_errors(path: Path):
    try:
        load_case(path)
    except CaseErrors as e:
        assert e.errors
        for err in e.errors:
            text = str(err)
            assert text.startswith(str(path) + ": ") and "\n" not in text, text
        return
    # a mutation may be harmless (e.g. the same value); then it must load


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(PATHS), value=json_value)
def test_any_mutated_field_gives_located_one_line_errors(tmp_path, path, value):
    doc = _set(GOOD, path, value)
    p = tmp_path / "optimization" / "lr-divergence.yaml"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(yaml.safe_dump(doc, allow_unicode=True))
    _check_one_line_errors(p)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=300))
def test_arbitrary_text_never_raises_anything_else(tmp_path, text):
    p = tmp_path / "x" / "junk.yaml"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    _check_one_line_errors(p)


def test_cli_on_malformed_file_exits_2_without_traceback(tmp_path):
    p = tmp_path / "optimization" / "lr-divergence.yaml"
    p.parent.mkdir(parents=True)
    p.write_text("id: [unclosed\n")
    r = run_cli("validate", str(p))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"{p}: line ") and "invalid YAML" in r.stderr


def _write(tmp_path, text: str) -> Path:
    p = tmp_path / "data" / "hostile.yaml"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def test_alias_bomb_is_refused(tmp_path):
    bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for i in range(1, 9):
        bomb += f"{chr(97 + i)}: &{chr(97 + i)} [" + ",".join([f"*{chr(96 + i)}"] * 9) + "]\n"
    p = _write(tmp_path, bomb)
    r = run_cli("validate", str(p))
    assert r.returncode == 2 and "aliases" in r.stderr and "Traceback" not in r.stderr


def test_huge_file_is_refused(tmp_path):
    p = _write(tmp_path, "description: " + "x" * (MAX_FILE_BYTES + 10) + "\n")
    r = run_cli("validate", str(p))
    assert r.returncode == 2 and f"at most {MAX_FILE_BYTES}" in r.stderr


def test_deep_nesting_is_refused(tmp_path):
    p = _write(tmp_path, "a: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n")
    r = run_cli("validate", str(p))
    assert r.returncode == 2 and "nesting deeper" in r.stderr


def test_python_tags_are_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    p = _write(tmp_path, f"id: !!python/object/apply:os.system ['touch {marker}']\n")
    r = run_cli("validate", str(p))
    assert r.returncode == 2 and not marker.exists()
    assert "Traceback" not in r.stderr


def test_no_eval_exec_pickle_or_dynamic_import_of_case_data():
    """Source check: the harness never evals, execs or unpickles, and imports modules
    dynamically only from fixed tables or detector specs given on the command line."""
    allowed_dynamic_imports = {"harness/executor.py", "detectors/loading.py", "harness/cli.py"}  # closed lists
    for f in sorted(list((ROOT / "harness").rglob("*.py")) + list((ROOT / "detectors").rglob("*.py"))):
        tree = ast.parse(f.read_text())
        rel = str(f.relative_to(ROOT))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in ("eval", "exec", "__import__", "compile"), f"{rel}:{node.lineno}"
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(n.split(".")[0] in ("pickle", "dill", "marshal", "shelve") for n in names), rel
            if isinstance(node, ast.Attribute) and node.attr == "import_module":
                assert rel in allowed_dynamic_imports, f"{rel}:{node.lineno}"
            if isinstance(node, ast.Attribute) and node.attr in ("load", "unsafe_load", "full_load"):
                if isinstance(node.value, ast.Name) and node.value.id == "yaml":
                    src = ast.get_source_segment(f.read_text(), node) or ""
                    assert rel == "harness/case.py", f"{rel}:{node.lineno} {src}"
