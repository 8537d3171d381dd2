"""The answer cache: what a built-in detector said of a stored record, kept next to the run cache.

A detector's answer is a function of its code and of the record it reads, nothing else (the `random`
baseline is seeded by the run key). So a warm rescoring, whose records and code are unchanged, can
read the answers instead of replaying every detector, as `make` skips a target whose inputs have not
changed; the tables are rebuilt from them as before.

What keys an answer, so that a stale one cannot be read:
- `code_digest()`: every source file of the trainwreck package (harness and detectors), and the versions
  of Python, NumPy, SciPy and scikit-learn. Any edit to the project's code starts a new cache.
- the detector's name, spec and version;
- the run's key and its record's stored checksum (a record trained again, or copied from another
  machine, is another record).
- For a learned detector, the whole cross-fit is one entry, keyed by every run's key, checksum and
  training label: the answers of a fold depend on every record it was fitted on.

Only the project's own detectors are cached: a plugin's code lives outside the digest. Only answers are
cached, never errors or timeouts, which belong to the machine and the moment. An answer keeps the
`seconds` measured when it was computed. `--fresh` on `score` and `bench` ignores the cache (and refills it).
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

from .store import atomic_write_text, digest

__all__ = ["AnswerCache", "code_digest", "source_digest", "cacheable"]

FORMAT = 1


def source_digest(packages: dict[str, Path]) -> str:
    """sha256 of every .py file under each package root, by its path inside the package."""
    h = hashlib.sha256()
    for name, root in sorted(packages.items()):
        for p in sorted(Path(root).rglob("*.py")):
            h.update(f"{name}/{p.relative_to(root).as_posix()}\0".encode())
            h.update(p.read_bytes())
            h.update(b"\0")
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """The trainwreck package's sources (harness/ and detectors/) and the numeric libraries' versions."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    import trainwreck
    import trainwreck.detectors

    parts = [source_digest({p.__name__: Path(p.__file__).parent for p in (trainwreck, trainwreck.detectors)}),
             platform.python_version()]
    for dist in ("numpy", "scipy", "scikit-learn"):
        try:
            parts.append(f"{dist}={version(dist)}")
        except PackageNotFoundError:
            parts.append(f"{dist}=absent")
    return digest(parts)


def cacheable(info) -> bool:
    """A built-in detector whose class lives in the trainwreck package (so inside `code_digest`)."""
    return info.origin == "builtin" and info.spec.split(":", 1)[0].startswith("trainwreck.")


class AnswerCache:
    """{detector: {run key + record checksum: answer}} under `root/<code digest>/`, one JSON file per detector.

    Read once per detector, written once at the end of its scoring (atomically: a killed rescoring leaves
    the previous file whole). `fresh` skips reading, so every answer is computed again and stored."""

    def __init__(self, root: Path, fresh: bool = False):
        self.root = Path(root) / code_digest()[:24]
        self.fresh = fresh
        self.read_only = False
        self._loaded: dict[str, dict] = {}

    def _path(self, info) -> Path:
        return self.root / f"{info.name}-{digest([info.spec, info.version])[:12]}.json"

    def _entries(self, info) -> dict:
        if info.name not in self._loaded:
            entries = {}
            p = self._path(info)
            if not self.fresh and p.exists():
                try:
                    doc = json.loads(p.read_text(encoding="utf-8"))
                    if doc.get("format") == FORMAT and doc.get("spec") == info.spec:
                        entries = doc["answers"]
                except (ValueError, KeyError, TypeError, OSError):
                    entries = {}   # damaged: recomputed and rewritten
            self._loaded[info.name] = entries
        return self._loaded[info.name]

    @staticmethod
    def run_id(res) -> str:
        return f"{res.spec.key}:{res.checksum}"

    def get(self, info, results: list) -> dict[str, dict]:
        """{run key: answer} of the runs this detector's answer is stored for (records with a checksum only)."""
        entries = self._entries(info)
        out = {}
        for r in results:
            if r.checksum and (a := entries.get(self.run_id(r))) is not None:
                out[r.spec.key] = a
        return out

    def put(self, info, results: list, answers: dict[str, tuple[dict | None, str]]) -> None:
        """Store every answer without an error (of a record with a checksum), and write the file."""
        entries = self._entries(info)
        n = len(entries)
        for r in results:
            answer, error = answers.get(r.spec.key, (None, "not run"))
            if answer is not None and not error and r.checksum:
                entries[self.run_id(r)] = answer
        if len(entries) != n:
            self._write(info, entries)

    def crossfit_id(self, results: list, labels: list[str]) -> str:
        """One learned detector's whole cross-fit: every run's key, checksum, case, validity and label."""
        return digest(sorted([r.spec.key, r.checksum, r.spec.case.id, bool(r.verdict.holds), lab]
                             for r, lab in zip(results, labels)))

    def get_crossfit(self, info, ident: str) -> dict | None:
        return self._entries(info).get(f"crossfit:{ident}")

    def put_crossfit(self, info, ident: str, answers: dict[str, tuple[dict | None, str]]) -> None:
        """Stored only when every run has an answer: a cross-fit with an error is computed again next time."""
        if all(a is not None and not e for a, e in answers.values()):
            entries = self._entries(info)
            entries[f"crossfit:{ident}"] = {k: a for k, (a, _) in answers.items()}
            self._write(info, entries)

    def _write(self, info, entries: dict) -> None:
        """Store the file; a results directory that cannot take it (read-only) only costs the speed-up."""
        if self.read_only:
            return
        try:
            if not self.root.exists():
                self._prune()
            atomic_write_text(self._path(info), json.dumps({"format": FORMAT, "detector": info.name,
                                                            "spec": info.spec, "version": info.version,
                                                            "answers": entries},
                                                           separators=(",", ":"), allow_nan=True))
        except OSError:
            self.read_only = True

    def _prune(self) -> None:
        """Only the current code's answers are kept: a new code digest removes the others' directories, which
        no code that can run here will read again (a checkout of another version fills its own again)."""
        import re
        import shutil

        for d in self.root.parent.glob("*"):
            if d.is_dir() and d != self.root and re.fullmatch(r"[0-9a-f]{24}", d.name):
                shutil.rmtree(d, ignore_errors=True)
