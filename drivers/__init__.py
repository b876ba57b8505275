"""Instrument drivers: one class per protocol with its transport passed in (STYLE.md §1–3).

What the rest of platewatch uses:

* :func:`open_session` / :func:`open_reader` (``drivers.factory``): a ``[[reader]]`` of the
  config → a supervised :class:`ReaderSession` / a bare :class:`PlateReader`;
* :class:`PlateReader`, :class:`ReaderStatus` (``drivers.base``), the errors
  (``drivers.errors``), :func:`reads_to_export` for ``platewatch read --json``;
* :class:`PlateModel` and :class:`SimulatedReader`: the seeded plate with known truth;
* ``drivers.fakes``: pty fakes speaking the SpectraMax and BioTek bytes, pyvisa-sim YAML.

Only stdlib, numpy, pyserial, pyvisa, ``datamodel`` and ``errors`` are imported here.
"""

from drivers.base import IO, PlateReader, ReaderStatus, reads_to_export
from drivers.errors import (
    FirmwareError,
    ReaderBusy,
    ReaderError,
    ReaderOffline,
    ReaderProtocolError,
    ReaderTimeout,
    UnsupportedRequest,
)
from drivers.factory import PROTOCOLS, open_reader, open_session
from drivers.plate_model import PlateModel
from drivers.session import ReaderAlert, ReaderSession, SessionState
from drivers.simulator import SimulatedReader

__all__ = [
    "IO",
    "PROTOCOLS",
    "FirmwareError",
    "PlateModel",
    "PlateReader",
    "ReaderAlert",
    "ReaderBusy",
    "ReaderError",
    "ReaderOffline",
    "ReaderProtocolError",
    "ReaderSession",
    "ReaderStatus",
    "ReaderTimeout",
    "SessionState",
    "SimulatedReader",
    "UnsupportedRequest",
    "open_reader",
    "open_session",
    "reads_to_export",
]
