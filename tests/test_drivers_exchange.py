"""Exact exchanges per protocol: the bytes a driver sends and what it makes of the replies."""

from __future__ import annotations

import numpy as np
import pytest

from datamodel import WellStatus
from drivers.biotek import BioTekReader, checksum, parse_body, plate_definition, read_definition
from drivers.errors import (
    CommandRejected,
    FirmwareBusy,
    FirmwareError,
    HardwareFault,
    ReaderBusy,
    ReaderProtocolError,
    ReaderTimeout,
    UnsupportedRequest,
)
from drivers.fakes.biotek import BioTekHandler
from drivers.fakes.server import Faults, PlateClock
from drivers.plate_model import PlateModel
from drivers.scpi import ScpiCommands, ScpiReader
from drivers.spectramax import SpectraMaxReader, fields_for, parse_transfer, setup_commands
from errors import ConfigError
from tests.drivers_rig import ScriptedTransport

ROWS, COLS = 8, 12
OK = b"OK>"
IDLE = b"OK>\r\n0\tIDLE\r\n>"
BUSY = b"OK>\r\n1\tBUSY\r\n>"


def grid_value(r: int, c: int, nm: int) -> float:
    """A plate where every well says where it is: row r, column c, wavelength nm."""
    return round(0.1 * (r + 1) + 0.01 * (c + 1) + (0 if nm == 570 else 1.0), 4)


def transfer_field(wavelengths: list[int], saturated: set[tuple[int, int]]) -> bytes:
    lines = ["3600.0\t37.2\t96", "L:\t" + "\t".join(map(str, wavelengths))]
    for nm in wavelengths:
        lines.append(f"L:\t{nm}")
        for c in range(COLS):  # column-major: one line per column, values down the column
            cells = [
                "#SAT" if (r, c) in saturated else f"{grid_value(r, c, nm):.4f}"
                for r in range(ROWS)
            ]
            lines.append(f"{c + 1}:\t" + "\t".join(cells))
    return b"OK>\r\n" + "\r\n".join(lines).encode() + b"\r\n>"


def spectramax_read_script(status_polls: list[bytes], transfer: bytes) -> list[tuple[bytes, bytes]]:
    script = [(b"!\r", OK), (b"!STATUS\r", IDLE)]
    for command in setup_commands([570, 650], ROWS, COLS):
        two = fields_for(command) == 2  # !SPEED and !READTYPE answer OK> and a data field
        script.append((command.encode() + b"\r", b"OK>\r\nOFF\r\n>" if two else OK))
    script.append((b"!READ\r", OK))
    script += [(b"!STATUS\r", reply) for reply in status_polls]
    script.append((b"!TRANSFER\r", transfer))
    return script


def spectramax(
    script: list[tuple[bytes, bytes]], **kwargs: object
) -> tuple[SpectraMaxReader, ScriptedTransport]:
    transport = ScriptedTransport(script)
    sleeps: list[float] = []
    reader = SpectraMaxReader("reader-1", transport, sleep=sleeps.append, **kwargs)  # type: ignore[arg-type]
    return reader, transport


def test_spectramax_endpoint_read_exact_bytes_busy_polls_and_column_major_transfer() -> None:
    saturated = {(1, 2), (7, 11)}  # B3 and H12
    script = spectramax_read_script([BUSY] * 5 + [IDLE], transfer_field([570, 650], saturated))
    reader, transport = spectramax(script)
    reads = reader.read_absorbance([570, 650])
    assert transport.done  # every expected command went out, in order, nothing more
    assert [r.wavelength_nm for r in reads] == [570.0, 650.0]
    for read, nm in zip(reads, (570, 650), strict=True):
        assert read.shape == (ROWS, COLS) and read.mode == "absorbance" and read.unit == "OD"
        assert read.time_s == 3600.0 and read.temperature_c == pytest.approx(37.2)
        for r in range(ROWS):
            for c in range(COLS):
                if (r, c) in saturated:
                    assert read.status[r, c] is WellStatus.OVERFLOW
                else:
                    assert read.status[r, c] is WellStatus.OK
                    assert read.values[r, c] == pytest.approx(grid_value(r, c, nm))
        assert read.raw_tokens == {"B3": "#SAT", "H12": "#SAT"}
    # the five busy polls were waited out, one poll interval each (busy is not final)
    assert transport.written.count(b"!STATUS\r") == 1 + 6


def test_spectramax_setup_sequence_is_the_documented_one() -> None:
    assert setup_commands([570, 650], 8, 12) == [
        "!CLEAR DATA", "!XPOS 14.380 9.000 12", "!YPOS 11.240 9.000 8", "!STRIP 1 12",
        "!CSPEED 8", "!SHAKE OFF", "!WAVELENGTH 570 650", "!CALIBRATE ONCE", "!MODE ENDPOINT",
        "!ORDER COLUMN", "!SPEED OFF", "!TAG OFF", "!NVRAM CARCOL 100", "!READTYPE ABSPLA",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("reply", "error", "text"),
    [
        (
            b"FAIL\t304>",
            HardwareFault,
            "reader-1: hardware error 304 (signal level saturation) after !READ",
        ),
        (
            b"FAIL\t111>",
            CommandRejected,
            "reader-1: command error 111 (invalid read settings) after !READ",
        ),
        (
            b"FAIL\t999>",
            FirmwareError,
            "reader-1: firmware error 999 (unknown error code) after !READ",
        ),
    ],
)
def test_spectramax_fail_codes_map_to_classes_with_one_line_messages(
    reply: bytes, error: type[Exception], text: str
) -> None:
    script = spectramax_read_script([], b"")[:-1]
    script[-1] = (b"!READ\r", reply)
    reader, _ = spectramax(script)
    with pytest.raises(error) as caught:
        reader.read_absorbance([570, 650])
    assert str(caught.value) == text
    assert isinstance(caught.value, FirmwareError) and caught.value.code in text


def test_spectramax_fail_in_the_first_field_of_a_two_field_reply_is_not_waited_for() -> None:
    reader, transport = spectramax([(b"!\r", OK), (b"!TRANSFER\r", b"FAIL\t107>")])
    with pytest.raises(CommandRejected, match=r"107 \(no data to transfer\)"):
        reader.command("!TRANSFER")
    assert transport.done


def test_spectramax_busy_at_setup_waits_and_starts_again() -> None:
    full = spectramax_read_script([IDLE], transfer_field([570, 650], set()))
    # the front panel started a read between our status poll and our first setup command
    script = [*full[:2], (b"!CLEAR DATA\r", b"FAIL\t105>"), (b"!STATUS\r", BUSY), *full[1:]]
    reader, transport = spectramax(script)
    reads = reader.read_absorbance([570, 650])
    assert transport.done and reads[1].values[7, 11] == pytest.approx(grid_value(7, 11, 650))


def test_spectramax_busy_for_longer_than_allowed_is_reader_busy() -> None:
    clock = iter(range(0, 10_000, 100)).__next__
    script = [(b"!\r", OK)] + [(b"!STATUS\r", BUSY)] * 10
    reader, _ = spectramax(script, busy_timeout_s=500.0, clock=lambda: float(clock()))
    with pytest.raises(ReaderBusy, match=r"reader-1: still busy after 500 s \(5 status polls\)"):
        reader.read_absorbance([570])


@pytest.mark.parametrize(
    ("command", "reply"),
    [("!CLEAR DATA", b"O\xffK>"), ("!CLEAR DATA", b"HELLO>"), ("!STATUS", b"OK>\r\n\x01\x02>")],
    ids=["non-ascii", "no-ok", "control-bytes"],
)
def test_spectramax_garbled_replies_are_protocol_errors(command: str, reply: bytes) -> None:
    reader, _ = spectramax([(b"!\r", OK), (command.encode() + b"\r", reply)])
    with pytest.raises(ReaderProtocolError, match=r"^reader-1: "):
        reader.command(command)


def test_spectramax_silence_is_a_timeout_naming_the_command() -> None:
    reader, _ = spectramax([(b"!\r", OK), (b"!STATUS\r", b"OK>")])
    with pytest.raises(ReaderTimeout, match=r"reader-1: no complete reply to !STATUS within 10 s"):
        reader.command("!STATUS")


def test_spectramax_transfer_rejects_a_wrong_shape() -> None:
    text = transfer_field([570], set()).decode()[5:-1].replace("\r\n12:", "\r\n13:")
    with pytest.raises(ReaderProtocolError, match="column 13 out of range"):
        parse_transfer(text, [570], ROWS, COLS, "reader-1")
    with pytest.raises(ReaderProtocolError, match="wavelength line"):
        parse_transfer(transfer_field([570], set()).decode()[5:-1], [650], ROWS, COLS, "reader-1")


def test_wavelengths_out_of_range_are_refused_before_any_byte() -> None:
    reader, transport = spectramax([])
    for bad in ([], [100.0], [570.5], [float("nan")], [570, 570]):
        with pytest.raises(UnsupportedRequest) as caught:
            reader.read_absorbance(bad)
        assert "nan" not in str(caught.value).lower()
    assert transport.written == []


# -- BioTek --------------------------------------------------------------------------------


def test_biotek_checksum_and_read_definition_match_the_bytes_seen_on_a_synergy() -> None:
    # PyLabRobot's driver sends exactly these bytes for a 580 nm whole-plate read
    assert read_definition(580, 8, 12) == "004701010108120001200100001100100000106000080580113\x03"
    assert checksum("0047010101081200012001000011001000001060000805801") == "13"
    assert plate_definition(8, 12) == "08120112407424014381133808548127761422\x03"


def biotek_body(wl_offset: float, stars: set[tuple[int, int]], status: str = "0000") -> bytes:
    rows = []
    for r in range(ROWS):
        cols = range(COLS) if r % 2 == 0 else range(COLS - 1, -1, -1)  # serpentine, as sent
        cells = [
            f"{r + 1:02d},{c + 1:02d},"
            + ("*******" if (r, c) in stars else f"{grid_value(r, c, 570) + wl_offset:+.4f}")
            for c in cols
        ]
        rows.append(",".join(cells))
    data = "01,1,\r000:00:05.0,370," + "\r\n,".join(rows) + "\r\n"
    return (data + f"370\x1a123\x1a{status}\x03").encode()


def biotek_read_script(body: bytes) -> list[tuple[bytes, bytes]]:
    return [
        (b"o", b"\x060000\x03"),
        (b"y", b"\x06"),
        (plate_definition(8, 12).encode(), b"\x03"),
        (b"D", b"\x06"),
        (read_definition(570, 8, 12).encode(), b"0350000000000000010000000000490300000\x03"),
        (b"O", b"\x060000\x03" + body),
        (b"h", b"\x063720000\x03"),
    ]


def test_biotek_endpoint_read_exact_bytes_serpentine_body_and_stars() -> None:
    transport = ScriptedTransport(biotek_read_script(biotek_body(0.0, {(3, 4)})))
    reader = BioTekReader("reader-2", transport, sleep=lambda s: None)
    (read,) = reader.read_absorbance([570])
    assert transport.done
    assert read.temperature_c == pytest.approx(37.2) and read.time_s == 5.0
    expected = np.array([[grid_value(r, c, 570) for c in range(COLS)] for r in range(ROWS)])
    ok = read.status == WellStatus.OK
    assert np.allclose(read.values[ok], expected[ok])
    assert read.status[3, 4] is WellStatus.OVERFLOW and read.raw_tokens == {"D5": "*******"}
    assert ok.sum() == ROWS * COLS - 1


def test_biotek_busy_status_is_polled_until_ready_and_nak_busy_is_retried() -> None:
    script = [(b"o", b"\x06A200\x03")] * 3 + biotek_read_script(biotek_body(0.0, set()))
    d_step = script.index((b"D", b"\x06"))
    script[d_step:d_step] = [(b"D", b"\x15A200\x03"), (b"o", b"\x060000\x03")]
    transport = ScriptedTransport(script)
    sleeps: list[float] = []
    reader = BioTekReader("reader-2", transport, sleep=sleeps.append, poll_interval_s=0.5)
    (read,) = reader.read_absorbance([570])
    assert transport.done and sleeps == [0.5, 0.5, 0.5]
    assert (read.status == WellStatus.OK).all() and read.values[0, 0] == pytest.approx(0.11)


@pytest.mark.parametrize(
    ("status", "error", "text"),
    [
        (
            "2301",
            HardwareFault,
            "reader-2: hardware error 2301 (lamp control failure) after the read",
        ),
        (
            "0E00",
            CommandRejected,
            "reader-2: command error 0E00 (wavelength not found) after the read",
        ),
        ("A200", FirmwareBusy, "reader-2: busy A200 (read already in progress) after the read"),
    ],
)
def test_biotek_status_words_map_to_classes_with_one_line_messages(
    status: str, error: type[Exception], text: str
) -> None:
    with pytest.raises(error) as caught:
        parse_body(biotek_body(0.0, set(), status).decode(), 570, ROWS, COLS, "reader-2")
    assert str(caught.value) == text


def test_biotek_garbled_and_malformed_replies_are_protocol_errors() -> None:
    transport = ScriptedTransport([(b"o", b"\x06\xb7000\x03")])
    with pytest.raises(ReaderProtocolError, match="garbled"):
        BioTekReader("reader-2", transport).plain("o")
    transport = ScriptedTransport([(b"o", b"\x0600\x03")])
    with pytest.raises(ReaderProtocolError, match="without a status"):
        BioTekReader("reader-2", transport).plain("o")
    body = biotek_body(0.0, set()).decode().replace("02,05,", "02,5x,", 1)
    with pytest.raises(ReaderProtocolError, match="read data"):
        parse_body(body, 570, ROWS, COLS, "reader-2")


def test_biotek_fake_checks_the_checksum() -> None:
    handler = BioTekHandler(PlateModel(), Faults(), PlateClock(), 37.0, 0.0)
    assert handler.feed(b"D") == [b"\x06"]
    good = read_definition(570, 8, 12)
    bad = good[:-3] + ("00" if good[-3:-1] != "00" else "01") + "\x03"
    assert handler.feed(bad.encode()) == [b"\x152100\x03"]
    handler.feed(b"D")
    assert handler.feed(good.encode())[0].endswith(b"0000\x03")


# -- SCPI ----------------------------------------------------------------------------------


def scpi_plate(order: str) -> str:
    cells = (
        [grid_value(r, c, 570) for r in range(ROWS) for c in range(COLS)]
        if order == "row"
        else [grid_value(r, c, 570) for c in range(COLS) for r in range(ROWS)]
    )
    text = [f"{v:.4f}" for v in cells]
    text[5] = "OVER"
    return ",".join(text)


@pytest.mark.parametrize("order", ["row", "column"])
def test_scpi_read_with_a_configured_command_map(order: str) -> None:
    commands = ScpiCommands.from_options(
        {
            "read": "MEAS:ABS? {wavelength}",
            "order": order,
            "temperature": "TEMP?",
            "poll_interval_s": 0.5,
        },
        source="reader-3",
    )
    script = [
        (b"STAT?\n", b"BUSY\n"),
        (b"STAT?\n", b"READY\n"),
        (b"MEAS:ABS? 570\n", b"BUSY\n"),  # a busy reply to the read is not the plate
        (b"STAT?\n", b"READY\n"),
        (b"MEAS:ABS? 570\n", scpi_plate(order).encode() + b"\n"),
        (b"TEMP?\n", b"36.9\n"),
    ]
    transport = ScriptedTransport(script)
    sleeps: list[float] = []
    reader = ScpiReader("reader-3", transport, commands, sleep=sleeps.append)
    (read,) = reader.read_absorbance([570])
    assert transport.done and sleeps == [0.5, 0.5]
    over = (0, 5) if order == "row" else (5, 0)
    assert read.status[over] is WellStatus.OVERFLOW
    for r in range(ROWS):
        for c in range(COLS):
            if (r, c) != over:
                assert read.values[r, c] == pytest.approx(grid_value(r, c, 570))
    assert read.temperature_c == pytest.approx(36.9)


def test_scpi_error_replies_and_bad_options() -> None:
    commands = ScpiCommands(errors={"222": "data out of range"})
    transport = ScriptedTransport([(b"*IDN?\n", b"ERR 222\n")])
    with pytest.raises(FirmwareError) as caught:
        ScpiReader("reader-3", transport, commands).identify()
    assert str(caught.value) == "reader-3: firmware error 222 (data out of range) after '*IDN?'"
    for options, word in (
        ({"bogus": 1}, "unknown SCPI option 'bogus'"),
        ({"read": "READ?"}, "must contain"),
        ({"rows": "8"}, "rows"),
        ({"timeout_s": -1}, "timeout_s"),
        ({"order": "diagonal"}, "order"),
    ):
        with pytest.raises(ConfigError, match=word):
            ScpiCommands.from_options(options, source="reader-3")
