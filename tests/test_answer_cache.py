"""The answer cache (trainwreck.answers): a warm rescoring reads a built-in's stored answer to an unchanged
record, gives exactly the rows a replay gives, and never serves an answer to a record, a label set or a
code base other than the one it was computed for."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from trainwreck.answers import AnswerCache, cacheable, code_digest, source_digest
from trainwreck.detectors.loading import BUILTINS, DetectorInfo
from trainwreck.score import score_runs

CASES = ("lr-divergence", "unscaled-features", "validation-leakage")


def _quiet(*_):
    pass


def _rows(rows):
    return sorted((r.detector, r.run_key, r.seed, r.variant, r.diagnoses, r.error, r.latency_epochs,
                   (r.extra or {}).get("fold")) for r in rows)


def _tamper(path, fn) -> None:
    doc = json.loads(path.read_text())
    for k in list(doc["answers"]):
        doc["answers"][k] = fn(k, doc["answers"][k])
    path.write_text(json.dumps(doc))


SENTINEL = [{"cause": None, "symptom": "from-the-cache", "epoch": 0, "confidence": 1.0, "evidence": "planted"}]


def _plant(k, answer):
    if k.startswith("crossfit:"):
        return {run: {**a, "diagnoses": SENTINEL} for run, a in answer.items()}
    return {**answer, "diagnoses": SENTINEL}


@pytest.mark.slow
def test_a_cached_rescoring_equals_a_replay_and_reads_only_what_still_holds(corpus_results, tmp_path):
    runs = [r for (case, _, _), r in corpus_results.items() if case in CASES]
    infos = [DetectorInfo(n, BUILTINS[n], "builtin") for n in ("nan-guard", "autotrainer", "deepfd")]
    replayed = score_runs(runs, infos, jobs=2, log=_quiet)
    first = score_runs(runs, infos, jobs=2, log=_quiet, answers=AnswerCache(tmp_path))
    files = {p.name.rsplit("-", 1)[0]: p for p in (tmp_path / code_digest()[:24]).glob("*.json")}
    assert set(files) == {"nan-guard", "autotrainer", "deepfd"}
    second = score_runs(runs, infos, jobs=2, log=_quiet, answers=AnswerCache(tmp_path))
    assert _rows(first) == _rows(replayed) == _rows(second)

    # the second rescoring read the stored answers: plant a finding in them and it shows
    for p in files.values():
        _tamper(p, _plant)
    planted = score_runs(runs, infos, jobs=2, log=_quiet, answers=AnswerCache(tmp_path))
    assert all(r.symptoms == ("from-the-cache",) for r in planted)

    # ... but never for a record that changed, a cross-fit over other labels, or with --fresh
    changed = [dataclasses.replace(r, checksum="0" * 64) if r.spec.variant == "fixed" else r for r in runs]
    mixed = score_runs(changed, infos, jobs=2, log=_quiet, answers=AnswerCache(tmp_path))
    for r in mixed:
        fresh_record = r.variant == "fixed"
        planted_answer = r.symptoms == ("from-the-cache",)
        # deepfd's cross-fit is one entry over every record and label: any change recomputes all of it
        assert planted_answer == (not fresh_record and r.detector != "deepfd"), r
    fresh = score_runs(runs, infos, jobs=2, log=_quiet, answers=AnswerCache(tmp_path, fresh=True))
    assert _rows(fresh) == _rows(replayed)
    again = score_runs(runs, infos, jobs=2, log=_quiet, answers=AnswerCache(tmp_path))
    assert _rows(again) == _rows(replayed)   # --fresh rewrote the planted answers


@pytest.mark.slow
def test_errors_and_plugins_are_never_cached(corpus_results, tmp_path):
    runs = [r for (case, _, _), r in corpus_results.items() if case == "lr-divergence"]
    crashing = DetectorInfo("crashing", "tests.bad_detectors:Crashing", "builtin")   # posed as a built-in
    assert not cacheable(crashing)
    plugin = DetectorInfo("nan-guard", BUILTINS["nan-guard"], "some-plugin 1.0")   # as a plugin would ship it
    assert not cacheable(plugin)
    score_runs(runs, [crashing, plugin], jobs=1, log=_quiet, answers=AnswerCache(tmp_path))
    assert not list(tmp_path.rglob("*.json"))


def test_any_edit_to_the_package_sources_changes_the_digest(tmp_path):
    import shutil

    import trainwreck
    import trainwreck.detectors

    roots = {}
    for pkg in (trainwreck, trainwreck.detectors):
        roots[pkg.__name__] = shutil.copytree(Path(pkg.__file__).parent, tmp_path / pkg.__name__,
                                              ignore=shutil.ignore_patterns("__pycache__"))
    base = source_digest(roots)
    assert base == source_digest(roots) and len(code_digest()) == 64
    target = roots["trainwreck.detectors"] / "nan_guard.py"
    text = target.read_text()
    target.write_text(text + "\n")
    assert source_digest(roots) != base
    target.write_text(text)
    (roots["trainwreck"] / "commands" / "extra.py").write_text("")
    assert source_digest(roots) != base


def test_answers_of_other_code_are_removed_when_this_code_writes_its_first(tmp_path):
    stale = tmp_path / ("0" * 24)
    (stale / "nan-guard-x.json").parent.mkdir(parents=True)
    (stale / "nan-guard-x.json").write_text("{}")
    keep = tmp_path / "notes"
    keep.mkdir()
    cache = AnswerCache(tmp_path)
    info = DetectorInfo("nan-guard", BUILTINS["nan-guard"], "builtin")
    cache._write(info, {"k:c": {"diagnoses": []}})
    assert not stale.exists() and keep.exists()
    assert [p.parent.name for p in tmp_path.rglob("*.json")] == [code_digest()[:24]]


def test_a_results_directory_that_cannot_take_answers_only_costs_the_speed_up(tmp_path):
    (tmp_path / "blocker").write_text("a file where the cache's directory would go")
    cache = AnswerCache(tmp_path / "blocker")
    info = DetectorInfo("nan-guard", BUILTINS["nan-guard"], "builtin")
    cache._write(info, {"k:c": {"diagnoses": []}})   # no exception: scoring goes on
    assert cache.read_only and (tmp_path / "blocker").is_file()
