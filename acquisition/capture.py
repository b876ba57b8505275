"""Turning a complete export file into a Capture: archive copy + capture row + job.

The export is read once, copied into ``<state_dir>/archive`` (written to a temporary name,
fsynced, renamed) and recorded with its job in one transaction. It is never moved or
changed in the instrument's folder. Idempotency key: (instrument, sha256).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from acquisition.formats import read_any
from acquisition.queue import enqueue
from acquisition.store import Store, captures, insert_row, utc_now
from analysis.model import safe_stem
from errors import FormatError, IncompleteFileError

log = logging.getLogger(__name__)

Outcome = Literal["captured", "duplicate", "incomplete", "gone"]


@dataclass(frozen=True)
class Capture:
    """One captured thing (DESIGN.md §1): a file export or a driver read, never modified."""

    id: int
    instrument: str
    source_path: str
    file_name: str
    sha256: str
    size: int
    mtime_ns: int
    archive_path: str
    kind: str  # the analyser that takes it: "plate", "cytometry", … (acquisition.kinds)
    captured_at: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Capture:
        return cls(
            id=int(row["id"]),
            instrument=str(row["instrument"]),
            source_path=str(row["source_path"]),
            file_name=str(row["file_name"]),
            sha256=str(row["sha256"]),
            size=int(row["size"]),
            mtime_ns=int(row["mtime_ns"]),
            archive_path=str(row["archive_path"]),
            kind=str(row["kind"]),
            captured_at=str(row["captured_at"]),
        )

    @property
    def source(self) -> Path:
        return Path(self.source_path)

    @property
    def archive(self) -> Path:
        return Path(self.archive_path)


def load_capture(store: Store, capture_id: int) -> Capture:
    with store.engine.connect() as conn:
        row = conn.execute(select(captures).where(captures.c.id == capture_id)).mappings().one()
    return Capture.from_row(dict(row))


@dataclass(frozen=True)
class Captured:
    outcome: Outcome
    capture_id: int | None = None
    detail: str = ""


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def archive_path(
    state_dir: Path, instrument: str, sha256: str, name: str, t: float | None = None
) -> Path:
    """Where a capture is archived: by instrument and month, under a name it cannot escape."""
    when = datetime.now(UTC) if t is None else datetime.fromtimestamp(t, UTC)
    month = when.strftime("%Y-%m")
    return (
        state_dir / "archive" / safe_stem(instrument) / month / f"{sha256[:16]}_{safe_stem(name)}"
    )


def _write_durably(dest: Path, data: bytes) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(dest)
    dir_fd = os.open(dest.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class Capturer:
    """Captures files for one store and state directory (thread-safe: no shared state)."""

    def __init__(
        self, store: Store, state_dir: Path, delays: Mapping[str, float] | None = None
    ) -> None:
        self.store = store
        self.state_dir = state_dir
        self.delays = dict(
            delays or {}
        )  # kind → seconds its analysis waits (cytometry: quiet time)

    def known(self, instrument: str) -> set[tuple[str, int, int]]:
        """(path, size, mtime_ns) of every file already captured for ``instrument``."""
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                select(captures.c.source_path, captures.c.size, captures.c.mtime_ns).where(
                    captures.c.instrument == instrument
                )
            ).all()
        return {(str(path), int(size), int(mtime)) for path, size, mtime in rows}

    def capture(
        self,
        instrument: str,
        path: Path,
        kind: str = "auto",
        *,
        force: bool = False,
        format: str | None = None,
    ) -> Captured:
        """Capture ``path`` if it is complete; ``force`` captures even an incomplete file.

        ``kind`` "auto" takes the kind of what the file turned out to be (a plate export
        or a cytometry file); an unreadable file keeps the folder's kind and is quarantined
        by its worker with the reason.
        """
        try:
            st = path.stat()
            data = path.read_bytes()
        except FileNotFoundError:
            return Captured("gone")
        except OSError as exc:
            return Captured("incomplete", detail=f"cannot read yet: {exc.strerror}")
        found_kind = None
        try:
            found_kind = read_any(path, data, format=format).kind
        except IncompleteFileError as exc:
            if not force:
                return Captured("incomplete", detail=exc.message)
        except FormatError:
            pass  # captured all the same: the worker quarantines it with the reason
        if kind == "auto":
            kind = found_kind or "plate"
        return self.store_bytes(instrument, path, data, kind, mtime_ns=st.st_mtime_ns)

    def store_bytes(
        self,
        instrument: str,
        path: Path,
        data: bytes,
        kind: str,
        *,
        mtime_ns: int = 0,
        on_stored: Callable[[Connection, int], None] | None = None,
    ) -> Captured:
        """Archive ``data`` (from ``path``, or a driver read's document) and record it + its job.

        ``on_stored(conn, capture_id)`` runs in the same transaction (a planned read is
        marked done exactly when its capture exists).
        """
        sha = sha256_of(data)
        with self.store.engine.connect() as conn:
            existing = conn.execute(
                select(captures.c.id).where(
                    captures.c.instrument == instrument, captures.c.sha256 == sha
                )
            ).scalar()
        if existing is not None:
            return Captured("duplicate", int(existing))
        dest = archive_path(self.state_dir, instrument, sha, path.name, self.store.now())
        _write_durably(dest, data)
        try:
            with self.store.begin() as conn:
                capture_id = insert_row(
                    conn,
                    captures,
                    instrument=instrument,
                    source_path=str(path),
                    file_name=path.name,
                    sha256=sha,
                    size=len(data),
                    mtime_ns=mtime_ns,
                    archive_path=str(dest),
                    kind=kind,
                    captured_at=utc_now(self.store.clock),
                )
                enqueue(
                    conn,
                    capture_id,
                    clock=self.store.clock,
                    at=self.store.now() + self.delays.get(kind, 0.0),
                )
                if on_stored is not None:
                    on_stored(conn, capture_id)
        except IntegrityError:
            return Captured("duplicate")  # another daemon on the same store was faster
        log.info("captured %s as capture %d", path, capture_id, extra={"instrument": instrument})
        return Captured("captured", capture_id)


def quarantine(state_dir: Path, capture_id: int, archived: Path, name: str, reason: str) -> Path:
    """Copy an unreadable capture into ``quarantine/`` with a one-line reason beside it."""
    folder = state_dir / "quarantine"
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / f"{capture_id:06d}_{safe_stem(name)}"
    if archived.exists():
        shutil.copyfile(archived, dest)
    dest.with_name(dest.name + ".reason.txt").write_text(
        reason.replace("\n", " ") + "\n", encoding="utf-8"
    )
    return dest
