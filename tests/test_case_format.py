"""The case format that speaks Keras: layers, compile/fit as Keras spells them, and validate's checks.

Every check is the real `load_case` on a real file; the training test runs a real (tiny) fit in a
subprocess, because it imports Keras."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from trainwreck.case import CaseErrors, load_case, load_corpus, resolve_variant

BASE = {
    "id": "layers-case", "title": "a layers case", "description": "a case written in the layers form",
    "provenance": "tests/test_case_format.py", "cause": "lr_too_high", "symptoms": [],
    "seeds": [0, 1, 2],
    "base": {
        "dataset": {"name": "iris"},
        "model": {"layers": [{"Dense": {"units": 8, "activation": "relu", "kernel_initializer": "he_normal"}},
                             {"Dropout": {"rate": 0.1}},
                             {"Dense": {"units": 3, "activation": "softmax"}}]},
        "compile": {"optimizer": {"SGD": {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}},
                    "loss": {"SparseCategoricalCrossentropy": {"from_logits": False}}, "metrics": ["accuracy"]},
        "fit": {"epochs": 2, "batch_size": 32, "validation_split": 0.2, "class_weight": {0: 1, 1: 2, 2: 1},
                "callbacks": [{"EarlyStopping": {"patience": 3}}, {"ReduceLROnPlateau": {"factor": 0.5}}]},
    },
    "broken": {"compile": {"optimizer": {"SGD": {"learning_rate": 50.0}}}},
    "fixed": {},
    "oracle": {"broken": [{"measure": "outcome", "in": ["nan", "completed"]}],
               "fixed": [{"measure": "outcome", "in": ["completed"]}]},
}


def _write(tmp_path: Path, doc: dict | str, name: str = "layers-case") -> Path:
    d = tmp_path / "cases" / "test"
    d.mkdir(parents=True, exist_ok=True)
    p = d / f"{name}.yaml"
    p.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False))
    return p


def _errors(tmp_path: Path, doc) -> list[str]:
    with pytest.raises(CaseErrors) as e:
        load_case(_write(tmp_path, doc))
    return [str(x) for x in e.value.errors]


def _with(**changes) -> dict:
    """BASE with dotted paths set (a path into a list uses the index)."""
    doc = json.loads(json.dumps(BASE))
    for path, value in changes.items():
        node = doc
        *head, last = path.split("__")
        for part in head:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[int(last) if isinstance(node, list) else last] = value
    return doc


def test_layers_form_validates_and_resolves(tmp_path):
    case = load_case(_write(tmp_path, BASE))
    broken = resolve_variant(case, "broken")
    assert broken.compile.optimizer == {"SGD": {"learning_rate": 50.0, "momentum": 0.9, "nesterov": True}}
    assert broken.model.checked()[0] == ("Dense", {"units": 8, "activation": "relu", "kernel_initializer": "he_normal"})


def test_long_form_layer_is_accepted(tmp_path):
    doc = _with(base__model__layers__1={"class_name": "Dropout", "config": {"rate": 0.2}})
    assert load_case(_write(tmp_path, doc)).base.model.checked()[1] == ("Dropout", {"rate": 0.2})


def test_variant_changes_one_layer_by_index(tmp_path):
    doc = _with(fixed={"model": {"layers": {0: {"Dense": {"units": 4}}}}})
    fixed = resolve_variant(load_case(_write(tmp_path, doc)), "fixed")
    assert fixed.model.checked()[0] == ("Dense", {"units": 4, "activation": "relu", "kernel_initializer": "he_normal"})
    assert len(fixed.model.layers) == 3


def test_layer_index_outside_the_list_is_located(tmp_path):
    errs = _errors(tmp_path, _with(fixed={"model": {"layers": {7: {"Dense": {"units": 4}}}}}))
    assert any(": fixed: index 7 is outside" in e for e in errs), errs


@pytest.mark.parametrize("layer, where, words", [
    ({"Lambda": {"function": "os.system"}}, "base.model.layers.0", "not allowed"),
    ({"Dense": {"unit": 8}}, "base.model.layers.0.Dense.unit", "did you mean 'units'"),
    ({"Dense": {"units": True}}, "base.model.layers.0.Dense.units", "expected int"),
    ({"Dense": {"units": 30000}}, "base.model.layers.0.Dense.units", "1..4096"),
    ({"Dropout": {"rate": 1.5}}, "base.model.layers.0.Dropout.rate", "[0, 1)"),
    ({"Dense": {"units": 8}, "Dropout": {}}, "base.model.layers.0", "expected one layer"),
    ({"Dense": {"units": 8, "kernel_regularizer": {"L3": {"l3": 1.0}}}},
     "base.model.layers.0.Dense.kernel_regularizer.L3", "unknown regularizer class 'L3'"),
    ({"Dense": {"units": 8, "kernel_initializer": {"RandomNormal": {"stdev": 1.0}}}},
     "base.model.layers.0.Dense.kernel_initializer.RandomNormal.stdev", "did you mean 'stddev'"),
    ({"Dense": {"units": 8, "kernel_constraint": {"class_name": "MaxNorm", "config": {"max_value": "2"}}}},
     "base.model.layers.0.Dense.kernel_constraint.MaxNorm.max_value", "expected float or int"),
])
def test_bad_layer_is_located(tmp_path, layer, where, words):
    errs = _errors(tmp_path, _with(base__model__layers__0=layer))
    assert any(f": {where}: " in e and words in e for e in errs), errs


def test_parameter_count_bound(tmp_path):
    big = [{"Dense": {"units": 4000}}, {"Dense": {"units": 4000}}, {"Dense": {"units": 3}}]
    errs = _errors(tmp_path, _with(base__model__layers=big))
    assert any(": base.model.layers: about " in e and "weights" in e for e in errs), errs


@pytest.mark.parametrize("path, value, words", [
    ("base__compile__optimizer", {"SGD": {"nesterov": 1}}, "expected bool"),
    ("base__compile__optimizer", {"SGDX": {}}, "did you mean 'SGD'"),
    ("base__compile__optimizer", {"Adam": {"beta1": 0.9}}, "did you mean 'beta_1'"),
    ("base__compile__loss", {"BinaryCrossentropy": {"label_smothing": 0.1}}, "did you mean 'label_smoothing'"),
    ("base__fit__epochs", True, "expected an integer"),
    ("base__fit__callbacks", [{"ModelCheckpoint": {}}], "unknown callback class"),
    ("seeds", [0, 0, 1], "repeated"),
    ("seeds", [0, 1, 2 ** 32], "[0, 2**32)"),
])
def test_compile_fit_and_seed_errors_are_located(tmp_path, path, value, words):
    errs = _errors(tmp_path, _with(**{path: value}))
    where = path.split("__")[0] if path == "seeds" else ".".join(path.split("__"))
    assert any(f": {where}" in e and words in e for e in errs), errs


@pytest.mark.parametrize("cond, words", [
    ({"measure": "best", "key": "val_accuracy"}, "needs a bound"),
    ({"measure": "best", "key": "val_accuracy", "min": 0.9, "max": 0.1}, "above max"),
    ({"measure": "best", "key": "val_accuracy", "min": float("nan")}, "NaN"),
])
def test_oracle_conditions_without_a_meetable_bound(tmp_path, cond, words):
    errs = _errors(tmp_path, _with(oracle={"broken": [cond], "fixed": [{"measure": "outcome", "in": ["completed"]}]}))
    assert any(": oracle.broken.0" in e and words in e for e in errs), errs


def test_duplicate_yaml_key_is_an_error(tmp_path):
    text = yaml.safe_dump(BASE, sort_keys=False).replace("cause: lr_too_high",
                                                         "cause: lr_too_high\ncause: healthy")
    errs = _errors(tmp_path, text)
    assert any("duplicate key 'cause'" in e for e in errs), errs


def test_unknown_key_hint_never_suggests_itself_nor_dangles(tmp_path):
    doc = _with()
    doc["base"]["fit"]["sort_by_label"] = True  # a real key elsewhere (a dataset parameter), not of fit
    doc["base"]["fit"]["qqqqzzzz"] = 1
    errs = _errors(tmp_path, doc)
    assert errs and not any("did you mean 'sort_by_label'" in e for e in errs), errs
    assert not any(e.rstrip().endswith(";") for e in errs), errs


def test_fixed_restating_base_is_no_fix_and_no_fix_needs_a_trap(tmp_path):
    doc = _with(fixed={"fit": {"epochs": 2}}, broken={"fit": {"batch_size": 32}})
    assert any(": fixed: broken and fixed resolve to the same task" in e for e in _errors(tmp_path, doc))
    doc = _with(broken={}, fixed={}, no_fix=True)
    assert any(": no_fix: only a healthy trap" in e for e in _errors(tmp_path, doc))
    doc["cause"] = "healthy"
    assert load_case(_write(tmp_path, doc)).no_fix


def test_new_fields_leave_old_cases_cache_keys_alone():
    """The dump a run's key is hashed from holds no new field a case does not use."""
    new = {"validation_split", "callbacks", "steps_per_epoch", "initial_epoch"}
    for case in load_corpus():
        written = set(case.base.fit.model_fields_set) | {
            k for part in (case.broken, case.fixed) for k in (part.get("fit") or {})}
        fit = resolve_variant(case, "broken").model_dump(mode="json")["fit"]
        assert not (new - written) & set(fit), case.id


def _mutations(rng: random.Random):
    values = [0, 1, -1, 2 ** 40, 0.5, float("nan"), True, None, "relu", "", [], {}, [1, 2], {"a": 1}]
    paths = [("base", "model", "layers", 0), ("base", "model", "layers", 0, "Dense"),
             ("base", "model", "layers", 0, "Dense", "units"), ("base", "model", "layers", 1, "Dropout", "rate"),
             ("base", "model", "trainable"), ("base", "compile", "optimizer"), ("base", "compile", "optimizer", "SGD"),
             ("base", "compile", "optimizer", "SGD", "momentum"), ("base", "compile", "loss"),
             ("base", "fit", "callbacks"), ("base", "fit", "class_weight"), ("base", "fit", "validation_split"),
             ("fixed", "model"), ("broken", "model", "layers"), ("seeds",), ("oracle", "broken", 0, "min")]
    return rng.choice(paths), rng.choice(values + [rng.choice(["Dense", "Lambda", "LSTM"])])


def test_fuzzed_fields_give_a_located_line_or_validate(tmp_path):
    """A seeded fuzzer over the new fields: validate accepts, or every error is `file: field: message` on one line."""
    rng = random.Random(1234)
    for i in range(300):
        doc = json.loads(json.dumps(BASE))
        for _ in range(rng.randint(1, 3)):
            path, value = _mutations(rng)
            node = doc
            try:
                for part in path[:-1]:
                    node = node[part]
                node[path[-1]] = value
            except (KeyError, IndexError, TypeError):
                continue
        p = _write(tmp_path, yaml.safe_dump(doc, sort_keys=False))
        try:
            load_case(p)
        except CaseErrors as e:
            for err in e.errors:
                line = str(err)
                assert "\n" not in line and line.startswith(f"{p}: ") and err.message, line


TRAIN = """\
import json, sys
from trainwreck.train import run_task, setup_worker
setup_worker("tensorflow", "cpu", 1)
out = run_task(json.loads(sys.argv[1]), 0, "k", "tensorflow", "cpu")
rec = out["record"]
print(json.dumps({"status": rec["outcome"]["status"], "val": '"val_loss"' in json.dumps(rec["trace"]),
                  "units": rec["model"].get("output_units"), "optimizer": rec["model"].get("optimizer")}))
"""


@pytest.mark.slow
def test_layers_case_trains_with_keras_fit_arguments(tmp_path):
    """A real fit of the layers form with validation_split, class_weight and callbacks: the trace sees val_*;
    initializers and regularizers in the short form build as Keras's long form."""
    dense = {"units": 8, "activation": "relu", "kernel_regularizer": {"L1L2": {"l1": 0.001, "l2": 0.01}},
             "bias_initializer": {"Constant": {"value": 0.1}}}
    case = load_case(_write(tmp_path, _with(base__model__layers__0={"Dense": dense})))
    task = json.dumps(resolve_variant(case, "fixed").model_dump(mode="json", by_alias=True))
    r = subprocess.run([sys.executable, "-c", TRAIN, task], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["status"] == "completed", out
    assert out["units"] == 3 and out["optimizer"] == "sgd"
    assert out["val"], out  # Keras's validation_split hold-out still logs val_loss into the trace


def test_oracle_key_no_run_logs_is_located_with_a_hint(tmp_path):
    doc = _with(oracle={"broken": [{"measure": "best", "key": "val_accuracy", "min": 0.1}],
                        "fixed": [{"measure": "best", "key": "val_acuracy", "direction": "max", "min": 0.1}]})
    errs = _errors(tmp_path, doc)
    assert any(": oracle.fixed.0.key: no run of this variant logs 'val_acuracy'" in e and "did you mean 'val_accuracy'" in e
               for e in errs), errs


def test_ls_prints_a_components_parameters():
    from .conftest import run_cli

    r = run_cli("ls", "models", "mlp")
    assert r.returncode == 0, r.stderr
    assert "hidden" in r.stdout and "max_length 16" in r.stdout and "[32, 32]" in r.stdout
    r = run_cli("ls", "layers", "Dense")
    assert r.returncode == 0 and "units" in r.stdout and "kernel_initializer" in r.stdout
    r = run_cli("ls", "models", "mlpx")
    assert r.returncode == 2 and "did you mean 'mlp'" in r.stderr


def test_inject_nan_leaves_the_test_split_clean():
    import numpy as np

    from trainwreck.datasets import load_dataset
    from trainwreck.transforms import apply_transforms

    data = apply_transforms(load_dataset("breast_cancer", {}, 0), [("inject_nan", {"fraction": 0.05})], 0)
    assert np.isnan(data.x_train).any() and np.isnan(data.x_val).any()
    assert not np.isnan(data.x_test).any()


def test_scale_features_scales_a_single_feature():
    import numpy as np

    from trainwreck.datasets import load_dataset
    from trainwreck.transforms import apply_transforms

    data = load_dataset("iris", {}, 0)
    one = data.with_(x_train=data.x_train[:, :1], x_val=data.x_val[:, :1], x_test=data.x_test[:, :1])
    out = apply_transforms(one, [("scale_features", {"max_log10": 3})], 0)
    np.testing.assert_allclose(out.x_train, one.x_train * 1000, rtol=1e-5)
