"""Results tables in Markdown, LaTeX (booktabs), CSV and JSON, each with its fingerprint.

Each table is built once as a header list and rows, then rendered by four
pure functions; every file states the environment it came from and the
command that reproduces it.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from tabulate import tabulate

from .crossfit import fold_table
from .environment import trainwreck_version
from .metrics import (CI_NOTE, METRICS, Estimate, confusion, detector_metrics, per_cause_recall, resamples,
                      severity_onsets, significance)
from .score import SCORES_FILE, ScoreRow, write_scores
from .store import atomic_write_text, digest

__all__ = ["Table", "fingerprint_for", "build_tables", "write_tables", "FORMATS", "TIMING_HEADERS", "comparable",
           "selection_text", "render_md", "render_tex", "render_csv", "render_json", "WIDE_COLUMNS", "is_wide"]

FORMATS = ("md", "tex", "csv", "json")
# Columns that measure this machine's speed, not the benchmark's outcome: never compared.
TIMING_HEADERS = frozenset({"ms/run"})


def comparable(headers: list[str], rows: list[list]) -> list[list]:
    """Rows without their timing columns, for comparing two results files."""
    keep = [i for i, h in enumerate(headers) if h not in TIMING_HEADERS]
    return [[r[i] for i in keep] for r in rows]


@dataclass
class Table:
    name: str
    title: str
    headers: list[str]
    rows: list[list]
    notes: list[str] = field(default_factory=list)
    data: dict | list | None = None   # machine-readable twin for JSON


def fingerprint_for(results, detectors, command: str, selection: dict | None = None) -> dict:
    """Where the numbers came from; `selection` holds the filters (None: the full corpus)."""
    envs = [r.record.environment for r in results if r.record.environment.tensorflow]
    env = envs[0] if envs else None
    cases = {r.spec.case.id: r.spec.case for r in results}
    from .case import case_hash

    return {
        "trainwreck": trainwreck_version(),
        "date": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "python": env.python if env else "", "tensorflow": env.tensorflow if env else "",
        "keras": env.keras if env else "", "numpy": env.numpy if env else "", "sklearn": env.sklearn if env else "",
        "backend": env.backend if env else "", "device": env.device if env else "",
        "device_name": env.device_name if env else "", "platform": env.platform if env else "",
        **_cpu(env, results),
        "corpus_hash": digest(sorted((cid, case_hash(c)) for cid, c in cases.items()))[:16],
        "cases": len(cases), "case_ids": sorted(cases), "runs": len(results),
        "seeds": sorted({r.spec.seed for r in results}),
        "detectors": {d.name: {"version": d.version, "origin": d.origin} for d in detectors},
        "command": command,
        "selection": {k: list(v) for k, v in sorted((selection or {}).items()) if v} or None,
    }


def _cpu(env, results) -> dict:
    """The CPU and the settings that choose its kernels; a table over runs from two CPUs says so."""
    if env is None:
        return {}
    cpus = sorted({r.record.environment.cpu_model for r in results if r.record.environment.cpu_model})
    return {"cpu_model": env.cpu_model if len(cpus) <= 1 else "mixed: " + " | ".join(cpus),
            "cpu_vendor": env.cpu_vendor, "arch": env.arch, "cpu_flags": list(env.cpu_flags),
            "onednn": env.onednn, "numeric_env": dict(env.numeric_env), "threads": env.threads,
            "probes": dict(env.probes)}


def _pct(x: float) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"


def selection_text(fp: dict) -> str:
    """What a table covers, for its title: "over the corpus" only when nothing was filtered out."""
    sel = (fp or {}).get("selection")
    if not sel:
        return "over the corpus"
    parts = [f"{k} {', '.join(map(str, v))}" for k, v in sorted(sel.items()) if v]
    return "over a selection (" + "; ".join(parts) + ")"


DOCS_NOTE = "Definitions of every figure: docs/metrics.md (generated from trainwreck.metrics.METRICS)."
LEADERBOARD = ("detection", "false_alarm_fixed", "false_alarm_trap", "symptom_hit", "symptom_precision",
               "cause_accuracy", "cause_accuracy_flagged", "scope_recall", "scope_coverage", "macro_f1",
               "macro_f1_scope")


def _scope_text(scope: tuple | None) -> str:
    return "all (undeclared)" if scope is None else (", ".join(scope) or "none")


def _leaderboard(metrics, over: str) -> Table:
    headers = ["detector", "version"] + [METRICS[k].column for k in LEADERBOARD] + ["errors", "ms/run", "cases", "runs"]
    rows = [[m.detector, m.version, *[str(m.figures[k]) for k in LEADERBOARD], m.errors, _pct(m.ms_per_run),
             m.cases, m.runs] for m in metrics]
    na = [m.detector for m in metrics if m.causes is not None and not m.causes]
    notes = [f"Valid runs only (the oracle held). Each figure: mean over cases of the per-case mean over seeds; {CI_NOTE}.",
             "false alarms (fixed): the fixed runs of fault cases; false alarms (traps): every run of a healthy trap. "
             "cause acc. (flagged): among flagged broken runs. in-scope recall: over the causes the detector declares.",
             DOCS_NOTE]
    if na:
        notes.append(f"n/a: {', '.join(na)} declare(s) no causes (symptom-only), so no cause figure applies.")
    return Table("leaderboard", f"Leaderboard: detectors {over} (95% CI over cases)", headers, rows, notes,
                 [m.to_dict() for m in metrics])


def _significance(comparisons, over: str) -> Table:
    def p(x):
        return "–" if math.isnan(x) else (f"{x:.3f}" if x >= 0.001 else "<0.001")
    rows = [[METRICS[c.metric].column, c.a, c.b, c.cases, f"{c.value_a:.2f}", f"{c.value_b:.2f}",
             f"{c.difference:+.2f} [{c.low:+.2f}, {c.high:+.2f}]", p(c.p_bootstrap), f"{c.a_only}/{c.b_only}",
             p(c.p_mcnemar)] for c in comparisons]
    return Table("significance", f"Paired comparison of detectors {over}, with the case as the unit",
                 ["figure", "detector a", "detector b", "cases", "a", "b", "a - b [95% CI]", "p (bootstrap)",
                  "discordant a/b", "p (McNemar)"], rows,
                 ["a - b: mean per-case difference; interval and p from the paired bootstrap over cases (the same "
                  "resamples for both detectors). McNemar: exact binomial test on the cases where exactly one of "
                  "the two scores 1 (a case scores 1 when its figure is at least 0.5 over its seeds). "
                  "No correction for multiple comparisons.", DOCS_NOTE],
                 [c.to_dict() for c in comparisons])


def _per_run(rows: list[ScoreRow]) -> list[ScoreRow]:
    """One row per run (the first detector's), for the tables about runs rather than detectors."""
    return list({r.run_key: r for r in reversed(rows)}.values())[::-1]


def build_tables(rows: list[ScoreRow], fp: dict | None = None) -> list[Table]:
    """Every table, from the score rows alone (and the fingerprint's selection, for titles)."""
    over = selection_text(fp or {})
    sweep_rows = rows
    rows = [r for r in rows if r.severity is None]
    rs = resamples({r.case_id: r.expected_cause for r in rows})
    metrics = detector_metrics(rows, rs)
    dets = [m.detector for m in metrics]
    tables = [_leaderboard(metrics, over)]

    # per-case x detector matrix
    cases = list(dict.fromkeys((r.case_id, r.expected_cause) for r in rows))
    mrows, mdata = [], []
    for cid, cause in cases:
        line = [cid, cause]
        for d in dets:
            sel = [r for r in rows if r.case_id == cid and r.detector == d]
            broken = [r.label for r in sel if r.variant == "broken"]
            fixed = [r.label for r in sel if r.variant == "fixed"]
            line.append(_cell(broken, fixed))
            mdata.append({"case": cid, "cause": cause, "detector": d, "broken": broken, "fixed": fixed})
        mrows.append(line)
    tables.append(Table("matrix", f"Per case and detector {over}: broken runs (hit / wrong cause / symptom only / "
                                  f"missed) · fixed runs (false alarms)",
                        ["case", "cause"] + dets, mrows,
                        ["Each cell: outcome counts over seeds for the broken variant, then false alarms on the "
                         "fixed variant. invalid = the oracle did not hold for that run (not scored).", DOCS_NOTE],
                        mdata))

    pcr = per_cause_recall(rows, rs)
    scope = {m.detector: m.causes for m in metrics}

    def cell(c, d):
        oos = scope[d] is not None and scope[d] and c not in scope[d]
        return str(pcr[c][d]) + (" †" if oos else "")
    tables.append(Table("per_cause", f"Per-cause recall {over}: share of broken runs of each cause whose top "
                                     f"diagnosis is right (95% CI over cases)",
                        ["cause"] + dets, [[c] + [cell(c, d) for d in dets] for c in pcr],
                        ["†: outside the causes the detector declares it can name. n/a: the detector names no "
                         "causes.", DOCS_NOTE],
                        {c: {d: v.to_dict() for d, v in per.items()} for c, per in pcr.items()}))

    crow, cdata = [], {}
    for d in dets:
        if scope[d] is not None and not scope[d]:
            continue                      # a symptom-only detector names no cause to confuse
        true, pred, m = confusion(rows, d)
        cdata[d] = {"expected": true, "diagnosed": pred, "matrix": m.tolist()}
        for i, t in enumerate(true):
            for j, p in enumerate(pred):
                if m[i, j]:
                    crow.append([d, t, p, int(m[i, j])])
    tables.append(Table("confusion", f"Confusion of expected vs diagnosed (top) cause, broken runs {over}",
                        ["detector", "expected cause", "diagnosed cause", "runs"], crow, [DOCS_NOTE], cdata))

    tables.append(_significance(significance(rows, rs), over))

    onsets = severity_onsets(sweep_rows)
    paths = {r.case_id: r.sweep_path for r in sweep_rows if r.sweep_path}
    srows, sdata = [], []
    for (cid, det), points in onsets.items():
        hits = [v for v, label in points if label == "hit"]
        flags = [v for v, label in points if label in ("hit", "wrong_cause", "symptom_only")]
        srows.append([cid, paths.get(cid, ""), det, " ".join(f"{v}:{_SHORT[label]}" for v, label in points),
                      hits[0] if hits else "–", flags[0] if flags else "–"])
        sdata.append({"case": cid, "path": paths.get(cid, ""), "detector": det,
                      "points": [{"value": v, "label": label} for v, label in points]})
    tables.append(Table("severity", f"Severity sweeps {over}: where along each fault's sweep each detector starts "
                                    f"to see it",
                        ["case", "parameter", "detector", "value:outcome", "first right cause", "first flag"],
                        srows, ["Outcome codes: H hit, W wrong cause, S symptom only, M missed, E error. "
                                "Sweep points have no oracle of their own; they re-run the broken variant."], sdata))

    runs = _per_run(rows)
    dep = [r for r in runs if r.platform_probe is not None]
    tables.append(Table("platform", f"Platform-dependent cases {over}: which behaviour each run had, and its oracle",
                        ["case", "variant", "seed", "probe", "reading", "outcome", "oracle"],
                        [[r.case_id, r.variant, r.seed, r.platform_probe, r.probes.get(r.platform_probe, "–"),
                          r.outcome, "holds" if r.valid else "FAILS"] for r in dep],
                        ["A case declares `platform_dependence` when its mechanism really differs by platform; "
                         "each run is judged by the oracle of the behaviour its worker measured."],
                        [{"case": r.case_id, "variant": r.variant, "seed": r.seed, "probes": dict(r.probes),
                          "outcome": r.outcome, **r.oracle_detail} for r in dep]))

    folds = fold_table(rows)
    if folds:
        tables.append(Table("folds", f"Learned detectors' folds {over}: the cases each fold's model diagnosed, "
                                     "fitted on the runs of all the other cases",
                            ["detector", "fold", "runs", "held-out cases"],
                            [[f["detector"], f["fold"], f["runs"], ", ".join(f["cases"])] for f in folds],
                            ["Grouped cross-validation by case (scikit-learn GroupKFold): no run is diagnosed by a "
                             "model fitted on a run of its own case (trainwreck.crossfit)."], folds))

    inv = [r for r in runs if not r.valid]
    tables.append(Table("invalid", f"Runs whose oracle did not hold (excluded from scoring) {over}",
                        ["case", "variant", "seed", "outcome", "oracle"],
                        [[r.case_id, r.variant, r.seed, r.outcome, r.oracle] for r in inv], [],
                        [{"case": r.case_id, "variant": r.variant, "seed": r.seed, **r.oracle_detail} for r in inv]))
    return tables


_SHORT = {"hit": "H", "wrong_cause": "W", "symptom_only": "S", "missed": "M", "error": "E", "invalid": "I",
          "false_alarm": "F", "quiet": "Q"}


def _cell(broken: list[str], fixed: list[str]) -> str:
    parts = []
    for label in ("hit", "wrong_cause", "symptom_only", "missed", "error", "invalid", "false_alarm"):
        k = broken.count(label)
        if k:
            parts.append(f"{label.replace('_', ' ')} {k}/{len(broken)}")
    fa = fixed.count("false_alarm")
    err = fixed.count("error")
    tail = f"fa {fa}/{len(fixed)}" + (f", err {err}" if err else "")
    return (", ".join(parts) or "–") + " · " + tail


def _cpu_line(fp: dict) -> list[str]:
    """The CPU and the settings that choose its kernels, as one header line (none for a fingerprint without)."""
    if not fp.get("cpu_model"):
        return []
    flags = " ".join(fp.get("cpu_flags") or []) or "no listed SIMD flags"
    probes = ", ".join(f"{k}={v}" for k, v in (fp.get("probes") or {}).items())
    return [f"CPU {fp['cpu_model']} ({fp.get('cpu_vendor') or '?'}, {fp.get('arch')}, {flags}) · oneDNN "
            f"{fp.get('onednn')} · {fp.get('threads')} thread(s)" + (f" · probes {probes}" if probes else "")]


def _header(fp: dict, table: Table, prefix: str) -> str:
    lines = [f"{table.title}",
             f"trainwreck {fp['trainwreck']} · {fp['date']} · corpus {fp['corpus_hash']} ({fp['cases']} cases, "
             f"{fp['runs']} runs, seeds {fp['seeds']})",
             f"TensorFlow {fp['tensorflow']} · Keras {fp['keras']} · NumPy {fp['numpy']} · scikit-learn "
             f"{fp['sklearn']} · Python {fp['python']} · backend {fp['backend']} · device {fp['device']} "
             f"({fp['device_name']})"] + _cpu_line(fp) + [
             f"reproduce: {fp['command']}"] + table.notes
    return "\n".join(prefix + ln for ln in lines)


def render_md(t: Table, fp: dict) -> str:
    head = f"## {t.title}\n\n" + "\n".join(f"> {ln}" for ln in _header(fp, t, "").splitlines()[1:]) + "\n\n"
    body = tabulate(t.rows, headers=t.headers, tablefmt="github", disable_numparse=True) if t.rows else "_(no rows)_"
    return head + body + "\n"


def render_tex(t: Table, fp: dict) -> str:
    """A booktabs tabular that a paper can \\input (needs \\usepackage{booktabs} and graphicx); tabulate escapes.

    Every table is boxed to fit the page: shrunk (never enlarged) to the line width and to 85% of the
    text height, keeping its aspect ratio, so neither a wide leaderboard nor a long significance table
    runs off the page; a table that fits is left at its size."""
    rows = t.rows or [["(no rows)"] + [""] * (len(t.headers) - 1)]
    body = tabulate(rows, headers=t.headers, tablefmt="latex_booktabs", disable_numparse=True)
    return _header(fp, t, "% ") + "\n" + FIT_OPEN + body + FIT_CLOSE + "\n"


FIT_OPEN = ("% fitted to the page: needs \\usepackage{graphicx}\n"
            "\\noindent\\resizebox*{!}{\\ifdim\\totalheight>0.85\\textheight 0.85\\textheight\\else\\totalheight\\fi}{%\n"
            "\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}{%\n")
FIT_CLOSE = "%\n}}\\par"


def is_wide(t: Table) -> bool:
    """Whether a table may overflow a text-width page: many columns, or a long cell."""
    return len(t.headers) >= WIDE_COLUMNS or any(len(str(c)) > WIDE_CELL for r in t.rows for c in r)


def render_csv(t: Table, fp: dict) -> str:
    buf = io.StringIO()
    buf.write(_header(fp, t, "# ") + "\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(t.headers)
    w.writerows(t.rows)
    return buf.getvalue()


def _json_safe(o):
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {str(k): _json_safe(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_json_safe(v) for v in o]
    if isinstance(o, Estimate):
        return o.to_dict()
    return o


def render_json(t: Table, fp: dict) -> str:
    return json.dumps(_json_safe({"table": t.name, "title": t.title, "fingerprint": fp, "notes": t.notes,
                                  "headers": t.headers, "rows": t.rows, "data": t.data}),
                      indent=2, allow_nan=False) + "\n"


WIDE_COLUMNS = 6
WIDE_CELL = 60
RENDERERS = {"md": render_md, "tex": render_tex, "csv": render_csv, "json": render_json}


def write_tables(tables: list[Table], fp: dict, out_dir: Path, rows: list[ScoreRow] | None = None) -> list[Path]:
    out_dir = Path(out_dir)
    written = []
    for t in tables:
        for fmt, render in RENDERERS.items():
            p = out_dir / f"{t.name}.{fmt}"
            atomic_write_text(p, render(t, fp))
            written.append(p)
    if rows is not None:
        written.append(write_scores(out_dir / SCORES_FILE, fp, rows))
    return written
