"""Broken-vs-fixed training curves per case, as PNG (matplotlib, headless Agg)."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

__all__ = ["write_plots"]

PANELS = (("loss", "training loss"), ("val_metric", "validation metric"),
          ("grad_first", "first-layer grad norm"), ("grad_last", "last-layer grad norm"))


def _series(record, what: str) -> list[float]:
    out = []
    for e in record.trace:
        if not e.completed:
            continue
        if what == "loss":
            out.append(e.logs.get("loss", math.nan))
        elif what == "val_metric":
            key = next((k for k in ("val_accuracy", "val_mae", "val_loss") if k in e.logs), None)
            out.append(e.logs.get(key, math.nan) if key else math.nan)
        else:
            g = list(e.grad_norms.values())
            out.append((g[0] if what == "grad_first" else g[-1]) if g else math.nan)
    return out


def write_plots(results, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    by_case = defaultdict(list)
    for r in results:
        by_case[r.spec.case.id].append(r)
    written = []
    for cid, runs in by_case.items():
        fig, axes = plt.subplots(1, len(PANELS), figsize=(4 * len(PANELS), 3.2))
        for ax, (what, title) in zip(axes, PANELS):
            for r in runs:
                ys = _series(r.record, what)
                if not ys:
                    continue
                color = "tab:red" if r.spec.variant == "broken" else "tab:green"
                ax.plot(range(1, len(ys) + 1), ys, color=color, alpha=0.7,
                        label=f"{r.spec.variant} (seed {r.spec.seed})")
            if what.startswith("grad") or what == "loss":
                vals = [y for r in runs for y in _series(r.record, what) if y and math.isfinite(y) and y > 0]
                if vals and max(vals) / min(vals) > 100:
                    ax.set_yscale("log")
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("epoch", fontsize=8)
        handles, labels = axes[0].get_legend_handles_labels()
        uniq = dict(zip([lb.split(" (")[0] for lb in labels], handles))
        if uniq:
            fig.legend(uniq.values(), uniq.keys(), loc="upper right", fontsize=8)
        case = runs[0].spec.case
        fig.suptitle(f"{cid}: {case.title}", fontsize=10)
        fig.tight_layout(rect=(0, 0, 0.93, 0.93))
        p = out_dir / f"{cid}.png"
        fig.savefig(p, dpi=80)
        plt.close(fig)
        written.append(p)
    return written
