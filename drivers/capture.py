"""Record a real session once, replay it in tests (PyLabRobot ``io/capture.py``, in JSON).

A recording is a JSON document::

    {"format": "platewatch-io-recording", "version": 1, "port": "/dev/ttyUSB0",
     "reader": "reader-1", "protocol": "spectramax", "recorded_at": "2026-…Z",
     "events": [{"direction": "out", "bytes": "!STATUS\\r", "t": 0.0012}, …]}

``direction`` is ``open``, ``close``, ``out`` (written), ``in`` (one read's result),
``timeout`` (a read that ended without its terminator; ``bytes`` = what did come),
``lost`` (the port vanished) or ``purge``; ``bytes`` is escaped text
(:func:`drivers.transport.escape_bytes`) or, instead, ``hex``; ``t`` is seconds since
the recording started. :class:`ReplayTransport` plays one back: every write must be the
recorded bytes, every read returns the recorded reply, so a driver replays exactly the
session it recorded and any change in what it sends is caught.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from drivers.errors import LinkError, LinkLost, LinkTimeout
from drivers.transport import Transport, escape_bytes, unescape_bytes
from errors import InstrumentError

FORMAT = "platewatch-io-recording"
VERSION = 1
Direction = Literal["open", "close", "out", "in", "timeout", "lost", "purge"]
DIRECTIONS: tuple[str, ...] = ("open", "close", "out", "in", "timeout", "lost", "purge")


@dataclass(frozen=True)
class Event:
    direction: Direction
    data: bytes = b""
    t: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "direction": self.direction,
            "bytes": escape_bytes(self.data),
            "t": round(self.t, 6),
        }


@dataclass
class Recording:
    port: str
    events: list[Event] = field(default_factory=list)
    reader: str = ""
    protocol: str = ""
    recorded_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "port": self.port,
            "reader": self.reader,
            "protocol": self.protocol,
            "recorded_at": self.recorded_at,
            "events": [e.to_dict() for e in self.events],
        }

    def save(self, path: str | Path) -> None:
        """Write atomically (a reader of the file never sees half a recording)."""
        target = Path(path)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, target)

    @classmethod
    def load(cls, path: str | Path) -> Recording:
        source = str(path)
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InstrumentError(f"not a readable recording: {exc}", source=source) from exc
        return cls.from_dict(document, source=source)

    @classmethod
    def from_dict(cls, document: Any, *, source: str = "recording") -> Recording:
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise InstrumentError(f"not a {FORMAT} document", source=source)
        if document.get("version") != VERSION:
            raise InstrumentError(
                f"recording version {document.get('version')!r} is not {VERSION}", source=source
            )
        raw_events = document.get("events")
        if not isinstance(raw_events, list):
            raise InstrumentError("recording has no event list", source=source)
        events = [_event(item, i, source) for i, item in enumerate(raw_events)]
        return cls(
            port=str(document.get("port", "")),
            events=events,
            reader=str(document.get("reader", "")),
            protocol=str(document.get("protocol", "")),
            recorded_at=str(document.get("recorded_at", "")),
        )


def _event(item: Any, index: int, source: str) -> Event:
    where = f"event {index}"
    if not isinstance(item, dict):
        raise InstrumentError(f"{where} is not an object", source=source)
    direction = item.get("direction")
    if direction not in DIRECTIONS:
        raise InstrumentError(f"{where}: unknown direction {direction!r}", source=source)
    try:
        if "hex" in item:
            data = bytes.fromhex(str(item["hex"]))
        else:
            data = unescape_bytes(str(item.get("bytes", "")))
        t = float(item.get("t", 0.0))
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise InstrumentError(f"{where}: {exc}", source=source) from exc
    return Event(direction=direction, data=data, t=t)


class RecordingTransport:
    """Wraps a transport and records every call; saved to ``path`` on close (if given)."""

    def __init__(
        self,
        inner: Transport,
        path: str | Path | None = None,
        *,
        reader: str = "",
        protocol: str = "",
    ) -> None:
        self.inner = inner
        self.port = inner.port
        self.path = Path(path) if path is not None else None
        self.recording = Recording(
            port=inner.port,
            reader=reader,
            protocol=protocol,
            recorded_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        )
        self._t0 = time.monotonic()

    def _add(self, direction: Direction, data: bytes = b"") -> None:
        self.recording.events.append(Event(direction, data, time.monotonic() - self._t0))

    @property
    def is_open(self) -> bool:
        return self.inner.is_open

    def open(self) -> None:
        try:
            self.inner.open()
        except LinkLost:
            self._add("lost")
            raise
        self._add("open")

    def close(self) -> None:
        was_open = self.inner.is_open
        self.inner.close()
        if was_open:
            self._add("close")
        if self.path is not None:
            self.recording.save(self.path)

    def write(self, data: bytes) -> None:
        self._add("out", data)
        try:
            self.inner.write(data)
        except LinkLost:
            self._add("lost")
            raise

    def read_until(self, terminator: bytes, timeout: float) -> bytes:
        return self._read(lambda: self.inner.read_until(terminator, timeout))

    def read_exact(self, count: int, timeout: float) -> bytes:
        return self._read(lambda: self.inner.read_exact(count, timeout))

    def _read(self, call: Any) -> bytes:
        try:
            data: bytes = call()
        except LinkTimeout as exc:
            self._add("timeout", exc.partial)
            raise
        except LinkLost:
            self._add("lost")
            raise
        self._add("in", data)
        return data

    def discard_input(self) -> None:
        self._add("purge")
        self.inner.discard_input()


class ReplayMismatch(LinkError):
    """The driver did something the recording did not (a test failure, named precisely)."""


class ReplayTransport:
    """Plays a :class:`Recording` back as a transport (no real port, no timing)."""

    def __init__(self, recording: Recording, *, strict: bool = True) -> None:
        self.recording = recording
        self.port = recording.port or "replay"
        self.strict = strict
        self._next = 0
        self._open = False

    @property
    def is_open(self) -> bool:
        return self._open

    @property
    def remaining(self) -> int:
        """Events not yet replayed (0 at the end of a faithful replay)."""
        return len(self.recording.events) - self._next

    def _peek(self) -> Event | None:
        events = self.recording.events
        return events[self._next] if self._next < len(events) else None

    def _expect(self, *directions: Direction) -> Event:
        event = self._peek()
        if event is None:
            raise ReplayMismatch(
                f"recording ended, the driver wanted {'/'.join(directions)}", source=self.port
            )
        if event.direction not in directions:
            raise ReplayMismatch(
                f"event {self._next}: recorded {event.direction}"
                f" '{escape_bytes(event.data)[:40]}', the driver wanted {'/'.join(directions)}",
                source=self.port,
            )
        self._next += 1
        return event

    def _skip(self, direction: Direction) -> bool:
        event = self._peek()
        if event is not None and event.direction == direction:
            self._next += 1
            return True
        return False

    def open(self) -> None:
        event = self._expect("open", "lost")
        if event.direction == "lost":
            raise LinkLost("cannot open the port (recorded)", source=self.port)
        self._open = True

    def close(self) -> None:
        if self._open:
            self._open = False
            self._skip("close")

    def write(self, data: bytes) -> None:
        event = self._expect("out")
        if self.strict and event.data != data:
            raise ReplayMismatch(
                f"event {self._next - 1}: wrote '{escape_bytes(data)[:60]}',"
                f" recorded '{escape_bytes(event.data)[:60]}'",
                source=self.port,
            )
        if self._skip("lost"):
            raise LinkLost("write failed (recorded)", source=self.port)

    def read_until(self, terminator: bytes, timeout: float) -> bytes:
        return self._read()

    def read_exact(self, count: int, timeout: float) -> bytes:
        return self._read()

    def _read(self) -> bytes:
        event = self._expect("in", "timeout", "lost")
        if event.direction == "timeout":
            raise LinkTimeout("no reply (recorded)", source=self.port, partial=event.data)
        if event.direction == "lost":
            raise LinkLost("read failed (recorded)", source=self.port)
        return event.data

    def discard_input(self) -> None:
        if not self._skip("purge") and self.strict:
            self._expect("purge")
