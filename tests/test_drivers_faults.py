"""Faults over the pty fakes: busy for many polls, slow, garbled, silent, unplugged and
replugged. Each ends in a correct read or a clear one-line InstrumentError plus an alert,
within a deadline, leaving no thread (conftest) and no process (running_fake) behind."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from datamodel import WellStatus
from drivers import (
    FirmwareError,
    ReaderAlert,
    ReaderBusy,
    ReaderOffline,
    ReaderSession,
    ReaderTimeout,
    open_session,
)
from drivers.fakes.process import FakeProcess
from drivers.plate_model import PlateModel
from errors import InstrumentError
from tests.drivers_rig import FAST, running_fake

MODEL = PlateModel(seed=1)
SESSION = {"reconnect_attempts": 8, "backoff_s": 0.05, "backoff_max_s": 0.4, "retries": 2}


@pytest.fixture(params=["spectramax", "biotek"])
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def fake(protocol: str, tmp_path: Path) -> Iterator[FakeProcess]:
    with running_fake(protocol, tmp_path) as process:  # type: ignore[arg-type]
        yield process


def session_for(fake: FakeProcess, alerts: list[ReaderAlert], **options: Any) -> ReaderSession:
    merged = {**FAST, **SESSION, **options}
    return open_session(
        "reader-1", fake.protocol, str(fake.link), options=merged, on_alert=alerts.append
    )


def assert_true_plate(session: ReaderSession) -> None:
    (read,) = session.read([570])
    values, _ = MODEL.measure(570, 48.0)
    assert (read.status == WellStatus.OK).all()
    assert np.allclose(read.values, values, atol=5.1e-5)


def test_busy_for_many_polls_is_waited_for(fake: FakeProcess) -> None:
    alerts: list[ReaderAlert] = []
    fake.set(busy_polls=40, read_polls=5)
    with session_for(fake, alerts) as session:
        assert_true_plate(session)
    assert fake.state()["faults"]["busy_polls"] == 0  # every busy poll was answered and seen
    assert alerts == []


def test_busy_for_longer_than_allowed_is_reader_busy_and_an_alert(fake: FakeProcess) -> None:
    alerts: list[ReaderAlert] = []
    fake.set(busy_polls=10**6)
    with session_for(fake, alerts, busy_timeout_s=0.3) as session:
        with pytest.raises(ReaderBusy) as caught:
            session.read([570])
        assert session.state().state == "busy"
    assert str(caught.value).startswith("reader-1: still busy after")
    assert [(a.code, a.resolved) for a in alerts] == [("reader_error", False)]


def test_slow_replies_within_the_timeout_still_read(fake: FakeProcess) -> None:
    fake.set(slow_s=0.05)
    with session_for(fake, []) as session:
        assert_true_plate(session)


def test_replies_slower_than_the_timeout_give_up_in_bounded_time(fake: FakeProcess) -> None:
    alerts: list[ReaderAlert] = []
    with session_for(fake, alerts, timeout_s=0.2, retries=1, reconnect_attempts=2) as session:
        session.identify()
        fake.set(slow_s=1.0)
        start = time.monotonic()
        with pytest.raises((ReaderTimeout, ReaderOffline)) as caught:
            session.read([570])
        assert time.monotonic() - start < 15
        assert str(caught.value).startswith("reader-1: ")
        assert alerts[-1].code == "reader_offline" and alerts[-1].severity == "critical"
        fake.set(slow_s=0.0)
        fake.wait_for("pending", 0)  # the late answers to the abandoned commands are out
        assert_true_plate(session)  # it recovers once the reader is quick again
    assert alerts[-1].resolved and alerts[-1].code == "reader_offline"


def test_garbled_replies_are_retried_and_never_give_wrong_values(fake: FakeProcess) -> None:
    alerts: list[ReaderAlert] = []
    with session_for(fake, alerts) as session:
        session.identify()
        fake.set(garble=2)
        assert_true_plate(session)
        assert session.state().failures == 0
    assert fake.state()["faults"]["garble"] == 0 and alerts == []


def test_a_silent_reader_is_a_timeout_and_an_alert_not_a_hang(fake: FakeProcess) -> None:
    alerts: list[ReaderAlert] = []
    with session_for(fake, alerts, timeout_s=0.3, retries=1, reconnect_attempts=2) as session:
        session.identify()
        fake.set(silent=True)
        start = time.monotonic()
        with pytest.raises(InstrumentError) as caught:
            session.read([570])
        assert time.monotonic() - start < 15
        assert isinstance(caught.value, ReaderTimeout | ReaderOffline)
        assert "reader-1" in str(caught.value) and alerts[-1].code == "reader_offline"
        assert session.state().state == "offline"


def test_unplug_and_replug_reconnects_with_backoff(fake: FakeProcess) -> None:
    alerts: list[ReaderAlert] = []
    with session_for(fake, alerts) as session:
        assert_true_plate(session)
        fake.unplug(for_s=0.6)
        assert fake.state()["plugged"] is False
        assert_true_plate(session)  # the old port is dead; a new one appears at the link
        state = session.state()
        assert state.reconnects >= 1 and state.reads == 2
    assert fake.state()["unplugs"] == 1 and alerts == []


def test_unplugged_for_good_is_reader_offline_after_bounded_attempts(fake: FakeProcess) -> None:
    alerts: list[ReaderAlert] = []
    with session_for(fake, alerts, reconnect_attempts=3, retries=1) as session:
        session.identify()
        fake.unplug(for_s=60)
        with pytest.raises(ReaderOffline) as caught:
            session.read([570])
    assert "reader-1: not reachable after 3 attempts" in str(caught.value)
    assert [a.code for a in alerts] == ["reader_offline"]


def test_a_firmware_error_is_one_line_with_code_and_meaning(
    fake: FakeProcess, protocol: str
) -> None:
    code, meaning = {
        "spectramax": ("304", "signal level saturation"),
        "biotek": ("2301", "lamp control failure"),
    }[protocol]
    alerts: list[ReaderAlert] = []
    with session_for(fake, alerts) as session:
        session.identify()
        fake.set(error=code)
        with pytest.raises(FirmwareError) as caught:
            session.read([570])
    message = str(caught.value)
    assert message.startswith(f"reader-1: hardware error {code} ({meaning})")
    assert "\n" not in message and caught.value.code == code
    assert [a.code for a in alerts] == ["reader_error"]
