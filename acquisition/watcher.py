"""Watching export folders (INSTRUMENTS.md "Folder monitoring facts").

* One watchdog observer per folder: ``Observer`` (inotify) or ``PollingObserver`` for
  SMB/NFS shares. Handlers only record the path and return — an exception in a handler
  kills the observer thread.
* A file is complete when a close-after-write event arrived (inotify only) or its size
  and mtime stayed unchanged for ``stable_seconds``, and the reader does not answer
  "incomplete" (a half-written export waits; it is not an error).
* Events are hints: every folder is rescanned at start-up and every ``rescan_seconds``
  against what was captured, since inotify overflows and downtime lose events.
* Observers are supervised: a dead one (a share that dropped) is restarted.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from acquisition.capture import Captured, Capturer
from config.schema import WatchSettings

log = logging.getLogger(__name__)

DEFAULT_IGNORE = ("*.layout.toml", ".*")


def ignored(watch: WatchSettings, path: Path) -> bool:
    name = path.name
    return any(fnmatch.fnmatch(name, pattern) for pattern in (*watch.ignore, *DEFAULT_IGNORE))


@dataclass
class Pending:
    watch: WatchSettings
    path: Path
    size: int = -1
    mtime_ns: int = -1
    changed_at: float = 0.0
    first_seen: float = 0.0
    closed: bool = False
    incomplete_since: float | None = None
    next_check: float = 0.0


class _Handler(FileSystemEventHandler):
    """Records paths; never raises, never reads files."""

    def __init__(
        self, watch: WatchSettings, note: Callable[[WatchSettings, Path, bool], None]
    ) -> None:
        self.watch = watch
        self.note = note

    def _record(self, raw: str | bytes, closed: bool = False) -> None:
        try:
            path = Path(raw.decode() if isinstance(raw, bytes) else raw)
            if not ignored(self.watch, path):
                self.note(self.watch, path, closed)
        except Exception:  # pragma: no cover - a handler must never kill the observer
            log.exception("watch handler failed for %r", raw)

    def on_created(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self._record(event.src_path)

    def on_modified(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self._record(event.src_path)

    def on_moved(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self._record(event.dest_path)

    def on_closed(self, event: FileSystemEvent) -> None:
        if not event.is_directory:
            self._record(event.src_path, closed=True)


@dataclass
class FolderWatch:
    watch: WatchSettings
    observer: BaseObserver | None = None
    restarts: int = 0

    def start(self, handler: FileSystemEventHandler) -> None:
        if not self.watch.path.is_dir():
            raise FileNotFoundError(2, "no such folder", str(self.watch.path))
        observer: BaseObserver = PollingObserver(timeout=1.0) if self.watch.polling else Observer()
        observer.schedule(handler, str(self.watch.path), recursive=True)
        observer.daemon = True
        observer.start()
        self.observer = observer

    def alive(self) -> bool:
        return self.observer is not None and self.observer.is_alive()

    def stop(self) -> None:
        if self.observer is not None:
            self.observer.stop()
            self.observer.join(timeout=5)


@dataclass
class WatchStats:
    captured: int = 0
    duplicates: int = 0
    last_capture_at: float | None = None
    last_error: str | None = None


class Watcher:
    """All watched folders, the stabiliser thread and the capture of complete files."""

    def __init__(
        self,
        capturer: Capturer,
        on_captured: Callable[[Captured], None],
        *,
        incomplete_wait: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capturer = capturer
        self.on_captured = on_captured
        self.incomplete_wait = incomplete_wait
        self.clock = clock
        self.folders: dict[Path, FolderWatch] = {}
        self.pending: dict[Path, Pending] = {}
        self.stats = WatchStats()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen: set[tuple[str, str, int, int]] = set()

    # -- events (called from observer threads: record and return) ----------------------
    def note(self, watch: WatchSettings, path: Path, closed: bool = False) -> None:
        now = self.clock()
        with self._lock:
            item = self.pending.get(path)
            if item is None:
                item = self.pending[path] = Pending(watch, path, changed_at=now, first_seen=now)
            if closed:
                item.closed = True
            item.next_check = now
        self._wake.set()

    # -- folders ------------------------------------------------------------------------
    def add(self, watch: WatchSettings) -> None:
        """Watch a folder; one that cannot be watched yet is retried by :meth:`supervise`."""
        folder = FolderWatch(watch)
        self.folders[watch.path] = folder
        try:
            folder.start(_Handler(watch, self.note))
        except OSError as exc:
            self.stats.last_error = f"{watch.path}: cannot watch: {exc.strerror}"
            log.error("cannot watch %s: %s", watch.path, exc.strerror)
            return
        log.info(
            "watching %s for %s%s",
            watch.path,
            watch.instrument,
            " (polling)" if watch.polling else "",
        )

    def remove(self, path: Path) -> None:
        folder = self.folders.pop(path, None)
        if folder is not None:
            folder.stop()
            with self._lock:
                for p in [p for p, item in self.pending.items() if item.watch.path == path]:
                    del self.pending[p]

    def supervise(self) -> bool:
        """Restart dead observers; True when every observer is alive afterwards."""
        healthy = True
        for folder in list(self.folders.values()):
            if not folder.alive():
                log.warning("observer for %s died; restarting it", folder.watch.path)
                try:
                    folder.stop()
                    folder.start(_Handler(folder.watch, self.note))
                    folder.restarts += 1
                except OSError as exc:
                    self.stats.last_error = f"{folder.watch.path}: cannot watch: {exc.strerror}"
                    healthy = False
        return healthy and self.all_alive()

    def all_alive(self) -> bool:
        return all(f.alive() for f in self.folders.values())

    def rescan(self) -> int:
        """Queue every file not yet captured as it is now; returns how many were queued."""
        queued = 0
        for folder in list(self.folders.values()):
            watch = folder.watch
            try:
                paths = [p for p in watch.path.rglob("*") if p.is_file() and not ignored(watch, p)]
            except OSError as exc:
                self.stats.last_error = f"{watch.path}: cannot list: {exc.strerror}"
                continue
            captured: set[tuple[str, int, int]] | None = None  # one query per folder, if needed
            for path in paths:
                try:
                    st = path.stat()
                except OSError:
                    continue
                key = (watch.instrument, str(path), st.st_size, st.st_mtime_ns)
                if key in self._seen:
                    continue
                if captured is None:
                    captured = self.capturer.known(watch.instrument)
                if key[1:] in captured:
                    self._seen.add(key)
                    continue
                with self._lock:
                    if path not in self.pending:
                        self.pending[path] = Pending(
                            watch, path, changed_at=self.clock(), first_seen=self.clock()
                        )
                        queued += 1
        self._wake.set()
        return queued

    # -- the stabiliser -----------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="stabiliser", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for path in list(self.folders):
            self.remove(path)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=0.25)
            self._wake.clear()
            try:
                self.check_pending()
            except Exception as exc:  # keep watching whatever one file did
                log.exception("stabiliser pass failed")
                self.stats.last_error = f"stabiliser: {exc}"

    def check_pending(self) -> None:
        now = self.clock()
        with self._lock:
            due = [item for item in self.pending.values() if item.next_check <= now]
        for item in due:
            if self._stop.is_set():
                return
            self._check(item, now)

    def _check(self, item: Pending, now: float) -> None:
        try:
            st = item.path.stat()
        except FileNotFoundError:
            self._drop(item)
            return
        except OSError:
            item.next_check = now + 1.0
            return
        if (st.st_size, st.st_mtime_ns) != (item.size, item.mtime_ns):
            changed = item.size >= 0
            item.size, item.mtime_ns = st.st_size, st.st_mtime_ns
            if changed or not item.closed:
                item.changed_at = now
        stable = now - item.changed_at >= item.watch.stable_seconds
        if not (item.closed or stable):
            item.next_check = item.changed_at + item.watch.stable_seconds
            return
        waited = (
            item.incomplete_since is not None
            and now - item.incomplete_since >= self.incomplete_wait
        )
        outcome = self.capturer.capture(
            item.watch.instrument,
            item.path,
            item.watch.kind,
            force=waited,
            format=item.watch.format,
        )
        if outcome.outcome == "incomplete":
            if item.incomplete_since is None:
                item.incomplete_since = now
            item.closed = False
            item.next_check = now + max(item.watch.stable_seconds, 0.5)
            return
        self._seen.add((item.watch.instrument, str(item.path), st.st_size, st.st_mtime_ns))
        self._drop(item)
        if outcome.outcome == "captured":
            self.stats.captured += 1
            self.stats.last_capture_at = time.time()
        elif outcome.outcome == "duplicate":
            self.stats.duplicates += 1
        self.on_captured(outcome)

    def _drop(self, item: Pending) -> None:
        with self._lock:
            if self.pending.get(item.path) is item:
                del self.pending[item.path]
