"""A static HTML report (results/index.html and a page per case and per detector), from Jinja2 templates.

Built from the same tables and score rows as the text formats, plus the case files (title,
description, provenance, the broken-vs-fixed difference) and the plots already written beside the
tables. Plain files with relative links: no server, no network, no script.
"""

from __future__ import annotations

import difflib
import os
import inspect
import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from jinja2 import Environment, PackageLoader, select_autoescape

from .case import load_corpus, resolve_variant
from .metrics import CI_NOTE, METRICS
from .report import selection_text
from .store import atomic_write_text

__all__ = ["write_site", "case_diff", "DiffLine"]

_URL = re.compile(r"https?://[^\s)>\]]+")


@dataclass(frozen=True)
class DiffLine:
    kind: str     # add | del | hunk | same
    text: str


def _env() -> Environment:
    return Environment(loader=PackageLoader("trainwreck", "templates"), autoescape=select_autoescape(["html"]),
                       trim_blocks=False, lstrip_blocks=False)


def slug(name: str) -> str:
    """A file name for a detector name (plugins may be namespaced `pkg/name`)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)   # libyaml's emitter, when PyYAML has it: 10x faster


def case_diff(case) -> list[DiffLine]:
    """The broken and fixed tasks as YAML, unified diff: what the fix changes, and nothing else."""
    def dump(variant):
        task = resolve_variant(case, variant).model_dump(mode="json", by_alias=True)
        return yaml.dump(task, Dumper=_DUMPER, sort_keys=True, default_flow_style=False).splitlines()
    out = []
    for ln in difflib.unified_diff(dump("broken"), dump("fixed"), "broken", "fixed", lineterm="", n=2):
        kind = ("hunk" if ln.startswith("@@") else "add" if ln.startswith("+") and not ln.startswith("+++")
                else "del" if ln.startswith("-") and not ln.startswith("---") else "same")
        out.append(DiffLine(kind, ln))
    return out


def _finding(row) -> tuple[str, str, str]:
    """The top diagnosis of a row: (cause / symptom, epoch, evidence); blanks for a silent detector."""
    if row.error:
        return "error", "", row.error
    if not row.diagnoses:
        return "", "", ""
    top = max(row.diagnoses, key=lambda d: d.get("confidence", 0))
    what = " / ".join(x for x in (top.get("cause"), top.get("symptom")) if x)
    return what, "" if top.get("epoch") is None else str(top["epoch"]), top.get("evidence", "")


def _case_pages(rows, cases: dict, out: Path, cases_dir: Path) -> list[dict]:
    by_case: dict[str, list] = {}
    for r in rows:
        if r.severity is None:
            by_case.setdefault(r.case_id, []).append(r)
    pages = []
    for cid, rs in by_case.items():
        case = cases.get(cid)
        plot = out / "plots" / f"{cid}.png"
        verdicts = []
        for r in rs:
            what, epoch, evidence = _finding(r)
            verdicts.append({"detector": r.detector, "slug": slug(r.detector), "variant": r.variant, "seed": r.seed,
                             "label": r.label, "finding": what, "epoch": epoch, "evidence": evidence})
        source = _relative(cases_dir / rs[0].family / f"{cid}.yaml", out / "cases")
        pages.append({"id": cid, "cause": rs[0].expected_cause, "family": rs[0].family, "source": source,
                      "title": case.title if case else rs[0].case_title,
                      "description": case.description if case else "(the case file is not in this corpus)",
                      "provenance": case.provenance if case else "",
                      "links": _URL.findall(case.provenance) if case else [],
                      "symptoms": sorted({s for r in rs for s in r.expected_symptoms}),
                      "diff": case_diff(case) if case else [],
                      "plot": f"../plots/{cid}.png" if plot.exists() else None, "verdicts": verdicts})
    return pages


def _relative(target: Path, start: Path) -> str | None:
    """A relative link from a page's folder to a file on this machine (None when there is no such file)."""
    target = Path(target).resolve()
    return Path(os.path.relpath(target, start.resolve())).as_posix() if target.is_file() else None


def _detector_info(name: str) -> tuple[str, str, str, Path | None]:
    """(source spec, origin, docstring, source file) of an installed detector; placeholders when it is not
    installed here."""
    try:
        from trainwreck.detectors.loading import available

        info = available().get(name)
        if info is None:
            return "(not installed here)", "", "", None
        cls = info.detector_class()
        doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "")   # its own, not a base class's
        module_doc = inspect.getdoc(inspect.getmodule(cls)) or ""
        src = inspect.getsourcefile(cls)
        return info.spec, info.origin, "\n\n".join(d for d in (module_doc, doc) if d), Path(src) if src else None
    except Exception as e:  # noqa: BLE001 - a detector that does not load still gets its page of results
        return "(does not load here)", "", f"{type(e).__name__}: {e}", None


def _detector_pages(rows, tables: dict, out: Path) -> list[dict]:
    lb = {d["detector"]: d for d in tables["leaderboard"].data}
    pcr = tables["per_cause"].data
    matrix = tables["matrix"]
    pages = []
    for name, m in lb.items():
        scope = m["scope"]["causes"]
        source, origin, doc, src = _detector_info(name)
        col = matrix.headers.index(name) if name in matrix.headers else None
        pages.append({
            "name": name, "slug": slug(name), "version": m["version"], "source": source, "origin": origin,
            "source_link": _relative(src, out / "detectors") if src else None,
            "doc": doc or "(no docstring)",
            "causes": "undeclared (taken to claim every cause)" if scope is None else (", ".join(scope) or "none"),
            "symptoms": "undeclared" if m["scope"]["symptoms"] is None else (", ".join(m["scope"]["symptoms"]) or "none"),
            "per_cause": [{"cause": c, "value": _est(per.get(name)), "in_scope": "yes" if scope is None or c in scope
                           else "no"} for c, per in pcr.items()],
            "cases": [{"id": row[0], "cell": row[col]} for row in matrix.rows] if col is not None else []})
    return pages


def _est(d: dict | None) -> str:
    if not d:
        return "–"
    if not d["applicable"]:
        return "n/a"
    if d["value"] is None:
        return "–"
    return f"{d['value']:.2f} [{d['ci95'][0]:.2f}, {d['ci95'][1]:.2f}]"


def write_site(out: Path, tables: list, rows: list, fingerprint: dict, *, cases_dir: Path) -> list[Path]:
    """index.html, metrics.html, cases/<id>.html and detectors/<name>.html under `out`; returns the pages."""
    out = Path(out)
    env = _env()
    by_name = {t.name: t for t in tables}
    try:
        cases = {c.id: c for c in load_corpus(cases_dir)}
    except Exception:  # noqa: BLE001 - scores saved from another corpus still render, without the case files
        cases = {}
    fp = fingerprint
    written = []

    def page(path: Path, template: str, root: str, **kw):
        atomic_write_text(path, env.get_template(template).render(fp=fp, root=root, **kw))
        written.append(path)

    case_pages = _case_pages(rows, cases, out, Path(cases_dir))
    det_pages = _detector_pages(rows, by_name, out)
    atomic_write_text(out / "style.css", (Path(__file__).parent / "templates" / "style.css").read_text())
    page(out / "index.html", "index.html", "", title="Leaderboard", over=selection_text(fp).capitalize(),
         leaderboard=by_name["leaderboard"], significance=by_name["significance"], tables=tables,
         detectors=det_pages, cases=case_pages)
    page(out / "metrics.html", "metrics.html", "", title="Metrics", metrics=list(METRICS.values()), ci_note=CI_NOTE)
    for c in case_pages:
        page(out / "cases" / f"{c['id']}.html", "case.html", "../", title=f"{c['id']}: {c['title']}", case=c)
    for d in det_pages:
        page(out / "detectors" / f"{d['slug']}.html", "detector.html", "../", title=f"Detector {d['name']}", d=d)
    return written
