"""Reader errors and the firmware error tables (STYLE.md §4).

Every error is an :class:`errors.InstrumentError` whose ``source`` is the reader's
configured name, so ``str(err)`` is one line: ``"reader-1: firmware error 304 (signal
level saturation) after !READ"``. Transports raise :class:`LinkError` (source: the port);
drivers turn those into :class:`ReaderTimeout` / :class:`ReaderOffline` naming the reader.

Firmware codes map to classes in a table per protocol: :data:`SPECTRAMAX_ERRORS` (the
SpectraMax ``FAIL\\t<code>`` codes, as PyLabRobot's ``spectramax/errors.py`` lists them)
and :func:`biotek_error` (the 4-hex-digit ELx status words of the ELx808 manual,
appendix B, as decoded by chaceraiter/biotek-controller; unverified on a Synergy).
"""

from __future__ import annotations

import re

from errors import InstrumentError


class ReaderError(InstrumentError):
    """Something went wrong talking to one configured reader (``source`` = its name)."""

    def __init__(self, reader: str, message: str) -> None:
        super().__init__(message, source=reader)
        self.reader = reader


class ReaderBusy(ReaderError):
    """The reader stayed busy longer than we were prepared to wait."""


class ReaderTimeout(ReaderError):
    """The reader did not answer in time (silent, slow, or a wrong terminator)."""


class ReaderOffline(ReaderError):
    """The port is gone (unplugged adapter, closed network serial server) or cannot open."""


class ReaderProtocolError(ReaderError):
    """The reply was garbled or not what the protocol allows."""


class UnsupportedRequest(ReaderError):
    """The read asked for cannot be done by this reader (e.g. a wavelength out of range)."""


class FirmwareError(ReaderError):
    """The instrument answered with an error code; ``code`` and ``meaning`` say which."""

    category = "firmware error"

    def __init__(self, reader: str, code: str, meaning: str, context: str = "") -> None:
        after = f" after {context}" if context else ""
        super().__init__(reader, f"{self.category} {code} ({meaning}){after}")
        self.code = code
        self.meaning = meaning


class CommandRejected(FirmwareError):
    category = "command error"


class FirmwareBusy(FirmwareError, ReaderBusy):
    """A firmware code that means 'busy, ask again later' (not a final failure)."""

    category = "busy"


class FirmwareFault(FirmwareError):
    category = "firmware error"


class HardwareFault(FirmwareError):
    category = "hardware error"


class MotionFault(FirmwareError):
    category = "motion error"


class NvramFault(FirmwareError):
    category = "NVRAM error"


# -- transport level ---------------------------------------------------------------------


class LinkError(InstrumentError):
    """A transport problem (``source`` = the port); drivers re-raise it naming the reader."""


class LinkTimeout(LinkError):
    """No terminator before the deadline; ``partial`` holds what did arrive."""

    def __init__(self, message: str, *, source: str, partial: bytes = b"") -> None:
        super().__init__(message, source=source)
        self.partial = partial


class LinkLost(LinkError):
    """The port cannot be opened, or disappeared under us (pyserial #331: unplugged)."""


# -- tables --------------------------------------------------------------------------------

SPECTRAMAX_ERRORS: dict[int, tuple[str, type[FirmwareError]]] = {
    100: ("command not found", CommandRejected),
    101: ("invalid argument", CommandRejected),
    102: ("too many arguments", CommandRejected),
    103: ("not enough arguments", CommandRejected),
    104: ("input line too long", CommandRejected),
    105: ("command invalid, system busy", FirmwareBusy),
    106: ("command invalid, measurement in progress", FirmwareBusy),
    107: ("no data to transfer", CommandRejected),
    108: ("data buffer full", CommandRejected),
    109: ("error buffer overflow", CommandRejected),
    110: ("stray light cuvette, door open?", CommandRejected),
    111: ("invalid read settings", CommandRejected),
    200: ("assert failed", FirmwareFault),
    201: ("bad error number", FirmwareFault),
    202: ("receive queue overflow", FirmwareFault),
    203: ("serial port parity error", FirmwareFault),
    204: ("serial port overrun error", FirmwareFault),
    205: ("serial port framing error", FirmwareFault),
    206: ("command generated too much output", FirmwareFault),
    207: ("fatal trap", FirmwareFault),
    208: ("RTOS error", FirmwareFault),
    209: ("stack overflow", FirmwareFault),
    210: ("unknown interrupt", FirmwareFault),
    300: ("thermistor faulty", HardwareFault),
    301: ("safe temperature limit exceeded", HardwareFault),
    302: ("low light", HardwareFault),
    303: ("unable to calibrate dark current", HardwareFault),
    304: ("signal level saturation", HardwareFault),
    305: ("reference level saturation", HardwareFault),
    306: ("plate air calibration failed, low light", HardwareFault),
    307: ("cuvette air reference failed", HardwareFault),
    308: ("stray light", HardwareFault),
    312: ("gain calibration failed", HardwareFault),
    313: ("reference gain check failed", HardwareFault),
    314: ("low lamp level warning", HardwareFault),
    315: ("cannot find zero order", HardwareFault),
    316: ("grating motor driver faulty", HardwareFault),
    317: ("monitor ADC faulty", HardwareFault),
    400: ("carriage motion error", MotionFault),
    401: ("filter wheel error", MotionFault),
    402: ("grating error", MotionFault),
    403: ("stage error", MotionFault),
    500: ("NVRAM CRC corrupt", NvramFault),
    501: ("NVRAM grating calibration data bad", NvramFault),
    502: ("NVRAM cuvette air calibration data error", NvramFault),
    503: ("NVRAM plate air calibration data error", NvramFault),
    504: ("NVRAM carriage offset error", NvramFault),
    505: ("NVRAM stage offset error", NvramFault),
}


def spectramax_error(reader: str, code: int, context: str) -> FirmwareError:
    meaning, cls = SPECTRAMAX_ERRORS.get(code, ("unknown error code", FirmwareFault))
    return cls(reader, str(code), meaning, context)


# ELx status words: 4 hex digits, '.' = any digit (a motor, filter or channel number).
BIOTEK_STATUS: tuple[tuple[str, str, type[FirmwareError]], ...] = (
    ("0100", "read function aborted", CommandRejected),
    ("020.", "opto-sensor transition missing", MotionFault),
    ("030.", "no beam: saturation transition missing", HardwareFault),
    ("040.", "motor position verify failed", MotionFault),
    ("050.", "A/D signal saturated", HardwareFault),
    ("060.", "filter gain out of range", HardwareFault),
    ("09..", "dark reading out of range", HardwareFault),
    ("0A..", "air/blank reading out of range", HardwareFault),
    ("0E0.", "wavelength not found", CommandRejected),
    ("0F..", "filter signal out of range", HardwareFault),
    ("1000", "configuration data missing", NvramFault),
    ("1100", "configuration checksum failed", NvramFault),
    ("1200", "calibration data missing", NvramFault),
    ("130.", "motor not homed", MotionFault),
    ("1700", "kinetic interval too short", CommandRejected),
    ("1800", "too many kinetic intervals", CommandRejected),
    ("2100", "invalid parameter value", CommandRejected),
    ("23..", "lamp control failure", HardwareFault),
    ("A200", "read already in progress", FirmwareBusy),
    ("A30.", "device not available", FirmwareBusy),
    ("A400", "failed code checksum test", FirmwareFault),
)
_HEX4 = re.compile(r"[0-9A-F]{4}")


def biotek_error(reader: str, status: str, context: str) -> FirmwareError:
    code = status.upper()
    for pattern, meaning, cls in BIOTEK_STATUS:
        if re.fullmatch(pattern, code):
            return cls(reader, code, meaning, context)
    return FirmwareFault(reader, code, "unknown status", context)


def is_biotek_status(text: str) -> bool:
    return _HEX4.fullmatch(text.upper()) is not None
