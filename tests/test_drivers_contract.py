"""One contract, every implementation (STYLE.md §12): the protocol-level simulator, the
SpectraMax and BioTek pty fakes, the SCPI reader over pyvisa-sim, and a replayed recording.
Each must return the plate model's known plate, in the right orientation, with the planted
saturated wells marked ``overflow`` and their raw token kept."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from datamodel import PlateRead, WellStatus, parse_well
from drivers import PlateReader, ReaderAlert, open_reader, open_session, reads_to_export
from drivers.capture import ReplayMismatch
from drivers.fakes.scpi_sim import DEFAULT_HOURS, DEFAULT_MODEL, YAML_PATH, render
from drivers.plate_model import PlateModel
from tests.drivers_rig import FAST, running_fake

WAVELENGTHS = [570.0, 650.0]
MODEL = PlateModel(seed=1, saturated=2)
HOURS = 48.0


@dataclass
class Spec:
    """How to reach one implementation, and the truth it must give back."""

    protocol: str
    port: str
    options: dict[str, Any] = field(default_factory=dict)
    model: PlateModel = MODEL
    hours: float = HOURS
    tolerance: float = 0.0  # wire formats send 4 decimals
    overflow_token: str = ""

    def reader(self) -> PlateReader:
        return open_reader("reader-1", self.protocol, self.port, options=self.options)


def exercise(reader: PlateReader) -> tuple[dict[str, str], str, list[PlateRead]]:
    """The calls of the contract, in the order a session makes them."""
    identity = reader.identify()
    state = reader.status().state
    reads = reader.read_absorbance(WAVELENGTHS)
    reader.close()
    return identity, state, reads


IMPLEMENTATIONS = ["simulator", "spectramax-pty", "biotek-pty", "scpi-pyvisa-sim", "replay"]


@pytest.fixture(params=IMPLEMENTATIONS)
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Spec]:
    kind = request.param
    if kind == "simulator":
        yield Spec(
            "simulated",
            "",
            {"seed": 1, "saturated": 2, "start_hours": HOURS, "time_scale": 0.0},
            overflow_token="OVRFLW",
        )
    elif kind == "scpi-pyvisa-sim":
        assert YAML_PATH.read_text() == render(), (
            "scpi_reader.yaml is stale: python -m drivers.fakes.scpi_sim"
        )
        options = {"visa_library": f"{YAML_PATH}@sim", **FAST}
        yield Spec(
            "scpi", "TCPIP::127.0.0.1::INSTR", options, DEFAULT_MODEL, DEFAULT_HOURS, 5.1e-5, "OVER"
        )
    elif kind in ("spectramax-pty", "biotek-pty"):
        protocol = kind.split("-")[0]
        with running_fake(protocol, tmp_path, "--saturated", "2") as fake:  # type: ignore[arg-type]
            token = "#SAT" if protocol == "spectramax" else "*******"
            yield Spec(protocol, str(fake.link), dict(FAST), tolerance=5.1e-5, overflow_token=token)
    else:  # record a real session against the SpectraMax fake once, then replay it
        recording = tmp_path / "session.json"
        with running_fake("spectramax", tmp_path, "--saturated", "2") as fake:
            live = Spec("spectramax", str(fake.link), {**FAST, "record": str(recording)})
            exercise(live.reader())
        document = json.loads(recording.read_text())
        assert document["format"] == "platewatch-io-recording" and document["events"]
        yield Spec(
            "spectramax", f"replay:{recording}", dict(FAST), tolerance=5.1e-5, overflow_token="#SAT"
        )


def check_plate(reads: list[PlateRead], spec: Spec) -> None:
    assert [r.wavelength_nm for r in reads] == WAVELENGTHS
    planted = {parse_well(w) for w in spec.model.planted}
    assert len(planted) == 2
    for read, nm in zip(reads, WAVELENGTHS, strict=True):
        assert read.mode == "absorbance" and read.unit == "OD"
        assert read.shape == (spec.model.rows, spec.model.cols)
        values, over = spec.model.measure(nm, spec.hours)
        assert {(int(r), int(c)) for r, c in zip(*np.nonzero(over), strict=True)} == planted
        statuses = {s for s in read.status.ravel()}
        assert statuses <= {WellStatus.OK, WellStatus.OVERFLOW}
        for r in range(spec.model.rows):
            for c in range(spec.model.cols):
                if (r, c) in planted:
                    assert read.status[r, c] is WellStatus.OVERFLOW
                else:
                    assert read.status[r, c] is WellStatus.OK
                    # the exact well, not a transposed or mirrored one
                    assert abs(read.values[r, c] - values[r, c]) <= spec.tolerance, (r, c)
        tokens = {parse_well(w): t for w, t in read.raw_tokens.items()}
        assert tokens == dict.fromkeys(planted, spec.overflow_token)


def test_reader_contract(spec: Spec) -> None:
    identity, state, reads = exercise(spec.reader())
    assert set(identity) == {"model", "serial", "firmware"}
    assert all(isinstance(v, str) for v in identity.values()) and identity["model"]
    assert state == "idle"
    check_plate(reads, spec)


def test_session_read_gives_the_read_json_shape(spec: Spec) -> None:
    alerts: list[ReaderAlert] = []
    session = open_session(
        "reader-1", spec.protocol, spec.port, options=spec.options, on_alert=alerts.append
    )
    with session:
        identity = session.identify()
        assert session.status().state == "idle"
        reads = session.read(WAVELENGTHS)
        state = session.state()
    check_plate(reads, spec)
    assert state.connected and state.reads == 1 and state.last_read_at and state.last_error is None
    assert alerts == []
    export = reads_to_export("reader-1", spec.protocol, identity, reads)
    document: dict[str, Any] = json.loads(
        json.dumps(
            {
                "format": export.format,
                "plates": [
                    {"plate": p.plate_id, "reads": [r.to_dict() for r in p.reads]}
                    for p in export.plates
                ],
            }
        )
    )
    (plate,) = document["plates"]
    first = plate["reads"][0]
    assert first["wavelength_nm"] == 570.0 and first["rows"] == 8 and first["cols"] == 12
    for well in spec.model.planted:
        r, c = parse_well(well)
        assert first["status"][r][c] == "overflow" and first["values"][r][c] is None
    # row-major, A1 first: the blank corner and the untreated column of row A
    assert first["status"][0][0] == "ok" and first["values"][0][1] > 5 * first["values"][0][0]


def test_a_replay_catches_a_driver_that_sends_something_else(tmp_path: Path) -> None:
    recording = tmp_path / "session.json"
    with running_fake("spectramax", tmp_path) as fake:
        exercise(
            open_reader(
                "r", "spectramax", str(fake.link), options={**FAST, "record": str(recording)}
            )
        )
    replayed = open_reader("r", "spectramax", f"replay:{recording}", options=FAST)
    replayed.identify()
    replayed.status()
    with pytest.raises(
        ReplayMismatch, match=r"wrote '!WAVELENGTH 405 650\\r', recorded '!WAVELENGTH 570 650"
    ):
        replayed.read_absorbance([405, 650])  # the recording read 570 and 650
