"""A SpectraMax on a pseudo-terminal, speaking the ``!`` protocol's bytes.

``python -m drivers.fakes.spectramax --link /tmp/smx --seed 1 [--busy-polls N]
[--read-polls N] [--slow S] [--garble N] [--silent] [--saturated N] [--control SOCK]``

Replies: ``OK>`` (one field) or ``OK>`` + a data field ended by ``>`` for the two-field
commands; ``FAIL\\t<code>>`` on errors (100 unknown command, 101 bad argument, 105 busy,
106 measurement in progress, 107 no data, 111 invalid read settings). ``!READ`` measures
the plate model at the current plate age; the read takes ``read_polls`` ``!STATUS`` polls
(``BUSY``) before ``IDLE``; ``!TRANSFER`` then sends the data column by column, ``#SAT``
for over-range wells. The header's time is the plate age in seconds.
"""

from __future__ import annotations

import argparse

from drivers.fakes.server import Faults, PlateClock, common_arguments, serve
from drivers.plate_model import PlateModel
from drivers.spectramax import TWO_FIELD_COMMANDS

OK = b"OK>"
ONE_FIELD_OK = frozenset(
    {
        "!CLEAR",
        "!CSPEED",
        "!SHAKE",
        "!CALIBRATE",
        "!MODE",
        "!ORDER",
        "!TAG",
        "!NVRAM",
        "!STRIP",
        "!OPEN",
        "!CLOSE",
        "!INIT",
        "!RESET",
        "!CANCEL",
    }
)


def fail(code: int) -> bytes:
    return f"FAIL\t{code}>".encode()


def field(text: str) -> bytes:
    return b"\r\n" + text.encode("ascii") + b"\r\n>"


def transfer_text(
    model: PlateModel, wavelengths: list[int], hours: float, temperature_c: float
) -> str:
    """The data field of ``!TRANSFER`` for one endpoint read (what the driver must parse)."""
    lines = [
        f"{round(max(0.0, hours) * 3600):.1f}\t{temperature_c:.1f}\t{model.rows * model.cols}",
        "L:\t" + "\t".join(str(w) for w in wavelengths),
    ]
    for nm in wavelengths:
        values, over = model.measure(nm, hours)
        lines.append(f"L:\t{nm}")
        for col in range(model.cols):
            cells = [
                "#SAT" if over[row, col] else f"{values[row, col]:.4f}" for row in range(model.rows)
            ]
            lines.append(f"{col + 1}:\t" + "\t".join(cells))
    return "\r\n".join(lines)


class SpectraMaxHandler:
    framing = b">\r\n\t"

    def __init__(
        self, model: PlateModel, faults: Faults, clock: PlateClock, temperature_c: float
    ) -> None:
        self.model = model
        self.faults = faults
        self.clock = clock
        self.temperature_c = temperature_c
        self.commands = 0
        self.reset()

    def reset(self) -> None:
        self.line = b""
        self.wavelengths: list[int] = []
        self.xcols = self.ycols = 0
        self.reading_polls = 0
        self.data: str | None = None

    def error_reply(self, code: str) -> bytes:
        return f"FAIL\t{code}>".encode()

    def feed(self, data: bytes) -> list[bytes]:
        self.line += data
        replies: list[bytes] = []
        while b"\r" in self.line:
            raw, self.line = self.line.split(b"\r", 1)
            self.commands += 1
            replies.append(self.answer(raw.decode("ascii", errors="replace").strip()))
        return replies

    def answer(self, command: str) -> bytes:
        name, _, args = command.partition(" ")
        words = args.split()
        if name == "!":  # the handshake is answered even while busy
            return OK
        if name == "!STATUS":
            busy = self.faults.busy_polls > 0 or self.reading_polls > 0
            if self.faults.busy_polls > 0:
                self.faults.busy_polls -= 1
            elif self.reading_polls > 0:
                self.reading_polls -= 1
            return OK + field("1\tBUSY" if busy else "0\tIDLE")
        if self.reading_polls > 0:
            return fail(106)
        if self.faults.busy_polls > 0:
            return fail(105)
        if name == "!OPTION":
            return OK + field(f"SPECTRAmax PLUS384 V2.05 SMP{self.model.seed:05d}")
        if name == "!TRANSFER":
            if self.data is None:
                return fail(107)
            return OK + b"\r\n" + self.data.encode("ascii") + b"\r\n>"
        if name == "!WAVELENGTH":
            if not words or not all(w.isdigit() and 190 <= int(w) <= 1000 for w in words):
                return fail(101)
            self.wavelengths = [int(w) for w in words]
            return OK
        if name in ("!XPOS", "!YPOS"):
            if len(words) != 3 or not words[2].isdigit():
                return fail(103)
            if name == "!XPOS":
                self.xcols = int(words[2])
            else:
                self.ycols = int(words[2])
            return OK
        if name == "!READ":
            if not self.wavelengths or (self.xcols, self.ycols) != (
                self.model.cols,
                self.model.rows,
            ):
                return fail(111)
            self.data = transfer_text(
                self.model, self.wavelengths, self.clock.hours(), self.temperature_c
            )
            self.reading_polls = self.faults.read_polls
            return OK
        if name in TWO_FIELD_COMMANDS:
            return OK + field(args or "0")
        if name in ONE_FIELD_OK:
            return OK
        return fail(100)


def main(argv: list[str] | None = None) -> None:
    args = common_arguments(__doc__.splitlines()[0]).parse_args(argv)

    def make(
        model: PlateModel, faults: Faults, clock: PlateClock, ns: argparse.Namespace
    ) -> SpectraMaxHandler:
        return SpectraMaxHandler(model, faults, clock, ns.temperature)

    serve(make, args)


if __name__ == "__main__":
    main()
