"""Each published rule of the built-in detectors: a record built to trigger it fires, one just
below its threshold stays silent. Records are synthetic (no training), built from
`detectors.testing.healthy_dict`, a small binary classifier that converges."""

from __future__ import annotations

import math

import pytest

from trainwreck.detectors.autotrainer import AutoTrainer, AutoTrainerMapped
from trainwreck.detectors.base import restrict
from trainwreck.detectors.baselines import CHOICES, MajorityCause, RandomCause
from trainwreck.detectors.data_lint import DataLint
from trainwreck.detectors.deepdiagnosis import DeepDiagnosis
from trainwreck.detectors.loading import BUILTINS, resolve_class
from trainwreck.detectors.testing import healthy_dict, parametrize_with_checks
from trainwreck.record import RunRecord

NAN = float("nan")


def run(cls, d):
    return cls().diagnose(restrict(RunRecord.from_dict(d), frozenset(cls.needs)))


def causes(out):
    return {d.cause for d in out}


def only(out):
    assert len(out) == 1, out
    return out[0]


def per_epoch(d, field, layer_or_key, values):
    for e, v in zip(d["trace"], values):
        e[field][layer_or_key] = v


def set_all(d, field, layer_or_key, value):
    for e in d["trace"]:
        e[field][layer_or_key] = value


def test_healthy_record_is_silent_for_all_rule_detectors():
    for cls in (AutoTrainer, DeepDiagnosis, DataLint):
        assert run(cls, healthy_dict()) == [], cls.name


# ---------------------------------------------------------------- AUTOTRAINER
def acc_curve(d, values):
    for e, v in zip(d["trace"], values):
        e["logs"]["accuracy"] = e["logs"]["val_accuracy"] = v


def stuck(epochs=10):
    """Accuracy below Theta=0.6 (not_converge) but rising 0.02/epoch (no slow convergence): the gate is open."""
    d = healthy_dict(epochs)
    acc_curve(d, [0.4 + 0.02 * i for i in range(epochs)])
    return d


class TestAutoTrainer:
    def test_nan_loss_is_explode_with_no_gating(self):
        d = healthy_dict(7)
        d["model"]["epochs"] = 30            # well before 30% of training
        d["trace"][3]["logs"]["loss"] = NAN
        diag = only(run(AutoTrainerMapped, d))
        assert (diag.cause, diag.symptom, diag.epoch) == ("exploding_gradient", "nan_loss", 3)

    def test_nan_between_checks_is_caught_at_train_end(self):
        d = healthy_dict(10)
        d["trace"] = d["trace"][:5]
        d["trace"][4]["logs"]["loss"] = NAN
        d["trace"][4]["nonfinite"] = True
        assert only(run(AutoTrainerMapped, d)).epoch == 4

    def test_large_val_loss(self):
        d = healthy_dict(7)
        d["trace"][3]["logs"]["val_loss"] = 1e5
        diag = only(run(AutoTrainerMapped, d))
        assert (diag.cause, diag.symptom) == ("exploding_gradient", "exploding_gradient")
        d["trace"][3]["logs"]["val_loss"] = 99999.0
        assert run(AutoTrainerMapped, d) == []

    def test_nonfinite_gradients(self):
        d = healthy_dict(7)
        d["trace"][3]["nonfinite"] = True
        d["trace"][3]["grad_norms"]["dense_1"] = math.inf
        assert only(run(AutoTrainerMapped, d)).cause == "exploding_gradient"

    def test_vanishing_gradient(self):
        d = stuck()
        set_all(d, "grad_norms", "dense_1", 5e-5)
        set_all(d, "grad_norms", "dense_3", 1.0)
        diag = only(run(AutoTrainerMapped, d))
        assert (diag.cause, diag.symptom, diag.epoch) == ("vanishing_gradient", "vanishing_gradient", 3)

    @pytest.mark.parametrize("first,last", [(1e-4, 1.0), (5e-5, 0.04)])
    def test_vanishing_gradient_below_thresholds(self, first, last):
        d = stuck()
        set_all(d, "grad_norms", "dense_1", first)   # ||dW_1|| == beta_2, or ratio 1.25e-3 > beta_1
        set_all(d, "grad_norms", "dense_3", last)
        assert run(AutoTrainerMapped, d) == []

    def test_exploding_gradient(self):
        d = stuck()
        set_all(d, "grad_norms", "dense_1", 71.0)
        set_all(d, "grad_norms", "dense_3", 1.0)
        assert (only(run(AutoTrainerMapped, d)).cause, only(run(AutoTrainerMapped, d)).symptom) == \
            ("exploding_gradient", "exploding_gradient")
        set_all(d, "grad_norms", "dense_1", 70.0)
        assert run(AutoTrainerMapped, d) == []

    def test_dying_relu(self):
        d = stuck()
        for e in d["trace"]:
            e["grad_zero_fraction_all"] = 0.7
        diag = only(run(AutoTrainerMapped, d))
        assert (diag.cause, diag.symptom) == ("dying_relu", "dead_units")
        for e in d["trace"]:
            e["grad_zero_fraction_all"] = 0.69
        assert run(AutoTrainerMapped, d) == []

    def test_gradient_symptoms_need_bad_accuracy(self):
        d = healthy_dict(10)                                 # accuracy reaches 0.9 and keeps rising
        acc_curve(d, [0.72 + 0.02 * i for i in range(10)])
        set_all(d, "grad_norms", "dense_1", 5e-5)
        set_all(d, "grad_norms", "dense_3", 1.0)
        assert run(AutoTrainerMapped, d) == []

    def test_gradient_symptoms_wait_for_30_percent_of_epochs(self):
        d = stuck(12)
        d["model"]["epochs"] = 30                            # gate: len(history) >= 9
        set_all(d, "grad_norms", "dense_1", 5e-5)
        set_all(d, "grad_norms", "dense_3", 1.0)
        assert only(run(AutoTrainerMapped, d)).epoch == 9

    def test_oscillation(self):
        d = healthy_dict(10)
        acc_curve(d, [0.8 + 0.05 * (i % 2) for i in range(10)])
        diag = only(run(AutoTrainerMapped, d))
        assert (diag.cause, diag.symptom, diag.epoch) == ("lr_too_high", "oscillation", 3)
        acc_curve(d, [0.8 + 0.02 * (i % 2) for i in range(10)])   # swings below zeta = 0.03
        assert run(AutoTrainerMapped, d) == []

    def test_slow_convergence(self):
        d = healthy_dict(10)
        acc_curve(d, [0.5 + 0.005 * i for i in range(10)])
        diag = only(run(AutoTrainerMapped, d))
        assert (diag.cause, diag.symptom, diag.epoch) == ("lr_too_low", "slow_convergence", 3)
        acc_curve(d, [0.5 + 0.011 * i for i in range(10)])       # largest gain >= delta
        assert run(AutoTrainerMapped, d) == []

    def test_regression_only_nan_rule(self):
        d = stuck()
        for e in d["trace"]:
            e["logs"] = {"loss": e["logs"]["loss"], "val_loss": e["logs"]["val_loss"]}
        set_all(d, "grad_norms", "dense_1", 5e-5)
        set_all(d, "grad_norms", "dense_3", 1.0)
        assert run(AutoTrainerMapped, d) == []
        d["trace"][6]["logs"]["loss"] = NAN
        assert only(run(AutoTrainerMapped, d)).cause == "exploding_gradient"

    def test_reports_once(self):
        d = healthy_dict(10)
        d["trace"][3]["logs"]["loss"] = d["trace"][6]["logs"]["loss"] = NAN
        assert len(run(AutoTrainerMapped, d)) == 1


# ---------------------------------------------------------------- DeepDiagnosis
def scaled(epochs=6):
    """Inputs inside [-1, 1], so the root-cause analysis falls through to the symptom's suggestion."""
    d = healthy_dict(epochs)
    n = len(d["data"]["feature_min"])
    d["data"]["feature_min"], d["data"]["feature_max"] = [-1.0] * n, [1.0] * n
    return d


class TestDeepDiagnosis:
    def test_out_of_range_sigmoid_regression(self):
        d = scaled()
        d["data"].update(task_kind="regression", class_counts_train={}, class_counts_val={}, n_classes=0,
                         target_mean=3.0)
        diag = only(run(DeepDiagnosis, d))
        assert (diag.cause, diag.epoch) == ("wrong_output_activation", 0)
        d["data"]["target_mean"] = 1.0
        assert run(DeepDiagnosis, d) == []

    def test_out_of_range_relu_with_categorical_loss(self):
        d = scaled()
        d["model"].update(loss="categorical_crossentropy", output_activation="relu")
        assert only(run(DeepDiagnosis, d)).cause == "wrong_output_activation"
        d["model"]["output_activation"] = "softmax"
        assert run(DeepDiagnosis, d) == []

    def test_out_of_range_linear_output(self):
        d = scaled()
        d["model"]["output_activation"] = "linear"
        d["trace"][0]["activation_min"]["dense_3"], d["trace"][0]["activation_max"]["dense_3"] = -5.3, 5.3
        assert only(run(DeepDiagnosis, d)).cause == "wrong_output_activation"
        d["trace"][0]["activation_min"]["dense_3"], d["trace"][0]["activation_max"]["dense_3"] = -4.9, 4.9
        assert run(DeepDiagnosis, d) == []

    def test_numerical_error_forward(self):
        d = scaled()
        d["trace"][2]["activation_mean"]["dense_2"] = 0.0
        diag = only(run(DeepDiagnosis, d))
        assert (diag.cause, diag.symptom, diag.epoch) == ("dying_relu", "dead_units", 2)
        d["trace"][2]["activation_mean"]["dense_2"] = 1e-12
        assert run(DeepDiagnosis, d) == []

    def test_dead_node_at_last_epoch(self):
        d = scaled()
        d["trace"][5]["relu_zero_fraction"]["dense_1"] = 0.7
        diag = only(run(DeepDiagnosis, d))
        assert (diag.cause, diag.symptom, diag.epoch) == ("dying_relu", "dead_units", 5)
        d["trace"][5]["relu_zero_fraction"]["dense_1"] = 0.69
        assert run(DeepDiagnosis, d) == []

    def test_dead_node_only_checked_at_last_epoch(self):
        d = scaled()
        d["trace"][3]["relu_zero_fraction"]["dense_1"] = 0.9
        assert run(DeepDiagnosis, d) == []

    def test_saturated_activation(self):
        d = scaled()
        d["trace"][4]["saturated_fraction"]["dense_3"] = 0.51
        diag = only(run(DeepDiagnosis, d))
        assert (diag.cause, diag.symptom, diag.epoch) == ("vanishing_gradient", "saturated_activation", 4)
        d["trace"][4]["saturated_fraction"]["dense_3"] = 0.5
        assert run(DeepDiagnosis, d) == []
        d["trace"][3]["saturated_fraction"]["dense_3"] = 0.9      # not a check epoch (counter 4)
        assert run(DeepDiagnosis, d) == []

    def test_unchanged_weights(self):
        d = scaled()
        set_all(d, "weight_norms", "dense_2", 3.0)
        diag = only(run(DeepDiagnosis, d))
        assert (diag.cause, diag.symptom, diag.epoch) == ("lr_too_low", "unchanged_weights", 4)
        per_epoch(d, "weight_norms", "dense_2", [3.0, 3.0, 3.0 + 1e-9, 3.0, 3.0, 3.0])
        assert run(DeepDiagnosis, d) == []
        set_all(d, "update_ratios", "dense_2", 0.0)
        assert only(run(DeepDiagnosis, d)).symptom == "unchanged_weights"

    def test_loss_not_decreasing(self):
        d = scaled()
        for e in d["trace"][:5]:
            e["logs"]["loss"] = 0.5
        diag = only(run(DeepDiagnosis, d))
        assert (diag.cause, diag.symptom, diag.epoch) == ("lr_too_low", "plateau", 4)
        d["trace"][2]["logs"]["loss"] = 0.5 + 1e-9
        assert run(DeepDiagnosis, d) == []

    def test_accuracy_not_increasing(self):
        d = scaled(20)
        acc_curve(d, [0.75] * 20)
        diag = only(run(DeepDiagnosis, d))
        assert (diag.symptom, diag.epoch) == ("plateau", 19)
        d["trace"][7]["logs"]["accuracy"] = 0.7500001
        assert run(DeepDiagnosis, d) == []

    def test_vanishing_gradient(self):
        d = scaled()
        d["trace"][1]["grad_mean_abs"]["dense_1"] = 9e-8
        diag = only(run(DeepDiagnosis, d))
        assert (diag.cause, diag.symptom, diag.epoch) == ("vanishing_gradient", "vanishing_gradient", 1)
        d["trace"][1]["grad_mean_abs"]["dense_1"] = 1e-7
        assert run(DeepDiagnosis, d) == []

    def test_invalid_loss(self):
        d = scaled()
        d["trace"][2]["logs"]["loss"] = NAN
        diag = only(run(DeepDiagnosis, d))
        assert (diag.cause, diag.symptom, diag.epoch) == ("lr_too_low", "nan_loss", 2)   # "change optimizer"
        d["model"]["output_activation"] = "linear"
        assert only(run(DeepDiagnosis, d)).cause == "wrong_output_activation"

    def dead(self):
        d = scaled()
        d["trace"][5]["relu_zero_fraction"]["dense_1"] = 0.9
        return d

    def test_root_cause_normalize_data(self):
        d = self.dead()
        d["data"]["feature_max"][3] = 1.5
        assert only(run(DeepDiagnosis, d)).cause == "unscaled_features"

    def test_root_cause_poor_weight(self):
        d = self.dead()
        d["trace"][5]["weight_var"]["dense_2"] = 1e-6
        assert only(run(DeepDiagnosis, d)).cause == "bad_initialization"
        d["trace"][5]["weight_var"]["dense_2"] = 1e-5
        assert only(run(DeepDiagnosis, d)).cause == "dying_relu"
        d["trace"][5]["weight_var"]["dense_2"] = 10.5
        assert only(run(DeepDiagnosis, d)).cause == "bad_initialization"

    def test_root_cause_learning_rate(self):
        d = self.dead()
        d["model"]["learning_rate"] = 0.1
        d["trace"][5]["grad_norms"]["dense_1"], d["trace"][5]["weight_norms"]["dense_1"] = 2.0, 1.0
        assert only(run(DeepDiagnosis, d)).cause == "lr_too_high"            # 0.1 * 2 / 1 = 0.2 > 0.1
        d["trace"][5]["grad_norms"]["dense_1"] = 1.0
        assert only(run(DeepDiagnosis, d)).cause == "dying_relu"             # exactly 0.1
        d = self.dead()
        d["model"]["learning_rate"] = 1e-4                                   # 1e-4 * 0.083 / 4.5 < 1e-5
        assert only(run(DeepDiagnosis, d)).cause == "lr_too_low"

    def test_root_cause_order_data_before_weights_for_dead_nodes(self):
        d = self.dead()
        d["data"]["feature_max"][0] = 2.0
        d["trace"][5]["weight_var"]["dense_2"] = 1e-6
        assert only(run(DeepDiagnosis, d)).cause == "unscaled_features"

    def test_first_symptom_only(self):
        d = self.dead()
        d["trace"][2]["logs"]["loss"] = NAN
        assert only(run(DeepDiagnosis, d)).epoch == 2

    def test_regression_skips_accuracy(self):
        d = scaled(20)
        for e in d["trace"]:
            e["logs"].pop("accuracy")
        assert run(DeepDiagnosis, d) == []


# ---------------------------------------------------------------- data-lint
class TestDataLint:
    def lint(self, **data):
        d = healthy_dict()
        d["data"].update(data)
        return run(DataLint, d)

    def test_nan_inputs(self):
        assert causes(self.lint(nan_count=1)) == {"nan_inputs"}
        assert causes(self.lint(inf_count=1)) == {"nan_inputs"}
        assert self.lint(nan_count=0, inf_count=0) == []

    def test_unscaled_features_spread(self):
        stds = [1.0] * 19 + [1e4]
        diag = only(self.lint(feature_std=stds, feature_max=[3.0] * 19 + [4e4]))
        assert (diag.cause, diag.symptom, diag.confidence) == ("unscaled_features", "out_of_range_values", 0.9)
        assert self.lint(feature_std=[1.0] * 19 + [999.0], feature_max=[3.0] * 19 + [900.0]) == []

    def test_unscaled_features_magnitude(self):
        assert only(self.lint(feature_max=[3.0] * 19 + [1001.0])).confidence == 0.5
        assert self.lint(feature_max=[3.0] * 19 + [1000.0]) == []

    def test_scaled_inputs_with_spread_stds_are_fine(self):   # e.g. pixels in [0, 1] with a constant border
        assert self.lint(feature_min=[0.0] * 20, feature_max=[1.0] * 20, feature_std=[1e-5] + [0.3] * 19) == []

    def test_class_imbalance(self):
        assert causes(self.lint(class_counts_train={"0": 1000, "1": 99})) == {"class_imbalance"}
        assert self.lint(class_counts_train={"0": 1000, "1": 100}) == []

    def test_train_test_overlap(self):
        assert causes(self.lint(n_val=200, duplicate_rows_train_val=11)) == {"train_test_overlap"}
        assert self.lint(n_val=200, duplicate_rows_train_val=10) == []

    def test_target_leakage(self):
        assert causes(self.lint(feature_target_corr=[0.1] * 19 + [0.96])) == {"target_leakage"}
        assert self.lint(feature_target_corr=[0.1] * 19 + [0.95]) == []

    def test_ragged_batches(self):
        d = healthy_dict()
        d["trace"][2]["batch_shapes"] = [[[32, 20], 10], [[32, 17], 1]]
        d["trace"][2]["steps"] = 11
        diag = only(run(DataLint, d))
        assert (diag.cause, diag.symptom) == ("ragged_batches", "early_stop")
        d["trace"][2]["batch_shapes"] = [[[32, 20], 31], [[8, 20], 1]]   # a short last batch is fine
        assert run(DataLint, d) == []


# ---------------------------------------------------------------- baselines
def test_random_is_seeded_by_key():
    outs = {k: only(run(RandomCause, healthy_dict(key=k))) for k in ("a", "b", "c", "d", "e", "f")}
    assert all(only(run(RandomCause, healthy_dict(key=k))) == d for k, d in outs.items())
    assert len({d.cause for d in outs.values()}) > 1
    assert all(d.cause in CHOICES and d.cause != "healthy" and d.confidence == 1 / len(CHOICES)
               for d in outs.values())


def test_majority_is_constant():
    assert {only(run(MajorityCause, healthy_dict(key=k))).cause for k in "abc"} == {MajorityCause.PRIOR_MODE}


# ---------------------------------------------------------------- conformance of the built-ins
@parametrize_with_checks([resolve_class(spec) for spec in BUILTINS.values()])
def test_builtin_conformance(detector_class, check):
    check(detector_class)
