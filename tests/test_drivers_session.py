"""The session (lock, retries, bounded reconnect, alerts, state) over the simulator, and the
record/replay format and byte logging of the transports."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datamodel import PlateRead
from drivers import (
    IO,
    FirmwareError,
    PlateModel,
    ReaderAlert,
    ReaderOffline,
    ReaderSession,
    ReaderStatus,
    SimulatedReader,
    open_reader,
    open_session,
)
from drivers.capture import Recording, RecordingTransport, ReplayTransport
from drivers.transport import SerialTransport, escape_bytes, unescape_bytes
from errors import ConfigError, InstrumentError


def simulated_session(
    reader: SimulatedReader, alerts: list[ReaderAlert], **kwargs: object
) -> ReaderSession:
    sleeps: list[float] = []
    session = ReaderSession(
        "sim",
        reader.reopen,
        on_alert=alerts.append,
        sleep=sleeps.append,
        backoff_s=0.5,
        backoff_max_s=2.0,
        **kwargs,  # type: ignore[arg-type]
    )
    session.sleeps = sleeps  # type: ignore[attr-defined]
    return session


def test_offline_then_back_retries_and_reconnects_with_exponential_backoff() -> None:
    reader = SimulatedReader("sim", PlateModel(), clock=lambda: 0.0)
    alerts: list[ReaderAlert] = []
    session = simulated_session(reader, alerts, reconnect_attempts=5, retries=2)
    session.read([570])
    reader.inject("offline")  # the read fails: the link vanished
    reader.inject("offline", 3)  # and the next three connects fail
    (read,) = session.read([570])
    assert read.wavelength_nm == 570.0
    assert session.sleeps == [0.5, 1.0, 2.0]  # type: ignore[attr-defined]
    state = session.state()
    assert state.reads == 2 and state.reconnects == 1 and state.state == "idle" and alerts == []


def test_gives_up_after_bounded_attempts_then_resolves_the_alert() -> None:
    reader = SimulatedReader("sim", PlateModel(), clock=lambda: 0.0)
    alerts: list[ReaderAlert] = []
    session = simulated_session(reader, alerts, reconnect_attempts=3, retries=0)
    reader.inject("offline", 3)
    with pytest.raises(ReaderOffline, match=r"^sim: not reachable after 3 attempts: port vanished"):
        session.read([570])
    state = session.state()
    assert state.state == "offline" and state.failures == 1 and state.last_error
    session.read([570])
    assert [(a.code, a.severity, a.resolved) for a in alerts] == [
        ("reader_offline", "critical", False),
        ("reader_offline", "warning", True),
    ]


def test_firmware_errors_are_final_and_garbled_replies_are_retried() -> None:
    reader = SimulatedReader("sim", PlateModel(), clock=lambda: 0.0)
    alerts: list[ReaderAlert] = []
    session = simulated_session(reader, alerts, retries=2)
    session.identify()
    reader.inject("garbled", 2)
    session.read([570])
    reader.inject("firmware")
    with pytest.raises(FirmwareError) as caught:
        session.read([570])
    assert str(caught.value) == "sim: hardware error 302 (low light) after read"
    assert reader.reads == 1  # garbled twice, then one plate; the firmware error gave none
    assert [a.code for a in alerts] == ["reader_error"]


class SlowReader:
    """Counts how many callers are inside at once (a port must never see two)."""

    name = "slow"

    def __init__(self) -> None:
        self.inside = 0
        self.most = 0
        self.entered = threading.Event()
        self.release = threading.Event()
        self.guard = threading.Lock()

    def read_absorbance(self, wavelengths_nm: Sequence[float]) -> list[PlateRead]:
        with self.guard:
            self.inside += 1
            self.most = max(self.most, self.inside)
        self.entered.set()
        self.release.wait(10)
        with self.guard:
            self.inside -= 1
        return []

    def status(self) -> ReaderStatus:
        return ReaderStatus("idle")

    def identify(self) -> dict[str, str]:
        return {"model": "slow", "serial": "", "firmware": ""}

    def close(self) -> None:
        pass


def test_two_callers_never_interleave_on_one_port() -> None:
    reader = SlowReader()
    session = ReaderSession("slow", lambda: reader)
    threads = [threading.Thread(target=session.read, args=([570],)) for _ in range(3)]
    for thread in threads:
        thread.start()
    assert reader.entered.wait(10)
    assert session.status() == ReaderStatus("busy", "a read is in progress")  # no port access
    assert session.state().busy
    reader.release.set()
    for thread in threads:
        thread.join(10)
    assert reader.most == 1 and session.state().reads == 3 and not session.state().busy


def test_open_session_checks_options_at_once() -> None:
    with pytest.raises(ConfigError, match=r"^reader-9: unknown spectramax option 'bogus'"):
        open_session("reader-9", "spectramax", "loop://", options={"bogus": 1})
    with pytest.raises(ConfigError, match="unknown reader protocol"):
        open_session("reader-9", "tecan", "loop://")
    with pytest.raises(ConfigError, match="retries"):
        open_session("reader-9", "simulated", "", options={"retries": -1})
    session = open_session("reader-9", "simulated", "", options={"retries": 1, "seed": 2})
    assert session.retries == 1 and session.read([570, 650])[1].wavelength_nm == 650.0


# -- transports, recording and replay -------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300))
def test_escaping_round_trips_every_byte_string(data: bytes) -> None:
    text = escape_bytes(data)
    assert text.isascii() and "\n" not in text
    assert unescape_bytes(text) == data


def test_bad_recordings_are_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    for content, word in (
        ("{not json", "not a readable recording"),
        (json.dumps({"format": "other"}), "not a platewatch-io-recording"),
        (
            json.dumps(
                {
                    "format": "platewatch-io-recording",
                    "version": 1,
                    "events": [{"direction": "sideways"}],
                }
            ),
            "event 0: unknown direction",
        ),
        (
            json.dumps(
                {
                    "format": "platewatch-io-recording",
                    "version": 1,
                    "events": [{"direction": "in", "bytes": "\\q"}],
                }
            ),
            "event 0",
        ),
    ):
        path.write_text(content)
        with pytest.raises(InstrumentError, match=word) as caught:
            Recording.load(path)
        assert str(caught.value).startswith(str(path))
    with pytest.raises(ConfigError, match="port replay:"):
        open_reader("r", "spectramax", f"replay:{tmp_path / 'missing.json'}")


def test_loop_transport_records_every_byte_at_the_io_level(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    recording = tmp_path / "loop.json"
    transport = RecordingTransport(
        SerialTransport("loop://"), recording, reader="r", protocol="spectramax"
    )
    caplog.set_level(IO, logger="drivers.transport")
    transport.open()
    transport.write(b"OK>\r\n0\tIDLE\r\n>")
    assert transport.read_until(b">", 1.0) == b"OK>"
    assert transport.read_until(b">", 1.0) == b"\r\n0\tIDLE\r\n>"
    with pytest.raises(InstrumentError, match="no > within"):
        transport.read_until(b">", 0.1)
    transport.close()
    assert any(
        r.levelno == IO and "loop:// > OK>\\r\\n0\\tIDLE\\r\\n>" in r.getMessage()
        for r in caplog.records
    )
    assert logging.getLevelName(IO) == "IO"
    saved = Recording.load(recording)
    assert [e.direction for e in saved.events] == ["open", "out", "in", "in", "timeout", "close"]
    replay = ReplayTransport(saved)
    replay.open()
    replay.write(b"OK>\r\n0\tIDLE\r\n>")
    assert replay.read_until(b">", 1) == b"OK>" and replay.read_until(b">", 1).endswith(
        b"IDLE\r\n>"
    )
    with pytest.raises(InstrumentError, match="recorded"):
        replay.read_until(b">", 1)
    replay.close()
    assert replay.remaining == 0
