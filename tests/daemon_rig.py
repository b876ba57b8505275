"""Running the real daemon as a subprocess, with a real sd_notify socket, for the tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from acquisition.store import Store, captures, jobs, open_store, results

ROOT = Path(__file__).resolve().parent.parent
LAYOUT = ROOT / "config" / "layouts" / "mtt-96.toml"


def write_config(
    path: Path,
    state: Path,
    inboxes: list[Path],
    *,
    url: str | None = None,
    instance: str = "",
    extra: str = "",
) -> Path:
    lines = [
        "[service]",
        f'state_dir = "{state}"',
        f'instance = "{instance}"',
        "workers = 2",
        "lease_seconds = 20",
        "rescan_seconds = 2",
        "[store]",
        f'url = "{url or f"sqlite:///{state}/platewatch.db"}"',
    ]
    for inbox in inboxes:
        lines += [
            "[[watch]]",
            f'path = "{inbox}"',
            'instrument = "reader-1"',
            f'layout = "{LAYOUT}"',
            "stable_seconds = 0.5",
        ]
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


class DaemonProcess:
    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.notify_path = config.with_suffix(f".notify.{os.getpid()}.{time.monotonic_ns()}")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.notify_path))
        self.messages: list[str] = []
        env = dict(os.environ, NOTIFY_SOCKET=str(self.notify_path), PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "service.py"), "run", "--config", str(config)],
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(config.parent),
        )

    def wait_for_message(self, prefix: str, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, min(1.0, deadline - time.monotonic())))
            try:
                data = self.sock.recv(4096).decode()
            except TimeoutError:
                if self.proc.poll() is not None:
                    return False
                continue
            self.messages.append(data)
            if any(line.startswith(prefix) for line in data.splitlines()):
                return True
        return False

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self.close()
        return code

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)
        self.close()

    def close(self) -> None:
        self.sock.close()
        self.notify_path.unlink(missing_ok=True)


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def counts(store: Store) -> dict[str, Any]:
    with store.engine.connect() as conn:
        by_state = dict(
            conn.execute(select(jobs.c.state, func.count()).group_by(jobs.c.state)).all()
        )
        n_captures = conn.execute(select(func.count()).select_from(captures)).scalar_one()
        n_results = conn.execute(select(func.count()).select_from(results)).scalar_one()
        per_capture = conn.execute(
            select(results.c.capture_id, func.count()).group_by(results.c.capture_id)
        ).all()
    return {
        "jobs": by_state,
        "captures": n_captures,
        "results": n_results,
        "max_results_per_capture": max((n for _, n in per_capture), default=0),
    }


def store_for(url: str) -> Store:
    return open_store(url)
