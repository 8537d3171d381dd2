"""The fidelity fixes of the published-tool detectors, measured: each fix undone, scored on the run cache.

    python benchmarks/ablations.py [--results results]

Prints detection, false alarms on fixed runs and cause accuracy (with 95% bootstrap intervals, from the
leaderboard) for each detector next to the variant that undoes one fix:

* frozen layers as zero gradients: the trace once recorded a frozen layer's gradient as 0 (both
  originals read trainable variables only); `*-frozen-as-zero` shows the records that way again
  (0 norms and a zero share of 1 for each frozen layer, and the zero share of all gradients counted
  over the frozen parameters too) to detectors that no longer know which layers are frozen;
* AUTOTRAINER's Theta: 0.7 (the library default) instead of the v1.0 drivers' 0.6;
* DeepDiagnosis's repairs: `deepdiagnosis-as-published` is a built-in row already.

Nothing trains: the classes below are scored from the cache with `trainwreck score --detector-spec`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

from trainwreck.detectors.autotrainer import PARAMS, AutoTrainer, AutoTrainerMapped
from trainwreck.detectors.deepdiagnosis import DeepDiagnosis

ROOT = Path(__file__).resolve().parent.parent


def frozen_as_zero(record):
    """The record as the trace wrote it before the fix, with no layer marked frozen."""
    frozen = [l.name for l in record.model.layers if not l.trainable]
    if not frozen:
        return record
    params = {l.name: l.params for l in record.model.layers}
    p_frozen = sum(params[n] for n in frozen)
    p_train = sum(l.params for l in record.model.layers if l.trainable)
    order = [l.name for l in record.model.layers]

    def padded(m, value: float, e):
        d = dict(m)
        d.update({n: value for n in frozen if n in e.weight_norms})
        return MappingProxyType({n: d[n] for n in order if n in d})

    trace = []
    for e in record.trace:
        zero_all = e.grad_zero_fraction_all
        if p_train + p_frozen and zero_all == zero_all:
            zero_all = (zero_all * p_train + p_frozen) / (p_train + p_frozen)
        trace.append(replace(e, grad_norms=padded(e.grad_norms, 0.0, e), grad_mean=padded(e.grad_mean, 0.0, e),
                             grad_mean_abs=padded(e.grad_mean_abs, 0.0, e),
                             grad_zero_fraction=padded(e.grad_zero_fraction, 1.0, e), grad_zero_fraction_all=zero_all))
    layers = tuple(replace(l, trainable=True) for l in record.model.layers)
    return replace(record, model=replace(record.model, layers=layers), trace=tuple(trace))


class AutoTrainerFrozenAsZero(AutoTrainer):
    name = "autotrainer-frozen-as-zero"

    def replay(self, record):
        return super().replay(frozen_as_zero(record))


class AutoTrainerMappedFrozenAsZero(AutoTrainerMapped):
    name = "autotrainer-mapped-frozen-as-zero"

    def replay(self, record):
        return super().replay(frozen_as_zero(record))


class AutoTrainerTheta07(AutoTrainerMapped):
    name = "autotrainer-mapped-theta-0.7"
    params = {**PARAMS, "Theta": 0.7}


class DeepDiagnosisFrozenAsZero(DeepDiagnosis):
    name = "deepdiagnosis-frozen-as-zero"

    def diagnose(self, record):
        return super().diagnose(frozen_as_zero(record))


PAIRS = [("autotrainer", AutoTrainerFrozenAsZero), ("autotrainer-mapped", AutoTrainerMappedFrozenAsZero),
         ("autotrainer-mapped", AutoTrainerTheta07), ("deepdiagnosis", DeepDiagnosisFrozenAsZero),
         ("deepdiagnosis", "deepdiagnosis-as-published")]
COLUMNS = ("detection", "false alarms (fixed)", "cause acc.", "cause acc. (flagged)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", default=str(ROOT / "results"), help="the run cache's results directory")
    args = ap.parse_args()
    builtins = sorted({a for a, _ in PAIRS} | {b for _, b in PAIRS if isinstance(b, str)})
    specs = [f"ablations:{b.__name__}" for _, b in PAIRS if not isinstance(b, str)]
    with tempfile.TemporaryDirectory(prefix="trainwreck-ablations-") as out:
        cmd = [sys.executable, "-m", "trainwreck", "score", "--results", args.results, "--out", out, "--no-plots", "-q"]
        for b in builtins:
            cmd += ["-d", b]
        for s in specs:
            cmd += ["--detector-spec", s]
        env = {"PYTHONPATH": str(Path(__file__).parent)}
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                           env={**__import__("os").environ, **env})
        if r.returncode not in (0, 1):
            raise SystemExit(r.stderr)
        board = json.loads((Path(out) / "leaderboard.json").read_text())
    head = board["headers"]
    rows = {row[0]: dict(zip(head, row)) for row in board["rows"]}
    print(f"{'detector':<36}" + "".join(f"{c:>24}" for c in COLUMNS))
    for before, after in PAIRS:
        name = after if isinstance(after, str) else after.name
        for n in (before, name):
            print(f"{n:<36}" + "".join(f"{str(rows[n].get(c, '')):>24}" for c in COLUMNS))
        print()


if __name__ == "__main__":
    main()
