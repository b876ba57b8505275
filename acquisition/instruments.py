"""The readers platewatch drives itself, as the daemon holds them (DESIGN.md §1, §5.2).

One :class:`drivers.ReaderSession` per ``[[reader]]`` (the port lock, bounded reconnect,
retries), opened lazily so that a reader unplugged at start-up does not stop the daemon,
and one probe thread per reader that asks its status every ``probe_seconds``: an unplugged
reader is noticed (``reader_offline``) even when nothing is read, and its return resolves
the alert. A probe thread that dies is restarted by :meth:`Instruments.supervise` and
reported. A read becomes a :class:`Capture` like a file export: the read is written as a
versioned JSON document (``acquisition.formats.driver_read``), archived and queued.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection

from acquisition.capture import Captured, Capturer
from acquisition.clock import SYSTEM_CLOCK, Clock, iso_utc
from acquisition.daemon_state import ReaderState
from acquisition.formats.driver_read import read_document
from config.schema import ReaderSettings
from datamodel import ExportFile
from drivers import ReaderAlert, ReaderSession, open_session, reads_to_export
from errors import InstrumentError

log = logging.getLogger(__name__)

AlertSink = Callable[[ReaderAlert], None]


def open_reader_session(
    settings: ReaderSettings, on_alert: AlertSink | None = None
) -> ReaderSession:
    """A session for one configured reader (InstrumentError/ConfigError: one line)."""
    return open_session(
        settings.name,
        settings.protocol,
        settings.port,
        baudrate=settings.baudrate,
        options=settings.options,
        on_alert=on_alert,
    )


def read_now(
    session: ReaderSession, settings: ReaderSettings, wavelengths_nm: Sequence[float]
) -> ExportFile:
    """One read of every wavelength, in the shape of a file export."""
    identity = session.identify()
    reads = session.read(list(wavelengths_nm))
    return reads_to_export(settings.name, settings.protocol, identity, reads)


def capture_read(
    capturer: Capturer,
    settings: ReaderSettings,
    export: ExportFile,
    *,
    clock: Clock = SYSTEM_CLOCK,
    extra: dict[str, object] | None = None,
    kind: str = "plate",
    on_stored: Callable[[Connection, int], None] | None = None,
) -> Captured:
    """Archive a driver read as a document and queue its analysis."""
    t = clock.now()
    stamp = iso_utc(t)
    data = read_document(
        export,
        reader=settings.name,
        protocol=settings.protocol,
        port=settings.port,
        read_at=stamp,
        extra=dict(extra or {}),
    )
    name = f"{settings.name}_{stamp.replace(':', '').replace('-', '')}.read.json"
    source = Path(f"driver:{settings.name}") / name
    return capturer.store_bytes(settings.name, source, data, kind, on_stored=on_stored)


@dataclass
class _Reader:
    settings: ReaderSettings
    session: ReaderSession | None = None
    thread: threading.Thread | None = None
    restarts: int = 0
    open_error: str | None = None


class Instruments:
    """Every configured reader of a daemon: sessions, probes, state, reads."""

    def __init__(self, readers: Sequence[ReaderSettings], on_alert: AlertSink) -> None:
        self.on_alert = on_alert
        self._readers = {r.name: _Reader(r) for r in readers}
        self._stop = threading.Event()
        self._lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        for name in self._readers:
            self._start_probe(name)

    def _start_probe(self, name: str) -> None:
        item = self._readers[name]
        item.thread = threading.Thread(
            target=self._probe_loop, args=(name,), name=f"reader-{name}", daemon=True
        )
        item.thread.start()

    def stop(self) -> None:
        self._stop.set()
        for item in list(self._readers.values()):
            if item.thread is not None:
                item.thread.join(timeout=15)
            if item.session is not None:
                item.session.close()

    def supervise(self) -> None:
        """Restart a probe thread that died (it should not: it catches what a probe raises)."""
        if self._stop.is_set():
            return
        for name, item in self._readers.items():
            if item.thread is not None and not item.thread.is_alive():
                item.restarts += 1
                log.error("probe thread of reader %s died; restarting it", name)
                self._start_probe(name)

    def alive(self) -> bool:
        return all(i.thread is not None and i.thread.is_alive() for i in self._readers.values())

    # -- use ------------------------------------------------------------------------------
    def session(self, name: str) -> ReaderSession:
        """The reader's session, opened on first use (InstrumentError when it cannot be)."""
        try:
            item = self._readers[name]
        except KeyError:
            known = ", ".join(sorted(self._readers)) or "none"
            raise InstrumentError(f"no reader named {name!r} (readers: {known})") from None
        with self._lock:
            if item.session is None:
                try:
                    item.session = open_reader_session(item.settings, self.on_alert)
                    item.open_error = None
                except InstrumentError as exc:
                    item.open_error = str(exc)
                    raise
            return item.session

    def settings_of(self, name: str) -> ReaderSettings:
        return self._readers[name].settings

    def read(self, name: str, wavelengths_nm: Sequence[float]) -> ExportFile:
        return read_now(self.session(name), self._readers[name].settings, wavelengths_nm)

    def states(self) -> list[ReaderState]:
        out = []
        for name, item in self._readers.items():
            settings = item.settings
            if item.session is None:
                out.append(
                    ReaderState(
                        name=name,
                        protocol=settings.protocol,
                        port=settings.port,
                        state="offline" if item.open_error else "closed",
                        last_error=item.open_error,
                        restarts=item.restarts,
                    )
                )
                continue
            snap = item.session.state()
            out.append(
                ReaderState(
                    name=name,
                    protocol=settings.protocol,
                    port=settings.port,
                    state="busy" if snap.busy else snap.state,
                    last_error=snap.last_error,
                    last_read_at=_epoch(snap.last_read_at),
                    restarts=item.restarts,
                )
            )
        return out

    # -- the probe ------------------------------------------------------------------------
    def _probe_loop(self, name: str) -> None:
        item = self._readers[name]
        while not self._stop.is_set():
            try:
                status = self.session(name).status()
                if status.state == "offline":
                    log.warning("reader %s is offline: %s", name, status.message)
            except InstrumentError as exc:
                log.warning("reader %s: %s", name, exc.message)
            except Exception:  # a driver bug must not kill the probe (the session stays usable)
                log.exception("probe of reader %s failed", name)
            self._stop.wait(item.settings.probe_seconds)


def _epoch(stamp: str | None) -> float | None:
    if stamp is None:
        return None
    from datetime import datetime

    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None
