"""The robustness check: does each case prove its mechanism with a margin, on any CPU?

A case runs on seeds 0-4 (beyond the ones it declares) in the default setting,
and on its declared seeds under each perturbation in `hardware.PERTURBATIONS`
(oneDNN off, oneDNN limited to AVX2, 2 threads, the JAX backend). For every
oracle condition the margin is the distance of the *worst* run, over every
setting, from the bound, in units of the standard deviation of that measure
over the default-setting seeds:

    margin = min over runs of (value - min) or (max - value)  /  sd over seeds 0-4

(for the JAX setting, the sd over its own seeds: another backend's numerics may put the
same mechanism on another scale).

A condition holds robustly when every run meets it and its margin is at least
`MIN_MARGIN`; a bound that a seed's normal scatter could cross is a bug in the
case, not bad luck. (The margin is the *worst* of 8 to 17 runs; for normal scatter,
a worst run one sd past the bound puts the typical run two to three sd past it.) Counts and categories (`outcome`, `loss_nonfinite`, ...)
have no distance: they hold robustly when every run meets them. Every run is an
ordinary cached run (its key includes the setting), so a rerun trains nothing.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from .case import Case
from .hardware import PERTURBATIONS, cpu_facts
from .oracle import MEASURES

__all__ = ["ROBUST_SEEDS", "MIN_MARGIN", "Setting", "settings_for", "run_robustness", "CaseRobustness",
           "summary_rows", "condition_rows", "write_robustness", "check", "robustness_fingerprint"]

ROBUST_SEEDS = [0, 1, 2, 3, 4]
MIN_MARGIN = 1.0
# Where the seeds agree exactly, the spread is taken as this fraction of the bound's scale, so a
# deterministic measure sitting exactly on its bound still has margin ~0, not 0/0.
_SPREAD_FLOOR = 1e-3


@dataclass(frozen=True)
class Setting:
    name: str                 # "seeds" for the default setting, else a perturbation name
    doc: str
    backend: str = "tensorflow"
    threads: int = 1
    env: dict = field(default_factory=dict)
    seeds: tuple = ()
    skipped: str = ""         # why this setting does not run for this case here ('' when it runs)


def settings_for(case: Case, facts: dict | None = None, base_threads: int = 1) -> list[Setting]:
    """The default setting on seeds 0-4 (and the declared ones), then each perturbation on the declared seeds."""
    facts = facts or cpu_facts()
    out = [Setting("seeds", "default setting, seeds 0-4 and the declared seeds", threads=base_threads,
                   seeds=tuple(sorted(set(ROBUST_SEEDS) | set(case.seeds))))]
    for name in PERTURBATIONS.names():
        p = PERTURBATIONS.get(name)
        skipped = p.applies(facts)
        if p.backend and p.backend in case.backend_notes:
            skipped = f"the case declares a {p.backend} backend note: {' '.join(case.backend_notes[p.backend].split())}"
        out.append(Setting(name, p.doc, backend=p.backend or "tensorflow", threads=p.threads or base_threads,
                           env=dict(p.env), seeds=tuple(case.seeds), skipped=skipped))
    return out


@dataclass
class ConditionRobustness:
    variant: str
    condition: str            # e.g. best(val_accuracy)
    bound: str
    values: dict              # setting -> [value per seed]
    seed_sd: float
    margin: float             # inf for a discrete measure that held everywhere; -inf when a run fails it
    runs: int
    held: int
    worst_setting: str
    log10: bool = False       # seed_sd and margin are on the log10 scale (a ratio or norm)

    @property
    def robust(self) -> bool:
        return self.held == self.runs and self.margin >= MIN_MARGIN


@dataclass
class CaseRobustness:
    case_id: str
    conditions: list[ConditionRobustness]
    settings: dict            # name -> '' (ran) or why it was skipped
    probes: dict              # setting -> sorted distinct platform probe readings

    @property
    def margin(self) -> float:
        return min((c.margin for c in self.conditions), default=math.nan)

    @property
    def robust(self) -> bool:
        return bool(self.conditions) and all(c.robust for c in self.conditions)

    @property
    def weakest(self) -> ConditionRobustness | None:
        return min(self.conditions, key=lambda c: (c.robust, c.margin), default=None)


def _distance(value, lo: float | None, hi: float | None) -> float:
    """How far past its bound(s) a numeric value is (negative when it misses)."""
    if not isinstance(value, float) or math.isnan(value):
        return -math.inf
    d = math.inf
    if lo is not None:
        d = min(d, value - lo)
    if hi is not None:
        d = min(d, hi - value)
    return d


def _scale(lo: float | None, hi: float | None) -> float:
    """The smallest spread a condition is judged with: a fraction of its bound (of 1 for a bound of 0),
    so a structural exact value (a gradient of exactly 0 against <= 1e-6) has its true, large margin."""
    bound = max((abs(b) for b in (lo, hi) if b is not None), default=1.0)
    return _SPREAD_FLOOR * (bound or 1.0)


def _log10(v):
    """log10 for a measure that scatters by factors: 0 is infinitely far below any positive bound."""
    if not isinstance(v, float) or math.isnan(v):
        return v
    return math.log10(v) if v > 0 else -math.inf


def _on_scale(cond) -> tuple[float | None, float | None, Callable]:
    """(min, max, transform) on the scale the measure scatters on: log10 for ratios and norms (a
    gradient ratio of 1.1 and of 6.5 are the same healthy run), else as measured."""
    bounds = [b for b in (cond.min, cond.max) if b is not None]
    if not (MEASURES.get(cond.measure).log_scale and bounds and all(b > 0 for b in bounds)):
        return cond.min, cond.max, None
    lo = math.log10(cond.min) if cond.min is not None else None
    hi = math.log10(cond.max) if cond.max is not None else None
    return lo, hi, _log10


def _spread(values: list) -> float:
    finite = [v for v in values if isinstance(v, float) and math.isfinite(v)]
    return statistics.stdev(finite) if len(finite) > 1 else 0.0


def _condition_robustness(variant: str, cond, entries: list[tuple[str, int, object, bool]],
                          other_backends: frozenset = frozenset()) -> ConditionRobustness:
    """entries: (setting, seed, value, holds) for every run judged by this condition.

    A run's distance from the bound is measured in the seed spread of its own backend: the default
    setting's seeds for TensorFlow and its CPU perturbations, the setting's own seeds for a setting in
    `other_backends`, whose numerics can put the same mechanism on another scale (JAX clips the
    cross-entropy a TensorFlow run lets grow without bound). Ratios and norms are compared in log10."""
    name = f"{cond.measure}({cond.key})" if cond.key else cond.measure
    values: dict[str, list] = defaultdict(list)
    for setting, _seed, value, _ok in entries:
        values[setting].append(value)
    held = sum(ok for *_, ok in entries)
    lo, hi, transform = _on_scale(cond)
    scale = transform or (lambda v: v)
    scaled = {s: [scale(v) for v in vs] for s, vs in values.items()}
    sd = _spread(scaled.get("seeds", []))
    spread = {s: _spread(vs) if s in other_backends else sd for s, vs in scaled.items()}
    discrete = MEASURES.get(cond.measure).discrete or cond.in_ is not None
    worst_setting, margin = "", math.inf
    for setting, _seed, value, ok in entries:
        m = (math.inf if ok else -math.inf) if discrete else \
            _distance(scale(value), lo, hi) / max(spread[setting], _scale(lo, hi))
        if m < margin or not worst_setting:
            worst_setting, margin = setting, m
    bound = ", ".join(p for p in (f"in {cond.in_}" if cond.in_ is not None else "",
                                  f">= {cond.min:g}" if cond.min is not None else "",
                                  f"<= {cond.max:g}" if cond.max is not None else "") if p)
    return ConditionRobustness(variant, name, bound, dict(values), sd, margin, len(entries), held, worst_setting,
                               log10=transform is not None)


def assess(case: Case, settings: list[Setting], results_by_setting: dict) -> CaseRobustness:
    """Margins per oracle condition from the runs of every setting that ran."""
    grouped: dict[tuple, list] = defaultdict(list)
    conds: dict[tuple, object] = {}
    probes: dict[str, set] = defaultdict(set)
    for setting, results in results_by_setting.items():
        for r in results:
            if r.spec.case.id != case.id or r.spec.severity is not None:
                continue
            readings = dict(r.record.environment.probes)
            probes[setting] |= {f"{k}={v}" for k, v in readings.items()}
            for cond, res in zip(case.oracle_for(r.spec.variant, readings), r.verdict.conditions):
                key = (r.spec.variant, cond.measure, cond.key, cond.min, cond.max, tuple(cond.in_ or ()))
                conds[key] = cond
                grouped[key].append((setting, r.spec.seed, res.value, res.holds))
    other = frozenset(s.name for s in settings if s.backend != "tensorflow")
    rows = [_condition_robustness(key[0], conds[key], entries, other) for key, entries in grouped.items()]
    return CaseRobustness(case.id, rows, {s.name: s.skipped for s in settings},
                          {k: sorted(v) for k, v in probes.items()})


def run_robustness(cases: list[Case], execute_setting, *, base_threads: int = 1, log=print) -> list[CaseRobustness]:
    """Run every setting (execute_setting(setting, cases) -> results) and assess each case."""
    facts = cpu_facts()
    per_case_settings = {c.id: settings_for(c, facts, base_threads) for c in cases}
    results_by_setting: dict[str, list] = {}
    names = [s.name for s in next(iter(per_case_settings.values()))]
    for name in names:
        chosen = [c for c in cases if not _setting(per_case_settings[c.id], name).skipped]
        if not chosen:
            log(f"robustness: {name}: skipped ({_setting(per_case_settings[cases[0].id], name).skipped})")
            continue
        setting = _setting(per_case_settings[chosen[0].id], name)
        log(f"robustness: {name}: {setting.doc} ({len(chosen)} case(s))")
        results_by_setting[name] = execute_setting(setting, chosen)
    return [assess(c, per_case_settings[c.id], results_by_setting) for c in cases]


def _setting(settings: list[Setting], name: str) -> Setting:
    return next(s for s in settings if s.name == name)


def _fmt(x) -> str:
    if isinstance(x, float):
        return "inf" if x == math.inf else "-inf" if x == -math.inf else f"{x:.3g}"
    return str(x)


def summary_rows(report: list[CaseRobustness]) -> list[list]:
    """One row per case: its smallest margin, where it is, and the verdict."""
    rows = []
    for c in report:
        w = c.weakest
        ran = [n for n, why in c.settings.items() if not why]
        rows.append([c.case_id, "yes" if c.robust else "NO", _fmt(c.margin),
                     f"{w.variant} {w.condition} [{w.bound}] on {w.worst_setting}" if w else "–",
                     " ".join(ran), "; ".join(sorted({p for ps in c.probes.values() for p in ps})) or "–"])
    return rows


def condition_rows(report: list[CaseRobustness]) -> list[list]:
    """One row per case, variant and condition: values per setting, the seed spread and the margin."""
    rows = []
    for c in report:
        for k in c.conditions:
            shown = "; ".join(f"{s}: {' '.join(_fmt(v) for v in vs)}" for s, vs in k.values.items())
            rows.append([c.case_id, k.variant, k.condition, k.bound, shown,
                         _fmt(k.seed_sd) + (" (log10)" if k.log10 else ""), _fmt(k.margin),
                         f"{k.held}/{k.runs}", "yes" if k.robust else "NO"])
    return rows


SUMMARY_HEADERS = ["case", "robust", "smallest margin", "where", "settings run", "platform probes"]
CONDITION_HEADERS = ["case", "variant", "condition", "bound", "values per setting", "seed sd", "margin", "held",
                     "robust"]


def write_robustness(report: list[CaseRobustness], fingerprint: dict, out: Path) -> list[Path]:
    """results/robustness.md (both tables, with the environment) and robustness.json (everything)."""
    from tabulate import tabulate

    out.mkdir(parents=True, exist_ok=True)
    n_ok = sum(c.robust for c in report)
    skipped = sorted({f"{n}: {why}" for c in report for n, why in c.settings.items() if why and n != "jax"})
    md = ["# Robustness of the corpus", "",
          f"{n_ok}/{len(report)} cases hold robustly: every run meets its oracle on seeds "
          f"{ROBUST_SEEDS[0]}-{ROBUST_SEEDS[-1]} and under every perturbation, and the worst run is at least "
          f"{MIN_MARGIN:g} seed standard deviation(s) past each bound (margin = (worst value - bound) / sd over "
          f"seeds {ROBUST_SEEDS[0]}-{ROBUST_SEEDS[-1]}, or over the JAX setting's own seeds for a JAX run; ratios and "
          "norms such as grad_ratio are compared in log10; inf for counts and categories that hold everywhere).", ""]
    md += [f"Not run on this machine: {s}." for s in skipped] + ([""] if skipped else [])
    md += [tabulate(summary_rows(report), headers=SUMMARY_HEADERS, tablefmt="github"), "",
           "## Every condition", "",
           tabulate(condition_rows(report), headers=CONDITION_HEADERS, tablefmt="github"), "",
           "## Environment", "", "```", json.dumps(fingerprint, indent=2), "```", ""]
    paths = [out / "robustness.md", out / "robustness.json"]
    paths[0].write_text("\n".join(md))
    doc = {"fingerprint": fingerprint, "min_margin": MIN_MARGIN, "robust_seeds": ROBUST_SEEDS,
           "cases": [{"case": c.case_id, "robust": c.robust, "margin": _json_num(c.margin), "settings": c.settings,
                      "probes": c.probes,
                      "conditions": [{**{k: v for k, v in asdict(k).items() if k not in ("margin", "seed_sd")},
                                      "values": {s: [_json_num(v) for v in vs] for s, vs in k.values.items()},
                                      "margin": _json_num(k.margin), "seed_sd": _json_num(k.seed_sd),
                                      "robust": k.robust} for k in c.conditions]} for c in report]}
    paths[1].write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")
    return paths


def _json_num(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


# ---------------------------------------------------------------- command line

def check(cases: list[Case], execute_setting, *, verbose: bool = False, log=print) -> tuple[list[CaseRobustness], int]:
    """Run and assess; print the per-case summary; exit code 0 when every case holds robustly, else 1."""
    from tabulate import tabulate

    report = run_robustness(cases, execute_setting, log=log)
    if len(cases) == 1 or verbose:
        print(tabulate(condition_rows(report), headers=CONDITION_HEADERS, tablefmt="simple"))
    print(tabulate(summary_rows(report), headers=SUMMARY_HEADERS, tablefmt="simple"))
    bad = [c for c in report if not c.robust]
    for c in bad:
        w = c.weakest
        print(f"NOT ROBUST {c.case_id}: {w.variant} {w.condition} [{w.bound}] margin {_fmt(w.margin)} "
              f"(held {w.held}/{w.runs}, worst on {w.worst_setting})")
    print(f"robustness: {len(report) - len(bad)}/{len(report)} cases hold on seeds "
          f"{ROBUST_SEEDS[0]}-{ROBUST_SEEDS[-1]} and every perturbation with margin >= {MIN_MARGIN:g}")
    return report, (1 if bad else 0)


def robustness_fingerprint(device: str, command: str) -> dict:
    from .environment import key_facts
    from .hardware import onednn_state
    from .run import resolve_device

    # key_facts() already carries the numerics variables (TF_ENABLE_ONEDNN_OPTS, ONEDNN_MAX_CPU_ISA)
    return {**key_facts("tensorflow", resolve_device(device)), "onednn": onednn_state(), "command": command}
