"""Start a pty fake as a subprocess, wait until it is ready, steer it, stop it.

    with FakeProcess("spectramax", Path("/tmp/smx"), seed=1, args=["--saturated", "2"]) as fake:
        reader = open_reader("reader-1", "spectramax", str(fake.link))
        fake.set(busy_polls=5)        # run-time faults over the control socket
        fake.unplug(for_s=1.0)

Waiting is on conditions with deadlines (the ready line, a control answer), never sleeps.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from errors import InstrumentError

FakeProtocol = Literal["spectramax", "biotek"]


class FakeProcess:
    def __init__(
        self,
        protocol: FakeProtocol,
        link: Path,
        *,
        seed: int = 1,
        args: Sequence[str] = (),
        python: str = sys.executable,
        ready_timeout_s: float = 20.0,
    ) -> None:
        self.protocol = protocol
        self.link = Path(link)
        self.seed = seed
        self.args = list(args)
        self.python = python
        self.ready_timeout_s = ready_timeout_s
        self._dir = Path(tempfile.mkdtemp(prefix="pwfake"))  # short: Unix socket paths ≤ 107
        self.control_path = self._dir / "control.sock"
        self.process: subprocess.Popen[bytes] | None = None
        self.ready: dict[str, Any] = {}

    def start(self) -> FakeProcess:
        command = [
            self.python, "-m", f"drivers.fakes.{self.protocol}",
            "--link", str(self.link), "--control", str(self.control_path),
            "--seed", str(self.seed), *self.args,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        line = self._ready_line()
        try:
            self.ready = json.loads(line)
        except ValueError as exc:
            self.stop()
            raise InstrumentError(f"fake said {line[:80]!r}", source=self.protocol) from exc
        return self

    def _ready_line(self) -> str:
        assert self.process is not None and self.process.stdout is not None  # set by start()
        deadline = time.monotonic() + self.ready_timeout_s
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            buffered = b""
            while b"\n" not in buffered:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.process.poll() is not None:
                    err = self._stderr()
                    self.stop()
                    raise InstrumentError(f"fake did not start: {err[-300:]}", source=self.protocol)
                if selector.select(remaining):
                    chunk = os.read(self.process.stdout.fileno(), 4096)
                    if not chunk:
                        continue
                    buffered += chunk
        return buffered.split(b"\n", 1)[0].decode("utf-8", errors="replace")

    def _stderr(self) -> str:
        if self.process is None or self.process.stderr is None:
            return ""
        if self.process.poll() is None:
            return ""
        return self.process.stderr.read().decode("utf-8", errors="replace")

    def control(self, timeout_s: float = 10.0, **request: Any) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(str(self.control_path))
            sock.sendall(json.dumps(request).encode() + b"\n")
            answer = b""
            while not answer.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
        result: dict[str, Any] = json.loads(answer)
        if not result.get("ok"):
            raise InstrumentError(
                f"fake refused {request}: {result.get('error')}", source=self.protocol
            )
        return result

    def set(self, **faults: Any) -> dict[str, Any]:
        return self.control(op="set", **faults)

    def unplug(self, for_s: float) -> dict[str, Any]:
        return self.control(op="unplug", for_s=for_s)

    def age(self, hours: float) -> dict[str, Any]:
        return self.control(op="age", hours=hours)

    def state(self) -> dict[str, Any]:
        return self.control(op="state")

    def wait_for(self, key: str, value: Any, timeout_s: float = 10.0) -> dict[str, Any]:
        """Poll the fake's state until ``state[key] == value`` (a deadline, not a sleep)."""
        deadline = time.monotonic() + timeout_s
        while True:
            state = self.state()
            if state.get(key) == value or time.monotonic() > deadline:
                return state
            time.sleep(0.02)

    def stop(self, timeout_s: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is not None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout_s)
            for pipe in (process.stdout, process.stderr):
                if pipe is not None:
                    pipe.close()
        with contextlib.suppress(FileNotFoundError):
            if self.link.is_symlink():
                self.link.unlink()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> FakeProcess:
        if self.process is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
