"""trainwreck: a reproducible benchmark of broken Keras training runs, and the harness that scores
training-failure detectors on it.

`trainwreck.bench(...)`, `trainwreck.run(...)` and the rest of `trainwreck.api` are available here.
Importing this package is cheap: nothing imports a backend until a function that needs one is called."""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("trainwreck")
except _metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0"

_API = ("bench", "run", "cached", "score", "report", "load_cases", "plan_runs", "resolve_detectors",
        "BenchResults", "Scores")

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    """The pipeline API, imported on first use (PEP 562) so `import trainwreck` stays light."""
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'trainwreck' has no attribute {name!r}")
