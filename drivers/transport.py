"""Byte transports: pyserial (devices and URLs) and pyvisa (resources, ``@sim`` included).

A transport only moves bytes: drivers frame them. Every byte written or read is logged at
level :data:`drivers.base.IO` (5) on this module's logger, escaped so that CR, LF, ACK and
ETX are visible. A transport keeps what it read past a terminator for the next read, so a
driver reads field by field without losing bytes. Errors: :class:`LinkTimeout` (no
terminator before the deadline, with the partial bytes) and :class:`LinkLost` (cannot
open, or the device vanished: an unplugged USB adapter, a closed pty or socket).
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any, Protocol

import serial

from drivers.base import IO
from drivers.errors import LinkLost, LinkTimeout

logger = logging.getLogger(__name__)

try:  # pyserial's POSIX backend lets termios.error (not an OSError) through, e.g. tcflush EIO
    import termios

    _TERMIOS_ERRORS: tuple[type[Exception], ...] = (termios.error,)
except ImportError:  # pragma: no cover - Windows
    _TERMIOS_ERRORS = ()
SERIAL_ERRORS: tuple[type[Exception], ...] = (serial.SerialException, OSError, *_TERMIOS_ERRORS)
OPEN_ERRORS: tuple[type[Exception], ...] = (*SERIAL_ERRORS, ValueError)
MAX_REPLY_BYTES = 1 << 20  # no reply of a plate reader comes near this; junk is cut off
VISA_RESOURCE = re.compile(r"^(ASRL|TCPIP|USB|GPIB|VXI|PXI|VICP)[0-9]*::", re.IGNORECASE)


class Transport(Protocol):
    """What a driver needs from a port."""

    port: str

    @property
    def is_open(self) -> bool: ...

    def open(self) -> None: ...

    def close(self) -> None: ...

    def write(self, data: bytes) -> None: ...

    def read_until(self, terminator: bytes, timeout: float) -> bytes:
        """Bytes up to and including ``terminator``; LinkTimeout after ``timeout`` s."""
        ...

    def read_exact(self, count: int, timeout: float) -> bytes: ...

    def discard_input(self) -> None:
        """Drop whatever is waiting to be read (the BioTek purge before every command)."""
        ...


def escape_bytes(data: bytes) -> str:
    """Printable ASCII as is, ``\\\\`` for a backslash, ``\\r \\n \\t``, else ``\\xNN``."""
    out: list[str] = []
    for byte in data:
        if byte == 0x5C:
            out.append("\\\\")
        elif byte == 0x0D:
            out.append("\\r")
        elif byte == 0x0A:
            out.append("\\n")
        elif byte == 0x09:
            out.append("\\t")
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|[rnt\\])")


def unescape_bytes(text: str) -> bytes:
    """Inverse of :func:`escape_bytes`; ValueError on anything it cannot have written."""
    out = bytearray()
    pos = 0
    for match in _ESCAPE.finditer(text):
        literal = text[pos : match.start()]
        if "\\" in literal:
            raise ValueError(f"bad escape near {literal[literal.index(chr(92)) :][:6]!r}")
        out += literal.encode("ascii")
        code = match.group(1)
        out += {"r": b"\r", "n": b"\n", "t": b"\t", "\\": b"\\"}.get(code) or bytes(
            [int(code[1:], 16)]
        )
        pos = match.end()
    tail = text[pos:]
    if "\\" in tail:
        raise ValueError("bad escape at the end")
    out += tail.encode("ascii")
    return bytes(out)


class _Buffered:
    """The read-ahead buffer and deadline loop shared by the serial and VISA transports."""

    port: str

    def __init__(self) -> None:
        self._buffer = bytearray()

    def _fill(self, timeout: float) -> bytes:  # one chunk, b"" when nothing came in time
        raise NotImplementedError

    def read_until(self, terminator: bytes, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while True:
            end = self._buffer.find(terminator)
            if end >= 0:
                return self._take(end + len(terminator))
            if len(self._buffer) > MAX_REPLY_BYTES:
                self._raise_timeout(f"no {escape_bytes(terminator)} in {MAX_REPLY_BYTES} bytes")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._raise_timeout(
                    f"no {escape_bytes(terminator)} within {timeout:.3g} s"
                    f" ({len(self._buffer)} bytes came)"
                )
            self._append(self._fill(min(remaining, 0.05)))

    def read_exact(self, count: int, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while len(self._buffer) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._raise_timeout(f"{count} bytes not there within {timeout:.3g} s")
            self._append(self._fill(min(remaining, 0.05)))
        return self._take(count)

    def _append(self, chunk: bytes) -> None:
        if chunk:
            self._buffer += chunk

    def _take(self, count: int) -> bytes:
        data = bytes(self._buffer[:count])
        del self._buffer[:count]
        logger.log(IO, "%s < %s", self.port, escape_bytes(data))
        return data

    def _raise_timeout(self, message: str) -> None:
        partial = bytes(self._buffer)
        self._buffer.clear()
        if partial:
            logger.log(IO, "%s < %s (incomplete)", self.port, escape_bytes(partial))
        raise LinkTimeout(message, source=self.port, partial=partial)


class SerialTransport(_Buffered):
    """pyserial ``serial_for_url``: a device path, ``socket://``, ``rfc2217://``, ``loop://``.

    ``exclusive`` takes an advisory lock on device ports, so a second process (or a second
    session by mistake) cannot interleave commands on the same port.
    """

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = 9600,
        bytesize: int = 8,
        parity: str = "N",
        stopbits: float = 1,
        rtscts: bool = False,
        exclusive: bool = True,
        write_timeout: float = 2.0,
    ) -> None:
        super().__init__()
        self.port = port
        self._settings: dict[str, Any] = {
            "baudrate": baudrate,
            "bytesize": bytesize,
            "parity": parity,
            "stopbits": stopbits,
            "rtscts": rtscts,
            "write_timeout": write_timeout,
        }
        if exclusive and "://" not in port:
            self._settings["exclusive"] = True
        self._serial: serial.Serial | None = None

    @property
    def is_open(self) -> bool:
        return self._serial is not None and bool(self._serial.is_open)

    def open(self) -> None:
        if self.is_open:
            return
        self._buffer.clear()
        try:
            self._serial = serial.serial_for_url(self.port, timeout=0.05, **self._settings)
        except OPEN_ERRORS as exc:
            raise LinkLost(f"cannot open the port: {one_line(exc)}", source=self.port) from exc
        logger.debug("%s opened (%s)", self.port, self._settings)

    def close(self) -> None:
        port, self._serial = self._serial, None
        self._buffer.clear()
        if port is not None:
            try:
                port.close()
            except SERIAL_ERRORS as exc:  # closing a vanished device
                logger.debug("%s: close failed: %s", self.port, exc)

    def _port(self) -> serial.Serial:
        if self._serial is None:
            raise LinkLost("the port is not open", source=self.port)
        return self._serial

    def write(self, data: bytes) -> None:
        port = self._port()
        logger.log(IO, "%s > %s", self.port, escape_bytes(data))
        try:
            port.write(data)
            port.flush()
        except serial.SerialTimeoutException as exc:
            raise LinkTimeout(f"write blocked: {one_line(exc)}", source=self.port) from exc
        except SERIAL_ERRORS as exc:
            raise LinkLost(f"write failed: {one_line(exc)}", source=self.port) from exc

    def _fill(self, timeout: float) -> bytes:
        port = self._port()
        try:
            port.timeout = timeout
            waiting = port.in_waiting
            return bytes(port.read(max(1, waiting)))
        except SERIAL_ERRORS as exc:
            raise LinkLost(f"read failed: {one_line(exc)}", source=self.port) from exc

    def discard_input(self) -> None:
        port = self._port()
        self._buffer.clear()
        try:
            port.reset_input_buffer()
        except SERIAL_ERRORS as exc:
            raise LinkLost(f"purge failed: {one_line(exc)}", source=self.port) from exc


class VisaTransport(_Buffered):
    """A pyvisa resource (``TCPIP::10.0.0.5::INSTR``, ``ASRL/dev/ttyUSB0::INSTR``, ...).

    ``library`` is the pyvisa backend: ``""`` (the default VISA), ``"@py"`` (pyvisa-py) or
    ``"definitions.yaml@sim"`` (pyvisa-sim, for tests).
    """

    def __init__(self, resource: str, *, library: str = "", baudrate: int | None = None) -> None:
        super().__init__()
        self.port = resource
        self.library = library
        self.baudrate = baudrate
        self._manager: Any = None
        self._resource: Any = None
        self._termination: bytes | None = None

    @property
    def is_open(self) -> bool:
        return self._resource is not None

    def open(self) -> None:
        if self._resource is not None:
            return
        import pyvisa

        self._buffer.clear()
        try:
            self._manager = pyvisa.ResourceManager(self.library)
            resource = self._manager.open_resource(self.port)
            resource.write_termination = ""
            resource.read_termination = None
            if self.baudrate is not None and hasattr(resource, "baud_rate"):
                resource.baud_rate = self.baudrate
        except (pyvisa.errors.Error, OSError, ValueError) as exc:
            self._close_manager()
            raise LinkLost(f"cannot open the resource: {one_line(exc)}", source=self.port) from exc
        self._resource = resource
        self._termination = None

    def close(self) -> None:
        import pyvisa

        resource, self._resource = self._resource, None
        self._buffer.clear()
        if resource is not None:
            try:
                resource.close()
            except (pyvisa.errors.Error, OSError) as exc:
                logger.debug("%s: close failed: %s", self.port, exc)
        self._close_manager()

    def _close_manager(self) -> None:
        manager, self._manager = self._manager, None
        if manager is not None:
            import pyvisa

            try:
                manager.close()
            except (pyvisa.errors.Error, OSError) as exc:
                logger.debug("%s: resource manager close failed: %s", self.port, exc)

    def write(self, data: bytes) -> None:
        import pyvisa

        if self._resource is None:
            raise LinkLost("the resource is not open", source=self.port)
        logger.log(IO, "%s > %s", self.port, escape_bytes(data))
        try:
            self._resource.write_raw(data)
        except pyvisa.errors.VisaIOError as exc:
            raise self._link_error("write", exc) from exc

    def read_until(self, terminator: bytes, timeout: float) -> bytes:
        if self._resource is not None and terminator != self._termination:
            self._resource.read_termination = terminator.decode("latin-1")
            self._termination = terminator
        return super().read_until(terminator, timeout)

    def _fill(self, timeout: float) -> bytes:
        import pyvisa

        if self._resource is None:
            raise LinkLost("the resource is not open", source=self.port)
        self._resource.timeout = max(1, int(timeout * 1000))
        try:
            return bytes(self._resource.read_raw())
        except pyvisa.errors.VisaIOError as exc:
            if exc.error_code == pyvisa.constants.StatusCode.error_timeout:
                return b""
            raise self._link_error("read", exc) from exc

    def discard_input(self) -> None:
        self._buffer.clear()

    def _link_error(self, what: str, exc: Exception) -> LinkLost:
        return LinkLost(f"{what} failed: {one_line(exc)}", source=self.port)


def one_line(exc: BaseException) -> str:
    """An exception's text on one line (library messages sometimes span several)."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def is_visa_resource(port: str) -> bool:
    return VISA_RESOURCE.match(port) is not None
