"""Malformed case files get one line naming file, field and expectation, and exit 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from trainwreck.case import CaseErrors, case_schema, load_case, load_corpus

from .conftest import CASES, run_cli

GOOD = CASES / "optimization" / "lr-divergence.yaml"


def _variant(tmp_path: Path, mutate, name: str = "lr-divergence", family: str = "optimization") -> Path:
    doc = yaml.safe_load(GOOD.read_text())
    mutate(doc)
    d = tmp_path / "cases" / family
    d.mkdir(parents=True, exist_ok=True)
    p = d / f"{name}.yaml"
    p.write_text(yaml.safe_dump(doc, sort_keys=False))
    return p


def _one_error(path: Path) -> str:
    r = run_cli("validate", str(path))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines, "expected an error line"
    return lines[0]


def test_corpus_validates():
    r = run_cli("validate")
    assert r.returncode == 0, r.stderr
    assert "cases valid" in r.stdout


def test_unknown_key_names_field_and_suggests(tmp_path):
    p = _variant(tmp_path, lambda d: d["base"]["fit"].update(epochz=3))
    line = _one_error(p)
    assert line.startswith(f"{p}: base.fit.epochz: unknown key 'epochz'")
    assert "did you mean 'epochs'" in line


def test_wrong_type_names_field_and_expectation(tmp_path):
    p = _variant(tmp_path, lambda d: d["base"]["fit"].update(epochs="many"))
    line = _one_error(p)
    assert f"{p}: base.fit.epochs:" in line and "integer" in line


def test_unknown_dataset_lists_valid_names(tmp_path):
    p = _variant(tmp_path, lambda d: d["base"]["dataset"].update(name="tabular_regresion"))
    line = _one_error(p)
    assert f"{p}: base.dataset.name: unknown dataset 'tabular_regresion'" in line
    assert "did you mean 'tabular_regression'" in line and "valid: " in line


def test_unknown_component_param(tmp_path):
    p = _variant(tmp_path, lambda d: d["base"].update(model={"name": "mlp", "params": {"hiden": [4]}}))
    line = _one_error(p)
    assert "base.model.params.hiden: unknown key 'hiden'" in line and "did you mean 'hidden'" in line


def test_error_in_variant_override_is_located(tmp_path):
    p = _variant(tmp_path, lambda d: d.update(broken={"compile": {"learning_rate": -1}}))
    line = _one_error(p)
    assert f"{p}: broken.compile.learning_rate:" in line and "greater than 0" in line


def test_unknown_cause_suggests(tmp_path):
    p = _variant(tmp_path, lambda d: d.update(cause="lr_to_high"))
    line = _one_error(p)
    assert "cause: unknown cause 'lr_to_high'; did you mean 'lr_too_high'" in line


def test_too_few_seeds(tmp_path):
    p = _variant(tmp_path, lambda d: d.update(seeds=[0]))
    assert "seeds:" in _one_error(p)


def test_id_must_match_file_name(tmp_path):
    p = _variant(tmp_path, lambda d: None, name="other-name")
    assert "id: expected 'other-name'" in _one_error(p)


@pytest.mark.parametrize("field,value", [("epochs", 100000), ("batch_size", 10**6)])
def test_numeric_limits(tmp_path, field, value):
    p = _variant(tmp_path, lambda d: d["base"]["fit"].update({field: value}))
    assert f"base.fit.{field}:" in _one_error(p)


def test_data_size_limit(tmp_path):
    p = _variant(tmp_path, lambda d: d["base"]["dataset"]["params"].update(n_samples=10**9))
    assert "base.dataset.params.n_samples:" in _one_error(p)


def test_duplicate_ids_across_files(tmp_path):
    root = tmp_path / "cases"
    shutil.copytree(CASES, root, ignore=shutil.ignore_patterns("schema.json"))
    (root / "data" / "lr-divergence.yaml").write_text(GOOD.read_text())
    with pytest.raises(CaseErrors) as e:
        load_corpus(root)
    assert any("duplicate case id 'lr-divergence'" in str(x) for x in e.value.errors)


def test_schema_file_is_current():
    committed = json.loads((CASES / "schema.json").read_text())
    assert committed == json.loads(json.dumps(case_schema())), "run `make schema`"


def test_load_case_round_trip():
    case = load_case(GOOD)
    assert case.cause == "lr_too_high" and case.family == "optimization"


def test_coverage_doc_is_current(corpus):
    from trainwreck.docs import coverage_markdown

    assert (CASES.parent / "docs" / "coverage.md").read_text() == coverage_markdown(corpus), "run `make schema`"


def test_every_cause_has_two_cases_and_there_are_traps(corpus):
    from collections import Counter

    from trainwreck.taxonomy import CAUSES, HEALTHY

    counts = Counter(c.cause for c in corpus)
    thin = {c: counts.get(c, 0) for c in CAUSES if c != HEALTHY and counts.get(c, 0) < 2}
    assert not thin, f"causes with fewer than 2 cases: {thin}"
    assert counts[HEALTHY] >= 5
    assert len(corpus) - counts[HEALTHY] >= 40


def test_backend_notes_must_name_a_backend(tmp_path):
    p = _variant(tmp_path, lambda d: d.update(backend_notes={"mxnet": "differs"}))
    line = _one_error(p)
    assert "lr-divergence.yaml: backend_notes.mxnet" in line
    assert "should be 'tensorflow', 'jax' or 'torch' (got 'mxnet')" in line


@pytest.mark.parametrize("measure,expected", [
    ("bestest", "unknown oracle measure 'bestest'; did you mean 'best'? valid: best, "),
    ("", "unknown oracle measure ''; valid: best, "),
])
def test_unknown_oracle_measure_is_located_beside_other_files_errors(tmp_path, capsys, measure, expected):
    """An unknown measure is one located line among the others, not an error that hides every other file's."""
    from trainwreck.cli import main

    p = _variant(tmp_path, lambda d: d["oracle"]["broken"][0].update(measure=measure))
    other = _variant(tmp_path, lambda d: d.update(cause="lr_to_high"), name="other-case", family="data")
    with pytest.raises(CaseErrors) as e:
        load_corpus(tmp_path / "cases")
    lines = [str(x) for x in e.value.errors]
    assert f"{p}: oracle.broken.0.measure: {expected}" in "\n".join(lines)
    assert any(x.startswith(f"{other}: cause: unknown cause 'lr_to_high'") for x in lines)

    assert main(["validate", "--cases", str(tmp_path / "cases")]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == lines and "trainwreck: error" not in err


def test_sweep_path_through_a_value_that_is_no_mapping_is_located(tmp_path):
    p = _variant(tmp_path, lambda d: d["sweep"].update(path="compile.learning_rate.x"))
    line = _one_error(p)
    assert line == f"{p}: sweep.path: 'x' is not a key of the value at 'compile.learning_rate' (a float, not a mapping)"


def test_component_without_docstring_is_a_clear_error_not_an_index_error():
    from trainwreck.registry import Params, Registry

    reg = Registry("thing")

    def undocumented(data, p, seed):
        return data

    with pytest.raises(ValueError, match=r"thing 'bare' .*undocumented\) needs a docstring"):
        reg.component("bare", Params)(undocumented)
    assert "bare" not in reg.names()


def test_component_parameters_must_share_the_strict_base():
    """A schema not derived from registry.Params would accept a misspelt key and keep its default."""
    from pydantic import BaseModel

    from trainwreck.registry import Registry

    with pytest.raises(TypeError, match=r"thing 'loose': its parameters must subclass registry.Params"):
        Registry("thing").component("loose", BaseModel)


def _registries():
    from trainwreck.datasets import DATASETS, DatasetBuilder
    from trainwreck.models import MODELS, ModelBuilder
    from trainwreck.pipelines import PIPELINES, Pipeline
    from trainwreck.transforms import TRANSFORMS, Transform

    return [(DATASETS, DatasetBuilder), (MODELS, ModelBuilder), (TRANSFORMS, Transform), (PIPELINES, Pipeline)]


@pytest.mark.parametrize("registry,protocol", _registries(), ids=lambda r: getattr(r, "kind", ""))
def test_every_component_has_strict_params_and_its_registrys_call_shape(registry, protocol):
    import inspect

    from trainwreck.registry import Params

    want = [n for n in inspect.signature(protocol.__call__).parameters if n != "self"]
    for name in registry.names():
        comp = registry.get(name)
        assert issubclass(comp.params, Params), name
        with pytest.raises(Exception, match="extra"):
            comp.parse({"no_such_parameter": 1})
        got = list(inspect.signature(comp.fn).parameters)
        assert len(got) == len(want), f"{registry.kind} '{name}' takes {got}, the protocol {want}"
