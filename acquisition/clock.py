"""One injectable clock for the store, the queue, the alerts and the scheduler (STYLE.md §9).

``Clock.now()`` is wall time in seconds since the epoch (what records and due times are in);
``Clock.monotonic()`` is for deadlines and intervals. Tests use :class:`ManualClock` and
move it on by hand instead of sleeping or monkeypatching module functions.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float: ...

    def monotonic(self) -> float: ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


SYSTEM_CLOCK = SystemClock()


class ManualClock:
    """A clock that moves only when told to (thread-safe)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._t = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._t

    def monotonic(self) -> float:
        return self.now()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._t += seconds

    def set(self, t: float) -> None:
        with self._lock:
            self._t = t


def iso_utc(t: float) -> str:
    """A wall-clock time as an ISO 8601 UTC string with milliseconds (what records hold)."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


def backoff(attempt: int, *, base: float = 1.0, cap: float = 300.0) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): base·2^(attempt−1), capped."""
    if attempt < 1:
        return 0.0
    return min(base * 2.0 ** min(attempt - 1, 60), cap)
