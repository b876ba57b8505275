"""The daemon's live state as it publishes it (``<state_dir>/daemon.json``).

The daemon writes it atomically every health pass; ``platewatch status`` and the dashboard
read it. Typed both ways, so writer and readers cannot drift apart.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATE_FILE = "daemon.json"
STALE_SECONDS = 120.0


@dataclass
class WatcherState:
    path: str
    instrument: str
    polling: bool
    alive: bool
    restarts: int


@dataclass
class WorkerState:
    index: int
    alive: bool
    restarts: int
    generation: int
    pid: int | None = None


@dataclass
class ReaderState:
    name: str
    protocol: str
    port: str
    state: str  # connected | busy | offline | error | closed
    last_error: str | None = None
    last_read_at: float | None = None
    restarts: int = 0


@dataclass
class DaemonState:
    pid: int
    instance: str
    updated_at: float
    healthy: bool
    problems: list[str]
    generation: int
    queue: dict[str, int]
    queued_due: int
    watchers: list[WatcherState] = field(default_factory=list)
    workers: list[WorkerState] = field(default_factory=list)
    readers: list[ReaderState] = field(default_factory=list)
    pending_files: int = 0
    captured: int = 0
    duplicates: int = 0
    watch_error: str | None = None
    alerts_sent: int = 0
    alert_error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # what later parts add (scheduler, web)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    def write(self, state_dir: Path) -> None:
        """Atomically (a reader never sees half a file)."""
        path = state_dir / STATE_FILE
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.to_json(), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DaemonState:
        return cls(
            **{
                **data,
                "watchers": [WatcherState(**w) for w in data.get("watchers", [])],
                "workers": [WorkerState(**w) for w in data.get("workers", [])],
                "readers": [ReaderState(**r) for r in data.get("readers", [])],
            }
        )


def load_state(state_dir: Path, now: float) -> tuple[DaemonState | None, bool]:
    """The published state and whether its daemon is running (alive and fresh)."""
    path = state_dir / STATE_FILE
    try:
        state = DaemonState.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, KeyError):
        return None, False
    try:
        os.kill(state.pid, 0)
        alive = True
    except (OSError, ValueError):
        alive = False
    return state, alive and now - state.updated_at < STALE_SECONDS
