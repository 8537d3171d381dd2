"""Detectors on your own training: `trainwreck.keras.Recorder` on real `model.fit` runs outside the
corpus, and `trainwreck diagnose` on what it saved.

The pair is a tiny regression MLP on scikit-learn's `make_regression`, differing only in the fault:
inputs multiplied by 1e4 (the loss is NaN in the first epoch on seeds 0-4) or left standardised.
nan-guard and AUTOTRAINER (online) and data-lint (post-hoc) each speak on the broken run and are
silent on the healthy one whatever the seed: on a regression AUTOTRAINER's accuracy gate never
opens, so only its NaN/huge-loss rule can fire, and the standardised inputs stay below data-lint's
bounds.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from trainwreck.detectors.base import OnlineDetector
from trainwreck.errors import UsageError
from trainwreck.record import DataProfile, EpochTrace, Environment, ModelSummary, RunRecord, without_timings

from .conftest import ROOT, run_cli

keras = pytest.importorskip("keras")

# autotrainer-mapped: AUTOTRAINER with trainwreck's problem -> cause mapping (plain `autotrainer` names
# symptoms only), so the live output shows a cause as well as symptoms
DETECTORS = ["autotrainer-mapped", "nan-guard", "data-lint"]
SEED = 0
EPOCHS = 4
BATCH = 32
PREFIX = "trainwreck: "
DIAGNOSE = ("import argparse, sys; from trainwreck.commands import diagnose; p=argparse.ArgumentParser(); "
            "s=p.add_subparsers(); diagnose.register(s); a=p.parse_args(sys.argv[1:]); sys.exit(a.fn(a))")


class FailsAtEpoch1(OnlineDetector):
    """Raises in the middle of training: the Recorder must report it and train on."""
    name, version, needs = "fails-at-epoch-1", "0", frozenset({"trace"})

    def on_epoch_end(self, epoch, trace, record):
        if epoch == 1:
            raise RuntimeError("deliberate failure at epoch 1")
        return []


class SeenAtEpoch(keras.callbacks.Callback):
    """After the Recorder in `callbacks`: what had been printed when each epoch began."""

    def __init__(self, out: io.StringIO):
        super().__init__()
        self.out, self.printed = out, {}

    def on_epoch_begin(self, epoch, logs=None):
        self.printed[epoch] = self.out.getvalue()


def _data(seed: int, scale: float):
    from sklearn.datasets import make_regression

    x, y = make_regression(n_samples=320, n_features=8, n_informative=5, noise=5.0, random_state=seed)
    x, y = (x * scale).astype("float32"), ((y - y.mean()) / y.std()).astype("float32")
    return x[:256], y[:256], x[256:], y[256:]


def _model():
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(32, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse", metrics=["mae"])
    return model


def _train(path: Path, scale: float, detectors, seed: int = SEED):
    """One fit with a Recorder; (recorder, what it printed to stdout, to stderr, when epochs began)."""
    import trainwreck.keras

    keras.utils.set_random_seed(seed)
    xt, yt, xv, yv = _data(seed, scale)
    model = _model()
    out, err = io.StringIO(), io.StringIO()
    seen = SeenAtEpoch(out)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rec = trainwreck.keras.Recorder(path, detectors, x_train=xt, y_train=yt, x_val=xv, y_val=yv,
                                        batch_size=BATCH, seed=seed)
        model.fit(xt, yt, batch_size=BATCH, epochs=EPOCHS, validation_data=(xv, yv), verbose=0,
                  callbacks=[rec, seen])
    return rec, out.getvalue(), err.getvalue(), seen.printed


def _diagnosis_lines(text: str) -> list[str]:
    return sorted(ln[len(PREFIX):] for ln in text.splitlines() if ln.startswith(PREFIX + "epoch "))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("recorder")
    return {"broken": (root / "broken.json", *_train(root / "broken.json", 1e4, [*DETECTORS, FailsAtEpoch1])),
            "healthy": (root / "healthy.json", *_train(root / "healthy.json", 1.0, DETECTORS))}


def _diagnose_in_process(capsys, *argv: str) -> tuple[int, str]:
    from trainwreck.commands import diagnose

    parser = argparse.ArgumentParser()
    diagnose.register(parser.add_subparsers())
    args = parser.parse_args(["diagnose", *argv])
    capsys.readouterr()
    code = args.fn(args)
    return code, capsys.readouterr().out


# ------------------------------------------------------------------ the Recorder, live


def test_broken_run_is_diagnosed_while_it_trains(runs):
    path, rec, out, err, printed = runs["broken"]
    assert rec.record["outcome"]["status"] == "nan"
    said = {(name, d.cause, d.symptom) for name, ds in rec.diagnoses.items() for d in ds}
    assert ("nan-guard", None, "nan_loss") in said
    assert ("autotrainer-mapped", "exploding_gradient", "nan_loss") in said
    assert ("data-lint", "unscaled_features", "out_of_range_values") in said
    # the online findings about epoch 0 were on screen before epoch 1 began; the post-hoc one only at the end
    early = _diagnosis_lines(printed[1])
    assert any("| nan-guard | symptom nan_loss |" in ln for ln in early), printed[1]
    assert any("| autotrainer-mapped | cause exploding_gradient" in ln for ln in early), printed[1]
    assert not any("| data-lint |" in ln for ln in early)
    assert _diagnosis_lines(out) == sorted(_lines_of(rec.diagnoses))


def test_a_detector_that_raises_is_an_error_line_and_training_goes_on(runs):
    _, rec, _, err, _ = runs["broken"]
    assert rec.errors == {"fails-at-epoch-1": "RuntimeError: deliberate failure at epoch 1"}
    assert "fails-at-epoch-1 | error | RuntimeError: deliberate failure at epoch 1" in err
    assert rec.record["outcome"]["epochs_run"] == EPOCHS


def test_healthy_run_prints_no_diagnosis(runs):
    _, rec, out, err, _ = runs["healthy"]
    assert rec.record["outcome"]["status"] == "completed"
    assert _diagnosis_lines(out) == [] and not any(rec.diagnoses.values()) and rec.errors == {}
    assert f"{PREFIX}no diagnosis from autotrainer-mapped, nan-guard, data-lint (completed, {EPOCHS} epochs)" in out
    assert err == ""


# ------------------------------------------------------------------ the saved record


def _names(cls) -> set[str]:
    return {f.name for f in fields(cls)}


@pytest.mark.parametrize("variant", ["broken", "healthy"])
def test_saved_file_holds_exactly_a_run_record_and_the_diagnoses(runs, variant):
    path, rec, *_ = runs[variant]
    doc = json.loads(path.read_text())
    assert set(doc) == {"record", "diagnoses", "errors", "detectors"}
    record = RunRecord.from_dict(doc["record"])
    raw = doc["record"]
    assert set(raw) == _names(RunRecord)
    assert set(raw["data"]) == _names(DataProfile) and set(raw["model"]) == _names(ModelSummary)
    assert set(raw["environment"]) == _names(Environment)
    assert all(set(e) == _names(EpochTrace) for e in raw["trace"])
    assert len(record.key) == 24 and int(record.key, 16) >= 0 and record.seed == SEED
    assert [ln.name for ln in record.model.layers] == list(record.trace[0].grad_norms)
    m = record.model
    assert (m.optimizer, m.learning_rate, m.loss, m.metrics, m.batch_size, m.epochs, m.output_units,
            m.output_activation) == ("sgd", 0.01, "mse", ("mae",), BATCH, EPOCHS, 1, "linear")
    assert record.data.n_train == 256 and record.data.n_val == 64
    assert record.trace[0].batch_shapes == (((BATCH, 8), 256 // BATCH),)
    assert doc["diagnoses"] == {n: [d.to_dict() for d in ds] for n, ds in rec.diagnoses.items()}
    assert set(doc["detectors"]) == {*DETECTORS} | ({"fails-at-epoch-1"} if variant == "broken" else set())


def test_recorder_record_is_the_harness_record_of_the_same_run():
    """The same task trained by the harness (train.run_task) and by a plain fit with a Recorder: equal
    records, bar the key and the wall-clock fields, so a detector cannot tell them apart."""
    import tensorflow as tf

    import trainwreck.keras
    from trainwreck.case import Task
    from trainwreck.datasets import load_dataset
    from trainwreck.models import build_model
    from trainwreck.train import run_task
    from trainwreck.transforms import apply_transforms

    task = Task.model_validate({
        "dataset": {"name": "tabular_regression", "params": {"n_samples": 300, "n_features": 6, "noise": 5}},
        "transforms": [{"name": "standard_scaler"}], "model": {"name": "mlp", "params": {"hidden": [16, 16]}},
        "compile": {"optimizer": "sgd", "learning_rate": 0.01, "loss": "mse", "metrics": ["mae"]},
        "fit": {"epochs": 3, "batch_size": BATCH}})
    harness = run_task(task.model_dump(mode="json", by_alias=True), SEED, "k" * 24, "tensorflow", "cpu")["record"]

    keras.backend.clear_session(free_memory=True)
    keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()
    data = load_dataset("tabular_regression", task.dataset.params, SEED)
    data = apply_transforms(data, [("standard_scaler", {})], SEED)
    model = build_model("mlp", {"hidden": [16, 16]}, data.x_train.shape[1:], data.task, data.n_classes)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01, momentum=0.0), loss="mse", metrics=["mae"])
    rec = trainwreck.keras.Recorder(None, [], x_train=data.x_train, y_train=data.y_train, x_val=data.x_val,
                                    y_val=data.y_val, batch_size=BATCH, seed=SEED, verbose=False)
    model.fit(data.x_train, data.y_train, batch_size=BATCH, epochs=3, verbose=0, shuffle=True,
              validation_data=(data.x_val, data.y_val), callbacks=[rec, keras.callbacks.TerminateOnNaN()])

    def comparable(record):
        return without_timings({k: v for k, v in RunRecord.from_dict(record).to_dict().items() if k != "key"})

    assert comparable(rec.record) == comparable(harness)


def test_a_crash_inside_with_is_recorded_and_the_profile_left_empty_without_training_arrays(tmp_path):
    import trainwreck.keras

    keras.utils.set_random_seed(SEED)
    x = np.random.default_rng(0).random((96, 5)).astype("float32")
    y = np.zeros(96, "int64")
    y[70] = 7   # outside the 3 classes: sparse cross-entropy raises on the third batch
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    out = io.StringIO()
    with pytest.raises(Exception) as raised, contextlib.redirect_stdout(out):
        with trainwreck.keras.Recorder(tmp_path / "crash.json", ["nan-guard"], probe_x=x[:32], probe_y=y[:32]) as rec:
            model.fit(x, y, batch_size=BATCH, epochs=2, verbose=0, shuffle=False, callbacks=[rec])
    record = RunRecord.from_dict(json.loads((tmp_path / "crash.json").read_text())["record"])
    assert record.outcome.status == "crashed" and record.outcome.exception_type == type(raised.value).__name__
    assert record.data == DataProfile() and record.model.batch_size == 0
    assert record.trace[0].completed is False and record.trace[0].steps == 2
    assert "the data profile is empty: no x_train/y_train arrays were given" in out.getvalue()


def test_recorder_without_training_data_says_what_it_needs():
    import trainwreck.keras

    with pytest.raises(ValueError, match="probe_x= and probe_y="):
        trainwreck.keras.Recorder("run.json", ["nan-guard"])


def test_unknown_detector_is_refused_before_training():
    import trainwreck.keras
    from trainwreck.registry import UnknownName

    with pytest.raises(UnknownName, match="did you mean 'nan-guard'"):
        trainwreck.keras.Recorder(None, ["nan-gaurd"], probe_x=np.zeros((4, 2)), probe_y=np.zeros(4))


# ------------------------------------------------------------------ trainwreck diagnose


def _lines_of(diagnoses: dict) -> list[str]:
    from trainwreck.detectors.live import format_diagnosis

    return [format_diagnosis(n, d) for n, ds in diagnoses.items() for d in ds]


@pytest.mark.parametrize("variant", ["broken", "healthy"])
def test_diagnose_says_what_the_recorder_printed(runs, capsys, variant):
    path, rec, out, *_ = runs[variant]
    detectors = [a for d in DETECTORS for a in ("-d", d)]
    code, text = _diagnose_in_process(capsys, str(path), *detectors)
    assert code == 0
    assert sorted(ln for ln in text.splitlines() if ln.startswith("epoch ")) == _diagnosis_lines(out)
    code, text = _diagnose_in_process(capsys, str(path), *detectors, "--json")
    doc = json.loads(path.read_text())
    assert code == 0 and json.loads(text)["diagnoses"] == {d: doc["diagnoses"][d] for d in DETECTORS}


def test_diagnose_through_a_subprocess(runs):
    path, _, out, *_ = runs["broken"]
    r = subprocess.run([sys.executable, "-c", DIAGNOSE, "diagnose", str(path), "-d", "nan-guard", "-d", "autotrainer-mapped",
                        "-d", "data-lint"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert sorted(ln for ln in r.stdout.splitlines() if ln.startswith("epoch ")) == _diagnosis_lines(out)


def test_diagnose_reads_a_corpus_record_file(tmp_path, capsys):
    from trainwreck.store import RunStore

    record = _nan_record()
    store = RunStore(tmp_path)
    store.put(record["key"], record, {"test": {}})
    code, text = _diagnose_in_process(capsys, str(store.path(record["key"])), "-d", "nan-guard")
    assert code == 0 and "| nan-guard | symptom nan_loss |" in text


def test_diagnose_says_a_learned_detector_is_not_trained_outside_the_bench(tmp_path, capsys):
    """deepfd is fitted per fold inside the bench only: on a lone record it names nothing, and says why."""
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"record": _nan_record()}))
    from trainwreck.commands import diagnose

    parser = argparse.ArgumentParser()
    diagnose.register(parser.add_subparsers())
    args = parser.parse_args(["diagnose", str(good), "-d", "deepfd", "--json"])
    capsys.readouterr()
    assert args.fn(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["diagnoses"] == {"deepfd": []} and out["errors"]["deepfd"].startswith("not trained:")


def _nan_record() -> dict:
    """A record built without training: one epoch whose loss is NaN."""
    return {"key": "a" * 24, "seed": 0, "trace": [{"epoch": 0, "logs": {"loss": float("nan")}}],
            "outcome": {"status": "nan", "epochs_run": 1}}


def test_diagnose_bad_input_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "not.json").write_text("{ nope")
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "wrong.json").write_text(json.dumps({"record": {"key": "k", "trace": [{"epoch": "zero"}]}}))
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"record": _nan_record()}))
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps({"format": 1, "key": "k", "checksum": "0" * 64,
                                    "record": _nan_record(), "extras": {}}))
    cases = [([str(tmp_path / "missing.json")], "no such file"), ([str(tmp_path)], "not a file"),
             ([str(tmp_path / "not.json")], "not readable as JSON"), ([str(tmp_path / "list.json")], "not a valid run record"),
             ([str(tmp_path / "wrong.json")], "trace[0].epoch"), ([str(tampered)], "checksum mismatch"),
             ([str(good), "-d", "nan-gaurd"], "did you mean 'nan-guard'"),
             ([str(good), "--detector-spec", "nosuchmodule:Thing"], "nosuchmodule")]
    for argv, message in cases:
        with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
            _diagnose_in_process(capsys, *argv)


def test_diagnose_on_the_command_line_exits_2_with_one_line(tmp_path):
    r = run_cli("diagnose", str(tmp_path / "missing.json"), timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip() == f"trainwreck: error: {tmp_path / 'missing.json'}: no such file"
    assert "Traceback" not in r.stderr


def test_diagnose_and_the_recorder_core_do_not_import_a_backend():
    code = ("import sys, trainwreck, trainwreck.summary, trainwreck.detectors.live, trainwreck.commands.diagnose; "
            "bad = [m for m in ('tensorflow', 'keras', 'jax', 'torch') if m in sys.modules]; "
            "sys.exit(f'imported {bad}' if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr + r.stdout
