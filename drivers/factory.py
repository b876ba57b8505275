"""From a config ``[[reader]]`` to a reader: :func:`open_reader` and :func:`open_session`.

``port`` is a device (``/dev/ttyUSB0``), a pyserial URL (``socket://moxa:4001``,
``rfc2217://…``, ``loop://``), a VISA resource (``ASRL/dev/ttyUSB0::INSTR``,
``TCPIP::10.0.0.5::INSTR``) or ``replay:PATH`` (a recorded session, played back).
``protocol`` is ``spectramax``, ``biotek``, ``scpi`` or ``simulated``. ``options`` (the
``[reader.options]`` table) are checked here: an unknown key is a ConfigError naming it.

Options every wire protocol takes: ``timeout_s`` (per command), ``read_timeout_s`` (the
measurement), ``busy_timeout_s``, ``poll_interval_s`` (status polls while busy),
``record`` (path: write the session as a JSON recording on close), ``visa_library``
(VISA ports: ``""``, ``"@py"``, ``"defs.yaml@sim"``), and on serial ports ``bytesize``,
``parity``, ``stopbits``, ``rtscts``. SpectraMax and BioTek also take ``rows``, ``cols``
and ``model``; BioTek ``status_command`` (default ``"o"``); SCPI the command map of
:class:`drivers.scpi.ScpiCommands`; simulated the :class:`drivers.plate_model.PlateModel`
fields plus ``start_hours``, ``time_scale`` and ``temperature_c``. Session options
(:func:`open_session`): ``reconnect_attempts``, ``backoff_s``, ``backoff_max_s``,
``retries``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from drivers.base import PlateReader
from drivers.biotek import BioTekReader
from drivers.capture import Recording, RecordingTransport, ReplayTransport
from drivers.plate_model import PlateModel
from drivers.scpi import ScpiCommands, ScpiReader
from drivers.session import ReaderAlert, ReaderSession
from drivers.simulator import SimulatedReader
from drivers.spectramax import SpectraMaxReader
from drivers.transport import SerialTransport, Transport, VisaTransport, is_visa_resource
from errors import ConfigError, InstrumentError

PROTOCOLS = ("spectramax", "biotek", "scpi", "simulated")
REPLAY_PREFIX = "replay:"
# The serial framing each protocol expects when the config does not say (INSTRUMENTS.md).
SERIAL_DEFAULTS: dict[str, dict[str, Any]] = {
    "spectramax": {"baudrate": 9600, "bytesize": 8, "parity": "N", "stopbits": 1, "rtscts": False},
    "biotek": {"baudrate": 9600, "bytesize": 8, "parity": "N", "stopbits": 2, "rtscts": True},
    "scpi": {"baudrate": 9600, "bytesize": 8, "parity": "N", "stopbits": 1, "rtscts": False},
}
TIMING = ("timeout_s", "read_timeout_s", "busy_timeout_s", "poll_interval_s")
SERIAL_KEYS = ("bytesize", "parity", "stopbits", "rtscts")
TRANSPORT_KEYS = ("record", "visa_library", *SERIAL_KEYS)
SESSION_KEYS = ("reconnect_attempts", "backoff_s", "backoff_max_s", "retries")
SIMULATOR_KEYS = ("start_hours", "time_scale", "temperature_c")


def open_reader(
    name: str,
    protocol: str,
    port: str,
    *,
    baudrate: int | None = None,
    options: Mapping[str, Any] | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    transport: Transport | None = None,
) -> PlateReader:
    """A driver for one configured reader. Nothing is opened yet: the first command does.

    ``clock`` is the wall clock the simulator ages its plate by; drivers time their
    deadlines with ``time.monotonic`` and wait with ``sleep``. ``transport`` replaces the
    one ``port`` names (tests inject scripted or replayed transports this way).
    """
    opts = dict(options or {})
    for key in SESSION_KEYS:
        opts.pop(key, None)
    if protocol == "simulated":
        return _simulated(name, opts, clock)
    if protocol not in PROTOCOLS:
        raise ConfigError(
            f"unknown reader protocol {protocol!r} (one of {', '.join(PROTOCOLS)})", source=name
        )
    built = _transport(name, protocol, port, baudrate, opts)
    transport = transport or built
    timing = {key: _positive(name, key, opts.pop(key)) for key in TIMING if key in opts}
    if protocol == "scpi":
        merged = {**{k: v for k, v in timing.items()}, **opts}
        return ScpiReader(
            name, transport, ScpiCommands.from_options(merged, source=name), sleep=sleep
        )
    rows, cols = _int(name, "rows", opts.pop("rows", 8)), _int(name, "cols", opts.pop("cols", 12))
    if (rows, cols) not in ((8, 12), (16, 24)):
        raise ConfigError(f"rows/cols {rows}x{cols}: 8x12 or 16x24", source=name)
    model = opts.pop("model", "SpectraMax" if protocol == "spectramax" else "")
    kwargs: dict[str, Any] = {
        "rows": rows,
        "cols": cols,
        "model": str(model),
        "sleep": sleep,
        **{("command_timeout_s" if k == "timeout_s" else k): v for k, v in timing.items()},
    }
    if protocol == "biotek" and "status_command" in opts:
        command = opts.pop("status_command")
        if not isinstance(command, str) or len(command) != 1:
            raise ConfigError("status_command must be one character", source=name)
        kwargs["status_command"] = command
    if opts:
        raise ConfigError(f"unknown {protocol} option {sorted(opts)[0]!r}", source=name)
    if protocol == "spectramax":
        return SpectraMaxReader(name, transport, **kwargs)
    return BioTekReader(name, transport, **kwargs)


def open_session(
    name: str,
    protocol: str,
    port: str,
    *,
    baudrate: int | None = None,
    options: Mapping[str, Any] | None = None,
    on_alert: Callable[[ReaderAlert], None] | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> ReaderSession:
    """A supervised reader: what the daemon holds per ``[[reader]]``."""
    opts = dict(options or {})
    session_kwargs: dict[str, Any] = {}
    for key in SESSION_KEYS:
        if key in opts:
            value = opts.pop(key)
            session_kwargs[key] = (
                _int(name, key, value)
                if key in ("reconnect_attempts", "retries")
                else _positive(name, key, value)
            )
    # bad options fail now (at config load), not at the first read
    first = open_reader(
        name, protocol, port, baudrate=baudrate, options=opts, clock=clock, sleep=sleep
    )
    shared: Transport | None = None
    if isinstance(first, SpectraMaxReader | BioTekReader | ScpiReader) and (
        port.startswith(REPLAY_PREFIX) or "record" in opts
    ):
        shared = first.transport  # one recording across reconnects
    made = [first]

    def connect() -> PlateReader:
        if made:
            return made.pop()
        if isinstance(first, SimulatedReader):  # the simulated plate survives reconnects
            return first.reopen()
        return open_reader(
            name,
            protocol,
            port,
            baudrate=baudrate,
            options=opts,
            clock=clock,
            sleep=sleep,
            transport=shared,
        )

    return ReaderSession(
        name,
        connect,
        protocol=protocol,
        port=port,
        on_alert=on_alert,
        sleep=sleep,
        **session_kwargs,
    )


def _transport(
    name: str, protocol: str, port: str, baudrate: int | None, opts: dict[str, Any]
) -> Transport:
    record = opts.pop("record", None)
    library = opts.pop("visa_library", "")
    serial_settings = dict(SERIAL_DEFAULTS[protocol])
    for key in SERIAL_KEYS:
        if key in opts:
            serial_settings[key] = opts.pop(key)
    if baudrate is not None:
        serial_settings["baudrate"] = _int(name, "baudrate", baudrate)
    transport: Transport
    if port.startswith(REPLAY_PREFIX):
        try:
            transport = ReplayTransport(Recording.load(port[len(REPLAY_PREFIX) :]))
        except InstrumentError as exc:
            raise ConfigError(f"port {port}: {exc}", source=name) from exc
    elif is_visa_resource(port):
        if not isinstance(library, str):
            raise ConfigError("visa_library must be a string", source=name)
        transport = VisaTransport(port, library=library, baudrate=baudrate)
    elif port:
        try:
            transport = SerialTransport(port, **serial_settings)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"serial settings: {exc}", source=name) from exc
    else:
        raise ConfigError("no port given", source=name)
    if record is not None:
        if not isinstance(record, str | Path):
            raise ConfigError("record must be a file path", source=name)
        transport = RecordingTransport(transport, record, reader=name, protocol=protocol)
    return transport


def _simulated(name: str, opts: dict[str, Any], clock: Callable[[], float]) -> SimulatedReader:
    reader_kwargs = {
        key: _number(name, key, opts.pop(key)) for key in SIMULATOR_KEYS if key in opts
    }
    model = PlateModel.from_options(opts, source=name)
    return SimulatedReader(name, model, clock=clock, **reader_kwargs)


def _number(name: str, key: str, value: Any) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or value != value:
        raise ConfigError(f"option {key} must be a number", source=name)
    if value in (float("inf"), float("-inf")):
        raise ConfigError(f"option {key} must be finite", source=name)
    return float(value)


def _positive(name: str, key: str, value: Any) -> float:
    number = _number(name, key, value)
    if number <= 0:
        raise ConfigError(f"option {key} must be > 0", source=name)
    return number


def _int(name: str, key: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"option {key} must be a whole number ≥ 0", source=name)
    return value
