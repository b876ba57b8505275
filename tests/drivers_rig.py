"""Shared pieces of the driver tests: a scripted transport (exact exchanges) and fakes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from drivers.errors import LinkLost, LinkTimeout
from drivers.fakes.process import FakeProcess, FakeProtocol
from drivers.transport import escape_bytes


class ScriptedTransport:
    """pymeasure's ``expected_protocol`` for bytes: each write must be the next expected
    one, and puts that exchange's reply on the line; reads take bytes off the line the way
    a real port does (up to a terminator), so how the driver chunks its reads is its own
    business. A read with nothing suitable on the line times out, as a silent port would.
    """

    def __init__(self, script: Sequence[tuple[bytes, bytes]], port: str = "scripted") -> None:
        self.script = list(script)
        self.port = port
        self.line = bytearray()
        self.written: list[bytes] = []
        self.opened = 0
        self._open = False

    @property
    def is_open(self) -> bool:
        return self._open

    def open(self) -> None:
        self.opened += 1
        self._open = True

    def close(self) -> None:
        self._open = False

    def write(self, data: bytes) -> None:
        if not self._open:
            raise LinkLost("not open", source=self.port)
        self.written.append(data)
        if not self.script:
            raise AssertionError(f"unexpected write {escape_bytes(data)!r}: the script is done")
        expected, reply = self.script.pop(0)
        if data != expected:
            raise AssertionError(
                f"wrote {escape_bytes(data)!r}, expected {escape_bytes(expected)!r}"
            )
        self.line += reply

    def read_until(self, terminator: bytes, timeout: float) -> bytes:
        end = self.line.find(terminator)
        if end < 0:
            partial = bytes(self.line)
            self.line.clear()
            raise LinkTimeout("nothing more scripted", source=self.port, partial=partial)
        data = bytes(self.line[: end + len(terminator)])
        del self.line[: end + len(terminator)]
        return data

    def read_exact(self, count: int, timeout: float) -> bytes:
        if len(self.line) < count:
            raise LinkTimeout("nothing more scripted", source=self.port)
        data = bytes(self.line[:count])
        del self.line[:count]
        return data

    def discard_input(self) -> None:
        self.line.clear()

    @property
    def done(self) -> bool:
        return not self.script


@contextmanager
def running_fake(
    protocol: FakeProtocol, folder: Path, *args: str, seed: int = 1
) -> Iterator[FakeProcess]:
    """A pty fake for the length of a test, always stopped (no leaked processes)."""
    fake = FakeProcess(protocol, folder / f"{protocol}.tty", seed=seed, args=list(args))
    try:
        fake.start()
        yield fake
    finally:
        fake.stop()


FAST = {"poll_interval_s": 0.01, "timeout_s": 2.0, "read_timeout_s": 10.0, "busy_timeout_s": 20.0}
