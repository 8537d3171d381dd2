"""Named registries for everything a case file may refer to.

A case file never holds code: it names a dataset, a model, a data transform or
an input pipeline, and these registries map the name to a Python function
(after lm-evaluation-harness's task registry). A duplicate registration is a
programming error; an unknown name is a user error that lists the valid names
and suggests the closest one.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

__all__ = ["Registry", "UnknownName", "suggest", "Component", "Params"]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def _closeness(name: str, candidate: str) -> float:
    """The similarity difflib.get_close_matches ranks by."""
    return difflib.SequenceMatcher(None, candidate, name).ratio()


def suggest(name: str, valid: list[str]) -> str:
    """A 'did you mean' hint, or '' when nothing is close. Of equally close names the one that begins
    like `name` wins, since a typo seldom changes the first letters ('bestest': 'best', not 'test')."""
    close = difflib.get_close_matches(name, valid, n=max(1, len(valid)), cutoff=0.6)
    if not close:
        return ""
    top = [c for c in close if _closeness(name, c) == _closeness(name, close[0])]
    pick = max(top, key=lambda c: len(os.path.commonprefix([name, c])))
    return f"did you mean '{pick}'? "


class UnknownName(KeyError):
    def __init__(self, kind: str, name: str, valid: list[str]):
        self.kind, self.name, self.valid = kind, name, valid
        super().__init__(f"unknown {kind} '{name}'; {suggest(name, valid)}valid: {', '.join(valid)}")

    def __str__(self) -> str:
        return self.args[0]


class Params(BaseModel):
    """The one base of every component's parameters. Strict, so a misspelt key in a case file is an
    error that names it rather than a default silently kept; subclasses add fields with their ranges,
    which is what `validate`, `trainwreck ls` and cases/schema.json all read."""
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Component(Generic[F]):
    """A named building block: its parameter schema, its function (of the registry's protocol), one
    line of doc."""
    params: type[Params]
    fn: F
    doc: str
    # Raised when a change to fn alters what it produces for the same parameters, so every cached
    # run that used it is retrained (run keys carry the versions above 1; 1 adds nothing to a key).
    version: int = 1

    def parse(self, params: dict) -> Params:
        return self.params(**params)


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._deferred: list[Callable[[], None]] = []

    def defer(self, register_more: Callable[[], None]) -> None:
        """Run `register_more` on the registry's first lookup: entries that are costly to build (a schema
        read from scikit-learn's signatures) cost nothing to a command that never asks for them."""
        self._deferred.append(register_more)

    def _complete(self) -> None:
        while self._deferred:
            self._deferred.pop(0)()

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._items[name] = obj
            return obj
        return deco

    def component(self, name: str, params, version: int = 1) -> Callable[[Callable], Callable]:
        """Decorator: register fn as a Component with this parameter schema."""
        if not (isinstance(params, type) and issubclass(params, Params)):
            raise TypeError(f"{self.kind} '{name}': its parameters must subclass registry.Params, got {params!r}")

        def deco(fn: Callable) -> Callable:
            doc = (fn.__doc__ or "").strip()
            if not doc:
                raise ValueError(f"{self.kind} '{name}' ({fn.__module__}.{fn.__qualname__}) needs a docstring: "
                                 f"its first line is what `trainwreck ls` and the docs show")
            self.register(name)(Component(params, fn, doc.splitlines()[0], version))
            return fn
        return deco

    def get(self, name: str) -> T:
        self._complete()
        try:
            return self._items[name]
        except KeyError:
            raise UnknownName(self.kind, name, self.names()) from None

    def names(self) -> list[str]:
        self._complete()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._complete()
        return name in self._items
