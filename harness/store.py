"""The run cache: one JSON file per run under results/runs/, keyed by content.

A file is written to a temporary name and renamed into place, so a reader
never sees half a record, and carries a checksum of its content, so a
truncated or edited file is detected, reported and re-run rather than scored.
The key hashes everything that can change what training produces (the
resolved task, the seed, library versions, backend, device and the trace
format), so a change to any of them invalidates exactly the runs it affects.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RunStore", "StoredRun", "canonical", "digest", "CorruptRecord", "NotWritable"]

FORMAT = 1


def canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True)


def digest(obj) -> str:
    return hashlib.sha256(canonical(obj).encode()).hexdigest()


class NotWritable(OSError):
    """The run cache's directory cannot take records."""


class CorruptRecord(Exception):
    pass


@dataclass(frozen=True)
class StoredRun:
    key: str
    record: dict        # what detectors may see (as RunRecord)
    extras: dict        # oracle-only measurements
    checksum: str = ""  # digest of record and extras, as stored: names this exact record (answers.py)


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class RunStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def put(self, key: str, record: dict, extras: dict) -> str:
        """Write the run; returns its checksum."""
        body = {"record": record, "extras": extras}
        checksum = digest(body)
        atomic_write_text(self.path(key), canonical({"format": FORMAT, "key": key, "checksum": checksum, **body}))
        return checksum

    def get(self, key: str) -> StoredRun | None:
        """The stored run, None if absent; CorruptRecord if present but damaged."""
        p = self.path(key)
        if not p.exists():
            return None
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
            body = {"record": doc["record"], "extras": doc["extras"]}
            ok = doc.get("format") == FORMAT and doc.get("key") == key and doc.get("checksum") == digest(body)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
            raise CorruptRecord(f"{p}: unreadable ({type(e).__name__})") from None
        if not ok:
            raise CorruptRecord(f"{p}: checksum mismatch")
        return StoredRun(key, doc["record"], doc["extras"], doc["checksum"])

    def ensure_writable(self) -> None:
        """Fail before any training, not after the first run, when records could not be written here."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".write-check-{os.getpid()}.tmp"
            probe.write_text("")
            probe.unlink()
        except OSError as e:
            raise NotWritable(f"{self.root}: cannot write run records here ({e.strerror or e}); "
                              f"give a writable --results directory") from None

    def discard(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def keys(self) -> list[str]:
        return sorted(p.stem for p in self.root.glob("*.json"))

    def clean_temp(self) -> int:
        """Remove temporary files left by a process killed mid-write."""
        n = 0
        for p in self.root.glob(".*.tmp"):
            p.unlink(missing_ok=True)
            n += 1
        return n
