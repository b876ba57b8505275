"""Supervision around one reader: the port lock, bounded reconnect, retries, a state snapshot.

:class:`ReaderSession` is what the daemon, the scheduler and ``platewatch read`` hold. It
owns the only driver of its port and a lock, so two callers never interleave commands; a
second caller waits for the first read (``lock_timeout_s``) or gets :class:`ReaderBusy`.
A link that vanished (unplugged adapter) or went silent is closed and reopened with
exponential backoff, a bounded number of times; a garbled reply is retried on a fresh
connection; a firmware error is final and reported as one line naming the reader, the code
and its meaning. Every give-up and every recovery is passed to ``on_alert`` as a
:class:`ReaderAlert` (``reader_offline`` / ``reader_error``, DESIGN.md flag codes), and
:meth:`ReaderSession.state` is a snapshot for ``platewatch readers`` and the health check.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from datamodel import PlateRead
from drivers.base import PlateReader, ReaderState, ReaderStatus
from drivers.errors import (
    ReaderBusy,
    ReaderError,
    ReaderOffline,
    ReaderProtocolError,
    ReaderTimeout,
)

logger = logging.getLogger(__name__)


AlertCode = Literal["reader_offline", "reader_error"]


@dataclass(frozen=True)
class ReaderAlert:
    """What the daemon turns into an alert row (or resolves one with)."""

    code: AlertCode
    severity: Literal["warning", "critical"]
    reader: str
    message: str  # one line, names the reader
    resolved: bool = False


@dataclass(frozen=True)
class SessionState:
    name: str
    protocol: str
    port: str
    state: ReaderState
    connected: bool
    busy: bool  # a read (or status probe) holds the port right now
    last_error: str | None
    last_error_at: str | None
    last_read_at: str | None
    reads: int
    failures: int
    reconnects: int
    identity: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ReaderSession:
    def __init__(
        self,
        name: str,
        connect: Callable[[], PlateReader],
        *,
        protocol: str = "",
        port: str = "",
        reconnect_attempts: int = 5,
        backoff_s: float = 0.5,
        backoff_max_s: float = 30.0,
        retries: int = 2,
        lock_timeout_s: float = 900.0,
        on_alert: Callable[[ReaderAlert], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.protocol = protocol
        self.port = port
        self._connect = connect
        self.reconnect_attempts = max(1, reconnect_attempts)
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.retries = max(0, retries)
        self.lock_timeout_s = lock_timeout_s
        self.on_alert = on_alert
        self._sleep = sleep
        self._wall_clock = wall_clock
        self._port_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._reader: PlateReader | None = None
        self._identity: dict[str, str] = {}
        self._state: ReaderState = "offline"
        self._busy = False
        self._last_error: str | None = None
        self._last_error_at: str | None = None
        self._last_read_at: str | None = None
        self._reads = self._failures = self._reconnects = 0
        self._alerted: AlertCode | None = None  # the alert currently raised, if any

    # -- public ---------------------------------------------------------------------------

    def read(self, wavelengths_nm: Sequence[float]) -> list[PlateRead]:
        """One read now: one PlateRead per wavelength, or a ReaderError (one line)."""
        with self._hold("read"):
            attempt = 0
            while True:
                reader = self._connected()
                try:
                    reads = reader.read_absorbance(wavelengths_nm)
                except (ReaderOffline, ReaderTimeout, ReaderProtocolError) as exc:
                    self._drop(exc)
                    if attempt >= self.retries:
                        self._fail(exc)
                        raise
                    attempt += 1
                    logger.warning(
                        "%s: %s; retrying (%d/%d)", self.name, exc.message, attempt, self.retries
                    )
                    continue
                except ReaderError as exc:
                    self._fail(exc)
                    raise
                self._succeeded()
                return reads

    def status(self) -> ReaderStatus:
        """The reader's own status; ``busy`` without touching the port while a read runs."""
        if not self._port_lock.acquire(blocking=False):
            return ReaderStatus("busy", "a read is in progress")
        try:
            try:
                reader = self._connected(attempts=1)
            except ReaderError as exc:
                return ReaderStatus("offline", exc.message)
            try:
                result = reader.status()
            except (ReaderOffline, ReaderTimeout, ReaderProtocolError) as exc:
                self._drop(exc)  # unplugged or silent: the next probe reconnects
                self._fail(exc)
                return ReaderStatus("offline", exc.message)
            with self._state_lock:
                self._state = result.state
            if result.state == "offline":
                self._drop(None)
            else:
                self._recovered(f"{self.name}: answering again ({result.state})")
            return result
        finally:
            self._port_lock.release()

    def identify(self) -> dict[str, str]:
        """Model, serial and firmware (asked once per connection)."""
        with self._hold("identify"):
            reader = self._connected()
            if not self._identity:
                identity = reader.identify()
                with self._state_lock:
                    self._identity = identity
            return dict(self._identity)

    def state(self) -> SessionState:
        with self._state_lock:
            return SessionState(
                name=self.name,
                protocol=self.protocol,
                port=self.port,
                state=self._state,
                connected=self._reader is not None,
                busy=self._busy,
                last_error=self._last_error,
                last_error_at=self._last_error_at,
                last_read_at=self._last_read_at,
                reads=self._reads,
                failures=self._failures,
                reconnects=self._reconnects,
                identity=dict(self._identity),
            )

    def close(self) -> None:
        with self._port_lock:
            self._drop(None)
            with self._state_lock:
                self._state = "offline"

    def __enter__(self) -> ReaderSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------

    def _hold(self, what: str) -> _Held:
        if not self._port_lock.acquire(timeout=self.lock_timeout_s):
            raise ReaderBusy(
                self.name, f"another caller held the port for {self.lock_timeout_s:.0f} s"
            )
        with self._state_lock:
            self._busy = True
        return _Held(self)

    def _release(self) -> None:
        with self._state_lock:
            self._busy = False
        self._port_lock.release()

    def _connected(self, attempts: int | None = None) -> PlateReader:
        if self._reader is not None:
            return self._reader
        delay = self.backoff_s
        tries = attempts or self.reconnect_attempts
        last: ReaderError = ReaderOffline(self.name, "never tried")
        for attempt in range(tries):
            reader = self._connect()
            try:
                identity = reader.identify()
            except ReaderBusy:  # it answered: connected, and the read will wait for it
                identity = {}
            except (ReaderOffline, ReaderTimeout, ReaderProtocolError) as exc:
                last = exc
                reader.close()
                if attempt + 1 < tries:
                    logger.info("%s: %s; reconnecting in %.2f s", self.name, exc.message, delay)
                    self._sleep(delay)
                    delay = min(delay * 2, self.backoff_max_s)
                continue
            except ReaderError:
                reader.close()
                raise
            with self._state_lock:
                if self._reads or self._failures:
                    self._reconnects += 1
                self._reader, self._identity, self._state = reader, identity, "idle"
            return reader
        error = ReaderOffline(self.name, f"not reachable after {tries} attempts: {last.message}")
        self._fail(error)
        raise error from last

    def _drop(self, exc: ReaderError | None) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            try:
                reader.close()
            except ReaderError as close_exc:
                logger.debug("%s: close failed: %s", self.name, close_exc.message)
        if exc is not None:
            logger.info("%s: dropped the connection: %s", self.name, exc.message)

    def _now(self) -> str:
        stamp = datetime.fromtimestamp(self._wall_clock(), UTC)
        return stamp.isoformat(timespec="seconds").replace("+00:00", "Z")

    def _fail(self, exc: ReaderError) -> None:
        offline = isinstance(exc, ReaderOffline | ReaderTimeout)
        with self._state_lock:
            self._failures += 1
            self._last_error = str(exc)
            self._last_error_at = self._now()
            self._state = (
                "offline" if offline else "busy" if isinstance(exc, ReaderBusy) else "error"
            )
        code: AlertCode = "reader_offline" if offline else "reader_error"
        self._alerted = code
        self._emit(ReaderAlert(code, "critical" if offline else "warning", self.name, str(exc)))

    def _succeeded(self) -> None:
        with self._state_lock:
            self._reads += 1
            self._last_read_at = self._now()
            self._state = "idle"
        self._recovered(f"{self.name}: reading again")

    def _recovered(self, message: str) -> None:
        """Resolve the alert this session raised, if any (a read or a status answered)."""
        if self._alerted is not None:
            code, self._alerted = self._alerted, None
            self._emit(ReaderAlert(code, "warning", self.name, message, True))

    def _emit(self, alert: ReaderAlert) -> None:
        """Hand the alert over; the consumer only enqueues it (it must not raise)."""
        if self.on_alert is not None:
            self.on_alert(alert)


class _Held:
    def __init__(self, session: ReaderSession) -> None:
        self._session = session

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        self._session._release()
