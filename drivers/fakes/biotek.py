"""A BioTek reader on a pseudo-terminal, speaking the framed protocol's bytes.

``python -m drivers.fakes.biotek --link /tmp/btk --seed 1 [--busy-polls N] [--slow S]
[--garble N] [--silent] [--read-seconds S] [--saturated N] [--control SOCK]``

Frames: ACK/NAK + payload + 4-hex-digit status + ETX. ``o`` answers ``A200`` (read in
progress) while busy; every other command is refused (NAK ``A200``) then. ``y`` and ``D``
answer ACK, take parameters up to ETX (``D``'s checksum is checked: a wrong one is NAK
``2100``), then answer a frame. ``O`` answers ACK ``0000`` and, ``read_seconds`` later,
the body: serpentine rows of ``row,col,value`` triples, stars for over-range wells.
"""

from __future__ import annotations

import argparse

from drivers.biotek import ACK, ETX, NAK, checksum
from drivers.fakes.server import Faults, PlateClock, common_arguments, serve
from drivers.plate_model import PlateModel

TWO_STAGE = frozenset({"y", "D", "&", "g", "i", "t"})
D_REPLY = b"0350000000000000010000000000490300000" + ETX  # a Synergy's answer to D (PyLabRobot)
STARS = "*******"


def frame(payload: str = "", status: str = "0000", *, ack: bool = True) -> bytes:
    return (ACK if ack else NAK) + payload.encode("ascii") + status.encode("ascii") + ETX


def body_text(model: PlateModel, nm: int, hours: float, temperature_c: float) -> bytes:
    """The data a whole-plate read sends after ``O`` (rows serpentine, like the real one)."""
    values, over = model.measure(nm, hours)
    temp = f"{round(temperature_c * 10):03d}"
    rows: list[str] = []
    for r in range(model.rows):
        cols = range(model.cols) if r % 2 == 0 else range(model.cols - 1, -1, -1)
        cells = [
            f"{r + 1:02d},{c + 1:02d}," + (STARS if over[r, c] else f"{values[r, c]:+.4f}")
            for c in cols
        ]
        rows.append(",".join(cells))
    data = f"01,1,\r000:00:00.0,{temp}," + "\r\n,".join(rows) + "\r\n"
    tag = f"{sum(data.encode('ascii')) % 1000:03d}"
    return data.encode("ascii") + f"{temp}\x1a{tag}\x1a0000".encode("ascii") + ETX


class BioTekHandler:
    framing = ACK + NAK + ETX + b"\x1a,\r\n"

    def __init__(
        self,
        model: PlateModel,
        faults: Faults,
        clock: PlateClock,
        temperature_c: float,
        read_seconds: float,
    ) -> None:
        self.model = model
        self.faults = faults
        self.clock = clock
        self.temperature_c = temperature_c
        self.read_seconds = read_seconds
        self.commands = 0
        self.reset()

    def reset(self) -> None:
        self.pending_command: str | None = None
        self.params = b""
        self.wavelength: int | None = None
        self.plate_known = False

    def error_reply(self, code: str) -> bytes:
        return frame(status=code, ack=False)

    def feed(self, data: bytes) -> list[bytes]:
        replies: list[bytes] = []
        for byte in data:
            char = bytes([byte])
            if self.pending_command is not None:
                self.params += char
                if char == ETX:
                    command, self.pending_command = self.pending_command, None
                    replies.append(
                        self.parameters(command, self.params.decode("ascii", errors="replace"))
                    )
                    self.params = b""
                continue
            if char in (b"\r", b"\n", ETX):
                continue
            self.commands += 1
            replies.extend(self.command(char.decode("ascii", errors="replace")))
        return replies

    def command(self, char: str) -> list[bytes]:
        if char == "o":
            if self.faults.busy_polls > 0:
                self.faults.busy_polls -= 1
                return [frame(status="A200")]
            return [frame()]
        if self.faults.busy_polls > 0:
            return [frame(status="A200", ack=False)]
        if char in TWO_STAGE:
            self.pending_command = char
            return [ACK]
        if char == "C":
            return [frame(f"{self.model.seed:08d}        ")]
        if char == "e":
            return [frame("1650200  Version 1.04   ")]
        if char == "h":
            return [frame(f"{round(self.temperature_c * 10):03d}")]
        if char == "O":
            if self.wavelength is None or not self.plate_known:
                return [frame(status="2100", ack=False)]
            body = body_text(self.model, self.wavelength, self.clock.hours(), self.temperature_c)
            return [frame(), DelayedReply(body, self.read_seconds)]
        return [frame(status="2100", ack=False)]

    def parameters(self, command: str, text: str) -> bytes:
        if command == "y":
            if len(text) < 5 or text[:4] != f"{self.model.rows:02d}{self.model.cols:02d}":
                return frame(status="2100", ack=False)
            self.plate_known = True
            return ETX
        if command == "D":
            body, given = text[:-3], text[-3:-1]
            if len(text) < 52 or checksum(body) != given:
                return frame(status="2100", ack=False)
            wavelength = body[44:48]
            if not wavelength.isdigit() or not 200 <= int(wavelength) <= 999:
                return frame(status="0E00", ack=False)
            self.wavelength = int(wavelength)
            return D_REPLY
        return b"0000" + ETX


class DelayedReply(bytes):
    """A reply the server sends ``delay_s`` after the one before it (the read's duration)."""

    delay_s: float

    def __new__(cls, data: bytes, delay_s: float) -> DelayedReply:
        reply = super().__new__(cls, data)
        reply.delay_s = delay_s
        return reply


def main(argv: list[str] | None = None) -> None:
    parser = common_arguments(__doc__.splitlines()[0])
    parser.add_argument("--read-seconds", type=float, default=0.1, help="duration of one read")
    args = parser.parse_args(argv)

    def make(
        model: PlateModel, faults: Faults, clock: PlateClock, ns: argparse.Namespace
    ) -> BioTekHandler:
        return BioTekHandler(model, faults, clock, ns.temperature, ns.read_seconds)

    serve(make, args)


if __name__ == "__main__":
    main()
