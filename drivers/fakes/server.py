"""The pty server every wire-level serial fake runs on, with switchable faults.

A fake is a process: it opens a pseudo-terminal, symlinks the slave to ``--link`` (so a
driver opens it like ``/dev/ttyUSB0``), feeds what the driver writes to a protocol handler
and writes the handler's replies back, in real bytes. Faults (at start from the command
line, at run time over the control socket):

* ``busy_polls`` — the next N status polls answer busy (other commands are refused busy);
* ``read_polls`` — the status polls every read takes before it is done;
* ``slow_s`` — every reply is sent this late;
* ``garble`` — the next N replies have bytes replaced by junk (framing bytes are spared);
* ``silent`` — nothing is answered;
* ``unplug`` (an action) — the pty is closed and the link removed, as when a USB adapter
  is pulled; after ``for_s`` seconds a new pty appears at the same link.

The control socket (``--control PATH``, a Unix socket) takes one JSON object per line and
answers one: ``{"op": "set", "busy_polls": 5}``, ``{"op": "unplug", "for_s": 1.0}``,
``{"op": "age", "hours": 24}``, ``{"op": "state"}``, ``{"op": "stop"}``. On start the fake
prints one JSON line ``{"ready": true, "link": …, "control": …, "pid": …}``; SIGTERM or
SIGINT stops it and removes the link.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import select
import signal
import socket
import sys
import time
import tty
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from drivers.plate_model import PlateModel


@dataclass
class Faults:
    busy_polls: int = 0
    read_polls: int = 1
    slow_s: float = 0.0
    garble: int = 0
    silent: bool = False
    error: str = ""  # the next reply is this firmware error code instead (one shot)


class Handler(Protocol):
    """One protocol: bytes in, replies out. ``framing`` bytes are never garbled."""

    framing: bytes
    commands: int  # complete commands received so far

    def feed(self, data: bytes) -> list[bytes]: ...

    def reset(self) -> None:
        """The instrument was power-cycled (a replug): forget half-received commands."""
        ...

    def error_reply(self, code: str) -> bytes:
        """How this protocol says 'error <code>'."""
        ...


@dataclass
class PlateClock:
    """The plate's age: ``start_hours`` plus real time × ``time_scale`` (0 = frozen)."""

    start_hours: float = 48.0
    time_scale: float = 0.0
    started: float = 0.0

    def __post_init__(self) -> None:
        self.started = time.monotonic()

    def hours(self) -> float:
        return self.start_hours + (time.monotonic() - self.started) * self.time_scale / 3600

    def set(self, hours: float) -> None:
        self.start_hours, self.started = hours, time.monotonic()


class FakeServer:
    def __init__(
        self, handler: Handler, link: Path, control: Path | None, faults: Faults, seed: int
    ) -> None:
        self.handler = handler
        self.link = link
        self.control = control
        self.faults = faults
        self.rng = np.random.default_rng([seed, 31337])
        self.master: int | None = None
        self.slave: int | None = None
        self.replug_at: float | None = None
        self.pending: list[tuple[float, bytes]] = []  # (due, bytes), in order
        self.listener: socket.socket | None = None
        self.clients: list[socket.socket] = []
        self.buffers: dict[socket.socket, bytes] = {}
        self.stopped = False
        self.replies_sent = 0
        self.unplugs = 0
        self.on_age: Callable[[float], None] | None = None
        self.state_extra: Callable[[], dict[str, Any]] | None = None

    # -- the pty ----------------------------------------------------------------------------

    def plug(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        self.master, self.slave = master, slave
        tmp = self.link.with_name(f".{self.link.name}.{os.getpid()}")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(os.ttyname(slave), tmp)
        os.replace(tmp, self.link)
        self.handler.reset()
        self.replug_at = None

    def unplug(self, for_s: float) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()
        for fd in (self.master, self.slave):
            if fd is not None:
                os.close(fd)
        self.master = self.slave = None
        self.pending.clear()
        self.unplugs += 1
        self.replug_at = time.monotonic() + max(0.0, for_s)

    # -- replies ------------------------------------------------------------------------------

    def queue(self, replies: list[bytes]) -> None:
        if self.faults.silent:
            return
        due = time.monotonic() + self.faults.slow_s
        for reply in replies:
            due += float(getattr(reply, "delay_s", 0.0))  # e.g. the read's duration
            if self.faults.error and reply:
                reply, self.faults.error = self.handler.error_reply(self.faults.error), ""
            if self.faults.garble > 0 and reply:
                self.faults.garble -= 1
                reply = self._garble(reply)
            self.pending.append((due, reply))

    def _garble(self, reply: bytes) -> bytes:
        spots = [i for i, b in enumerate(reply) if b not in self.handler.framing]
        if not spots:
            return reply
        data = bytearray(reply)
        for i in self.rng.choice(spots, size=min(3, len(spots)), replace=False):
            data[int(i)] = int(self.rng.integers(0x80, 0xFF))
        return bytes(data)

    def _flush_due(self) -> None:
        now = time.monotonic()
        while self.pending and self.pending[0][0] <= now and self.master is not None:
            _, data = self.pending.pop(0)
            try:
                os.write(self.master, data)
                self.replies_sent += 1
            except OSError:
                self.pending.clear()

    # -- control ------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        extra = self.state_extra() if self.state_extra else {}
        return {
            "plugged": self.master is not None,
            "link": str(self.link),
            "faults": asdict(self.faults),
            "commands": self.handler.commands,
            "replies": self.replies_sent,
            "pending": len(self.pending),
            "unplugs": self.unplugs,
            **extra,
        }

    def apply(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "set":
            for key, value in request.items():
                if key == "op":
                    continue
                if key not in Faults.__dataclass_fields__:
                    return {"ok": False, "error": f"unknown fault {key!r}"}
                setattr(self.faults, key, type(getattr(self.faults, key))(value))
        elif op == "unplug":
            self.unplug(float(request.get("for_s", 1.0)))
        elif op == "age":
            if self.on_age is not None:
                self.on_age(float(request["hours"]))
        elif op == "stop":
            self.stopped = True
        elif op != "state":
            return {"ok": False, "error": f"unknown op {op!r}"}
        return {"ok": True, **self.state()}

    def _serve_client(self, client: socket.socket) -> None:
        try:
            chunk = client.recv(4096)
        except OSError:
            chunk = b""
        if not chunk:
            self._drop_client(client)
            return
        data = self.buffers.get(client, b"") + chunk
        while b"\n" in data:
            line, data = data.split(b"\n", 1)
            try:
                request = json.loads(line)
                answer = self.apply(request) if isinstance(request, dict) else {"ok": False}
            except (ValueError, KeyError, TypeError) as exc:
                answer = {"ok": False, "error": str(exc)}
            try:
                client.sendall(json.dumps(answer).encode() + b"\n")
            except OSError:
                self._drop_client(client)
                return
        self.buffers[client] = data

    def _drop_client(self, client: socket.socket) -> None:
        if client in self.clients:
            self.clients.remove(client)
        self.buffers.pop(client, None)
        client.close()

    # -- the loop -----------------------------------------------------------------------------

    def run(self) -> None:
        self.plug()
        if self.control is not None:
            with contextlib.suppress(FileNotFoundError):
                self.control.unlink()
            self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.listener.bind(str(self.control))
            self.listener.listen(4)
        print(
            json.dumps(
                {
                    "ready": True,
                    "link": str(self.link),
                    "control": str(self.control),
                    "pid": os.getpid(),
                }
            ),
            flush=True,
        )
        try:
            while not self.stopped:
                self._step()
        finally:
            self.shutdown()

    def _step(self) -> None:
        waits = [0.5]
        if self.pending:
            waits.append(self.pending[0][0] - time.monotonic())
        if self.replug_at is not None:
            waits.append(self.replug_at - time.monotonic())
        readable: list[Any] = [*self.clients]
        if self.master is not None:
            readable.append(self.master)
        if self.listener is not None:
            readable.append(self.listener)
        try:
            ready, _, _ = select.select(readable, [], [], max(0.0, min(waits)))
        except InterruptedError:
            return
        for item in ready:
            if item is self.listener and self.listener is not None:
                client, _ = self.listener.accept()
                self.clients.append(client)
            elif isinstance(item, socket.socket):
                self._serve_client(item)
            elif item == self.master and self.master is not None:
                try:
                    data = os.read(self.master, 4096)
                except OSError:
                    data = b""
                if data:
                    self.queue(self.handler.feed(data))
        if self.replug_at is not None and time.monotonic() >= self.replug_at:
            self.plug()
        self._flush_due()

    def shutdown(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()
        for fd in (self.master, self.slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.master = self.slave = None
        for client in list(self.clients):
            self._drop_client(client)
        if self.listener is not None:
            self.listener.close()
            if self.control is not None:
                with contextlib.suppress(FileNotFoundError):
                    self.control.unlink()


def common_arguments(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--link", required=True, type=Path, help="symlink to the pty slave")
    parser.add_argument("--control", type=Path, help="Unix socket for run-time faults")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--cols", type=int, default=12)
    parser.add_argument("--saturated", type=int, default=0, help="planted over-range wells")
    parser.add_argument("--edge-loss", type=float, default=0.0)
    parser.add_argument("--evaporation-per-h", type=float, default=0.0)
    parser.add_argument("--blank-drift-per-h", type=float, default=0.0)
    parser.add_argument("--doubling-time-h", type=float, default=30.0)
    parser.add_argument("--growth-stop-h", type=float, default=math.inf, help="a planted stall")
    parser.add_argument("--decline-per-h", type=float, default=0.0, help="after the stall")
    parser.add_argument("--start-hours", type=float, default=48.0, help="plate age at start")
    parser.add_argument(
        "--time-scale", type=float, default=0.0, help="plate hours per real hour (0: frozen)"
    )
    parser.add_argument("--temperature", type=float, default=37.0)
    parser.add_argument("--busy-polls", type=int, default=0)
    parser.add_argument("--read-polls", type=int, default=1)
    parser.add_argument("--slow", type=float, default=0.0, help="seconds before every reply")
    parser.add_argument("--garble", type=int, default=0, help="garble the next N replies")
    parser.add_argument("--silent", action="store_true")
    return parser


def model_from(args: argparse.Namespace) -> PlateModel:
    return PlateModel(
        seed=args.seed,
        rows=args.rows,
        cols=args.cols,
        saturated=args.saturated,
        edge_loss=args.edge_loss,
        evaporation_per_h=args.evaporation_per_h,
        blank_drift_per_h=args.blank_drift_per_h,
        doubling_time_h=args.doubling_time_h,
        growth_stop_h=args.growth_stop_h,
        decline_per_h=args.decline_per_h,
    )


def faults_from(args: argparse.Namespace) -> Faults:
    return Faults(
        busy_polls=args.busy_polls,
        read_polls=args.read_polls,
        slow_s=args.slow,
        garble=args.garble,
        silent=args.silent,
    )


def serve(
    make_handler: Callable[[PlateModel, Faults, PlateClock, argparse.Namespace], Handler],
    args: argparse.Namespace,
) -> None:
    """Run a fake until stopped (SIGTERM/SIGINT or ``{"op": "stop"}``)."""
    faults = faults_from(args)
    clock = PlateClock(start_hours=args.start_hours, time_scale=args.time_scale)
    handler = make_handler(model_from(args), faults, clock, args)
    server = FakeServer(handler, args.link, args.control, faults, args.seed)
    server.on_age = clock.set
    server.state_extra = lambda: {"hours": clock.hours()}

    def stop(signum: int, frame: object) -> None:
        server.stopped = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.run()
    sys.stdout.flush()
