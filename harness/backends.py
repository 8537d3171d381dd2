"""`trainwreck backends`: the same corpus on several Keras backends, side by side.

Two tables. `backends` has one row per case: on each backend, how many broken runs fail and
how many fixed runs train (their oracles), and for each detector, on what share of (variant,
seed) runs its verdict (hit / wrong cause / missed / false alarm ...) is the same on every
backend. `backend_summary` has one row per backend: versions, oracles held, training time.

A case whose oracles differ across backends is listed with the outcomes per backend and the
reason its file gives under `backend_notes`; a difference no note explains makes the command
exit 1, so it is looked into rather than hidden. Reads the run cache only: run
`trainwreck run --backend B` for each backend first.
"""

from __future__ import annotations

import statistics
from collections import defaultdict

from .run import BACKENDS

__all__ = ["backend_table", "summary_table", "cached_backends", "DOC"]

DOC = __doc__.split("\n\n")[1]


def _main_runs(results, cid: str):
    rs = [r for r in results if r.spec.case.id == cid and r.spec.severity is None]
    return [r for r in rs if r.spec.variant == "broken"], [r for r in rs if r.spec.variant == "fixed"]


def _agreement(rows_by_backend: dict, cid: str, detector: str) -> tuple[int, int]:
    """Runs (variant, seed) valid and scored on every backend, and how many got the same label on all of them.

    A run whose oracle fails on some backend is left out: its label there is 'invalid', which says
    nothing about the detector.
    """
    labels = defaultdict(dict)
    for b, rows in rows_by_backend.items():
        for r in rows:
            if r.case_id == cid and r.detector == detector and r.severity is None:
                labels[(r.variant, r.seed)][b] = r.label
    pairs = [v for v in labels.values() if len(v) == len(rows_by_backend) and "invalid" not in v.values()]
    return sum(1 for v in pairs if len(set(v.values())) == 1), len(pairs)


def backend_table(per_backend: dict, rows_by_backend: dict):
    from .report import Table

    backends = list(per_backend)
    detectors = list(dict.fromkeys(r.detector for rows in rows_by_backend.values() for r in rows))
    cases = {r.spec.case.id: r.spec.case for rs in per_backend.values() for r in rs}
    out_rows, data, differs, unexplained = [], [], [], []
    for cid, case in cases.items():
        cells, entry = [], {"case": cid, "backends": {}, "agreement": {}}
        holds = {}
        for b in backends:
            br, fx = _main_runs(per_backend[b], cid)
            bh, fh = sum(r.verdict.holds for r in br), sum(r.verdict.holds for r in fx)
            cells.append(f"broken {bh}/{len(br)} · fixed {fh}/{len(fx)}")
            entry["backends"][b] = {
                "broken_holds": bh, "broken_runs": len(br), "fixed_holds": fh, "fixed_runs": len(fx),
                "outcomes": sorted({f"{r.spec.variant}:{r.record.outcome.status}" for r in br + fx}),
                "failed_conditions": [f"{r.spec.variant} seed={r.spec.seed}: {c}" for r in br + fx
                                      for c in r.verdict.conditions if not c.holds]}
            holds[b] = (bh, fh)
        notes = {b: " ".join(case.backend_notes[b].split()) for b in backends if b in case.backend_notes}
        if len(set(holds.values())) > 1:
            differs.append(cid)
            if not notes:
                unexplained.append(cid)
        entry["notes"] = notes
        for d in detectors:
            same, runs = _agreement(rows_by_backend, cid, d)
            cells.append(f"{same}/{runs}" if runs else "–")
            entry["agreement"][d] = {"same": same, "runs": runs}
        out_rows.append([cid, *cells])
        data.append(entry)
    notes = ["Per backend, oracles that hold: broken runs that fail the way the case claims · fixed runs "
             "that train. "
             "Per detector: of the runs valid on every backend, those whose verdict (hit, wrong cause, "
             "missed, false alarm, ...) is the same on every backend."]
    overall = {d: [sum(e["agreement"][d]["same"] for e in data), sum(e["agreement"][d]["runs"] for e in data)]
               for d in detectors}
    if overall:
        notes.append("Verdicts the same on every backend, over all cases: " + ", ".join(
            f"{d} {same}/{runs} ({same / runs:.0%})" for d, (same, runs) in overall.items() if runs) + ".")
    for cid in differs:
        e = next(x for x in data if x["case"] == cid)
        why = " ".join(f"[{b}] {n}" for b, n in e["notes"].items()) or "NOT EXPLAINED by the case file"
        notes.append(f"{cid} differs across backends. {why}")
    for e in data:   # same verdicts, yet the runs ended differently: worth knowing, not an error
        outs = {b: ", ".join(v["outcomes"]) for b, v in e["backends"].items()}
        if e["case"] not in differs and len(set(outs.values())) > 1:
            why = " ".join(f"[{b}] {n}" for b, n in e["notes"].items())
            notes.append(f"{e['case']}: the oracles agree but the runs end differently ("
                         + "; ".join(f"{b}: {o}" for b, o in outs.items()) + ")." + (f" {why}" if why else ""))
    return Table("backends", f"Backends compared: {', '.join(backends)}",
                 ["case", *backends, *[f"{d} agrees" for d in detectors]], out_rows, notes,
                 {"cases": data, "differs": differs, "unexplained": unexplained,
                  "agreement": {d: {"same": a, "runs": r} for d, (a, r) in overall.items()}})


def summary_table(per_backend: dict):
    """One row per backend: library versions, oracles held, and training time of the runs."""
    from .report import Table

    rows, data = [], {}
    for b, results in per_backend.items():
        main = [r for r in results if r.spec.severity is None]
        env = next((r.record.environment for r in main if r.record.environment.backend), None)
        version = getattr(env, b, "") if env else ""   # Environment has a version field per backend
        secs = [r.record.outcome.wall_seconds for r in main]
        held = sum(r.verdict.holds for r in main)
        entry = {"version": version, "keras": env.keras if env else "", "device": env.device if env else "",
                 "device_name": env.device_name if env else "", "runs": len(main), "oracles_hold": held,
                 "train_seconds_total": round(sum(secs), 1),
                 "train_seconds_median": round(statistics.median(secs), 2) if secs else None}
        data[b] = entry
        rows.append([b, version, entry["device"], entry["device_name"], f"{held}/{len(main)}",
                     f"{entry['train_seconds_total']:.0f}",
                     f"{entry['train_seconds_median']:.2f}" if secs else "–"])
    return Table("backend_summary", "Backends: versions, oracles held and training time",
                 ["backend", "version", "device", "device name", "oracles hold", "train s (sum)",
                  "train s (median/run)"], rows,
                 ["Training time is each run's own wall time inside its worker (one thread per worker); "
                  "it excludes worker start-up and scoring."], data)


def cached_backends(cases, seeds, device: str, store) -> list[str]:
    """The backends on which the cache holds every run of the selection."""
    from .run import plan

    out = []
    for b in BACKENDS:
        specs = plan(cases, seeds=seeds, backend=b, device=device)
        if specs and all(store.path(s.key).exists() for s in specs):
            out.append(b)
    return out
