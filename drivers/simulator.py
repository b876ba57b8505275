"""The protocol-level simulator: a :class:`PlateReader` over a :class:`PlateModel` (ophyd's
``sim.py`` idea). No bytes, no port: the session, the scheduler and the tests get a reader
whose plate is known, whose clock is injected, and which can be told to fail.

Plate age: ``hours = start_hours + (clock() − started_at) · time_scale / 3600``; a read
keeps the age in ``time_s`` (seconds). Over-range wells read ``overflow`` with token
``OVRFLW``. ``inject(fault, count)`` makes the next ``count`` calls raise the matching
reader error: ``busy``, ``offline``, ``timeout``, ``garbled`` or ``firmware``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np

from datamodel import PlateRead, WellStatus, well_name
from drivers.base import ReaderStatus, check_wavelengths, wavelength_label
from drivers.errors import (
    HardwareFault,
    ReaderBusy,
    ReaderError,
    ReaderOffline,
    ReaderProtocolError,
    ReaderTimeout,
)
from drivers.plate_model import PlateModel

OVERFLOW_TOKEN = "OVRFLW"
Fault = Literal["busy", "offline", "timeout", "garbled", "firmware"]
FAULTS: tuple[str, ...] = ("busy", "offline", "timeout", "garbled", "firmware")


class SimulatedReader:
    protocol = "simulated"

    def __init__(
        self,
        name: str,
        model: PlateModel | None = None,
        *,
        start_hours: float = 48.0,
        time_scale: float = 1.0,
        temperature_c: float = 37.0,
        clock: Callable[[], float] = time.time,
        started_at: float | None = None,
    ) -> None:
        self.name = name
        self.model = model or PlateModel()
        self.start_hours = start_hours
        self.time_scale = time_scale
        self.temperature_c = temperature_c
        self._clock = clock
        self.started_at = clock() if started_at is None else started_at
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self.closed = False
        self.reads = 0

    def hours(self) -> float:
        """The plate's age now, in hours."""
        return self.start_hours + (self._clock() - self.started_at) * self.time_scale / 3600

    def inject(self, fault: Fault, count: int = 1) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        with self._lock:
            self._faults.extend([fault] * count)

    def _maybe_fail(self, what: str) -> None:
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
        if fault is None:
            return
        errors: dict[str, ReaderError] = {
            "busy": ReaderBusy(self.name, f"still busy (simulated) during {what}"),
            "offline": ReaderOffline(self.name, f"port vanished (simulated) during {what}"),
            "timeout": ReaderTimeout(self.name, f"no reply (simulated) to {what}"),
            "garbled": ReaderProtocolError(self.name, f"garbled reply (simulated) to {what}"),
            "firmware": HardwareFault(self.name, "302", "low light", what),
        }
        raise errors[fault]

    def read_absorbance(self, wavelengths_nm: Sequence[float]) -> list[PlateRead]:
        chosen = check_wavelengths(self.name, wavelengths_nm, low=200, high=1000, most=16)
        if self.closed:
            raise ReaderOffline(self.name, "the reader was closed")
        self._maybe_fail("read")
        hours = self.hours()
        self.reads += 1
        return [self.model_read(self.model, nm, hours, self.temperature_c) for nm in chosen]

    @staticmethod
    def model_read(
        model: PlateModel, nm: float, hours: float, temperature_c: float | None = None
    ) -> PlateRead:
        values, over = model.measure(nm, hours)
        status = np.empty(values.shape, dtype=object)
        status[...] = WellStatus.OK
        status[over] = WellStatus.OVERFLOW
        grid = values.copy()
        grid[over] = np.nan
        tokens = {
            well_name(int(r), int(c)): OVERFLOW_TOKEN
            for r, c in zip(*np.nonzero(over), strict=True)
        }
        return PlateRead(
            values=grid,
            status=status,
            label=f"{wavelength_label(nm)}nm",
            wavelength_nm=float(nm),
            time_s=float(round(max(0.0, hours) * 3600)),
            temperature_c=temperature_c,
            raw_tokens=tokens,
            mode="absorbance",
        )

    def status(self) -> ReaderStatus:
        if self.closed:
            return ReaderStatus("offline", "closed")
        try:
            self._maybe_fail("status")
        except ReaderBusy as exc:
            return ReaderStatus("busy", exc.message)
        except (ReaderOffline, ReaderTimeout) as exc:
            return ReaderStatus("offline", exc.message)
        except ReaderError as exc:
            return ReaderStatus("error", exc.message)
        return ReaderStatus("idle", f"plate age {self.hours():.2f} h")

    def identify(self) -> dict[str, str]:
        self._maybe_fail("identify")
        return {
            "model": "platewatch simulated reader",
            "serial": f"SIM-{self.model.seed}",
            "firmware": "1",
        }

    def close(self) -> None:
        self.closed = True

    def reopen(self) -> SimulatedReader:
        """The same plate after a reconnect (the model and its clock carry on)."""
        self.closed = False
        return self
