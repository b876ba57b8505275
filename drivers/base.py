"""The interface the acquisition side depends on: a plate reader it can ask for a read."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt


class PlateReader(Protocol):
    """A reader platewatch drives itself (DESIGN.md §2). Implementations take a transport."""

    def read_absorbance(
        self, wavelength_nm: float, reference_nm: float | None = None
    ) -> npt.NDArray[np.float64]:
        """One endpoint read of the whole plate (rows × cols, OD)."""
        ...

    def status(self) -> str:
        """The instrument's own status word (e.g. 'IDLE', 'BUSY')."""
        ...

    def close(self) -> None: ...
