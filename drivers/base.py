"""The interface the acquisition side depends on: a plate reader it can ask for a read.

Every driver (SpectraMax, BioTek, configurable SCPI), the protocol-level simulator and a
replayed recording satisfy :class:`PlateReader`; nothing depends on a class hierarchy
(STYLE.md §1). Bytes on the wire are logged at :data:`IO` (5), below DEBUG (STYLE.md §2).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

import numpy as np

from datamodel import ExportFile, Plate, PlateRead, WellStatus, well_name

IO = 5  # log level of every byte written or read: below DEBUG, off unless asked for
logging.addLevelName(IO, "IO")

ReaderState = Literal["idle", "busy", "offline", "error"]


@dataclass(frozen=True)
class ReaderStatus:
    """What a reader says about itself right now."""

    state: ReaderState
    message: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


class PlateReader(Protocol):
    """A reader platewatch drives itself (DESIGN.md §2). Implementations take a transport.

    ``read_absorbance`` returns one :class:`PlateRead` per wavelength, in the order asked,
    ``mode="absorbance"``; a saturated well has status ``overflow`` and keeps its raw token.
    Failures raise subclasses of :class:`errors.InstrumentError` (``drivers.errors``).
    """

    name: str

    def read_absorbance(self, wavelengths_nm: Sequence[float]) -> list[PlateRead]: ...

    def status(self) -> ReaderStatus: ...

    def identify(self) -> dict[str, str]: ...

    def close(self) -> None: ...


def probed_status(probe: Callable[[], ReaderStatus]) -> ReaderStatus:
    """What ``probe`` finds, or the state its failure means (offline, busy or error)."""
    from drivers.errors import (
        FirmwareBusy,
        FirmwareError,
        ReaderOffline,
        ReaderProtocolError,
        ReaderTimeout,
    )

    try:
        return probe()
    except (ReaderOffline, ReaderTimeout) as exc:
        return ReaderStatus("offline", exc.message)
    except FirmwareBusy as exc:
        return ReaderStatus("busy", exc.message)
    except (FirmwareError, ReaderProtocolError) as exc:
        return ReaderStatus("error", exc.message)


def wavelength_label(nm: float) -> str:
    """570.0 → '570'; 405.5 → '405.5' (how wavelengths are written in commands and labels)."""
    return f"{nm:g}"


def grid_read(
    values: Sequence[Sequence[float | None]],
    tokens: Sequence[Sequence[str | None]],
    *,
    wavelength_nm: float,
    overflow_tokens: frozenset[str] = frozenset(),
    time_s: float | None = None,
    temperature_c: float | None = None,
    measured_at: str | None = None,
) -> PlateRead:
    """A PlateRead from a row-major grid of numbers and, per well, a non-number token.

    ``values[r][c]`` is the OD of an ok well; ``tokens[r][c]`` is None for an ok well,
    otherwise the instrument's raw token, kept in ``raw_tokens``: one of
    ``overflow_tokens`` gives ``overflow``, ``""`` (the well was not in the reply)
    ``not_read``, anything else ``invalid``.
    """
    rows, cols = len(values), len(values[0]) if values else 0
    grid = np.full((rows, cols), np.nan)
    status = np.empty((rows, cols), dtype=object)
    status[...] = WellStatus.OK  # np.full would store the plain str 'ok', not the enum
    raw: dict[str, str] = {}
    for r in range(rows):
        for c in range(cols):
            token = tokens[r][c]
            value = values[r][c]
            if token is None and value is not None:
                grid[r, c] = value
            elif not token:
                status[r, c] = WellStatus.NOT_READ
            else:
                status[r, c] = (
                    WellStatus.OVERFLOW if token in overflow_tokens else WellStatus.INVALID
                )
                raw[well_name(r, c)] = token
    return PlateRead(
        values=grid,
        status=status,
        label=f"{wavelength_label(wavelength_nm)}nm",
        wavelength_nm=float(wavelength_nm),
        time_s=time_s,
        temperature_c=temperature_c,
        raw_tokens=raw,
        mode="absorbance",
        measured_at=measured_at,
    )


def check_wavelengths(
    reader: str, wavelengths_nm: Sequence[float], *, low: float, high: float, most: int
) -> list[float]:
    """The wavelengths asked for, checked against what the reader can do."""
    from drivers.errors import UnsupportedRequest

    chosen = [float(w) for w in wavelengths_nm]
    if not chosen:
        raise UnsupportedRequest(reader, "no wavelength asked for")
    if len(chosen) > most:
        raise UnsupportedRequest(reader, f"{len(chosen)} wavelengths asked for; at most {most}")
    if len(set(chosen)) != len(chosen):
        raise UnsupportedRequest(reader, "the same wavelength is asked for twice")
    for nm in chosen:
        if not math.isfinite(nm):
            raise UnsupportedRequest(reader, "a wavelength is not a finite number")
        if not (low <= nm <= high) or nm != round(nm):
            raise UnsupportedRequest(
                reader, f"wavelength {nm:g} nm: this reader reads whole nm from {low:g} to {high:g}"
            )
    return chosen


def reads_to_export(
    reader_name: str, protocol: str, identity: dict[str, str], reads: list[PlateRead]
) -> ExportFile:
    """A driver read in the shape a vendor export takes (``platewatch read --json``)."""
    instrument: dict[str, str | None] = {
        "name": reader_name,
        "model": identity.get("model") or None,
        "serial": identity.get("serial") or None,
        "software": identity.get("firmware") or None,
    }
    return ExportFile(
        format=f"driver:{protocol}",
        plates=[Plate(plate_id=reader_name, reads=list(reads))],
        instrument=instrument,
        metadata={"protocol": protocol},
    )


def describe(obj: Any) -> str:
    """A short printable description of bytes for messages (never the whole reply)."""
    text = repr(obj)
    return text if len(text) <= 60 else text[:57] + "..."
