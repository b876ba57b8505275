"""Agilent BioTek framed protocol (Synergy H1 / Cytation; INSTRUMENTS.md, PyLabRobot).

One-character commands. A plain command (``C`` serial, ``e`` firmware, ``h``
temperature, ``o`` status, ``O`` run) is answered by one frame: ACK (0x06) or NAK
(0x15), a payload, a 4-hex-digit status word, ETX (0x03); ``0000`` is success, anything
else maps through :func:`drivers.errors.biotek_error`. A command with parameters (``y``
plate geometry, ``D`` read definition) is answered ACK alone, then the parameters are
sent (ending in ETX; ``D`` with its checksum: the sum of its ASCII bytes % 100 as two
digits) and answered by a frame. The input buffer is purged before every command. After
``O`` the body comes when the read is done (up to minutes): ``01,1,\\r`` + elapsed time +
``,NNN,`` then ``row,col,value`` triples, rows joined by CR LF ``,``, then CR LF and a
trailer ``NNN\\x1aNNN\\x1a<status>`` + ETX. A value of stars (``*******``) is a well the
reader could not measure; in a whole-plate read platewatch marks it ``overflow``.
Unverified on hardware: the trailer's numbers are not checked (their meaning is unknown).
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Sequence

from datamodel import PlateRead
from drivers.base import ReaderStatus, check_wavelengths, grid_read, probed_status
from drivers.errors import (
    FirmwareBusy,
    LinkLost,
    LinkTimeout,
    ReaderBusy,
    ReaderOffline,
    ReaderProtocolError,
    ReaderTimeout,
    biotek_error,
    is_biotek_status,
)
from drivers.transport import Transport, escape_bytes

logger = logging.getLogger(__name__)

ACK, NAK, ETX, SUB = b"\x06", b"\x15", b"\x03", "\x1a"
OK_STATUS = "0000"
STARS = re.compile(r"\*+")
# SBS geometry (mm): top-left well centre from the plate's top-left corner, pitch, size.
PLATE_GEOMETRY: dict[tuple[int, int], tuple[float, float, float]] = {
    (8, 12): (14.38, 11.24, 9.0),
    (16, 24): (12.13, 8.99, 4.5),
}
PLATE_SIZE_MM = (127.76, 85.48, 14.22)  # x, y, z


def checksum(text: str) -> str:
    """The BioTek parameter checksum: sum of the ASCII bytes % 100, two digits."""
    return f"{sum(text.encode('ascii')) % 100:02d}"


def read_definition(wavelength_nm: float, rows: int, cols: int) -> str:
    """The ``D`` parameters of a whole-plate endpoint absorbance read (with checksum, ETX)."""
    body = f"004701{1:02d}{1:02d}{rows:02d}{cols:02d}000120010000110010000010600008"
    body += f"{round(wavelength_nm):04d}1"
    return body + checksum(body) + ETX.decode()


def plate_definition(rows: int, cols: int) -> str:
    """The ``y`` parameters: the plate's geometry in 1/100 mm (no checksum), ETX."""
    x0, y0, pitch = PLATE_GEOMETRY.get((rows, cols), PLATE_GEOMETRY[(8, 12)])
    size_x, size_y, size_z = PLATE_SIZE_MM
    y1, x1 = y0 + (rows - 1) * pitch, x0 + (cols - 1) * pitch

    def mm(value: float, width: int = 5) -> str:
        return f"{round(value * 100):0{width}d}"

    return (
        f"{rows:02d}{cols:02d}{mm(y0)}{mm(y1)}{mm(x0)}{mm(x1)}{mm(size_y)}{mm(size_x)}"
        f"{mm(size_z, 4)}" + ETX.decode()
    )


class BioTekReader:
    """One BioTek reader on one transport (9600 baud 8N2 RTS/CTS by default)."""

    protocol = "biotek"
    default_baudrate = 9600

    def __init__(
        self,
        name: str,
        transport: Transport,
        *,
        rows: int = 8,
        cols: int = 12,
        model: str = "",
        command_timeout_s: float = 5.0,
        read_timeout_s: float = 180.0,
        busy_timeout_s: float = 600.0,
        poll_interval_s: float = 1.0,
        status_command: str = "o",
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.transport = transport
        self.rows, self.cols = rows, cols
        self.model = model
        self.command_timeout_s = command_timeout_s
        self.read_timeout_s = read_timeout_s
        self.busy_timeout_s = busy_timeout_s
        self.poll_interval_s = poll_interval_s
        self.status_command = status_command
        self._sleep, self._clock = sleep, clock
        self._lock = threading.RLock()
        self._plate_sent = False

    # -- the PlateReader protocol ---------------------------------------------------------

    def read_absorbance(self, wavelengths_nm: Sequence[float]) -> list[PlateRead]:
        chosen = check_wavelengths(self.name, wavelengths_nm, low=200, high=999, most=6)
        with self._lock:
            self.wait_until_ready(self.busy_timeout_s)
            if not self._plate_sent:
                self.with_parameters("y", plate_definition(self.rows, self.cols), status=False)
                self._plate_sent = True
            bodies: list[str] = []
            for nm in chosen:
                for attempt in range(3):
                    try:
                        self.with_parameters("D", read_definition(nm, self.rows, self.cols))
                        self.plain("O")
                        break
                    except FirmwareBusy:
                        if attempt == 2:
                            raise
                        self.wait_until_ready(self.busy_timeout_s)
                bodies.append(self._read_body())
            temperature = self.temperature()
        return [
            parse_body(body, nm, self.rows, self.cols, self.name, temperature)
            for body, nm in zip(bodies, chosen, strict=True)
        ]

    def status(self) -> ReaderStatus:
        def probe() -> ReaderStatus:
            self.plain(self.status_command)
            return ReaderStatus("idle", "status 0000")

        with self._lock:
            return probed_status(probe)

    def identify(self) -> dict[str, str]:
        with self._lock:
            serial_words = self.plain("C").split()
            version_words = self.plain("e").split()
        firmware = ""
        if "Version" in version_words and version_words[-1] != "Version":
            firmware = version_words[version_words.index("Version") + 1]
        part = version_words[0] if version_words else ""
        model = self.model or (f"BioTek {part}" if part else "BioTek")
        return {
            "model": model,
            "serial": serial_words[0] if serial_words else "",
            "firmware": firmware,
        }

    def close(self) -> None:
        with self._lock:
            self._plate_sent = False
            self.transport.close()

    # -- protocol ---------------------------------------------------------------------------

    def temperature(self) -> float | None:
        """The incubation temperature in °C (payload in tenths), None if it does not say."""
        try:
            payload = self.plain("h")
        except ReaderTimeout:
            return None
        return int(payload) / 10 if payload.strip().isdigit() else None

    def wait_until_ready(self, limit_s: float) -> None:
        """Poll the status command until ``0000``; a busy status is not a final reply."""
        start, polls = self._clock(), 0
        while True:
            polls += 1
            try:
                self.plain(self.status_command)
                return
            except FirmwareBusy:
                waited = self._clock() - start
                if waited >= limit_s:
                    raise ReaderBusy(
                        self.name, f"still busy after {waited:.0f} s ({polls} status polls)"
                    ) from None
            self._sleep(self.poll_interval_s)

    def plain(self, command: str) -> str:
        """A one-character command; returns the payload of its frame."""
        with self._lock:
            return self._talk(command, None, status=True)

    def with_parameters(self, command: str, parameters: str, *, status: bool = True) -> str:
        with self._lock:
            return self._talk(command, parameters, status=status)

    def _talk(self, command: str, parameters: str | None, *, status: bool) -> str:
        timeout = self.command_timeout_s
        try:
            if not self.transport.is_open:
                self.transport.open()
                self._plate_sent = False
            self.transport.discard_input()
            self.transport.write(command.encode("ascii"))
            if parameters is None:
                return self._frame(command, self._reply(command, timeout), status=True)
            first = self.transport.read_exact(1, timeout)
            if first == NAK:
                self._frame(command, first + self.transport.read_until(ETX, timeout), status=True)
            if first != ACK:
                raise ReaderProtocolError(
                    self.name, f"{command} answered {escape_bytes(first)!r}, not ACK"
                )
            self.transport.write(parameters.encode("ascii"))
            return self._frame(command, self.transport.read_until(ETX, timeout), status=status)
        except LinkTimeout as exc:
            raise ReaderTimeout(
                self.name, f"no complete reply to {command!r} within {timeout:.3g} s"
            ) from exc
        except LinkLost as exc:
            self._plate_sent = False
            raise ReaderOffline(self.name, exc.message) from exc

    def _reply(self, command: str, timeout: float) -> bytes:
        return self.transport.read_until(ETX, timeout)

    def _read_body(self) -> str:
        try:
            raw = self.transport.read_until(ETX, self.read_timeout_s)
        except LinkTimeout as exc:
            raise ReaderTimeout(
                self.name, f"no read data within {self.read_timeout_s:.0f} s of O"
            ) from exc
        except LinkLost as exc:
            raise ReaderOffline(self.name, exc.message) from exc
        return self._text(raw, "O")

    def _text(self, raw: bytes, command: str) -> str:
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError as exc:
            raise ReaderProtocolError(
                self.name, f"garbled reply to {command!r}: {escape_bytes(raw)[:40]!r}"
            ) from exc
        if any(ord(ch) < 0x20 and ch not in "\r\n\x03\x06\x15\x1a" for ch in text):
            raise ReaderProtocolError(
                self.name, f"garbled reply to {command!r}: {escape_bytes(raw)[:40]!r}"
            )
        return text

    def _frame(self, command: str, raw: bytes, *, status: bool) -> str:
        """ACK/NAK? payload status? ETX → the payload; a non-zero status raises."""
        text = self._text(raw, command)
        if not text.endswith("\x03"):
            raise ReaderProtocolError(self.name, f"reply to {command!r} has no ETX")
        text = text[:-1]
        refused = text.startswith("\x15")
        if text[:1] in ("\x06", "\x15"):
            text = text[1:]
        if not status and not refused:
            return text
        word = text[-4:]
        if len(text) < 4 or not is_biotek_status(word):
            raise ReaderProtocolError(
                self.name, f"reply to {command!r} ends without a status: {escape_bytes(raw)[:40]!r}"
            )
        if word != OK_STATUS or refused:
            raise biotek_error(self.name, word, repr(command))
        return text[:-4]


def parse_body(
    text: str,
    wavelength_nm: float,
    rows: int,
    cols: int,
    reader: str,
    temperature_c: float | None = None,
) -> PlateRead:
    """The data that follows ``O`` → one PlateRead (stars → ``overflow``, raw token kept)."""

    def bad(why: str) -> ReaderProtocolError:
        return ReaderProtocolError(reader, f"read data: {why}")

    if not text.endswith("\x03") or "\r\n" not in text:
        raise bad("no trailer")
    data, trailer = text[:-1].rsplit("\r\n", 1)
    status = trailer.split(SUB)[-1]
    if not is_biotek_status(status):
        raise bad(f"trailer {trailer[:20]!r} ends without a status")
    if status != OK_STATUS:
        raise biotek_error(reader, status, "the read")
    head, sep, rest = data.partition("\r")
    if not sep or not head.startswith("01,"):
        raise bad(f"header {head[:20]!r}")
    tokens = rest.replace("\r\n", "").split(",")
    if len(tokens) < 2 or (len(tokens) - 2) % 3:
        raise bad(f"{len(tokens)} fields do not make row,col,value triples")
    elapsed = _elapsed_s(tokens[0])
    values: list[list[float | None]] = [[None] * cols for _ in range(rows)]
    raw: list[list[str | None]] = [[""] * cols for _ in range(rows)]
    for i in range(2, len(tokens), 3):
        row_text, col_text, cell = tokens[i : i + 3]
        if not (row_text.isdigit() and col_text.isdigit()):
            raise bad(f"well {row_text[:4]!r},{col_text[:4]!r}")
        row, col = int(row_text) - 1, int(col_text) - 1
        if not (0 <= row < rows and 0 <= col < cols) or raw[row][col] != "":
            raise bad(f"well {row + 1},{col + 1} out of the plate or repeated")
        if STARS.fullmatch(cell):
            raw[row][col] = cell
            continue
        try:
            value = float(cell)
        except ValueError:
            raise bad(f"well {row + 1},{col + 1}: {cell[:12]!r} is not a value") from None
        if not math.isfinite(value):
            raise bad(f"well {row + 1},{col + 1} is not a finite number")
        values[row][col], raw[row][col] = value, None
    return grid_read(
        values,
        raw,
        wavelength_nm=wavelength_nm,
        overflow_tokens=frozenset(t for line in raw for t in line if t),
        time_s=elapsed,
        temperature_c=temperature_c,
    )


def _elapsed_s(text: str) -> float | None:
    """``000:00:00.0`` (h:mm:ss.s since the run started) → seconds; None if not that."""
    parts = text.split(":")
    if len(parts) != 3:
        return None
    try:
        hours, minutes, seconds = int(parts[0]), int(parts[1]), float(parts[2])
    except ValueError:
        return None
    return hours * 3600 + minutes * 60 + seconds
