"""`trainwreck backends`: the same corpus on several Keras backends, side by side.

For each case: on each backend, how many broken runs fail and how many fixed runs train
(their oracles), and for each detector, on what share of (variant, seed) runs its verdict
(hit / wrong cause / missed / false alarm ...) is the same on every backend. Cases whose
oracles differ across backends are listed with the outcomes that differ, never hidden.
Reads the run cache only: run `trainwreck run --backend B` for each backend first.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

__all__ = ["cmd_backends", "add_command", "backend_table"]


def backend_table(per_backend: dict, rows_by_backend: dict):
    from .report import Table

    backends = list(per_backend)
    detectors = list(dict.fromkeys(r.detector for rows in rows_by_backend.values() for r in rows))
    cases = list(dict.fromkeys(r.spec.case.id for rs in per_backend.values() for r in rs))
    out_rows, data, differs = [], [], []
    for cid in cases:
        cells, entry = [], {"case": cid, "backends": {}, "agreement": {}}
        holds = {}
        for b in backends:
            rs = [r for r in per_backend[b] if r.spec.case.id == cid and r.spec.severity is None]
            br = [r for r in rs if r.spec.variant == "broken"]
            fx = [r for r in rs if r.spec.variant == "fixed"]
            bh, fh = sum(r.verdict.holds for r in br), sum(r.verdict.holds for r in fx)
            cells.append(f"fails {bh}/{len(br)} · trains {fh}/{len(fx)}")
            entry["backends"][b] = {"broken_holds": bh, "broken_runs": len(br), "fixed_holds": fh,
                                    "fixed_runs": len(fx),
                                    "outcomes": sorted({f"{r.spec.variant}:{r.record.outcome.status}" for r in rs})}
            holds[b] = (bh, fh)
        if len(set(holds.values())) > 1:
            differs.append(cid)
        for d in detectors:
            labels = defaultdict(dict)
            for b in backends:
                for r in rows_by_backend[b]:
                    if r.case_id == cid and r.detector == d and r.severity is None:
                        labels[(r.variant, r.seed)][b] = r.label
            pairs = [v for v in labels.values() if len(v) == len(backends)]
            agree = sum(1 for v in pairs if len(set(v.values())) == 1)
            cells.append(f"{agree}/{len(pairs)}" if pairs else "–")
            entry["agreement"][d] = {"same": agree, "runs": len(pairs)}
        out_rows.append([cid, *cells])
        data.append(entry)
    notes = ["Per backend: broken runs whose failure oracle holds · fixed runs whose success oracle holds. "
             "Per detector: runs whose verdict is the same on every backend."]
    if differs:
        notes.append("Cases whose oracles differ across backends: " + ", ".join(differs) +
                     " (see the outcomes per backend in the JSON).")
    return Table("backends", f"Backends compared: {', '.join(backends)}",
                 ["case", *backends, *[f"{d} agrees" for d in detectors]], out_rows, notes,
                 {"cases": data, "differs": differs})


def cmd_backends(args) -> int:
    from detectors.loading import select

    from .cli import _command_line, _load, _results_dir, _seeds
    from .report import fingerprint_for, write_tables
    from .run import execute, plan, resolve_device
    from .score import score_runs
    from .store import RunStore

    t0 = time.monotonic()
    cases = _load(args)
    store = RunStore(_results_dir(args) / "runs")
    detectors = select(args.detector or None, args.detector_spec or [])
    per_backend, rows_by_backend = {}, {}
    for b in args.backends.split(","):
        specs = plan(cases, seeds=_seeds(args), backend=b, device=resolve_device(args.device))
        missing = [s for s in specs if not store.path(s.key).exists()]
        if missing:
            print(f"{len(missing)} of {len(specs)} runs on {b} are not cached; run "
                  f"`trainwreck run --backend {b}` first")
            return 2
        per_backend[b] = execute(specs, store, log=print)
        rows_by_backend[b] = score_runs(per_backend[b], detectors, jobs=args.jobs, log=lambda *a: None)
    table = backend_table(per_backend, rows_by_backend)
    all_results = [r for rs in per_backend.values() for r in rs]
    fp = fingerprint_for(all_results, detectors, _command_line(args))
    fp["backends"] = {b: rs[0].record.environment.jax or rs[0].record.environment.tensorflow
                      for b, rs in per_backend.items() if rs}
    out = Path(args.out) if args.out else _results_dir(args)
    write_tables([table], fp, out)
    from .report import render_md

    print(render_md(table, fp))
    print(f"compared {len(per_backend)} backends in {time.monotonic() - t0:.1f}s")
    return 1 if table.data["differs"] else 0


def add_command(sub, common) -> None:
    p = sub.add_parser("backends", help="compare cached runs of the corpus across Keras backends")
    common(p, scoring=True)
    p.add_argument("--backends", default="tensorflow,jax", help="comma-separated (default: %(default)s)")
    p.set_defaults(fn=cmd_backends)
