"""trainwreck: a reproducible benchmark of broken Keras training runs, and the harness that scores
training-failure detectors on it. Importing this package is cheap: nothing here imports a backend."""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("trainwreck")
except _metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0"

__all__ = ["__version__"]
