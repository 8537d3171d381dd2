"""Finding detectors: one table of built-ins, installed plugins (entry points) and `module:Class` specs.

Plugins register like pytest plugins, through the entry-point group `trainwreck.detectors`
(`name = "package.module:DetectorClass"`, the name being the detector's `name`).
`TRAINWRECK_DISABLE_PLUGIN_AUTOLOAD=1` makes a bench hermetic (built-ins and explicit specs only).

The rules, so that a name on a leaderboard means one class:

* Lazy: `available()` imports no detector module but the specs' (a spec's class must be
  imported to learn its name); a built-in or plugin is imported when it is selected, or when its
  `version` is read.
* An entry point named like a built-in, or like another distribution's entry point, is a
  `DetectorLoadError` naming both, whenever the table is built: neither is preferred in
  silence. Uninstall one, or disable plugin autoload.
* A spec whose class's `name` is already taken (by a built-in, a plugin or another spec) is a
  `DetectorLoadError`, unless the spec names that very class, which is then the same row.
* `resolve_detectors` (and `select`, the same function under its old name) imports every selected
  class and checks it before anything trains; a plugin that fails to import, is not a detector
  class or whose class has another name than its entry point is reported as that plugin's
  fault, naming its distribution and entry point.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from importlib import metadata

from trainwreck.registry import UnknownName

from .base import Detector, replay_budget

__all__ = ["BUILTINS", "DetectorInfo", "DetectorLoadError", "UnknownDetector", "available", "select",
           "resolve_detectors", "load_detector", "resolve_class", "ENTRY_POINT_GROUP", "AUTOLOAD_OFF"]

ENTRY_POINT_GROUP = "trainwreck.detectors"
AUTOLOAD_OFF = "TRAINWRECK_DISABLE_PLUGIN_AUTOLOAD"
_NO_PLUGINS = f"or set {AUTOLOAD_OFF}=1 to load no plugins"

BUILTINS: dict[str, str] = {
    "nan-guard": "trainwreck.detectors.nan_guard:NanGuard",
    "autotrainer": "trainwreck.detectors.autotrainer:AutoTrainer",
    "autotrainer-mapped": "trainwreck.detectors.autotrainer:AutoTrainerMapped",
    "deepdiagnosis": "trainwreck.detectors.deepdiagnosis:DeepDiagnosis",
    "deepdiagnosis-as-published": "trainwreck.detectors.deepdiagnosis:DeepDiagnosisAsPublished",
    "deeplocalize": "trainwreck.detectors.deeplocalize:DeepLocalize",
    "keras-defaults": "trainwreck.detectors.keras_defaults:KerasDefaults",
    "umlaut": "trainwreck.detectors.umlaut:Umlaut",
    "smdebug": "trainwreck.detectors.smdebug:SMDebug",
    "deepchecker": "trainwreck.detectors.deepchecker:DeepChecker",
    "data-lint": "trainwreck.detectors.data_lint:DataLint",
    "deepfd": "trainwreck.detectors.deepfd:DeepFD",
    "random": "trainwreck.detectors.baselines:RandomCause",
    "majority": "trainwreck.detectors.baselines:MajorityCause",
}


class DetectorLoadError(Exception):
    pass


class UnknownDetector(UnknownName, DetectorLoadError):
    """An unknown detector name: an UnknownName (lists the valid ones) and a DetectorLoadError."""

    def __init__(self, name: str, valid: list[str]):
        super().__init__("detector", name, valid)


@dataclass(frozen=True)
class DetectorInfo:
    """One row of the table: what a worker loads (`spec`) and where it came from (`origin`).

    `version` is read from the class on first use, so listing names imports nothing.
    `where` says which detector this is in error messages, `fix` what to do when it breaks.
    """
    name: str
    spec: str          # module:Class, what a worker loads
    origin: str        # builtin | <distribution> <version> | command line
    known_version: str | None = field(default=None, compare=False, repr=False)
    where: str = field(default="", compare=False, repr=False)
    fix: str = field(default="", compare=False, repr=False)

    @property
    def version(self) -> str:
        if self.known_version is None:
            object.__setattr__(self, "known_version", str(getattr(self.detector_class(), "version", "")))
        return self.known_version

    def scope(self) -> tuple[frozenset[str] | None, frozenset[str] | None]:
        """(causes, symptoms) the class declares it can name; None for an undeclared one (claims everything).
        Read-only: imports the class, like `version`."""
        cls = self.detector_class()
        return getattr(cls, "causes", None), getattr(cls, "symptoms", None)

    def detector_class(self) -> type[Detector]:
        """The class, imported and checked; a DetectorLoadError blames this row's source."""
        cls = _import_class(self.spec, self.where or f"detector spec {self.spec!r}", self.fix)
        if cls.name != self.name:
            raise DetectorLoadError(f"{self.where}: its class is named {cls.name!r}; an entry point's name must be "
                                    f"its detector's `name` ({self.fix})")
        return cls


def _import_class(spec: str, where: str, fix: str = "") -> type[Detector]:
    """The detector class `spec` names; any failure is a DetectorLoadError that starts with `where`."""
    hint = f" ({fix})" if fix else ""
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise DetectorLoadError(f"{where}: expected 'module:Class', got {spec!r}{hint}")
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as e:  # noqa: BLE001 - whatever the import raised, it is this source's fault
        raise DetectorLoadError(f"{where}: cannot be loaded: {type(e).__name__}: {e}{hint}") from None
    if not isinstance(obj, type) or not callable(getattr(obj, "diagnose", None)) or not getattr(obj, "name", ""):
        raise DetectorLoadError(f"{where}: {spec} is not a detector class (needs a `name` and a `diagnose` method)"
                                f"{hint}")
    if not isinstance(obj.name, str):
        raise DetectorLoadError(f"{where}: {spec} has a `name` that is not a str: {obj.name!r}{hint}")
    try:
        replay_budget(obj, 0)
    except ValueError as e:
        raise DetectorLoadError(f"{where}: {spec}: {e}{hint}") from None
    return obj


def resolve_class(spec: str) -> type[Detector]:
    """The class a `module:Class` spec names; the working directory is importable, as for pytest."""
    return _import_class(spec, f"detector spec {spec!r}")


def load_detector(spec: str) -> Detector:
    return resolve_class(spec)()


# -- the three sources --------------------------------------------------------------------------
def _builtin_present(spec: str) -> bool:
    """Whether the module is there, without importing it (a trimmed install may lack one)."""
    return importlib.util.find_spec(spec.partition(":")[0]) is not None


def _builtins() -> list[DetectorInfo]:
    return [DetectorInfo(name, spec, "builtin", where=f"the built-in detector {name!r} ({spec})",
                         fix="a bug in trainwreck; please report it")
            for name, spec in BUILTINS.items() if _builtin_present(spec)]


def _plugin(ep: metadata.EntryPoint) -> DetectorInfo:
    dist = ep.dist
    origin = f"{dist.name} {dist.version}" if dist is not None and dist.name else "an unnamed distribution"
    spec = f"{ep.module}:{ep.attr}" if ep.attr else ep.value
    return DetectorInfo(ep.name, spec, origin,
                        where=f"the installed plugin {ep.name!r} of {origin} "
                              f"(entry point '{ep.name} = {ep.value}' in group {ENTRY_POINT_GROUP})",
                        fix=f"that plugin's fault: fix or uninstall {dist.name if dist is not None else 'it'}, "
                            f"{_NO_PLUGINS}")


def _plugins() -> list[DetectorInfo]:
    """Installed entry points, by name then origin (so clashes read the same on every machine); none
    when autoload is off. Nothing is imported."""
    if os.environ.get(AUTOLOAD_OFF) == "1":
        return []
    infos = [_plugin(ep) for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)]
    return sorted(infos, key=lambda i: (i.name, i.origin))


def _spec_info(spec: str) -> DetectorInfo:
    cls = resolve_class(spec)
    return DetectorInfo(cls.name, spec, "command line", str(getattr(cls, "version", "")),
                        where=f"detector spec {spec!r}")


# -- the table ----------------------------------------------------------------------------------
def _add_installed(table: dict[str, DetectorInfo], info: DetectorInfo) -> None:
    taken = table.get(info.name)
    if taken is not None:
        raise DetectorLoadError(f"{info.where} clashes with {taken.where}: one name, two detectors. "
                                f"Uninstall one of them, {_NO_PLUGINS}")
    table[info.name] = info


def _same_class(info: DetectorInfo, cls: type) -> bool:
    try:
        return info.detector_class() is cls
    except DetectorLoadError:
        return False


def _add_spec(table: dict[str, DetectorInfo], spec: str) -> None:
    """A spec's row, unless it names a class already in the table (then it is that row)."""
    info = _spec_info(spec)
    taken = table.get(info.name)
    if taken is None:
        table[info.name] = info
    elif taken.spec != spec and not _same_class(taken, resolve_class(spec)):
        raise DetectorLoadError(f"detector spec {spec!r}: its name {info.name!r} is already {taken.where}; "
                                f"give your class another name")


def _table(specs: list[str]) -> dict[str, DetectorInfo]:
    table: dict[str, DetectorInfo] = {}
    for info in _builtins() + _plugins():
        _add_installed(table, info)
    for spec in specs:
        _add_spec(table, spec)
    return table


def available(extra_specs: list[str] = ()) -> dict[str, DetectorInfo]:
    """Every detector this bench can use, by name; raises DetectorLoadError on a clash.

    Imports only the specs' modules: a row's `version` (and its class) is loaded on first use.
    """
    return _table(list(extra_specs))


def _wanted(table: dict[str, DetectorInfo], names: list[str] | None, specs: list[str]) -> list[str]:
    """The selected names, in order, once each: all of them when no name is given; specs always."""
    if not names:
        return list(table)
    spec_names = [resolve_class(s).name for s in specs]
    return list(dict.fromkeys([*names, *spec_names]))


def resolve_detectors(names: list[str] | None, specs: list[str] = ()) -> list[DetectorInfo]:
    """The detectors to score, every one imported and checked: call it before anything trains.

    names: detector names (None or empty: every available one); specs: `module:Class` strings,
    always included. Raises UnknownDetector for a name not in the table and DetectorLoadError for
    every other problem (a clash, a spec taking a built-in's or plugin's name, a plugin that does
    not load), so a bench never starts with a detector it cannot run.
    """
    specs = list(specs)
    table = _table(specs)
    out = []
    for name in _wanted(table, names, specs):
        if name not in table:
            raise UnknownDetector(name, sorted(table))
        table[name].detector_class()        # imports and checks it, blaming its source
        out.append(table[name])
    return out


def select(names: list[str] | None, extra_specs: list[str] = ()) -> list[DetectorInfo]:
    """`resolve_detectors` under the name existing callers use (it is as strict)."""
    return resolve_detectors(names, extra_specs)
