"""The pipeline as plain functions: select cases → run (or read the cache) → score → report.

Every command is a thin shell over these, and a notebook can call them directly::

    import trainwreck
    res = trainwreck.bench(cases="cases/", case=["lr-divergence"], detectors=["autotrainer"], seeds=[0])
    res.leaderboard.rows          # the same rows the CLI writes to results/leaderboard.*
    res.to_frame()                # a pandas DataFrame, where pandas is installed

They share the CLI's run cache (`results/runs/`, or `results=`), so a run trained by either is
reused by the other. Nothing here prints unless given a `log`; nothing here exits.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from .case import CASES_DIR, Case, load_corpus
from .errors import UsageError
from .registry import UnknownName

__all__ = ["ROOT", "DEFAULT_RESULTS", "results_dir", "answers_dir", "load_cases", "plan_runs", "run", "cached", "oracle_failures",
           "resolve_detectors", "score", "report", "bench", "Scores", "BenchResults", "Report", "report_rows",
           "read_scores", "filter_rows", "selection_of", "output_dir", "trace_resolution", "DEFAULT_TRACE_EVERY"]

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RESULTS = ROOT / "results"
Log = Callable[..., None]


def _quiet(*_args, **_kw) -> None:
    return None


def load_cases(cases: str | Path = CASES_DIR, *, case: Sequence[str] | None = None,
               family: Sequence[str] | None = None) -> list[Case]:
    """The validated corpus under `cases`, filtered by case id and family; an unknown id or an empty
    selection is an error, since every caller would otherwise report on nothing."""
    corpus = load_corpus(Path(cases))
    if case:
        known = {c.id for c in corpus}
        for cid in case:
            if cid not in known:
                raise UnknownName("case", cid, sorted(known))
        corpus = [c for c in corpus if c.id in case]
    if family:
        corpus = [c for c in corpus if c.family in family]
    if not corpus:
        raise UsageError("no case matches the filters")
    return corpus


def plan_runs(cases: list[Case], *, seeds: Sequence[int] | None = None, backend: str = "tensorflow",
              device: str = "auto", sweeps: bool = False, threads: int | None = None, env: dict | None = None,
              any_seeds: Sequence[int] | None = None, trace_every: int = 0):
    """The RunSpecs of the selection; a seed filter that leaves no run is an error naming the seeds declared.
    `trace_every` k > 0 adds a step record every k batches (a different cache entry than the per-epoch run)."""
    from .environment import WORKER_THREADS
    from .run import plan, resolve_device

    specs = plan(cases, seeds=list(seeds) if seeds is not None else None, backend=backend,
                 device=resolve_device(device), sweeps=sweeps,
                 threads=WORKER_THREADS if threads is None else threads, env=env,
                 any_seeds=list(any_seeds) if any_seeds is not None else None, trace_every=trace_every)
    if not any(s.severity is None for s in specs):   # sweep points alone make no claim to report on
        declared = sorted({s for c in cases for s in c.seeds})
        raise UsageError(f"no run matches the filters: seeds {list(seeds or [])} are not among the seeds the "
                         f"selected cases declare ({', '.join(map(str, declared))})")
    return specs


def results_dir(results: str | Path | None = None) -> Path:
    """Where runs are cached and tables written: `results`, else $TRAINWRECK_RESULTS, else ./results."""
    return Path(results or os.environ.get("TRAINWRECK_RESULTS") or DEFAULT_RESULTS)


def answers_dir(results: str | Path | None = None) -> Path:
    """The answer cache (trainwreck.answers), beside the run records it answers for."""
    return results_dir(results) / "runs" / ".answers"


def _store(results: str | Path | None):
    from .store import RunStore

    return RunStore(results_dir(results) / "runs")


def run(cases: list[Case], *, seeds: Sequence[int] | None = None, backend: str = "tensorflow",
        device: str = "auto", sweeps: bool = False, results: str | Path | None = None, jobs: int | None = None,
        timeout: float = 300.0, memory_limit_mb: int = 6144, executor: str = "local",
        ray_address: str | None = None, progress: bool = False, log: Log = _quiet, specs=None,
        trace_every: int = 0):
    """Train what the cache lacks and return every run's result (record, oracle verdict), in plan order."""
    from .run import Progress, default_jobs, execute

    specs = specs if specs is not None else plan_runs(cases, seeds=seeds, backend=backend, device=device,
                                                      sweeps=sweeps, trace_every=trace_every)
    store = _store(results)
    try:
        store.ensure_writable()
    except OSError as e:
        raise UsageError(str(e)) from None
    leftovers = store.clean_temp()
    if leftovers:
        log(f"removed {leftovers} partial file(s) left by an interrupted run")
    t0 = time.monotonic()
    out = execute(specs, store, jobs=jobs or default_jobs(), timeout=timeout, memory_limit_mb=memory_limit_mb,
                  progress=Progress(len(specs), progress), log=log, executor=executor, ray_address=ray_address)
    distinct = {r.spec.key: r.source for r in out}
    trained = sum(1 for src in distinct.values() if src != "cached")
    log(f"{len(distinct)} runs: {len(distinct) - trained} reused from the cache, {trained} trained "
        f"({time.monotonic() - t0:.1f}s)")
    return out


def cached(cases: list[Case], *, seeds: Sequence[int] | None = None, backend: str = "tensorflow",
           device: str = "auto", results: str | Path | None = None, sweeps: bool = True, log: Log = _quiet,
           trace_every: int = 0):
    """The results the cache holds for the selection, training nothing: a run it lacks (or holds damaged)
    is a UsageError that says what to run. Sweep points are optional: those not cached are left out."""
    from .run import NotCached, execute

    specs = plan_runs(cases, seeds=seeds, backend=backend, device=device, sweeps=sweeps, trace_every=trace_every)
    store = _store(results)
    specs = [s for s in specs if s.severity is None or store.path(s.key).exists()]
    try:
        return execute(specs, store, jobs=1, log=log, train=False)
    except NotCached as e:
        raise UsageError(f"{len(e.specs)} of {len(specs)} runs on {backend} are not cached or are damaged "
                         f"(e.g. {e.specs[0].label}); run `trainwreck run --backend {backend}` first, "
                         f"which trains exactly those") from None


DEFAULT_TRACE_EVERY = 10


def trace_resolution(detectors, trace_every: int | None = None) -> int:
    """The trace resolution to run at: `trace_every` when given, else every DEFAULT_TRACE_EVERY batches
    when some detector requires the per-step trace (`"steps"` in `needs`, not in `optional`), else per epoch."""
    if trace_every is not None:
        return trace_every
    wants_steps = any("steps" in getattr(cls, "needs", ()) and "steps" not in getattr(cls, "optional", ())
                      for cls in (info.detector_class() for info in detectors))
    return DEFAULT_TRACE_EVERY if wants_steps else 0


def oracle_failures(results) -> tuple[int, list]:
    """(runs that make a claim, those whose oracle does not hold); sweep points make no claim."""
    claims = [r for r in results if r.spec.severity is None]
    return len(claims), [r for r in claims if not r.verdict.holds]


def resolve_detectors(detectors: Iterable | None = None, specs: Sequence[str] = ()):
    """DetectorInfos for names, `module:Class` specs and Detector classes (None: every installed detector,
    plus `specs`), resolved before anything trains, so a typo or a broken plugin is reported in a second
    rather than after the corpus. A class must be importable by its module name: detectors run in workers."""
    from trainwreck.detectors.loading import resolve_class
    from trainwreck.detectors.loading import resolve_detectors as resolve

    if detectors is None:
        return resolve(None, list(specs))
    names, extra = [], list(specs)
    for d in detectors:
        if isinstance(d, str) and ":" not in d:
            names.append(d)
        else:
            spec = d if isinstance(d, str) else f"{d.__module__}:{d.__qualname__}"
            extra.append(spec)
            names.append(resolve_class(spec).name)
    return resolve(names or None, extra)


@dataclass
class Scores:
    """Every (detector, run) score row, and the detectors they came from."""
    detectors: list
    rows: list
    seconds: float = 0.0

    @property
    def errors(self) -> list:
        return [r for r in self.rows if r.error]


def score(results, detectors=None, *, jobs: int | None = None, log: Log = _quiet,
          answers: str | Path | None = None, fresh: bool = False) -> Scores:
    """Run each detector on each result's record, in detector workers (never trains). With `answers` (a
    results directory), the built-ins' answers to unchanged records are read from its answer cache
    (trainwreck.answers) and the new ones stored there; `fresh` replays every detector all the same."""
    from .answers import AnswerCache
    from .run import default_jobs
    from .score import score_runs

    infos = detectors if detectors and not isinstance(detectors[0], (str, type)) else resolve_detectors(detectors)
    cache = AnswerCache(answers_dir(answers), fresh=fresh) if answers is not None else None
    t0 = time.monotonic()
    rows = score_runs(results, infos, jobs=jobs or default_jobs(), log=log, answers=cache)
    return Scores(infos, rows, time.monotonic() - t0)


@dataclass
class Report:
    tables: list
    fingerprint: dict
    paths: list = field(default_factory=list)
    plots: list = field(default_factory=list)
    site: list = field(default_factory=list)


def selection_of(*, case=None, family=None, seeds=None, detectors=None) -> dict | None:
    """The filters of a command as data (None: the full corpus with every detector): what table titles
    state and what names the folder a filtered report goes to."""
    sel = {"case": sorted(case or []), "family": sorted(family or []), "seeds": sorted(seeds or []),
           "detector": sorted(str(d) for d in (detectors or []))}
    sel = {k: v for k, v in sel.items() if v}
    return sel or None


def output_dir(results: str | Path | None = None, selection: dict | None = None, out: str | Path | None = None) -> Path:
    """Where a report's tables go: `out` when given; the results directory for the full corpus; else
    `results/filtered/<short hash of the selection>/`, so a filtered run never overwrites the reference tables."""
    if out is not None:
        return Path(out)
    base = results_dir(results)
    if not selection:
        return base
    from .store import digest

    return base / "filtered" / digest(selection)[:12]


def report(results, scores: Scores, *, out: str | Path | None = None, command: str = "",
           plots: bool = True, selection: dict | None = None, html: bool = True,
           cases: str | Path = CASES_DIR) -> Report:
    """Build every table; with `out`, write them there (four formats each), scores.json, the plots and
    the HTML report. `selection` (see `selection_of`) is stated in every title."""
    from .report import fingerprint_for

    fp = fingerprint_for(results, scores.detectors, command, selection)
    rep = report_rows(scores.rows, fp, out=out, html=False)
    if out is not None:
        from .plots import write_plots

        rep.plots = write_plots(results, Path(out) / "plots") if plots else []
        rep.site = _site(rep, scores.rows, Path(out), cases) if html else []
    return rep


def report_rows(rows, fingerprint: dict, *, out: str | Path | None = None, html: bool = True,
                cases: str | Path = CASES_DIR, write_scores: bool = True) -> Report:
    """The tables of saved score rows; nothing is trained and no detector runs."""
    from .report import build_tables, write_tables

    tables = build_tables(rows, fingerprint)
    rep = Report(tables, fingerprint)
    if out is not None:
        rep.paths = write_tables(tables, fingerprint, Path(out), rows if write_scores else None)
        rep.site = _site(rep, rows, Path(out), cases) if html else []
    return rep


def _site(rep: Report, rows, out: Path, cases) -> list:
    from .html import write_site

    return write_site(out, rep.tables, rows, rep.fingerprint, cases_dir=Path(cases))


def read_scores(path: str | Path):
    """(fingerprint, score rows) of a saved scores.json; a UsageError saying what to run when it is absent,
    damaged or of another version."""
    from .score import read_scores as read

    return read(Path(path))


def filter_rows(rows, fingerprint: dict, *, case=None, family=None, seeds=None, detectors=None):
    """Saved score rows narrowed by the filters, and the fingerprint saying so; an empty result is an error."""
    sel = selection_of(case=case, family=family, seeds=seeds, detectors=detectors)
    if not sel:
        return rows, fingerprint
    keep = [r for r in rows if (not case or r.case_id in case) and (not family or r.family in family)
            and (not seeds or r.seed in seeds) and (not detectors or r.detector in detectors)]
    if not keep:
        raise UsageError(f"no saved score row matches the filters {sel}")
    kept_cases = sorted({r.case_id for r in keep})
    merged = {**(fingerprint.get("selection") or {}), **sel}
    runs = len({(r.case_id, r.variant, r.seed, str(r.severity)) for r in keep})
    fp = dict(fingerprint, selection=dict(sorted(merged.items())), case_ids=kept_cases, cases=len(kept_cases),
              runs=runs, seeds=sorted({r.seed for r in keep}))
    return keep, fp


@dataclass
class BenchResults:
    """What `bench` produced: the runs, the score rows and the tables, as data."""
    results: list
    scores: Scores
    report: Report

    @property
    def tables(self) -> dict:
        return {t.name: t for t in self.report.tables}

    @property
    def leaderboard(self):
        return self.tables["leaderboard"]

    @property
    def oracle_failures(self) -> list:
        return oracle_failures(self.results)[1]

    def to_frame(self, table: str = "leaderboard"):
        """A table as a pandas DataFrame (pandas is optional: `pip install pandas`)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_frame needs pandas, which is not installed: pip install pandas") from None
        t = self.tables[table]
        return pd.DataFrame(t.rows, columns=t.headers)


def bench(cases: str | Path = CASES_DIR, *, case: Sequence[str] | None = None, family: Sequence[str] | None = None,
          detectors: Iterable | None = None, seeds: Sequence[int] | None = None, backend: str = "tensorflow",
          device: str = "auto", sweeps: bool = True, results: str | Path | None = None, out: str | Path | None = None,
          jobs: int | None = None, timeout: float = 300.0, memory_limit_mb: int = 6144, executor: str = "local",
          ray_address: str | None = None, plots: bool = True, progress: bool = False, command: str = "",
          log: Log = _quiet, trace_every: int | None = None) -> BenchResults:
    """Validate, run, score and build the tables, as `trainwreck bench` does; tables are written only when
    `out` is given. `detectors`: names, `module:Class` specs or Detector classes (None: every installed one).
    `trace_every` None: the resolution the detectors need (see `trace_resolution`)."""
    selected = load_cases(cases, case=case, family=family)
    infos = resolve_detectors(detectors)
    specs = plan_runs(selected, seeds=seeds, backend=backend, device=device, sweeps=sweeps,
                      trace_every=trace_resolution(infos, trace_every))
    res = run(selected, results=results, jobs=jobs, timeout=timeout, memory_limit_mb=memory_limit_mb,
              executor=executor, ray_address=ray_address, progress=progress, log=log, specs=specs)
    sc = score(res, infos, jobs=jobs, log=log)
    sel = selection_of(case=case, family=family, seeds=seeds,
                       detectors=None if detectors is None else [i.name for i in infos])
    return BenchResults(res, sc, report(res, sc, out=out, command=command, plots=plots, selection=sel, cases=cases))
