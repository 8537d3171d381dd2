"""deepfd: DeepFD's monitor features against the original's own code, its aggregation against pandas'
definitions, its classifiers, and the grouped cross-fitting that keeps every label of a run away from
the model that diagnoses it."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import scipy.stats

from tests import deepfd_original as original
from trainwreck.crossfit import label_of, plan_folds
from trainwreck.detectors.deepfd import (COLUMNS, MONITOR_KEYS, OPERATORS, PARAMS, DeepFD, aggregate,
                                         run_features, snapshot_rows)
from trainwreck.detectors.testing import healthy_dict
from trainwreck.record import RunRecord

LAYERS = ("dense_1", "dense_2", "dense_3")
EPOCHS = 12


# -- a run as arrays, fed both to the original monitor and (as a trace) to the port --------------------
def scenario(kind: str, seed: int = 0) -> dict:
    """Per epoch: each layer's kernel and bias gradients and weights, and the Keras logs."""
    rng = np.random.default_rng(seed)
    epochs = []
    w = {l: (rng.normal(0, 0.5, (4, 3)), rng.normal(0, 0.1, 3)) for l in LAYERS}
    for t in range(EPOCHS):
        grads = {l: (rng.normal(0, 0.1, (4, 3)), rng.normal(0, 0.1, 3)) for l in LAYERS}
        if kind == "vanish":
            grads["dense_1"] = (grads["dense_1"][0] * 1e-6, grads["dense_1"][1])
        if kind == "explode" and t >= 4:
            grads["dense_1"] = (grads["dense_1"][0] * 1e4, grads["dense_1"][1])
        if kind == "dead":
            grads = {l: (np.where(rng.random((4, 3)) < 0.9, 0.0, g), np.zeros(3)) for l, (g, _) in grads.items()}
        if kind == "nan_grad" and t >= 6:
            grads["dense_2"][0][0, 0] = np.nan
        frozen = kind == "frozen"
        w = {l: (k if (frozen and l == "dense_1") else k - 0.1 * grads[l][0],
                 b if (frozen and l == "dense_1") else b - 0.1 * grads[l][1]) for l, (k, b) in w.items()}
        if kind == "large" and t >= 3:
            w["dense_2"] = (np.full((4, 3), 6.0 + t), w["dense_2"][1])
        if kind == "nan_weight" and t >= 5:
            w["dense_3"][0][0, 0] = np.nan
        acc = {"stuck": 0.4 + 0.001 * t, "oscillate": 0.7 + (0.2 if t % 2 else 0.0)}.get(kind, 0.5 + 0.04 * t)
        val_acc = acc - 0.2 if kind == "overfit" else acc - 0.01
        loss = 1.0 / (1 + t)
        val_loss = loss + (0.05 * t if kind == "overfit" else 0.01)
        if kind == "nan_loss" and t >= 7:
            loss = math.nan
        logs = {"loss": loss, "accuracy": acc, "val_loss": val_loss, "val_accuracy": val_acc}
        epochs.append({"grads": copy.deepcopy(grads), "weights": copy.deepcopy(w), "logs": logs})
    return {"kind": kind, "epochs": epochs}


def original_rows(sc: dict) -> list[dict]:
    """IssueMonitor.determine (Monitor.py L280-303) step by step, with the original functions."""
    feature = {k: v for k, v in {
        'not_converge': False, 'unstable_loss': False, 'nan_loss': 0, 'test_not_well': 0, 'test_turn_bad': 0,
        'sc_accuracy': False, 'died_relu': False, 'vanish_gradient': False, 'explode_gradient': False,
        'nan_gradient': False, 'large_weight': 0, 'nan_weight': False, 'weight_change_little': 0,
        'decrease_acc': 0, 'increase_loss': 0, 'cons_mean_weight': 0, 'cons_std_weight': 0, 'nan_acc': 0}.items()}
    history = {"loss": [], "acc": [], "val_loss": [], "val_acc": []}
    last_weights, rows = [], []
    for e in sc["epochs"]:
        for k, key in (("loss", "loss"), ("acc", "accuracy"), ("val_loss", "val_loss"), ("val_acc", "val_accuracy")):
            history[k].append(e["logs"][key])
        grads = [a for l in LAYERS for a in e["grads"][l]]
        kernels = [e["weights"][l][0] for l in LAYERS]     # the trace keeps kernels (deviation 3)
        feature.update(history)
        with np.errstate(all="ignore"):
            feature = original.gradient_issue(feature, grads, threshold_low=PARAMS["beta_1"],
                                              threshold_low_1=PARAMS["beta_2"], threshold_high=PARAMS["beta_3"],
                                              threshold_die_1=PARAMS["gamma"])
            feature = original.weights_issue(feature, kernels, last_weights)
            feature = original.loss_issue(feature, history, total_epoch=EPOCHS, satisfied_acc=PARAMS["Theta"],
                                          checkgap=1, unstable_threshold=PARAMS["zeta"], unstable_rate=PARAMS["eta"],
                                          sc_threshold=PARAMS["delta"])
        last_weights = kernels
        rows.append({k: float(feature[k]) for k in MONITOR_KEYS})
    return rows


def as_record(sc: dict) -> RunRecord:
    """The same run as the trace records it: norms, zero share, kernel moments, logs."""
    trace = []
    for t, e in enumerate(sc["epochs"]):
        every = np.concatenate([a.ravel() for l in LAYERS for a in e["grads"][l]])
        kernels = {l: e["weights"][l][0] for l in LAYERS}
        trace.append({
            "epoch": t, "logs": e["logs"],
            "grad_norms": {l: float(np.linalg.norm(e["grads"][l][0])) for l in LAYERS},
            "grad_zero_fraction_all": float(np.mean(every == 0)),
            "grads_nonfinite": bool(not np.all(np.isfinite(every))),
            "weight_norms": {l: float(np.linalg.norm(k)) for l, k in kernels.items()},
            "weight_mean": {l: float(np.mean(k)) for l, k in kernels.items()},
            "weight_var": {l: float(np.var(k)) for l, k in kernels.items()},
            "weights_nonfinite": bool(not all(np.all(np.isfinite(k)) for k in kernels.values())),
        })
    return RunRecord.from_dict({"key": f"synthetic-{sc['kind']}", "trace": trace,
                                "model": {"epochs": EPOCHS, "layers": [{"name": l} for l in LAYERS]}})


KINDS = ["healthy", "vanish", "explode", "dead", "nan_grad", "frozen", "large", "nan_weight", "overfit",
         "oscillate", "stuck", "nan_loss"]


@pytest.mark.parametrize("kind", KINDS)
def test_monitor_rows_equal_the_originals(kind):
    """Every snapshot's 22 values, epoch by epoch, as DeepFD's own functions compute them."""
    sc = scenario(kind)
    want, got = original_rows(sc), snapshot_rows(as_record(sc))
    assert len(got) == len(want) == EPOCHS
    for t, (g, w) in enumerate(zip(got, want)):
        for k in MONITOR_KEYS:
            assert (math.isnan(g[k]) and math.isnan(w[k])) or g[k] == pytest.approx(w[k]), (kind, t, k, g[k], w[k])


@pytest.mark.parametrize("kind,feature", [
    ("vanish", "vanish_gradient"), ("explode", "explode_gradient"), ("dead", "died_relu"),
    ("nan_grad", "nan_gradient"), ("frozen", "cons_mean_weight"), ("large", "large_weight"),
    ("nan_weight", "nan_weight"), ("overfit", "test_not_well"), ("oscillate", "unstable_loss"),
    ("stuck", "not_converge"), ("stuck", "sc_accuracy"), ("nan_loss", "nan_loss")])
def test_each_scenario_fires_its_rule_and_healthy_does_not(kind, feature):
    """The scenarios exercise every rule (so the equality above is not vacuous)."""
    assert snapshot_rows(as_record(scenario(kind)))[-1][feature] > 0
    assert snapshot_rows(as_record(scenario("healthy")))[-1][feature] == 0


def test_large_weight_without_steps_fires_only_when_certain():
    """Deviation 3: with kernel moments only, a single large entry in a small kernel is not seen."""
    sc = scenario("healthy")
    for e in sc["epochs"]:
        e["weights"]["dense_2"][0][0, 0] = 7.0        # max |w| = 7 > 5, but the RMS stays below 5
    assert max(r["large_weight"] for r in original_rows(sc)) > 0
    assert max(r["large_weight"] for r in snapshot_rows(as_record(sc))) == 0


def test_aggregation_follows_pandas_definitions():
    """ddof 1 for std, var and sem; bias-corrected skew; a snapshot's NaN counts as 0 (the original fills
    the table's NaN before aggregating, cal_stats.py L246); too few values give NaN."""
    x = [0.0, 1.0, 1.0, 3.0, 10.0]
    rows = [{c: v for c in COLUMNS} for v in x]
    out = aggregate(rows)
    c = COLUMNS[0]
    assert out[f"ft_{c}_std"] == pytest.approx(np.std(x, ddof=1))
    assert out[f"ft_{c}_var"] == pytest.approx(np.var(x, ddof=1))
    assert out[f"ft_{c}_sem"] == pytest.approx(scipy.stats.sem(x))
    assert out[f"ft_{c}_skew"] == pytest.approx(scipy.stats.skew(x, bias=False))
    assert out[f"ft_{c}_median"] == 1.0 and out[f"ft_{c}_max"] == 10.0 and out[f"ft_{c}_min"] == 0.0
    filled = aggregate([{c: v for c in COLUMNS} for v in (1.0, math.nan, 2.0)])
    assert filled[f"ft_{c}_mean"] == 1.0 and filled[f"ft_{c}_min"] == 0.0
    assert math.isnan(aggregate([{c: v for c in COLUMNS} for v in (1.0, 2.0)])[f"ft_{c}_skew"])
    assert aggregate([{c: 2.0 for c in COLUMNS}] * 4)[f"ft_{c}_skew"] == 0.0   # constant: pandas gives 0


def test_the_148_features_the_released_classifiers_saw():
    """The header shift (LossHistory.py L111): the first four monitor values never reach the classifiers."""
    assert COLUMNS == MONITOR_KEYS[4:] and len(COLUMNS) == 18
    assert set(MONITOR_KEYS[:4]) == {"not_converge", "unstable_loss", "nan_loss", "test_not_well"}
    feats = run_features(RunRecord.from_dict(healthy_dict()))
    assert len(feats) == 18 * len(OPERATORS) + 4 == 148
    assert feats["ft_loss"] == healthy_dict()["trace"][-1]["logs"]["loss"]


def test_regression_runs_have_no_accuracy_rules():
    """Deviation 5: no accuracy in the logs; the original raises, here the accuracy values are NaN."""
    d = healthy_dict()
    for e in d["trace"]:
        e["logs"] = {"loss": e["logs"]["loss"], "val_loss": e["logs"]["val_loss"]}
    rows = snapshot_rows(RunRecord.from_dict(d))
    assert all(r["acc"] == 0.0 and r["not_converge"] == 0 for r in rows)   # `v if v else 0.0`, as Monitor.py L122
    assert math.isnan(run_features(RunRecord.from_dict(d))["ft_accuracy"])


# -- the classifiers ----------------------------------------------------------------------------------
def _table(n_per: int = 8):
    feats, labels = [], []
    for i in range(n_per):
        for kind, label in (("explode", "exploding_gradient"), ("vanish", "vanishing_gradient"),
                            ("healthy", "healthy")):
            feats.append(run_features(as_record(scenario(kind, seed=i))))
            labels.append(label)
    return feats, labels


def test_fitted_classifiers_tell_the_scenarios_apart():
    feats, labels = _table()
    model = DeepFD.fit(feats, labels, seed=0)
    assert set(model.models) == {"knn", "decision_tree", "random_forest"}
    assert model.models["knn"].n_neighbors == 5 and model.models["decision_tree"].max_depth == 5
    rf = model.models["random_forest"]
    assert (rf.n_estimators, rf.max_depth) == (32, 10)
    det = DeepFD(model)
    explode = det.diagnose(as_record(scenario("explode", seed=99)))
    assert explode and explode[0].cause == "exploding_gradient" and explode[0].confidence == 1.0
    assert det.diagnose(as_record(scenario("healthy", seed=99))) == []
    assert DeepFD().diagnose(as_record(scenario("explode", seed=99))) == []     # untrained: names nothing


def test_a_fold_of_healthy_runs_only_gives_a_model_that_names_nothing():
    """A small selection can leave a fold with trap runs only (no cause to learn): no error, no diagnosis."""
    feats = [run_features(as_record(scenario("healthy", seed=i))) for i in range(3)]
    model = DeepFD.fit(feats, ["healthy"] * 3)
    assert model.labels == [] and DeepFD(model).diagnose(as_record(scenario("explode"))) == []


def test_scaling_comes_from_the_training_rows_only():
    """Deviation 6: a held-out run is scaled by the training folds' min and max, not by its own set."""
    feats, labels = _table(4)
    model = DeepFD.fit(feats, labels)
    x = np.array([[f[n] if math.isfinite(f[n]) else 0.0 for n in model.names] for f in feats])
    assert np.array_equal(model.lo, x.min(axis=0))
    scaled = model.scale(x)
    kept = model.span > 0
    assert scaled[:, kept].min() == 0.0 and scaled[:, kept].max() == 1.0 and not scaled[:, ~kept].any()


# -- grouped cross-fitting --------------------------------------------------------------------------
def test_folds_partition_the_cases():
    cases = [f"case-{i}" for i in range(13)]
    folds = plan_folds(cases + cases)          # several runs per case
    assert len(folds) == 5
    held = [c for f in folds for c in f.held_out]
    assert sorted(held) == sorted(cases)       # every case diagnosed by exactly one fold
    for f in folds:
        assert not set(f.held_out) & set(f.train_cases)
        assert set(f.held_out) | set(f.train_cases) == set(cases)
    assert plan_folds(["only"]) == []


@pytest.mark.slow
def test_no_run_is_diagnosed_by_a_model_that_saw_its_case(corpus_results, results_dir, tmp_path):
    """The bench's cross-fitting, with a spy whose model remembers the runs it was fitted on: every
    held-out run's evidence lists those runs, and none of them is of the run's own case."""
    from tests.conftest import run_cli

    cases = ["lr-divergence", "unscaled-features", "ragged-generator", "validation-leakage"]
    args = ["score", "--results", str(results_dir), "--out", str(tmp_path), "--no-plots", "-q",
            "--detector-spec", "tests.bad_detectors:LearnedSpy", "-d", "deepfd"]
    for c in cases:
        args += ["--case", c]
    r = run_cli(*args)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads((tmp_path / "scores.json").read_text())
    from trainwreck.score import read_scores

    _, rows = read_scores(tmp_path / "scores.json")
    case_of = {row.run_key[:12]: row.case_id for row in rows}
    spy = [row for row in rows if row.detector == "learned-spy"]
    assert spy and all(not row.error for row in spy), [row.error for row in spy if row.error]
    for row in spy:
        trained_on = {case_of[k] for k in row.diagnoses[0]["evidence"].split(",")}
        assert row.case_id not in trained_on and trained_on, (row.case_id, trained_on)
        assert row.extra["fold"] in range(4)
    deepfd = [row for row in rows if row.detector == "deepfd"]
    assert deepfd and all(not row.error and "fold" in row.extra for row in deepfd)
    assert doc["version"] >= 3


def test_labels_are_the_runs_cause_or_healthy():
    class Spec:
        def __init__(self, variant, cause):
            self.variant = variant
            self.case = type("C", (), {"cause": cause})()

    class Res:
        def __init__(self, variant, cause):
            self.spec = Spec(variant, cause)

    assert label_of(Res("broken", "lr_too_high")) == "lr_too_high"
    assert label_of(Res("fixed", "lr_too_high")) == "healthy"
    assert label_of(Res("broken", "healthy")) == "healthy"
