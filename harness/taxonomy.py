"""The one vocabulary of causes and symptoms.

Every case file, every detector diagnosis and every results table uses these
terms; the JSON Schema, the docs and the validation errors are generated from
them, so a term is defined exactly once, with one line of definition.
The grouping follows the training-problem taxonomies of AUTOTRAINER (Zhang et
al., ICSE 2021), DeepDiagnosis (Wardat et al., ICSE 2022) and Humbatova et
al., "Taxonomy of Real Faults in Deep Learning Systems" (ICSE 2020).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Term", "CAUSES", "SYMPTOMS", "HEALTHY", "cause_names", "symptom_names",
           "is_cause", "is_symptom", "markdown_table"]


@dataclass(frozen=True)
class Term:
    name: str
    group: str
    definition: str


HEALTHY = "healthy"
"""The cause of a trap case: nothing is wrong, any diagnosis is a false alarm."""

_CAUSES = [
    # data
    Term("unscaled_features", "data", "Input features lie on scales that differ by orders of magnitude and are not standardised."),
    Term("nan_inputs", "data", "The training inputs contain NaN or infinite values."),
    Term("class_imbalance", "data", "One class dominates the training labels so the model learns to predict it alone."),
    Term("train_test_overlap", "data", "Rows of the evaluation data also appear in the training data, inflating the evaluation score."),
    Term("target_leakage", "data", "A feature is derived from the target, so the model scores well only where that feature exists."),
    Term("label_noise", "data", "A large share of the training labels are wrong."),
    Term("label_encoding_mismatch", "data", "The label encoding disagrees with the loss (one-hot vs sparse, labels not 0..k-1)."),
    Term("unscaled_target", "data", "The regression target spans a range far beyond what the output layer and its loss handle well, and is not rescaled."),
    Term("biased_split", "data", "The split is unshuffled or biased, so training and evaluation data come from different distributions."),
    # pipeline
    Term("ragged_batches", "pipeline", "The input pipeline yields batches of inconsistent shape or a wrong length."),
    Term("exhausted_generator", "pipeline", "A generator runs dry or steps_per_epoch is wrong, so epochs run fewer steps than intended."),
    # optimisation
    Term("lr_too_high", "optimization", "The learning rate is so large that the loss diverges or oscillates."),
    Term("lr_too_low", "optimization", "The learning rate is so small that the loss barely moves within the training budget."),
    Term("exploding_gradient", "optimization", "Gradients grow without bound through depth or time, producing huge updates or NaN."),
    Term("vanishing_gradient", "optimization", "Gradients shrink through depth or time so the early layers stop learning."),
    Term("bad_initialization", "optimization", "Weights start at values (zeros, huge variance) that prevent learning."),
    # architecture / configuration
    Term("dying_relu", "architecture", "Most ReLU units output zero for every input and receive no gradient."),
    Term("missing_activation", "architecture", "Hidden layers have no non-linearity, so the network is one linear map that cannot fit the task."),
    Term("wrong_output_activation", "architecture", "The output activation does not match the task (e.g. softmax on one unit, ReLU for probabilities)."),
    Term("wrong_loss", "architecture", "The loss function does not match the task or the label format."),
    Term("frozen_weights", "architecture", "Layers meant to learn are not trainable, so their weights never change."),
    Term("underfitting", "architecture", "The model has too little capacity for the task."),
    Term("overfitting", "architecture", "The model memorises the training data with no regularisation or early stopping."),
    Term(HEALTHY, "none", "Nothing is wrong: the run trains as intended (a trap for false alarms)."),
]

_SYMPTOMS = [
    Term("nan_loss", "numerical", "The training loss becomes NaN or infinite."),
    Term("divergence", "loss", "The loss grows over training instead of falling."),
    Term("plateau", "loss", "The loss stops improving early, far from a good value."),
    Term("oscillation", "loss", "The loss swings up and down between epochs without settling."),
    Term("slow_convergence", "loss", "The metric improves by less than a small amount per epoch."),
    Term("chance_accuracy", "metric", "The evaluation metric stays at the level of guessing or of the majority class."),
    Term("train_val_gap", "metric", "The training metric is far better than the validation metric."),
    Term("inflated_validation", "metric", "The validation metric is far better than the metric on clean held-out data."),
    Term("vanishing_gradient", "gradient", "First-layer gradients are orders of magnitude smaller than last-layer gradients."),
    Term("exploding_gradient", "gradient", "Gradient norms are very large or non-finite."),
    Term("dead_units", "activation", "Most ReLU units are inactive for every probe input."),
    Term("saturated_activation", "activation", "Most sigmoid/tanh units sit in their flat regions."),
    Term("unchanged_weights", "weights", "Some layer's weights do not change between epochs."),
    Term("early_stop", "pipeline", "An epoch runs fewer steps than expected or training ends before its epochs."),
    Term("crash", "pipeline", "Training raises an exception."),
    Term("out_of_range_values", "data", "Inputs contain values outside a normalised range or non-finite values."),
]

CAUSES: dict[str, Term] = {t.name: t for t in _CAUSES}
SYMPTOMS: dict[str, Term] = {t.name: t for t in _SYMPTOMS}


def cause_names() -> list[str]:
    return list(CAUSES)


def symptom_names() -> list[str]:
    return list(SYMPTOMS)


def is_cause(name: str) -> bool:
    return name in CAUSES


def is_symptom(name: str) -> bool:
    return name in SYMPTOMS


def markdown_table() -> str:
    """The taxonomy as Markdown, for docs/taxonomy.md."""
    from tabulate import tabulate

    parts = ["# Taxonomy\n", "Generated by `trainwreck schema` (`make schema`); defined in `harness/taxonomy.py` (`trainwreck.taxonomy`).\n",
             "## Causes\n"]
    parts.append(tabulate([(f"`{t.name}`", t.group, t.definition) for t in _CAUSES],
                          headers=["cause", "group", "definition"], tablefmt="github"))
    parts.append("\n\n## Symptoms\n")
    parts.append(tabulate([(f"`{t.name}`", t.group, t.definition) for t in _SYMPTOMS],
                          headers=["symptom", "group", "definition"], tablefmt="github"))
    return "\n".join(parts) + "\n"
