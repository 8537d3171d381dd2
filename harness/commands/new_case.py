"""`trainwreck new-case FAMILY/NAME`: write a commented case template that passes `check-case`."""

from __future__ import annotations

import re
from pathlib import Path

from trainwreck.errors import EXIT_OK, UsageError
from trainwreck.options import add_cases_dir

__all__ = ["register", "main", "TEMPLATE"]

TEMPLATE = """\
# A trainwreck case: one broken training run and its minimal fix.
# Check it with:  trainwreck check-case {path}
# and that it holds on any CPU, with a margin:  trainwreck check-case --robust {path}
# Schema for editors: cases/schema.json. Names: `trainwreck ls steps|layers|optimizers|losses|measures|causes`.
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
  data:                        # ordered steps, the split one of them: `trainwreck ls steps`
    - make_regression: {{n_samples: 800, n_features: 10, n_informative: 5, noise: 10}}
    - split: {{val: 0.2, test: 0.2}}       # the oracle's test rows are held out before any step
    - standard_scaler: {{}}                # below split: fitted on the training rows
    - target_transform: {{kind: standardize}}
    - target_transform: {{kind: scale, value: 5}}
  model:                       # keras.layers as model.get_config() writes them: `trainwreck ls layers`
    layers:
      - Dense: {{units: 64, activation: tanh}}
      - Dense: {{units: 64, activation: tanh}}
      - Dense: {{units: 64, activation: tanh}}
      - Dense: {{units: 1}}
  compile: {{optimizer: sgd, learning_rate: 0.01, loss: mse, metrics: [mae]}}   # or {{SGD: {{learning_rate: 0.01, momentum: 0.9}}}}
  fit: {{epochs: 10, batch_size: 32}}

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



def register(sub) -> None:
    p = sub.add_parser("new-case", help="write a commented case template to cases/<family>/<name>.yaml")
    p.add_argument("name", help="<family>/<name>, e.g. optimization/lr-too-high")
    add_cases_dir(p)
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(fn=main)


def main(args) -> int:
    m = re.fullmatch(r"([a-z0-9_]+)/([a-z0-9][a-z0-9_-]{1,63})", args.name)
    if not m:
        raise UsageError(f"expected <family>/<name> in lower case, e.g. optimization/lr-too-high, got {args.name!r}")
    path = Path(args.cases) / m.group(1) / f"{m.group(2)}.yaml"
    if path.exists() and not args.force:
        raise UsageError(f"{path} exists (use --force to overwrite)")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(TEMPLATE.format(id=m.group(2), path=path))
    print(f"wrote {path}; edit it, then run: trainwreck check-case {path}")
    return EXIT_OK
