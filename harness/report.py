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

from .environment import trainwreck_version
from .metrics import Rate, confusion, detector_metrics, per_cause_recall, severity_onsets
from .score import ScoreRow
from .store import atomic_write_text, digest

__all__ = ["Table", "fingerprint_for", "build_tables", "write_tables", "FORMATS", "TIMING_HEADERS", "comparable"]

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


def fingerprint_for(results, detectors, command: str) -> dict:
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


def build_tables(rows: list[ScoreRow], results) -> list[Table]:
    metrics = detector_metrics(rows)
    sweep_rows = rows
    rows = [r for r in rows if r.severity is None]
    results_all, results = results, [r for r in results if r.spec.severity is None]
    dets = [m.detector for m in metrics]
    tables = [Table(
        "leaderboard", "Leaderboard: detectors over the corpus (valid runs only; mean ± std over seeds)",
        ["detector", "version", "detection", "cause acc.", "macro F1", "symptom recall", "false alarm",
         "errors", "median latency (epochs)", "ms/run", "runs"],
        [[m.detector, m.version, str(m.detection), str(m.cause_accuracy), _pct(m.macro_f1),
          str(m.symptom_recall), str(m.false_alarm), m.errors, _pct(m.median_latency_epochs),
          _pct(m.ms_per_run), m.runs] for m in metrics],
        ["detection: share of broken runs with any diagnosis; cause acc.: top-confidence cause equals the "
         "case's cause; false alarm: share of fixed runs and trap runs with any diagnosis."],
        [m.to_dict() for m in metrics])]

    # per-case x detector matrix
    cases = list(dict.fromkeys((r.case_id, r.expected_cause) for r in rows))
    mrows, mdata = [], []
    for cid, cause in cases:
        line = [cid, cause]
        for d in dets:
            sel = [r for r in rows if r.case_id == cid and r.detector == d]
            broken = [r.label for r in sel if r.variant == "broken"]
            fixed = [r.label for r in sel if r.variant == "fixed"]
            cell = _cell(broken, fixed)
            line.append(cell)
            mdata.append({"case": cid, "cause": cause, "detector": d, "broken": broken, "fixed": fixed})
        mrows.append(line)
    tables.append(Table("matrix", "Per case and detector: broken runs (hit / wrong cause / symptom only / missed) · fixed runs (false alarms)",
                        ["case", "cause"] + dets, mrows,
                        ["Each cell: outcome counts over seeds for the broken variant, then false alarms on the "
                         "fixed variant. invalid = the oracle did not hold for that run (not scored)."], mdata))

    pcr = per_cause_recall(rows)
    tables.append(Table("per_cause", "Per-cause recall: share of broken runs of each cause whose top diagnosis is right",
                        ["cause"] + dets, [[c] + [str(pcr[c][d]) for d in dets] for c in pcr], [],
                        {c: {d: v.to_dict() for d, v in per.items()} for c, per in pcr.items()}))

    crow, cdata = [], {}
    for d in dets:
        true, pred, m = confusion(rows, d)
        cdata[d] = {"expected": true, "diagnosed": pred, "matrix": m.tolist()}
        for i, t in enumerate(true):
            for j, p in enumerate(pred):
                if m[i, j]:
                    crow.append([d, t, p, int(m[i, j])])
    tables.append(Table("confusion", "Confusion of expected vs diagnosed (top) cause, broken runs",
                        ["detector", "expected cause", "diagnosed cause", "runs"], crow, [], cdata))

    onsets = severity_onsets(sweep_rows)
    srows, sdata = [], []
    for (cid, det), points in onsets.items():
        case = next(r.spec.case for r in results_all if r.spec.case.id == cid)
        hits = [v for v, label in points if label == "hit"]
        flags = [v for v, label in points if label in ("hit", "wrong_cause", "symptom_only")]
        srows.append([cid, case.sweep.path, det, " ".join(f"{v}:{_SHORT[label]}" for v, label in points),
                      hits[0] if hits else "–", flags[0] if flags else "–"])
        sdata.append({"case": cid, "path": case.sweep.path, "detector": det,
                      "points": [{"value": v, "label": label} for v, label in points]})
    tables.append(Table("severity", "Severity sweeps: where along each fault's sweep each detector starts to see it",
                        ["case", "parameter", "detector", "value:outcome", "first right cause", "first flag"],
                        srows, ["Outcome codes: H hit, W wrong cause, S symptom only, M missed, E error. "
                                "Sweep points have no oracle of their own; they re-run the broken variant."], sdata))

    dep = [r for r in results if r.spec.case.platform_dependence is not None]
    tables.append(Table("platform", "Platform-dependent cases: which behaviour each run had, and its oracle",
                        ["case", "variant", "seed", "probe", "reading", "outcome", "oracle"],
                        [[r.spec.case.id, r.spec.variant, r.spec.seed, r.spec.case.platform_dependence.probe,
                          r.record.environment.probes.get(r.spec.case.platform_dependence.probe, "–"),
                          r.record.outcome.status, "holds" if r.verdict.holds else "FAILS"] for r in dep],
                        ["A case declares `platform_dependence` when its mechanism really differs by platform; "
                         "each run is judged by the oracle of the behaviour its worker measured."],
                        [{"case": r.spec.case.id, "variant": r.spec.variant, "seed": r.spec.seed,
                          "probes": dict(r.record.environment.probes), "outcome": r.record.outcome.status,
                          **r.verdict.to_dict()} for r in dep]))

    inv = [r for r in results if not r.verdict.holds]
    tables.append(Table("invalid", "Runs whose oracle did not hold (excluded from scoring)",
                        ["case", "variant", "seed", "outcome", "oracle"],
                        [[r.spec.case.id, r.spec.variant, r.spec.seed, r.record.outcome.status, r.verdict.summary()]
                         for r in inv], [],
                        [{"case": r.spec.case.id, "variant": r.spec.variant, "seed": r.spec.seed,
                          **r.verdict.to_dict()} for r in inv]))
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
    """A booktabs tabular that a paper can \\input (needs \\usepackage{booktabs}); tabulate escapes."""
    rows = t.rows or [["(no rows)"] + [""] * (len(t.headers) - 1)]
    body = tabulate(rows, headers=t.headers, tablefmt="latex_booktabs", disable_numparse=True)
    return _header(fp, t, "% ") + "\n" + body + "\n"


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
    if isinstance(o, Rate):
        return o.to_dict()
    return o


def render_json(t: Table, fp: dict) -> str:
    return json.dumps(_json_safe({"table": t.name, "title": t.title, "fingerprint": fp, "notes": t.notes,
                                  "headers": t.headers, "rows": t.rows, "data": t.data}),
                      indent=2, allow_nan=False) + "\n"


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
        scores = out_dir / "scores.json"
        atomic_write_text(scores, json.dumps(_json_safe({"fingerprint": fp, "rows": [
            {k: v for k, v in r.__dict__.items() if k != "extra"} | {"label": r.label} for r in rows]}),
            indent=1, allow_nan=False) + "\n")
        written.append(scores)
    return written
