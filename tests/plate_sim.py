"""A seeded MTT plate simulator whose truth is known, for the QC and fit tests.

Signal model per well (OD): blank + S · v(dose)/100 · (1 + ε_mult) + ε_add, with
v the LL.4 viability of the well's cell line, S the untreated signal of the plate,
ε_mult ~ N(0, cv) and ε_add ~ N(0, od_sd). Defects are planted on top with a given size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from analysis.layout import Layout
from datamodel import PlateRead, WellStatus, parse_well, well_name


@dataclass(frozen=True)
class Truth:
    b: float
    c: float  # lower plateau, % of untreated
    e: float  # IC50


@dataclass(frozen=True)
class Defects:
    edge: float = 0.0  # fractional loss of cell signal in the outer ring
    edge_depth: int = 1  # rings affected (the inner ones get half, then a quarter)
    gradient: float = 0.0  # end-to-end fractional change of cell signal
    gradient_axis: Literal["rows", "cols"] = "cols"
    contamination: float = 0.0  # blank OD rise as a fraction of the untreated signal
    dead_wells: int = 0  # cell wells that received no cells
    saturated: int = 0  # wells that read above the reader's range
    inactive_drug: bool = False  # no line responds


def gradient_for_half_ratio(ratio: float, n: int) -> float:
    """The end-to-end gradient whose far half reads ``ratio`` × the near half (n positions)."""
    pos = np.arange(n) / (n - 1)
    near, far = pos[: n // 2].mean(), pos[n // 2 :].mean()
    # (1 + g(0.5 - far)) / (1 + g(0.5 - near)) = ratio, solved for g
    return float((1 - ratio) / (ratio * (0.5 - near) - (0.5 - far)))


@dataclass
class SimulatedPlate:
    read: PlateRead
    truth: dict[str | None, Truth]
    planted_wells: list[str] = field(default_factory=list)
    signal: float = 0.0


DEFAULT_TRUTH: dict[str | None, Truth] = {
    "REH": Truth(b=1.2, c=5.0, e=0.8),
    "MOLT-4P": Truth(b=1.5, c=3.0, e=0.004),
}


def simulate_plate(
    layout: Layout,
    seed: int,
    defects: Defects | None = None,
    *,
    truth: dict[str | None, Truth] | None = None,
    rows: int = 8,
    cols: int = 12,
    cv: float = 0.06,
    od_sd: float = 0.008,
    blank_od: float = 0.06,
    jitter_truth: bool = True,
) -> SimulatedPlate:
    rng = np.random.default_rng(seed)
    defects = defects or Defects()
    chosen: dict[str | None, Truth] = dict(truth or DEFAULT_TRUTH)
    if jitter_truth:
        chosen = {
            k: replace(
                t,
                e=t.e * math.exp(rng.uniform(-0.5, 0.5)),
                b=t.b * math.exp(rng.uniform(-0.3, 0.3)),
            )
            for k, t in chosen.items()
        }
    signal = float(rng.uniform(0.5, 1.2))
    values = np.full((rows, cols), np.nan)
    status = np.full((rows, cols), WellStatus.NOT_READ, dtype=object)
    planted: list[str] = []
    rr, cc = np.indices((rows, cols))
    ring_index = np.minimum.reduce([rr, cc, rows - 1 - rr, cols - 1 - cc])
    cell_factor = np.ones((rows, cols))
    if defects.edge:
        for depth in range(defects.edge_depth):
            cell_factor[ring_index == depth] *= 1 - defects.edge / (2**depth)
    if defects.gradient:
        pos = (cc / (cols - 1)) if defects.gradient_axis == "cols" else (rr / (rows - 1))
        cell_factor *= 1 + defects.gradient * (0.5 - pos)

    cell_wells: list[str] = []
    for r in range(rows):
        for c in range(cols):
            name = well_name(r, c)
            spec = layout.wells.get(name)
            role = spec.role if spec else "empty"
            if role == "blank":
                od = blank_od + defects.contamination * signal
            elif role in ("untreated", "treated", "positive_control"):
                if role == "positive_control":
                    v = 2.0
                elif role == "untreated" or defects.inactive_drug:
                    v = 100.0
                else:
                    t = chosen.get(spec.cell_line if spec else None, Truth(1.0, 5.0, 1.0))
                    dose = (spec.conc or 0.0) if spec else 0.0
                    v = t.c + (100.0 - t.c) / (1.0 + (dose / t.e) ** t.b) if dose > 0 else 100.0
                od = blank_od + signal * v / 100.0 * cell_factor[r, c] * (1 + rng.normal(0, cv))
                if role != "positive_control" and v > 50:
                    cell_wells.append(name)
            else:
                od = 0.045 + rng.normal(0, 0.002)
            values[r, c] = od + rng.normal(0, od_sd)
            status[r, c] = WellStatus.OK
    read = PlateRead(values=values, status=status, label="570nm:570", wavelength_nm=570.0)
    if defects.dead_wells:
        for name in rng.choice(cell_wells, size=defects.dead_wells, replace=False):
            r, c = parse_well(str(name))
            read.values[r, c] = blank_od + rng.normal(0, od_sd)
            planted.append(str(name))
    if defects.saturated:
        for name in rng.choice(cell_wells, size=defects.saturated, replace=False):
            r, c = parse_well(str(name))
            read.values[r, c] = math.nan
            read.status[r, c] = WellStatus.OVERFLOW
            read.raw_tokens[str(name)] = "OVRFLW"
            planted.append(str(name))
    return SimulatedPlate(read=read, truth=chosen, planted_wells=planted, signal=signal)


def to_gen5_text(
    read: PlateRead, *, plate_number: str = "Plate 1", read_name: str = "570nm"
) -> str:
    """The simulated read as a Gen5 text export (endpoint), CRLF like the real ones."""
    rows, cols = read.shape
    lines = [
        "",
        "",
        "Software Version\t3.12.08",
        "",
        "",
        "Experiment File Path:\tC:\\Users\\Public\\Documents\\Experiments\\sim.xpt",
        "Protocol File Path:\tC:\\Users\\Public\\Documents\\Protocols\\mtt570.prt",
        "",
        "",
        f"Plate Number\t{plate_number}",
        "Date\t11/25/2026",
        "Time\t9:00:00 AM",
        "Reader Type:\tSynergy H1",
        "Reader Serial Number:\tSIM0001",
        "Reading Type\tReader",
        "",
        "Procedure Details",
        "",
        f"Plate Type\t{rows * cols} WELL PLATE (Use plate lid)",
        f"Read\t{read_name}",
        "\tAbsorbance Endpoint",
        "\tFull Plate",
        "\tWavelengths:  570",
        "",
        "Results",
        "\t" + "\t".join(str(c + 1) for c in range(cols)),
    ]
    for r in range(rows):
        cells = []
        for c in range(cols):
            if read.status[r, c] == WellStatus.OK:
                cells.append(f"{read.values[r, c]:.3f}")
            else:
                cells.append(read.raw_tokens.get(well_name(r, c), "?????"))
        lines.append(chr(ord("A") + r) + "\t" + "\t".join(cells) + f"\t{read_name}:570")
    lines += ["", ""]
    return "\r\n".join(lines)


def write_examples(folder: str) -> None:
    """Regenerate examples/mtt_*.txt: `python -m tests.plate_sim examples`."""
    from pathlib import Path

    from analysis.layout import load_layout

    layout = load_layout(Path(__file__).resolve().parent.parent / "config/layouts/mtt-96.toml")
    out = Path(folder)
    clean = simulate_plate(layout, 7, jitter_truth=False)
    edge = simulate_plate(layout, 8, Defects(edge=0.25, edge_depth=2), jitter_truth=False)
    (out / "mtt_plate_clean.txt").write_bytes(to_gen5_text(clean.read).encode("cp1252"))
    (out / "mtt_plate_edge_effect.txt").write_bytes(
        to_gen5_text(edge.read, plate_number="Plate 2").encode("cp1252")
    )
    failed = simulate_plate(layout, 9, Defects(inactive_drug=True, saturated=2), jitter_truth=False)
    (out / "mtt_plate_failed.txt").write_bytes(
        to_gen5_text(failed.read, plate_number="Plate 3").encode("cp1252")
    )


if __name__ == "__main__":
    import sys

    write_examples(sys.argv[1] if len(sys.argv) > 1 else "examples")
