"""Commands for contributors: `new-case` writes a template, `check-case` proves a case."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from .case import CASES_DIR, load_case

__all__ = ["add_commands", "TEMPLATE"]

TEMPLATE = """\
# A trainwreck case: one broken training run and its minimal fix.
# Check it with:  trainwreck check-case {path}
# and that it holds on any CPU, with a margin:  trainwreck check-case --robust {path}
# Schema for editors: cases/schema.json. Names: `trainwreck ls datasets|models|transforms|pipelines|measures|causes`.
id: {id}                       # must equal the file name
title: One line a user sees in the tables
description: >
  What goes wrong, in the words of someone who hit it: what they did, what they saw.
provenance: >
  Where this failure comes from: the public bug report, Q&A thread or paper taxonomy it
  reproduces (give a URL or citation), or "seed scenario" with a sentence of why it matters.
cause: lr_too_high             # one term of harness/taxonomy.py; `healthy` for a false-alarm trap
symptoms: [nan_loss, divergence]  # what the broken run shows (taxonomy symptoms)
seeds: [0, 1, 2]               # at least 3; every oracle must hold on each (and on seeds 0-4 with --robust)

base:                          # the shared task; broken and fixed override parts of it
  dataset: {{name: tabular_regression, params: {{n_samples: 1500, n_features: 10, noise: 10, target_scale: 5}}}}
  transforms: [{{name: standard_scaler}}]
  model: {{name: mlp, params: {{hidden: [64, 64, 64], activation: tanh}}}}
  compile: {{optimizer: sgd, learning_rate: 0.01, loss: mse, metrics: [mae]}}
  fit: {{epochs: 15, batch_size: 32}}

broken:                        # the fault: merged into base (mappings merge, lists replace)
  compile: {{learning_rate: 0.1}}

fixed:                         # the minimal fix
  compile: {{learning_rate: 0.01}}

oracle:                        # measured proof; `trainwreck ls measures` lists the measures
  broken:
    - {{measure: loss_nonfinite, min: 1}}
  fixed:
    - {{measure: loss_nonfinite, max: 0}}
    - {{measure: best, key: val_mae, max: 1.5}}
"""


def cmd_new_case(args) -> int:
    m = re.fullmatch(r"([a-z0-9_]+)/([a-z0-9][a-z0-9_-]{1,63})", args.name)
    if not m:
        print(f"trainwreck: error: expected <family>/<name> in lower case, e.g. optimization/lr-too-high, "
              f"got {args.name!r}", file=sys.stderr)
        return 2
    path = Path(args.cases) / m.group(1) / f"{m.group(2)}.yaml"
    if path.exists() and not args.force:
        print(f"trainwreck: error: {path} exists (use --force to overwrite)", file=sys.stderr)
        return 2
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(TEMPLATE.format(id=m.group(2), path=path))
    print(f"wrote {path}; edit it, then run: trainwreck check-case {path}")
    return 0


def cmd_check_case(args) -> int:
    from .cli import _oracle_summary, _run

    case = load_case(args.file)
    print(f"{args.file}: valid ({case.cause}; {len(case.seeds)} seeds)")
    args.case, args.family = None, None
    if args.robust:
        from .robust import check

        return check(args, [case])[1]
    results = _run(args, [case], print)
    for r in results:
        print(f"  {r.spec.variant:<6} seed {r.spec.seed}: outcome {r.record.outcome.status:<13} "
              f"oracle {'holds' if r.verdict.holds else 'FAILS'}: {r.verdict.summary()}")
    return _oracle_summary(results, print)


def add_commands(sub, common) -> None:
    p = sub.add_parser("new-case", help="write a commented case template to cases/<family>/<name>.yaml")
    p.add_argument("name", help="<family>/<name>, e.g. optimization/lr-too-high")
    p.add_argument("--cases", default=str(CASES_DIR), help="case directory (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(fn=cmd_new_case)

    p = sub.add_parser("check-case", help="validate one case file, train both variants on its seeds, show the oracles")
    p.add_argument("file", help="the case file")
    p.add_argument("--robust", action="store_true",
                   help="also seeds 0-4 and every perturbation (oneDNN off, AVX2 kernels, 2 threads, JAX): "
                        "the margin of each oracle condition; fails a case whose margin is too small")
    common(p, running=True)
    p.set_defaults(fn=cmd_check_case)

    from .reproduce import add_command
    add_command(sub, common)

    from .backends import add_command as add_backends
    add_backends(sub, common)

    from .robust import add_command as add_robust
    add_robust(sub, common)

