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
        "[web]",
        'bind = "127.0.0.1:0"',
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
        rows = conn.execute(select(jobs.c.state, func.count()).group_by(jobs.c.state)).all()
        by_state: dict[str, int] = {str(state): int(n) for state, n in rows}
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


def torture(
    base: Path, kills: int, seed: int, plate: Callable[[int], bytes], every: float = 0.15
) -> dict[str, Any]:
    """SIGKILL the daemon at random instants while a vendor PC streams exports in, then
    restart it once more and let it drain (an export every ``every`` seconds). Returns the final counts and the integrity check."""
    import random
    import threading

    from acquisition.store import integrity_ok

    inbox = base / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    state = base / "state"
    config = write_config(base / "pw.toml", state, [inbox])
    rng = random.Random(seed)
    written: list[Path] = []
    stop = threading.Event()

    def vendor_pc() -> None:
        n = 0
        while not stop.is_set():
            path = inbox / f"plate_{n:05d}.txt"
            path.write_bytes(plate(100 + n))
            written.append(path)
            n += 1
            stop.wait(every)

    writer = threading.Thread(target=vendor_pc)
    writer.start()
    try:
        for _ in range(kills):
            daemon = DaemonProcess(config, base / "daemon.log")
            time.sleep(rng.uniform(0.3, 3.0))
            daemon.kill()
    finally:
        stop.set()
        writer.join()
    daemon = DaemonProcess(config, base / "daemon.log")
    try:
        if not daemon.wait_for_message("READY=1"):
            raise RuntimeError(
                "the daemon did not come back: " + (base / "daemon.log").read_text()[-2000:]
            )
        store = store_for(f"sqlite:///{state}/platewatch.db")
        # every capture ends with an analysis job and a report job, both done
        wait_for(
            lambda: counts(store)["jobs"] == {"done": 2 * len(written)}, timeout=60 + len(written)
        )
        final = counts(store)
        final["integrity_ok"] = integrity_ok(store)
        store.close()
    finally:
        final["exit_code"] = daemon.stop()
    final["files"] = len(written)
    final["kills"] = kills
    return final


def archive_of_plates(folder: Path, plates: int) -> Path:
    """A state directory whose archive holds ``plates`` captured simulated Gen5 plates and
    no jobs (as long after a daemon ran them); returns its config."""
    from acquisition.capture import Capturer
    from analysis.layout import load_layout
    from config.loader import load_config
    from tests.plate_sim import simulate_plate, to_gen5_text

    state, inbox = folder / "state", folder / "inbox"
    inbox.mkdir(parents=True)
    config = write_config(folder / "platewatch.toml", state, [inbox])
    store = open_store(load_config(config).store.url)
    capturer = Capturer(store, state)
    layout = load_layout(LAYOUT)
    for seed in range(plates):
        path = inbox / f"plate{seed:05d}.txt"
        path.write_text(to_gen5_text(simulate_plate(layout, seed).read), encoding="cp1252")
        capturer.capture("reader-1", path, "plate")
    with store.begin() as conn:
        conn.execute(jobs.delete())
    store.close()
    return config
