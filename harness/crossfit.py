"""Scoring a learned detector (DeepFD's classifiers) without ever showing it a label of the run it diagnoses.

A learned detector is trained on labelled runs, and the only labelled runs are the corpus's. Scoring
it on the runs it was trained on would measure memory, so the corpus is split by case into folds
(scikit-learn's `GroupKFold`): each run is diagnosed by a model fitted on the runs of the other cases
only. All three steps run in the detector's worker, like any other detector code:

1. features: `detector.features(record)` for every run (no label involved);
2. fit: per fold, `cls.fit(features, labels, seed)` on the training cases' valid runs; the labels
   are the harness's (a fault run's cause, `healthy` for fixed and trap runs) and only ever those of
   the training cases;
3. diagnose: every held-out run, with `cls(model)` of its fold.

Each answer carries its fold, and `fold_table` says which cases each fold held out, so a reader
can check that no case was diagnosed by a model that saw it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .executor import Job, WorkerPool
from .taxonomy import HEALTHY

__all__ = ["FOLDS", "Fold", "plan_folds", "label_of", "crossfit", "fold_table"]

FOLDS = 5
SEED = 0
FIT_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Fold:
    index: int
    held_out: tuple[str, ...]       # case ids diagnosed by this fold's model
    train_cases: tuple[str, ...]    # case ids whose runs (and labels) it was fitted on


def label_of(res) -> str:
    """What a learned detector is taught for a run: the case's cause on a broken fault run, else healthy."""
    case = res.spec.case
    return case.cause if res.spec.variant == "broken" and case.cause != HEALTHY else HEALTHY


def plan_folds(case_ids: list[str], n: int = FOLDS) -> list[Fold]:
    """Cases split into n folds (GroupKFold over the cases in sorted order: deterministic)."""
    import numpy as np
    from sklearn.model_selection import GroupKFold

    cases = sorted(set(case_ids))
    n = min(n, len(cases))
    if n < 2:
        return []
    idx = np.arange(len(cases))
    out = []
    for k, (train, test) in enumerate(GroupKFold(n_splits=n).split(idx, groups=idx)):
        out.append(Fold(k, tuple(cases[i] for i in test), tuple(cases[i] for i in train)))
    return out


def crossfit(spec: str, results: list, plain: dict, budget, *, jobs: int = 1,
             log=print) -> tuple[dict[str, tuple[dict | None, str]], list[Fold]]:
    """{run key: (answer, error)} for every run, each answer with its "fold"; and the folds.

    `plain`: each run's record as plain data, by key; `budget(n_epochs)`: one run's time limit. The runs of
    a fold travel to the worker as one job (one `diagnose_many` call); a fold whose job fails is done
    again run by run, so one bad record costs its own row only."""
    by_key = {r.spec.key: r for r in results}
    folds = plan_folds([r.spec.case.id for r in results])
    if not folds:
        return {k: (None, "not run: a learned detector needs at least two cases") for k in by_key}, []
    fold_of = {case: f.index for f in folds for case in f.held_out}
    chunks = {f.index: [k for k, r in by_key.items() if fold_of[r.spec.case.id] == f.index] for f in folds}
    with WorkerPool("detect", (spec,), n=jobs) as pool:
        feats, answers = _features(pool, chunks, by_key, plain, budget)
        models, fit_errors = _fit(pool, folds, by_key, feats)
        replay = bool(getattr(_cls(spec), "replay", True))
        runs = {}
        for f, keys in chunks.items():
            keys = [k for k in keys if k not in answers]
            if f in fit_errors:
                answers.update({k: (None, fit_errors[f]) for k in keys})
            elif keys:
                runs[f] = {"records": {k: plain[k] for k in keys}, "model": models[f], "replay": replay}
        for k, value in _by_chunk(pool, runs, by_key, budget):
            answers[k] = ({**value[0], "fold": fold_of[by_key[k].spec.case.id]}, "") if value[0] else value
    for f in folds:
        log(f"  fold {f.index}: fitted on {len(f.train_cases)} cases, diagnoses {len(f.held_out)}: "
            f"{', '.join(f.held_out)}")
    return answers, folds


def _by_chunk(pool, payloads: dict, by_key: dict, budget):
    """(run key, (value, error)) from one job per chunk ({"records": ...} payloads, answered {key: value});
    a chunk whose job fails is run again one record per job."""
    jobs = [Job(str(f), p, sum(budget(len(by_key[k].record.trace)) for k in p["records"]))
            for f, p in payloads.items()]
    retry = []
    for jr in pool.run(jobs):
        if jr.status == "ok":
            yield from ((k, v) for k, v in jr.value.items())
        else:
            p = payloads[int(jr.job.key)]
            retry += [Job(k, {**p, "records": {k: rec}}, budget(len(by_key[k].record.trace)))
                      for k, rec in p["records"].items()]
    for jr in pool.run(retry):
        yield (jr.job.key, jr.value[jr.job.key]) if jr.status == "ok" else (jr.job.key, (None, jr.brief()))


def _features(pool, chunks: dict, by_key: dict, plain: dict, budget) -> tuple[dict, dict]:
    """({run key: features}, {run key: (None, error)} for the runs whose features failed)."""
    payloads = {f: {"features": True, "records": {k: plain[k] for k in keys}} for f, keys in chunks.items() if keys}
    feats, errors = {}, {}
    for k, (value, err) in _by_chunk(pool, payloads, by_key, budget):
        if value is None:
            errors[k] = (None, err)
        else:
            feats[k] = value
    return feats, errors


def _fit(pool, folds: list[Fold], by_key: dict, feats: dict) -> tuple[dict, dict]:
    """({fold: model}, {fold: error}): each fold's model, from the valid runs of its training cases only."""
    fit_jobs = []
    for fold in folds:
        train = set(fold.train_cases)
        keys = [k for k, r in by_key.items() if r.spec.case.id in train and k in feats and r.verdict.holds]
        fit_jobs.append(Job(str(fold.index), {"fit": {"features": [feats[k] for k in keys],
                                                      "labels": [label_of(by_key[k]) for k in keys],
                                                      "seed": SEED}}, FIT_TIMEOUT_S))
    models, errors = {}, {}
    for jr in pool.run(fit_jobs):
        if jr.status == "ok":
            models[int(jr.job.key)] = jr.value
        else:
            errors[int(jr.job.key)] = f"fit {jr.brief()}"
    return models, errors


def _cls(spec: str):
    from trainwreck.detectors.loading import resolve_class

    return resolve_class(spec)


def fold_table(rows) -> list[dict]:
    """Per learned detector and fold: the cases it held out and how many runs it diagnosed, from score rows."""
    out: dict[tuple, dict] = {}
    for r in rows:
        fold = (r.extra or {}).get("fold")
        if fold is None:
            continue
        entry = out.setdefault((r.detector, fold), {"detector": r.detector, "fold": fold, "cases": set(), "runs": 0})
        entry["cases"].add(r.case_id)
        entry["runs"] += 1
    return [{**e, "cases": sorted(e["cases"])} for _, e in sorted(out.items())]
