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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from acquisition.formats import read_export
from acquisition.queue import enqueue
from acquisition.store import Store, captures, insert_row, utc_now
from analysis.model import safe_stem
from errors import FormatError, IncompleteFileError

log = logging.getLogger(__name__)

Outcome = Literal["captured", "duplicate", "incomplete", "gone"]


@dataclass(frozen=True)
class Captured:
    outcome: Outcome
    capture_id: int | None = None
    detail: str = ""


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def archive_path(state_dir: Path, instrument: str, sha256: str, name: str) -> Path:
    month = datetime.now(UTC).strftime("%Y-%m")
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

    def __init__(self, store: Store, state_dir: Path) -> None:
        self.store = store
        self.state_dir = state_dir

    def known(self, instrument: str) -> set[tuple[str, int, int]]:
        """(path, size, mtime_ns) of every file already captured for ``instrument``."""
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                select(captures.c.source_path, captures.c.size, captures.c.mtime_ns).where(
                    captures.c.instrument == instrument
                )
            ).all()
        return {(str(path), int(size), int(mtime)) for path, size, mtime in rows}

    def capture(self, instrument: str, path: Path, kind: str, *, force: bool = False) -> Captured:
        """Capture ``path`` if it is complete; ``force`` captures even an incomplete file."""
        try:
            st = path.stat()
            data = path.read_bytes()
        except FileNotFoundError:
            return Captured("gone")
        except OSError as exc:
            return Captured("incomplete", detail=f"cannot read yet: {exc.strerror}")
        if not force:
            try:
                read_export(path, data)
            except IncompleteFileError as exc:
                return Captured("incomplete", detail=exc.message)
            except FormatError:
                pass  # captured all the same: the worker quarantines it with the reason
        sha = sha256_of(data)
        with self.store.engine.connect() as conn:
            existing = conn.execute(
                select(captures.c.id).where(
                    captures.c.instrument == instrument, captures.c.sha256 == sha
                )
            ).scalar()
        if existing is not None:
            return Captured("duplicate", int(existing))
        dest = archive_path(self.state_dir, instrument, sha, path.name)
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
                    mtime_ns=st.st_mtime_ns,
                    archive_path=str(dest),
                    kind=kind,
                    captured_at=utc_now(),
                )
                enqueue(conn, capture_id)
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
