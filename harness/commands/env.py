"""`trainwreck env`: the facts that decide what a run produces here."""

from __future__ import annotations

from trainwreck.errors import EXIT_OK
from trainwreck.run import BACKENDS

__all__ = ["register", "main"]


def register(sub) -> None:
    p = sub.add_parser("env", help="print the library versions and platform facts (CPU, SIMD flags, oneDNN, "
                                   "platform probes) that every run records and every cache key includes")
    p.add_argument("--backend", default="tensorflow", choices=list(BACKENDS), help="(default: %(default)s)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"], help="(default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--no-probe", action="store_true", help="skip the platform probes (they import the backend)")
    p.set_defaults(fn=main)


def main(args) -> int:
    """Versions, backend, device, CPU, kernels, probes."""
    import json

    from tabulate import tabulate

    from trainwreck.environment import WORKER_THREADS, key_facts
    from trainwreck.hardware import numeric_env, onednn_state
    from trainwreck.run import resolve_device

    facts = key_facts(args.backend, resolve_device(args.device))
    facts.update({k: v or "(unset)" for k, v in numeric_env().items()}, onednn=onednn_state())
    if not args.no_probe:
        from trainwreck.hardware import run_probes
        from trainwreck.train import setup_worker

        setup_worker(args.backend, facts["device"], WORKER_THREADS)
        facts.update({f"probe {k}": v for k, v in run_probes().items()})
    if args.json:
        print(json.dumps(facts, indent=2))
    else:
        print(tabulate([(k, " ".join(v) if isinstance(v, list) else v) for k, v in facts.items()],
                       tablefmt="plain"))
    return EXIT_OK
