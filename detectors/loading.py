"""Finding detectors: built-ins, installed plugins (entry points) and `module:Class` specs.

Plugins register like pytest plugins, through the entry-point group
`trainwreck.detectors` (`name = "package.module:DetectorClass"`), and are loaded
lazily. `TRAINWRECK_DISABLE_PLUGIN_AUTOLOAD=1` makes a bench hermetic (built-ins
and explicit `--detector module:Class` only).
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from importlib import metadata

from trainwreck.registry import UnknownName

from .base import Detector

__all__ = ["BUILTINS", "DetectorInfo", "DetectorLoadError", "available", "select", "load_detector", "resolve_class",
           "ENTRY_POINT_GROUP"]

ENTRY_POINT_GROUP = "trainwreck.detectors"

BUILTINS: dict[str, str] = {
    "nan-guard": "trainwreck.detectors.nan_guard:NanGuard",
    "autotrainer": "trainwreck.detectors.autotrainer:AutoTrainer",
    "deepdiagnosis": "trainwreck.detectors.deepdiagnosis:DeepDiagnosis",
    "data-lint": "trainwreck.detectors.data_lint:DataLint",
    "random": "trainwreck.detectors.baselines:RandomCause",
    "majority": "trainwreck.detectors.baselines:MajorityCause",
}


@dataclass(frozen=True)
class DetectorInfo:
    name: str
    spec: str          # module:Class, what a worker loads
    origin: str        # builtin | <distribution> <version> | command line
    version: str = ""


class DetectorLoadError(Exception):
    pass


def resolve_class(spec: str) -> type[Detector]:
    """The class a `module:Class` spec names; the working directory is importable, as for pytest."""
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise DetectorLoadError(f"detector spec {spec!r}: expected 'module:Class'")
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise DetectorLoadError(f"detector spec {spec!r}: {type(e).__name__}: {e}") from None
    if not isinstance(obj, type) or not callable(getattr(obj, "diagnose", None)) or not getattr(obj, "name", ""):
        raise DetectorLoadError(f"{spec} is not a detector class (needs a `name` and a `diagnose` method)")
    return obj


def _builtin_present(spec: str) -> bool:
    module = spec.partition(":")[0]
    return importlib.util.find_spec(module) is not None


def available(extra_specs: list[str] = ()) -> dict[str, DetectorInfo]:
    """Every detector this bench can use, by name."""
    out: dict[str, DetectorInfo] = {}
    for name, spec in BUILTINS.items():
        if _builtin_present(spec):
            out[name] = DetectorInfo(name, spec, "builtin", resolve_class(spec).version)
    if os.environ.get("TRAINWRECK_DISABLE_PLUGIN_AUTOLOAD") != "1":
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist
            origin = f"{dist.name} {dist.version}" if dist else "entry point"
            cls = resolve_class(ep.value)
            if cls.name in out:
                raise DetectorLoadError(f"detector name {cls.name!r} from {origin} clashes with {out[cls.name].origin}")
            out[cls.name] = DetectorInfo(cls.name, ep.value, origin, cls.version)
    for spec in extra_specs:
        cls = resolve_class(spec)
        out[cls.name] = DetectorInfo(cls.name, spec, "command line", cls.version)
    return out


def select(names: list[str] | None, extra_specs: list[str] = ()) -> list[DetectorInfo]:
    avail = available(extra_specs)
    if not names:
        return list(avail.values())
    wanted = list(names) + [resolve_class(s).name for s in extra_specs if resolve_class(s).name not in names]
    out = []
    for n in wanted:
        if n not in avail:
            raise UnknownName("detector", n, sorted(avail))
        out.append(avail[n])
    return out


def load_detector(spec: str) -> Detector:
    return resolve_class(spec)()
