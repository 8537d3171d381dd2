"""The `data:` steps: every source builds, the split is where the case puts it, the oracle's test rows
never see a fault, and a list out of order or one scikit-learn rejects is a located error."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from trainwreck.case import CaseErrors, load_case
from trainwreck.data_steps import DATA_STEPS, WHERE, StepFailed, load_steps

SOURCES = [n for n in DATA_STEPS.names() if WHERE[n] == "source" and n not in ("inline", "linspace")]
SPLIT = {"split": {"val": 0.2, "test": 0.2}}


@pytest.mark.parametrize("name", SOURCES)
def test_every_source_builds_three_float32_splits_with_its_defaults(name):
    data = load_steps([{name: {}}, SPLIT], seed=3)
    assert data.x_train.dtype == np.float32 and len(data.x_train) > len(data.x_val) > 0 and len(data.x_test) > 0
    assert len(data.x_train) == len(data.y_train) and len(data.x_val) == len(data.y_val)
    assert (data.task == "regression") == (data.n_classes == 0)


def test_a_source_is_seeded_by_the_run():
    a, b, c = (load_steps([{"make_moons": {"n_samples": 200, "noise": 0.3}}, SPLIT], s) for s in (0, 0, 1))
    assert np.array_equal(a.x_train, b.x_train) and not np.array_equal(a.x_train, c.x_train)


def test_a_scaler_above_split_is_fitted_on_every_row_below_it_on_training_only():
    src = {"make_classification": {"n_samples": 1000, "n_features": 5, "n_informative": 3, "shift": 3.0, "scale": 10.0}}
    before = load_steps([src, {"standard_scaler": {}}, SPLIT], 0)
    after = load_steps([src, SPLIT, {"standard_scaler": {}}], 0)
    both = np.concatenate([before.x_train, before.x_val])
    np.testing.assert_allclose(both.mean(0), 0, atol=1e-4)
    assert np.abs(before.x_train.mean(0)).max() > 1e-3
    np.testing.assert_allclose(after.x_train.mean(0), 0, atol=1e-4)


def test_the_test_rows_never_see_a_fault_but_do_get_the_task_definition():
    src = {"load_breast_cancer": {}}
    unshuffled = {"split": {"val": 0.2, "test": 0.2, "shuffle": False}}
    clean = load_steps([src, {"recode_labels": {"mapping": {0: 2, 1: 4}}}, unshuffled], 5)
    faulty = load_steps([src, {"recode_labels": {"mapping": {0: 2, 1: 4}}}, {"misalign": {"shift": 7}},
                         {"resample": {"method": "random_over"}}, {"sort": {"by": "label"}},
                         unshuffled, {"inject_nan": {"fraction": 0.2}}], 5)
    np.testing.assert_array_equal(clean.x_test, faulty.x_test)
    np.testing.assert_array_equal(clean.y_test, faulty.y_test)
    assert set(np.unique(faulty.y_test)) == {2, 4}
    assert np.isnan(faulty.x_train).any() and not np.isnan(faulty.x_test).any()


def test_oversampling_above_split_puts_copies_of_training_rows_into_validation():
    src = {"make_classification": {"n_samples": 1000, "weights": [0.9, 0.1], "n_features": 6}}
    leaky = load_steps([src, {"resample": {"method": "random_over"}}, SPLIT], 0)
    clean = load_steps([src, SPLIT, {"resample": {"method": "random_over"}}], 0)

    def shared(d):
        seen = {r.tobytes() for r in d.x_train}
        return sum(r.tobytes() in seen for r in d.x_val)
    assert shared(leaky) > 0.2 * len(leaky.x_val) and shared(clean) == 0


def test_an_unshuffled_split_after_sort_validates_on_one_end():
    data = load_steps([{"linspace": {"start": 0, "stop": 199, "num": 200}},
                       {"target_polynomial": {"coefficients": [0, 2]}}, {"sort": {"by": 0}},
                       {"split": {"val": 0.25, "test": 0.2, "shuffle": False}}], 0)
    assert data.x_val.min() > data.x_train.max()
    np.testing.assert_allclose(data.y_test, 2 * data.x_test[:, 0])


def test_inline_rows_and_validating_on_the_training_rows():
    data = load_steps([{"inline": {"x": [[0, 0], [0, 1], [1, 0], [1, 1]], "y": [0, 1, 1, 0]}},
                       {"split": {"val": 0, "test": 0}}], 0)
    np.testing.assert_array_equal(data.x_train, data.x_val)
    np.testing.assert_array_equal(data.x_train, data.x_test)
    assert data.task == "binary" and data.y_train.dtype == np.int64


def test_sklearn_rejecting_a_parameter_names_the_step():
    with pytest.raises(StepFailed) as e:
        load_steps([{"make_classification": {"n_features": 3, "n_informative": 5}}, SPLIT], 0)
    assert e.value.index == 0 and e.value.name == "make_classification"


CASE = {
    "id": "steps", "title": "A case with data steps", "description": "A case written with data steps.", "provenance": "trainwreck tests",
    "cause": "lr_too_high", "symptoms": ["divergence"], "seeds": [0, 1, 2],
    "base": {"data": [{"make_moons": {"n_samples": 300, "noise": 0.2}}, {"split": {}}],
             "model": {"layers": [{"Dense": {"units": 4, "activation": "relu"}}, {"Dense": {"units": 1, "activation": "sigmoid"}}]},
             "compile": {"optimizer": "adam", "loss": "binary_crossentropy", "metrics": ["accuracy"]},
             "fit": {"epochs": 2}},
    "broken": {"compile": {"learning_rate": 5.0}}, "fixed": {},
    "oracle": {"broken": [{"measure": "val", "key": "accuracy", "max": 0.7}],
               "fixed": [{"measure": "val", "key": "balanced_accuracy", "min": 0.8}]},
}


def _errors(tmp_path, data) -> list[str]:
    doc = {**CASE, "base": {**CASE["base"], "data": data}}
    p = tmp_path / "data" / "steps.yaml"
    p.parent.mkdir(exist_ok=True)
    p.write_text(yaml.safe_dump(doc))
    try:
        load_case(p)
    except CaseErrors as e:
        return [str(x).split(": ", 1)[1] for x in e.errors]
    return []


def test_a_valid_steps_case_loads(tmp_path):
    assert _errors(tmp_path, CASE["base"]["data"]) == []


@pytest.mark.parametrize("data, expected", [
    ([{"split": {}}, {"make_moons": {}}], "base.data.0: the first step must be a source"),
    ([{"make_moons": {}}], "exactly one split step is needed"),
    ([{"make_moons": {}}, {"split": {}}, {"split": {}}], "base.data.2: only one split step"),
    ([{"make_moons": {}}, {"split": {}}, {"sort": {}}], "base.data.2: 'sort' works on the rows before the split"),
    ([{"make_moons": {}}, {"inject_nan": {}}, {"split": {}}], "base.data.1: 'inject_nan' works on the train/validation"),
    ([{"make_moons": {}}, {"splt": {}}], "base.data.1: unknown data step 'splt'; did you mean 'split'?"),
    ([{"make_moons": {"n_sample": 5}}, {"split": {}}], "base.data.0.make_moons.n_sample: unknown key"),
    ([{"make_moons": {}, "split": {}}], "base.data.0: expected one step"),
    ([{"make_moons": {"n_samples": 10**9}}, {"split": {}}], "base.data.0.make_moons.n_samples"),
    ([{"inline": {"x": [[0], [1]], "y": [0]}}, {"split": {}}], "x has 2 rows and y 1 targets"),
    ([{"make_classification": {"n_features": 3}}, {"split": {}}], "base.data.0.make_classification: building the data fails"),
    ([{"make_moons": {}}, {"split": {"val": 0.5, "test": 0.45}}], "leaves too little to train on"),
])
def test_a_bad_steps_list_is_a_located_error(tmp_path, data, expected):
    errors = _errors(tmp_path, data)
    assert any(expected in e for e in errors), errors


def test_dataset_and_data_are_exclusive(tmp_path):
    doc = {**CASE, "base": {**CASE["base"], "dataset": {"name": "iris"}}}
    p = tmp_path / "data" / "steps.yaml"
    p.parent.mkdir()
    p.write_text(yaml.safe_dump(doc))
    with pytest.raises(CaseErrors, match="either dataset"):
        load_case(p)


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from .test_hostile_cases import json_value  # noqa: E402

_NAMES = DATA_STEPS.names()


def _params(name):
    fields = list(DATA_STEPS.get(name).params.model_fields)
    keys = st.sampled_from(fields + ["bogus"]) if fields else st.just("bogus")
    return st.dictionaries(keys, json_value, max_size=3)


step = st.sampled_from(_NAMES).flatmap(lambda n: _params(n).map(lambda p: {n: p}))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=0, max_size=5), where=st.integers(0, 5), lead=st.booleans())
def test_any_steps_list_loads_or_gives_located_one_line_errors(tmp_path, steps, where, lead):
    """Random step lists (any name, any JSON parameters, any order, a split somewhere or not): the case
    either loads, and then its data builds, or every error is one line that names the file."""
    steps = steps[:where] + [{"split": {}}] + steps[where:] if where % 2 else steps
    steps = [{"make_moons": {"n_samples": 200}}, *steps] if lead else steps
    doc = {**CASE, "base": {**CASE["base"], "data": steps}}
    p = tmp_path / "data" / "steps.yaml"
    p.parent.mkdir(exist_ok=True)
    p.write_text(yaml.safe_dump(doc))
    try:
        case = load_case(p)
    except CaseErrors as e:
        assert e.errors and all(str(x).startswith(f"{p}: ") and "\n" not in str(x) for x in e.errors)
        return
    assert load_steps(case.base.data, seed=0).x_train.size
