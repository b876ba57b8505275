"""The plate model's truth: logistic growth at the stated doubling time, killing by dose over
time with a fixed IC50, evaporation growing with time, drifting blanks, seeded noise."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datamodel import WellStatus, parse_well
from drivers import SimulatedReader, open_reader
from drivers.plate_model import PlateModel, WellPlan
from errors import ConfigError
from tests.drivers_rig import FAST, running_fake


@pytest.mark.parametrize("doubling", [12.0, 30.0, 55.5])
def test_growth_is_logistic_with_the_stated_doubling_time(doubling: float) -> None:
    model = PlateModel(doubling_time_h=doubling, seeded_od=0.2, capacity_od=2.5)
    hours = np.linspace(0, 120, 41)
    n = np.array([model.cell_signal(t) for t in hours])
    k = model.capacity_od
    # logistic ⇔ log(N / (K − N)) is a straight line in t with slope r = ln 2 / doubling
    slope, intercept = np.polyfit(hours, np.log(n / (k - n)), 1)
    assert slope == pytest.approx(math.log(2) / doubling, rel=1e-9)
    assert intercept == pytest.approx(math.log(0.2 / (2.5 - 0.2)), rel=1e-9)
    assert np.all(np.diff(n) > 0) and n[-1] < k
    early = PlateModel(doubling_time_h=doubling, seeded_od=1e-4, capacity_od=2.0)
    assert early.cell_signal(doubling) / early.cell_signal(0) == pytest.approx(2.0, rel=1e-3)


def test_untreated_wells_grow_and_blanks_do_not() -> None:
    model = PlateModel(cv=0.0, od_sd=0.0)
    untreated = [n for n, p in model.layout.items() if p.role == "untreated"]
    blanks = [n for n, p in model.layout.items() if p.role == "blank"]

    def mean(names: list[str], hours: float) -> float:
        grid = model.expected(570, hours)
        return float(np.mean([grid[parse_well(n)] for n in names]))

    assert mean(untreated, 72) > mean(untreated, 24) > mean(untreated, 0)
    assert mean(blanks, 72) == pytest.approx(mean(blanks, 0)) == pytest.approx(model.blank_od)
    drifting = PlateModel(blank_drift_per_h=0.001, cv=0.0, od_sd=0.0)
    grid = drifting.expected(570, 50)
    assert grid[parse_well("A1")] == pytest.approx(drifting.blank_od + 0.05)


def test_killing_deepens_over_time_but_the_ic50_stays() -> None:
    model = PlateModel()
    line = model.line("REH")
    top = WellPlan("treated", "REH", conc=1e-9)
    at_ic50 = WellPlan("treated", "REH", conc=line.ic50)
    high = WellPlan("treated", "REH", conc=1e6)
    assert model.viability(at_ic50, 0) == pytest.approx(1.0)
    previous = 1.0
    for hours in (6, 12, 24, 48, 96):
        v_top, v_mid, v_bottom = (model.viability(p, hours) for p in (top, at_ic50, high))
        assert v_mid < previous
        previous = v_mid
        assert v_mid == pytest.approx((v_top + v_bottom) / 2, rel=1e-6)  # e is the midpoint
    assert model.viability(high, 1e4) == pytest.approx(line.bottom / 100, rel=1e-6)
    assert model.viability(WellPlan("positive_control", "REH"), 0) == 0.02


def test_evaporation_takes_more_from_the_outer_ring_as_hours_pass() -> None:
    model = PlateModel(evaporation_per_h=0.004, cv=0.0, od_sd=0.0)
    dry = PlateModel(cv=0.0, od_sd=0.0)
    cells = [parse_well(n) for n, p in model.layout.items() if p.role != "blank"]
    rings: dict[int, list[float]] = {0: [], 1: [], 2: []}
    for hours in (0, 12, 24, 48, 72):
        wet_grid, dry_grid = model.cell_grid(hours), dry.cell_grid(hours)
        kept = {rc: wet_grid[rc] / dry_grid[rc] for rc in cells}  # what evaporation left
        by_ring = {k: [kept[rc] for rc in cells if min(model.ring(*rc), 2) == k] for k in rings}
        for k in rings:
            rings[k].append(float(np.mean(by_ring[k])))
        assert model.evaporation_loss(hours, 1) == pytest.approx(
            model.evaporation_loss(hours, 0) / 2
        )
    assert rings[0][0] == pytest.approx(1.0) and rings[2] == pytest.approx([1.0] * 5)
    assert all(b < a for a, b in zip(rings[0], rings[0][1:], strict=False))
    assert rings[0][-1] == pytest.approx(1 - 0.004 * 72) and rings[1][-1] == pytest.approx(
        1 - 0.002 * 72
    )


def test_a_planted_stall_stops_growth_at_its_hour_and_then_declines() -> None:
    stalled = PlateModel(growth_stop_h=30.0, decline_per_h=0.01)
    growing = PlateModel()
    assert [stalled.cell_signal(h) for h in (0, 12, 30)] == [
        growing.cell_signal(h) for h in (0, 12, 30)
    ]
    at_stop = growing.cell_signal(30.0)
    assert stalled.cell_signal(50.0) == pytest.approx(at_stop * 0.99**20)
    flat = PlateModel(growth_stop_h=30.0)
    assert flat.cell_signal(72.0) == pytest.approx(at_stop)
    assert at_stop < growing.cell_signal(72.0)
    truth = stalled.truth()
    assert truth["growth_stop_h"] == 30.0 and truth["decline_per_h"] == 0.01
    assert growing.truth()["growth_stop_h"] is None  # never stops: no inf in the truth
    reader = open_reader(
        "sim", "simulated", "", options={"growth_stop_h": 24, "decline_per_h": 0.005}
    )
    assert isinstance(reader, SimulatedReader) and reader.model.growth_stop_h == 24.0
    with pytest.raises(ConfigError, match="decline_per_h must be below 1"):
        open_reader("sim", "simulated", "", options={"decline_per_h": 1.0})


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), age_s=st.integers(0, 200 * 3600), saturated=st.integers(0, 5))
def test_reads_are_reproducible_from_seed_wavelength_and_age(
    seed: int, age_s: int, saturated: int
) -> None:
    model = PlateModel(seed=seed, saturated=saturated)
    hours = age_s / 3600
    first, over = model.measure(570, hours)
    again, over_again = PlateModel(seed=seed, saturated=saturated).measure(570, hours)
    assert np.array_equal(first, again) and np.array_equal(over, over_again)
    assert {(int(r), int(c)) for r, c in zip(*np.nonzero(over), strict=True)} == {
        parse_well(w) for w in model.planted
    }
    assert len(model.planted) == saturated
    other, _ = PlateModel(seed=seed + 1, saturated=saturated).measure(570, hours)
    assert not np.array_equal(first, other)
    assert np.all(np.isfinite(first)) and np.all(first >= 0)


def test_the_simulator_reads_the_model_at_its_injected_clock() -> None:
    now = [1000.0]
    model = PlateModel(seed=3, saturated=1)
    reader = SimulatedReader("sim", model, start_hours=24, time_scale=60.0, clock=lambda: now[0])
    (first,) = reader.read_absorbance([570])
    now[0] += 3600  # one real hour at 60× is 60 plate hours
    (later,) = reader.read_absorbance([570])
    assert first.time_s == 24 * 3600 and later.time_s == 84 * 3600
    for read in (first, later):
        values, over = model.measure(570, read.time_s / 3600)  # type: ignore[operator]
        ok = read.status == WellStatus.OK
        assert np.array_equal(read.values[ok], values[ok]) and np.array_equal(~ok, over)
    untreated = [parse_well(n) for n, p in model.layout.items() if p.role == "untreated"]
    grew = [
        later.values[rc] > first.values[rc] for rc in untreated if first.status[rc] == WellStatus.OK
    ]
    assert all(grew)


def test_simulated_options_are_checked() -> None:
    reader = open_reader(
        "sim", "simulated", "", options={"seed": 4, "doubling_time_h": 20, "start_hours": 0}
    )
    assert isinstance(reader, SimulatedReader) and reader.model.doubling_time_h == 20.0
    for options, word in (
        ({"seed": -1}, "seed"),
        ({"nonsense": 1}, "unknown plate model option 'nonsense'"),
        ({"doubling_time_h": float("inf")}, "finite"),
        ({"rows": 5}, "8x12 or 16x24"),
        ({"start_hours": "soon"}, "start_hours"),
    ):
        with pytest.raises(ConfigError, match=word) as caught:
            open_reader("sim", "simulated", "", options=options)
        assert str(caught.value).startswith("sim: ")
    truth = PlateModel(saturated=2).truth()
    assert truth["doubling_time_h"] == 30.0 and len(truth["planted"]) == 2


def test_the_pty_fake_grows_its_plate_as_the_age_moves(tmp_path: Path) -> None:
    model = PlateModel(seed=5, evaporation_per_h=0.003)
    args = ("--start-hours", "24", "--evaporation-per-h", "0.003")
    with running_fake("spectramax", tmp_path, *args, seed=5) as fake:
        reader = open_reader("reader-1", "spectramax", str(fake.link), options=FAST)
        (day1,) = reader.read_absorbance([570])
        fake.age(72)
        (day3,) = reader.read_absorbance([570])
        reader.close()
    assert day1.time_s == 24 * 3600 and day3.time_s == 72 * 3600
    for read, hours in ((day1, 24.0), (day3, 72.0)):
        values, _ = model.measure(570, hours)
        assert np.allclose(read.values, values, atol=5.1e-5)
    untreated = [parse_well(n) for n, p in model.layout.items() if p.role == "untreated"]
    assert all(day3.values[rc] > day1.values[rc] for rc in untreated)


HARDWARE = os.environ.get("PLATEWATCH_HARDWARE_READER", "")  # e.g. "spectramax:/dev/ttyUSB0"


@pytest.mark.skipif(not HARDWARE, reason="no real reader named in PLATEWATCH_HARDWARE_READER")
def test_a_real_reader_reads_and_its_session_replays(tmp_path: Path) -> None:
    protocol, _, port = HARDWARE.partition(":")
    recording = tmp_path / "real.json"
    live = open_reader("real", protocol, port, options={"record": str(recording)})
    identity = live.identify()
    reads = live.read_absorbance([570, 650])
    live.close()
    replayed = open_reader("real", protocol, f"replay:{recording}")
    assert replayed.identify() == identity
    again = replayed.read_absorbance([570, 650])
    assert all(
        np.array_equal(a.values, b.values, equal_nan=True)
        for a, b in zip(reads, again, strict=True)
    )
