"""Molecular Devices SpectraMax ``!`` ASCII protocol (INSTRUMENTS.md, as PyLabRobot speaks it).

A command is ``!NAME args`` + CR. The reply is one or two fields, each ended by ``>``;
lines inside a field end CR LF. ``FAIL\\t<code>`` in the first or last field is an error
(:data:`drivers.errors.SPECTRAMAX_ERRORS`); a reply with no ``OK`` is an error too. An
endpoint read is the setup sequence, ``!READ``, ``!STATUS`` polled until its second word
is ``IDLE`` (a busy status is not a final reply), then ``!TRANSFER``, whose data field is
column-major: one line per plate column, values down the column; ``#SAT`` = saturated.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Sequence

from datamodel import PlateRead
from drivers.base import (
    ReaderState,
    ReaderStatus,
    check_wavelengths,
    grid_read,
    probed_status,
    wavelength_label,
)
from drivers.errors import (
    FirmwareBusy,
    LinkLost,
    LinkTimeout,
    ReaderBusy,
    ReaderOffline,
    ReaderProtocolError,
    ReaderTimeout,
    spectramax_error,
)
from drivers.transport import Transport, escape_bytes

logger = logging.getLogger(__name__)

COMMAND_END = b"\r"
FIELD_END = b">"
SATURATED = "#SAT"
# Commands whose reply has two fields (OK>, then data>); every other command has one.
TWO_FIELD_COMMANDS = frozenset(
    {
        "!ERROR",
        "!OPTION",
        "!PATHCAL",
        "!QUEUE",
        "!READSTAGE",
        "!READTYPE",
        "!SPEED",
        "!STATUS",
        "!TEMP",
        "!TRANSFER",
        "!USER_NUMBER",
        "!WELLSCANMODE",
    }
)
# Well centres of SBS plates (mm from the plate's top-left corner) and pitch, per format.
PLATE_GEOMETRY: dict[tuple[int, int], tuple[float, float, float, float]] = {
    (8, 12): (14.38, 11.24, 9.0, 9.0),
    (16, 24): (12.13, 8.99, 4.5, 4.5),
}
_COLUMN_LINE = re.compile(r"(\d+):(.*)")


def fields_for(command: str) -> int:
    return 2 if command.split(" ", 1)[0] in TWO_FIELD_COMMANDS else 1


def setup_commands(wavelengths_nm: Sequence[float], rows: int, cols: int) -> list[str]:
    """The endpoint absorbance setup, in the order PyLabRobot's driver sends it."""
    x0, y0, dx, dy = PLATE_GEOMETRY.get((rows, cols), PLATE_GEOMETRY[(8, 12)])
    return [
        "!CLEAR DATA",
        f"!XPOS {x0:.3f} {dx:.3f} {cols}",
        f"!YPOS {y0:.3f} {dy:.3f} {rows}",
        f"!STRIP 1 {cols}",
        "!CSPEED 8",
        "!SHAKE OFF",
        "!WAVELENGTH " + " ".join(wavelength_label(w) for w in wavelengths_nm),
        "!CALIBRATE ONCE",
        "!MODE ENDPOINT",
        "!ORDER COLUMN",
        "!SPEED OFF",
        "!TAG OFF",
        "!NVRAM CARCOL 100",
        "!READTYPE ABSPLA",
    ]


class SpectraMaxReader:
    """One SpectraMax on one transport. Thread-safe: one command at a time per reader."""

    protocol = "spectramax"
    default_baudrate = 9600

    def __init__(
        self,
        name: str,
        transport: Transport,
        *,
        rows: int = 8,
        cols: int = 12,
        model: str = "SpectraMax",
        command_timeout_s: float = 10.0,
        read_timeout_s: float = 600.0,
        busy_timeout_s: float = 600.0,
        poll_interval_s: float = 1.0,
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
        self._sleep, self._clock = sleep, clock
        self._lock = threading.RLock()
        self._greeted = False

    # -- the PlateReader protocol ---------------------------------------------------------

    def read_absorbance(self, wavelengths_nm: Sequence[float]) -> list[PlateRead]:
        chosen = check_wavelengths(self.name, wavelengths_nm, low=190, high=1000, most=6)
        with self._lock:
            for attempt in range(3):
                self.wait_until_idle(self.busy_timeout_s)
                try:
                    for command in setup_commands(chosen, self.rows, self.cols):
                        self.command(command)
                    self.command("!READ")
                    break
                except FirmwareBusy:  # someone started a read at the front panel
                    if attempt == 2:
                        raise
            self.wait_until_idle(self.read_timeout_s, after="!READ")
            data = self.command("!TRANSFER")
            if len(data) < 2:
                raise ReaderProtocolError(self.name, "!TRANSFER answered no data field")
            return parse_transfer(data[1], chosen, self.rows, self.cols, self.name)

    def status(self) -> ReaderStatus:
        with self._lock:
            return probed_status(self._status)

    def identify(self) -> dict[str, str]:
        with self._lock:
            reply = self.command("!OPTION")
        firmware = " ".join(reply[1].split()) if len(reply) > 1 else ""
        return {"model": self.model, "serial": "", "firmware": firmware}

    def close(self) -> None:
        with self._lock:
            self._greeted = False
            self.transport.close()

    # -- protocol ---------------------------------------------------------------------------

    def _status(self) -> ReaderStatus:
        reply = self.command("!STATUS")
        words = reply[1].split() if len(reply) > 1 else []
        if len(words) < 2:
            raise ReaderProtocolError(self.name, f"!STATUS answered {reply!r}"[:120])
        state: ReaderState = "idle" if words[1].upper() == "IDLE" else "busy"
        return ReaderStatus(state, " ".join(words))

    def wait_until_idle(self, limit_s: float, *, after: str = "") -> None:
        """Poll ``!STATUS`` every ``poll_interval_s`` until IDLE; ReaderBusy after ``limit_s``."""
        start = self._clock()
        polls = 0
        while True:
            polls += 1
            try:
                if self._status().state == "idle":
                    return
            except FirmwareBusy:
                pass
            waited = self._clock() - start
            if waited >= limit_s:
                what = f" after {after}" if after else ""
                raise ReaderBusy(
                    self.name, f"still busy{what} after {waited:.0f} s ({polls} status polls)"
                )
            self._sleep(self.poll_interval_s)

    def command(self, command: str, *, timeout_s: float | None = None) -> list[str]:
        """Send one command, return its fields (without ``>``); errors raise."""
        with self._lock:
            self._ensure_open()
            return self._exchange(command, timeout_s or self.command_timeout_s)

    def _ensure_open(self) -> None:
        if self.transport.is_open and self._greeted:
            return
        try:
            self.transport.open()
        except LinkLost as exc:
            raise ReaderOffline(self.name, exc.message) from exc
        self._greeted = True
        try:
            self._exchange("!", self.command_timeout_s)
        except BaseException:
            self._greeted = False
            raise

    def _exchange(self, command: str, timeout_s: float) -> list[str]:
        wanted = fields_for(command)
        fields: list[str] = []
        try:
            self.transport.discard_input()
            self.transport.write(command.encode("ascii") + COMMAND_END)
            while len(fields) < wanted:
                raw = self.transport.read_until(FIELD_END, timeout_s)
                fields.append(self._decode(raw[: -len(FIELD_END)], command))
                if "FAIL" in fields[-1]:
                    break
        except LinkTimeout as exc:
            got = f"; got {escape_bytes(exc.partial)[:40]!r}" if exc.partial else ""
            raise ReaderTimeout(
                self.name, f"no complete reply to {command} within {timeout_s:.3g} s{got}"
            ) from exc
        except LinkLost as exc:
            self._greeted = False
            raise ReaderOffline(self.name, exc.message) from exc
        self._check(command, fields)
        return fields

    def _decode(self, raw: bytes, command: str) -> str:
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError as exc:
            raise ReaderProtocolError(
                self.name, f"garbled reply to {command}: {escape_bytes(raw)[:40]!r}"
            ) from exc
        if any(ord(ch) < 0x20 and ch not in "\r\n\t" for ch in text):
            raise ReaderProtocolError(
                self.name, f"garbled reply to {command}: {escape_bytes(raw)[:40]!r}"
            )
        return text.strip()

    def _check(self, command: str, fields: list[str]) -> None:
        failed = next((f for f in (fields[0], fields[-1]) if "FAIL" in f), None)
        if failed is not None:
            code_text = failed.split("FAIL", 1)[1].strip().split()
            if not code_text or not code_text[0].isdigit():
                raise ReaderProtocolError(self.name, f"{command} failed: {failed[:40]!r}")
            raise spectramax_error(self.name, int(code_text[0]), command)
        if not any("OK" in f for f in fields):
            raise ReaderProtocolError(
                self.name, f"reply to {command} has no OK: {' > '.join(fields)[:60]!r}"
            )


def parse_transfer(
    text: str, wavelengths_nm: Sequence[float], rows: int, cols: int, reader: str
) -> list[PlateRead]:
    """``!TRANSFER``'s data field → one PlateRead per wavelength (column-major on the wire)."""
    lines = [line.strip() for line in re.split(r"\r\n|\n|\r", text) if line.strip()]

    def bad(why: str) -> ReaderProtocolError:
        return ReaderProtocolError(reader, f"!TRANSFER data: {why}")

    if len(lines) < 2:
        raise bad("no header")
    header = lines[0].split("\t")
    time_s = _number(header[0]) if header else None
    temperature_c = _number(header[1]) if len(header) > 1 else None
    listed = lines[1].split("\t")
    expected = [wavelength_label(w) for w in wavelengths_nm]
    if listed[0] != "L:" or [w.strip() for w in listed[1:]] != expected:
        raise bad(f"wavelength line {lines[1][:40]!r}, expected L: {' '.join(expected)}")
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines[2:]:
        if line.startswith("L:"):
            label = line[2:].strip()
            if label in blocks:
                raise bad(f"wavelength {label} twice")
            current = blocks.setdefault(label, [])
        elif current is None:
            raise bad(f"data before a wavelength line: {line[:30]!r}")
        else:
            current.append(line)
    reads: list[PlateRead] = []
    for nm, label in zip(wavelengths_nm, expected, strict=True):
        if label not in blocks:
            raise bad(f"no data for {label} nm")
        values: list[list[float | None]] = [[None] * cols for _ in range(rows)]
        tokens: list[list[str | None]] = [[""] * cols for _ in range(rows)]
        seen: set[int] = set()
        for line in blocks[label]:
            match = _COLUMN_LINE.fullmatch(line)
            if match is None:
                raise bad(f"not a column line: {line[:30]!r}")
            col = int(match.group(1)) - 1
            cells = match.group(2).split()
            if not 0 <= col < cols or col in seen:
                raise bad(f"column {col + 1} out of range or repeated")
            if len(cells) != rows:
                raise bad(f"column {col + 1} has {len(cells)} values, expected {rows}")
            seen.add(col)
            for row, cell in enumerate(cells):
                value = _number(cell)
                if value is not None:
                    values[row][col], tokens[row][col] = value, None
                elif cell.startswith("#"):
                    tokens[row][col] = cell
                else:
                    raise bad(f"column {col + 1}: {cell[:12]!r} is not a value")
        reads.append(
            grid_read(
                values,
                tokens,
                wavelength_nm=nm,
                overflow_tokens=frozenset({SATURATED}),
                time_s=time_s,
                temperature_c=temperature_c,
            )
        )
    return reads


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
