"""A configurable SCPI-style absorbance reader over pyvisa (or any transport).

A lab describes its own instrument with a command map (the ``[reader.options]`` of the
config, validated by :meth:`ScpiCommands.from_options`)::

    identify = "*IDN?"                  # reply: maker,model,serial,firmware
    status = "STAT?"                    # "" = the instrument has no status query
    ready_reply = "READY"               # status replies meaning idle ...
    busy_reply = "BUSY"                 # ... and busy (also a busy reply to `read`)
    read = "READ:ABS? {wavelength}"     # one query per wavelength; reply = the plate
    temperature = ""                    # e.g. "TEMP?"; "" = not asked
    error_prefix = "ERR"                # a reply "ERR <code>[,<text>]" is a firmware error
    errors = {"100" = "command not found"}   # code -> meaning, for the one-line message
    terminator = "\\n"                  # appended to every command
    read_terminator = "\\n"             # ends every reply
    separator = ","                     # between values
    order = "row"                       # "row" (A1, A2, …) or "column" (A1, B1, …)
    rows = 8
    cols = 12
    overflow = ["OVER", "9.9E37"]       # tokens meaning saturated (overflow status)
    wavelength_min = 200
    wavelength_max = 1000
    timeout_s = 5.0                     # per command
    read_timeout_s = 120.0              # the read query (the plate is measured meanwhile)
    busy_timeout_s = 600.0
    poll_interval_s = 1.0
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from datamodel import PlateRead
from drivers.base import ReaderStatus, check_wavelengths, grid_read, probed_status, wavelength_label
from drivers.errors import (
    FirmwareFault,
    LinkLost,
    LinkTimeout,
    ReaderBusy,
    ReaderOffline,
    ReaderProtocolError,
    ReaderTimeout,
)
from drivers.transport import Transport, escape_bytes
from errors import ConfigError


@dataclass(frozen=True)
class ScpiCommands:
    identify: str = "*IDN?"
    status: str = "STAT?"
    ready_reply: str = "READY"
    busy_reply: str = "BUSY"
    read: str = "READ:ABS? {wavelength}"
    temperature: str = ""
    error_prefix: str = "ERR"
    errors: Mapping[str, str] = field(default_factory=dict)
    terminator: str = "\n"
    read_terminator: str = "\n"
    separator: str = ","
    order: Literal["row", "column"] = "row"
    rows: int = 8
    cols: int = 12
    overflow: tuple[str, ...] = ("OVER", "9.9E37")
    wavelength_min: float = 200.0
    wavelength_max: float = 1000.0
    timeout_s: float = 5.0
    read_timeout_s: float = 120.0
    busy_timeout_s: float = 600.0
    poll_interval_s: float = 1.0

    @classmethod
    def from_options(cls, options: Mapping[str, Any], *, source: str = "reader") -> ScpiCommands:
        """The command map from config options; ConfigError names the key at fault."""
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in options.items():
            if key not in known:
                raise ConfigError(f"unknown SCPI option {key!r}", source=source)
            default = getattr(cls(), key)
            try:
                values[key] = _coerce(key, value, default)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"SCPI option {key}: {exc}", source=source) from None
        commands = cls(**values)
        if "{wavelength}" not in commands.read:
            raise ConfigError("SCPI option read must contain {wavelength}", source=source)
        if commands.order not in ("row", "column"):
            raise ConfigError("SCPI option order must be 'row' or 'column'", source=source)
        if not (0 < commands.rows <= 64 and 0 < commands.cols <= 64):
            raise ConfigError("SCPI options rows/cols must be 1..64", source=source)
        if not commands.read_terminator or not commands.separator:
            raise ConfigError("SCPI read_terminator and separator must not be empty", source=source)
        return commands


def _coerce(key: str, value: Any, default: Any) -> Any:
    if isinstance(default, bool) or isinstance(value, bool):
        raise TypeError("not a setting of that kind")
    if isinstance(default, str):
        if not isinstance(value, str):
            raise TypeError("must be a string")
        if key == "read":
            value.format(wavelength="570")  # a bad format string fails here, not at read time
        return value
    if isinstance(default, int) and not isinstance(default, bool) and key in ("rows", "cols"):
        if not isinstance(value, int):
            raise TypeError("must be an integer")
        return value
    if isinstance(default, float):
        if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            raise ValueError("must be a positive number")
        return float(value)
    if isinstance(default, tuple):
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise TypeError("must be a list of strings")
        return tuple(value)
    if isinstance(default, Mapping):
        if not isinstance(value, Mapping):
            raise TypeError("must be a table of code = meaning")
        return {str(k): str(v) for k, v in value.items()}
    raise TypeError("unsupported")


class ScpiReader:
    """A VISA (or serial) absorbance reader described by :class:`ScpiCommands`."""

    protocol = "scpi"
    default_baudrate = 9600

    def __init__(
        self,
        name: str,
        transport: Transport,
        commands: ScpiCommands | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.transport = transport
        self.commands = commands or ScpiCommands()
        self._sleep, self._clock = sleep, clock
        self._lock = threading.RLock()

    def read_absorbance(self, wavelengths_nm: Sequence[float]) -> list[PlateRead]:
        c = self.commands
        chosen = check_wavelengths(
            self.name, wavelengths_nm, low=c.wavelength_min, high=c.wavelength_max, most=16
        )
        with self._lock:
            self.wait_until_ready()
            replies: list[str] = []
            for nm in chosen:
                command = c.read.format(wavelength=wavelength_label(nm))
                start = self._clock()
                while True:
                    reply = self.query(command, timeout_s=c.read_timeout_s)
                    if not c.busy_reply or reply.strip() != c.busy_reply:
                        break
                    if self._clock() - start >= c.busy_timeout_s:
                        raise ReaderBusy(self.name, f"{command} still answers {c.busy_reply}")
                    self._sleep(c.poll_interval_s)
                    self.wait_until_ready()
                replies.append(reply)
            temperature = self._temperature()
        return [
            self.parse_plate(reply, nm, temperature)
            for reply, nm in zip(replies, chosen, strict=True)
        ]

    def status(self) -> ReaderStatus:
        with self._lock:
            return probed_status(self._status)

    def identify(self) -> dict[str, str]:
        with self._lock:
            words = [w.strip() for w in self.query(self.commands.identify).split(",")]
        words += [""] * (4 - len(words))
        model = " ".join(w for w in words[:2] if w)
        return {"model": model, "serial": words[2], "firmware": ",".join(words[3:]).strip(",")}

    def close(self) -> None:
        with self._lock:
            self.transport.close()

    # -- protocol ---------------------------------------------------------------------------

    def _status(self) -> ReaderStatus:
        c = self.commands
        if not c.status:
            self.query(c.identify)  # no status query: an answer means it is there and idle
            return ReaderStatus("idle", "answers")
        reply = self.query(c.status).strip()
        if reply == c.ready_reply:
            return ReaderStatus("idle", reply)
        if reply == c.busy_reply:
            return ReaderStatus("busy", reply)
        raise ReaderProtocolError(
            self.name, f"status reply {reply[:40]!r} is neither ready nor busy"
        )

    def wait_until_ready(self) -> None:
        c = self.commands
        start, polls = self._clock(), 0
        while True:
            polls += 1
            if self._status().state == "idle":
                return
            waited = self._clock() - start
            if waited >= c.busy_timeout_s:
                raise ReaderBusy(self.name, f"still busy after {waited:.0f} s ({polls} polls)")
            self._sleep(c.poll_interval_s)

    def _temperature(self) -> float | None:
        if not self.commands.temperature:
            return None
        try:
            value = float(self.query(self.commands.temperature))
        except ValueError:
            return None
        return value if math.isfinite(value) else None

    def query(self, command: str, *, timeout_s: float | None = None) -> str:
        c = self.commands
        timeout = timeout_s or c.timeout_s
        end = c.read_terminator.encode("latin-1")
        with self._lock:
            try:
                if not self.transport.is_open:
                    self.transport.open()
                self.transport.discard_input()
                self.transport.write((command + c.terminator).encode("latin-1"))
                raw = self.transport.read_until(end, timeout)
            except LinkTimeout as exc:
                raise ReaderTimeout(
                    self.name, f"no reply to {command!r} within {timeout:.3g} s"
                ) from exc
            except LinkLost as exc:
                raise ReaderOffline(self.name, exc.message) from exc
        try:
            text = raw[: -len(end)].decode("ascii").strip()
        except UnicodeDecodeError as exc:
            raise ReaderProtocolError(
                self.name, f"garbled reply to {command!r}: {escape_bytes(raw)[:40]!r}"
            ) from exc
        if c.error_prefix and text.startswith(c.error_prefix):
            rest = text[len(c.error_prefix) :].strip()
            code, _, said = rest.partition(",")
            code = code.strip() or "?"
            meaning = c.errors.get(code) or said.strip().strip('"') or "no meaning configured"
            raise FirmwareFault(self.name, code, meaning, repr(command))
        return text

    def parse_plate(self, reply: str, wavelength_nm: float, temperature: float | None) -> PlateRead:
        c = self.commands
        cells = [cell.strip() for cell in reply.split(c.separator)]
        if len(cells) != c.rows * c.cols:
            raise ReaderProtocolError(
                self.name, f"the read has {len(cells)} values, expected {c.rows * c.cols}"
            )
        values: list[list[float | None]] = [[None] * c.cols for _ in range(c.rows)]
        tokens: list[list[str | None]] = [[""] * c.cols for _ in range(c.rows)]
        overflow = frozenset(c.overflow)
        for i, cell in enumerate(cells):
            r, col = (divmod(i, c.cols)) if c.order == "row" else (i % c.rows, i // c.rows)
            if cell in overflow:
                tokens[r][col] = cell
                continue
            try:
                value = float(cell)
            except ValueError:
                raise ReaderProtocolError(
                    self.name, f"value {i + 1} of the read is {cell[:12]!r}"
                ) from None
            if not math.isfinite(value):
                tokens[r][col] = cell
                continue
            values[r][col], tokens[r][col] = value, None
        return grid_read(
            values,
            tokens,
            wavelength_nm=wavelength_nm,
            overflow_tokens=overflow,
            temperature_c=temperature,
        )
