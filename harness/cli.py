"""The `trainwreck` command line: a parser over the command modules, and one place that turns errors
into exit codes. Each command is a module of `trainwreck.commands` with `register(sub)` and
`main(args)`, a thin shell over `trainwreck.api`; commands never import each other's internals.

Exit codes: 0 success; 1 the work ran but something failed (an oracle did
not hold, a run crashed unexpectedly, a detector errored when --strict, runs missing
from or damaged in the cache of `score`, which never trains);
2 bad input (a malformed case file, an unknown name, a bad option, a filter that
matches no run, a backend or GPU that this machine lacks);
130 interrupted by Ctrl-C (everything finished so far is kept).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .case import CaseErrors
from .errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UsageError
from .executor import WorkerStartError
from .options import MIN_MEMORY_MIB, physical_memory_mib
from .registry import UnknownName
from .run import BackendUnavailable

from trainwreck.detectors.loading import DetectorLoadError

__all__ = ["main", "build_parser", "COMMANDS", "MIN_MEMORY_MIB", "physical_memory_mib"]

# In the order `trainwreck --help` lists them.
COMMANDS = ("validate", "run", "score", "bench", "detectors", "ls", "env", "schema", "new_case", "check_case",
            "reproduce", "backends", "robust", "diagnose")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trainwreck", description=(
        "A benchmark of broken Keras training runs, each paired with its fix, for scoring "
        "training-failure detectors."), epilog="exit codes: 0 ok, 1 failures, 2 bad input, 130 interrupted")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"trainwreck.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return args.fn(args)
    except CaseErrors as e:
        for err in e.errors:
            print(err, file=sys.stderr)
        return EXIT_USAGE
    except (UnknownName, UsageError, DetectorLoadError, BackendUnavailable, WorkerStartError) as e:
        print(f"trainwreck: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\ninterrupted: finished runs are kept in the cache; run the same command to resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
