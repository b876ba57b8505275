"""A seeded MTT plate simulator whose truth is known, for the QC and fit tests.

Signal model per well (OD): blank + S · v(dose)/100 · (1 + ε_mult) + ε_add, with
v the LL.4 viability of the well's cell line, S the untreated signal of the plate,
ε_mult ~ N(0, cv) and ε_add ~ N(0, od_sd). Defects are planted on top with a given size.

Noise models (``NOISE_MODELS``): ``gaussian`` (the model above, S uniform in 0.5–1.2 OD;
the default, whose random stream every seeded test relies on) and ``heavy``: well errors
(multiplicative and additive) from a Student t with 8 degrees of freedom scaled to the same
SD, 2 % of the cell wells off by a further log-normal factor (σ 0.15: a pipetting slip,
typically 5–30 %), and the untreated level drifting between plates (S log-normal around
0.8 OD, σ_log 0.3, clipped to 0.3–1.6 OD). ``stress`` (t₄, 3 % outliers of σ 0.2) is
beyond what a clean plate looks like (wells reading half their replicates appear by
chance) and is only for looking at the limits. Why not t₅ for ``heavy``: with a 6 % SD it
puts a well at under half of its replicates on about 1 % of 384-well plates — what a dead
or mis-pipetted well looks like, so no check could call those plates clean.

Layout families (``LAYOUT_FAMILIES``, built in code) cover the designs a lab uses: the
shipped one (lines interleaved by row, doses along the columns), lines in row blocks, lines
in column blocks with doses down the rows, lines interleaved by column with doses down the
rows, and a 384-well plate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from analysis.layout import Layout, WellSpec
from analysis.model import Flag
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


@dataclass(frozen=True)
class NoiseModel:
    """How wells scatter and how the untreated level varies between plates."""

    name: str
    tail_df: float | None = None  # Student-t degrees of freedom of the well errors; None: normal
    outlier_rate: float = 0.0  # fraction of cell wells with an extra (pipetting) error
    outlier_sd: float = 0.0  # log-normal σ of that extra error
    level_sd: float | None = None  # log-normal σ of the untreated level; None: uniform 0.5–1.2


GAUSSIAN = NoiseModel("gaussian")
HEAVY = NoiseModel("heavy", tail_df=8.0, outlier_rate=0.02, outlier_sd=0.15, level_sd=0.3)
# beyond the acceptance: t₄ tails and 3 % outlier wells (σ 0.2), for a look at the limits
STRESS = NoiseModel("stress", tail_df=4.0, outlier_rate=0.03, outlier_sd=0.2, level_sd=0.3)
NOISE_MODELS: dict[str, NoiseModel] = {m.name: m for m in (GAUSSIAN, HEAVY, STRESS)}
ACCEPTANCE_NOISE = ("gaussian", "heavy")  # the two noise models issue 9 is accepted on


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


def _errors(rng: np.random.Generator, noise: NoiseModel, sd: float, size: int) -> np.ndarray:
    """``size`` well errors with standard deviation ``sd`` under ``noise``."""
    if noise.tail_df is None:
        return rng.normal(0.0, sd, size)
    df = noise.tail_df
    return np.asarray(rng.standard_t(df, size) * sd * math.sqrt((df - 2) / df))


def simulate_plate(
    layout: Layout,
    seed: int,
    defects: Defects | None = None,
    *,
    truth: dict[str | None, Truth] | None = None,
    rows: int | None = None,
    cols: int | None = None,
    cv: float = 0.06,
    od_sd: float = 0.008,
    blank_od: float = 0.06,
    jitter_truth: bool = True,
    noise: NoiseModel | str = GAUSSIAN,
) -> SimulatedPlate:
    """One plate of ``layout`` (its size unless ``rows``/``cols`` say otherwise)."""
    model = NOISE_MODELS[noise] if isinstance(noise, str) else noise
    shape = layout.shape or (8, 12)
    rows = rows or shape[0]
    cols = cols or shape[1]
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
    if model.level_sd is None:
        signal = float(rng.uniform(0.5, 1.2))
    else:
        signal = float(np.clip(0.8 * math.exp(rng.normal(0.0, model.level_sd)), 0.3, 1.6))
    rr, cc = np.indices((rows, cols))
    ring_index = np.minimum.reduce([rr, cc, rows - 1 - rr, cols - 1 - cc])
    cell_factor = np.ones((rows, cols))
    if defects.edge:
        for depth in range(defects.edge_depth):
            cell_factor[ring_index == depth] *= 1 - defects.edge / (2**depth)
    if defects.gradient:
        pos = (cc / (cols - 1)) if defects.gradient_axis == "cols" else (rr / (rows - 1))
        cell_factor *= 1 + defects.gradient * (0.5 - pos)

    viability = np.full((rows, cols), np.nan)  # % of untreated for cell wells
    roles = np.full((rows, cols), "empty", dtype=object)
    for r in range(rows):
        for c in range(cols):
            spec = layout.wells.get(well_name(r, c))
            role = spec.role if spec else "empty"
            roles[r, c] = role
            if role == "positive_control":
                viability[r, c] = 2.0
            elif role == "untreated" or (role == "treated" and defects.inactive_drug):
                viability[r, c] = 100.0
            elif role == "treated" and spec is not None:
                t = chosen.get(spec.cell_line, Truth(1.0, 5.0, 1.0))
                dose = spec.conc or 0.0
                viability[r, c] = (
                    t.c + (100.0 - t.c) / (1.0 + (dose / t.e) ** t.b) if dose > 0 else 100.0
                )
    if model is GAUSSIAN or model == GAUSSIAN:
        values = _gaussian_values(
            rng, roles, viability, cell_factor, signal, defects, cv, od_sd, blank_od
        )
    else:
        values = _model_values(
            rng, model, roles, viability, cell_factor, signal, defects, cv, od_sd, blank_od
        )
    status = np.full((rows, cols), WellStatus.OK, dtype=object)
    cell_wells = [
        well_name(r, c)
        for r in range(rows)
        for c in range(cols)
        if roles[r, c] in ("untreated", "treated") and viability[r, c] > 50
    ]
    read = PlateRead(values=values, status=status, label="570nm:570", wavelength_nm=570.0)
    planted: list[str] = []
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


def _gaussian_values(
    rng: np.random.Generator,
    roles: np.ndarray,
    viability: np.ndarray,
    cell_factor: np.ndarray,
    signal: float,
    defects: Defects,
    cv: float,
    od_sd: float,
    blank_od: float,
) -> np.ndarray:
    """The original well-by-well draws (the random stream seeded tests rely on)."""
    rows, cols = roles.shape
    values = np.full((rows, cols), np.nan)
    for r in range(rows):
        for c in range(cols):
            role = roles[r, c]
            if role == "blank":
                od = blank_od + defects.contamination * signal
            elif role in ("untreated", "treated", "positive_control"):
                v = viability[r, c]
                od = blank_od + signal * v / 100.0 * cell_factor[r, c] * (1 + rng.normal(0, cv))
            else:
                od = 0.045 + rng.normal(0, 0.002)
            values[r, c] = od + rng.normal(0, od_sd)
    return values


def _model_values(
    rng: np.random.Generator,
    model: NoiseModel,
    roles: np.ndarray,
    viability: np.ndarray,
    cell_factor: np.ndarray,
    signal: float,
    defects: Defects,
    cv: float,
    od_sd: float,
    blank_od: float,
) -> np.ndarray:
    """Vectorised draws for any noise model (heavy tails, outlier wells)."""
    shape = roles.shape
    n = roles.size
    cells = np.isin(roles, ["untreated", "treated", "positive_control"])
    blanks = roles == "blank"
    mult = 1.0 + _errors(rng, model, cv, n).reshape(shape)
    if model.outlier_rate:
        hit = (rng.random(n) < model.outlier_rate).reshape(shape) & cells
        mult *= np.where(hit, np.exp(rng.normal(0.0, model.outlier_sd, n)).reshape(shape), 1.0)
    additive = _errors(rng, model, od_sd, n).reshape(shape)
    values = np.where(
        cells,
        blank_od + signal * np.nan_to_num(viability) / 100.0 * cell_factor * mult,
        np.where(blanks, blank_od + defects.contamination * signal, 0.045),
    )
    return np.asarray(values + additive, dtype=float)


# ── layout families ─────────────────────────────────────────────────────────────────

ASPARAGINASE = "asparaginase"
CONTROL_RANGE = (0.0008, 0.02)  # MOLT-4P, the sensitive control line (config/layouts/mtt-96.toml)


def _spec(role: str, line: str | None, conc: float | None = None) -> WellSpec:
    compound = (
        ASPARAGINASE if role == "treated" else "triton-x100" if role == "positive_control" else None
    )
    return WellSpec(
        role=role,
        compound=compound,
        conc=conc,
        unit="IU/mL" if conc is not None else None,
        cell_line=line,
        expected_ic50=CONTROL_RANGE if line == "MOLT-4P" else None,
    )


def _series(top: float, factor: float, n: int) -> list[float]:
    return [top / factor**i for i in range(n)]


def _layout(
    name: str, roles: dict[str, tuple[str, str | None, float | None]], shape: tuple[int, int]
) -> Layout:
    wells = {w: _spec(role, line, conc) for w, (role, line, conc) in roles.items()}
    return Layout(wells=wells, source=f"<family {name}>", declared_shape=shape)


def interleaved_layout() -> Layout:
    """The shipped mtt-96: blanks col 1, untreated 2 and 11, 8 doses (4-fold from 10 IU/mL)
    in 3–10, Triton in 12; REH in rows A, C, E, G and MOLT-4P in B, D, F, H."""
    doses = _series(10.0, 4.0, 8)
    roles: dict[str, tuple[str, str | None, float | None]] = {}
    for r in range(8):
        line = "REH" if r % 2 == 0 else "MOLT-4P"
        for c in range(12):
            role = {0: "blank", 1: "untreated", 10: "untreated", 11: "positive_control"}.get(
                c, "treated"
            )
            roles[well_name(r, c)] = (role, line, doses[c - 2] if role == "treated" else None)
    layout = _layout("interleaved", roles, (8, 12))
    layout.declared_shape = None  # as a wellmap file: the shape follows from the wells
    return layout


def row_blocks_layout() -> Layout:
    """The issue's layout: REH in rows A–D, MOLT-4P in E–H; blanks in columns 1 and 12,
    untreated in 2 and 11, 8 doses (4-fold from 10 IU/mL) in 3–10; no positive control."""
    doses = _series(10.0, 4.0, 8)
    roles: dict[str, tuple[str, str | None, float | None]] = {}
    for r in range(8):
        line = "REH" if r < 4 else "MOLT-4P"
        for c in range(12):
            role = {0: "blank", 11: "blank", 1: "untreated", 10: "untreated"}.get(c, "treated")
            roles[well_name(r, c)] = (role, line, doses[c - 2] if role == "treated" else None)
    return _layout("row_blocks", roles, (8, 12))


# each line dosed around its own IC50 where the doses run down the 8 rows (5 doses)
_ROW_DOSES = {"REH": _series(10.0, 4.0, 5), "MOLT-4P": _series(0.1, 4.0, 5)}


def column_blocks_layout() -> Layout:
    """REH in columns 1–6, MOLT-4P in 7–12; doses down the rows: blanks in row A, untreated
    in rows B and H, 5 doses (4-fold, per line) in rows C–G; 6 replicates per dose."""
    roles: dict[str, tuple[str, str | None, float | None]] = {}
    for c in range(12):
        line = "REH" if c < 6 else "MOLT-4P"
        for r in range(8):
            role = {0: "blank", 1: "untreated", 7: "untreated"}.get(r, "treated")
            roles[well_name(r, c)] = (
                role,
                line,
                _ROW_DOSES[line][r - 2] if role == "treated" else None,
            )
    return _layout("column_blocks", roles, (8, 12))


def doses_along_rows_layout() -> Layout:
    """Doses down the rows, lines interleaved by column: blanks in column 1, Triton in 12;
    REH in columns 2, 4, …, 10 and MOLT-4P in 3, 5, …, 11; untreated in rows A and H, 6 doses
    (4-fold, per line) in rows B–G; 5 replicates per dose."""
    doses = {"REH": _series(10.0, 4.0, 6), "MOLT-4P": _series(0.1, 4.0, 6)}
    roles: dict[str, tuple[str, str | None, float | None]] = {}
    for c in range(12):
        line = "REH" if c % 2 == 1 else "MOLT-4P"
        for r in range(8):
            if c == 0:
                role = "blank"
            elif c == 11:
                role = "positive_control"
            else:
                role = "untreated" if r in (0, 7) else "treated"
            roles[well_name(r, c)] = (role, line, doses[line][r - 1] if role == "treated" else None)
    return _layout("doses_along_rows", roles, (8, 12))


def interleaved_384_layout() -> Layout:
    """384 wells: blanks col 1, untreated 2 and 23, 20 doses (2-fold from 10 IU/mL) in 3–22,
    Triton in 24; REH in rows A, C, …, O and MOLT-4P in B, D, …, P (8 replicates each)."""
    doses = _series(10.0, 2.0, 20)
    roles: dict[str, tuple[str, str | None, float | None]] = {}
    for r in range(16):
        line = "REH" if r % 2 == 0 else "MOLT-4P"
        for c in range(24):
            role = {0: "blank", 1: "untreated", 22: "untreated", 23: "positive_control"}.get(
                c, "treated"
            )
            roles[well_name(r, c)] = (role, line, doses[c - 2] if role == "treated" else None)
    return _layout("interleaved_384", roles, (16, 24))


LAYOUT_FAMILIES: dict[str, Callable[[], Layout]] = {
    "interleaved": interleaved_layout,
    "row_blocks": row_blocks_layout,
    "column_blocks": column_blocks_layout,
    "doses_along_rows": doses_along_rows_layout,
    "interleaved_384": interleaved_384_layout,
}


# ── the acceptance cases (tests/test_qc.py, bench/qc_rates.py) ──────────────────────

# Every planted defect of the issue-9 acceptance, at 15 %, and the flag that must catch it.
DEFECT_CASES: dict[str, tuple[Defects, str]] = {
    "edge 15 %": (Defects(edge=0.15), "edge_effect"),
    "column gradient 15 % end to end": (
        Defects(gradient=0.15, gradient_axis="cols"),
        "plate_gradient",
    ),
    "row gradient 15 % end to end": (
        Defects(gradient=0.15, gradient_axis="rows"),
        "plate_gradient",
    ),
    "contaminated blanks 15 %": (Defects(contamination=0.15), "high_background"),
    "2 dead wells": (Defects(dead_wells=2), "replicate_variability"),
    "2 saturated wells": (Defects(saturated=2), "saturated_wells"),
    "inactive asparaginase": (Defects(inactive_drug=True), "control_out_of_range"),
}

# Gradients of 20 %: where a layout measures an axis only through its untreated wells (the
# dilution series runs along it), 15 % end to end is at the detection limit (see
# docs/qc_calibration.md); these show the layout still catches a clear gradient there.
LIMIT_CASES: dict[str, tuple[Defects, str]] = {
    "column gradient 20 % end to end": (
        Defects(gradient=0.20, gradient_axis="cols"),
        "plate_gradient",
    ),
    "row gradient 20 % end to end": (
        Defects(gradient=0.20, gradient_axis="rows"),
        "plate_gradient",
    ),
}

Outcome = Literal["flagged", "untestable", "missed"]


def outcome(flags: list[Flag], verdict: str, code: str, defects: Defects | None = None) -> Outcome:
    """Whether a plate's flags caught a planted defect: a warning or worse with its code, an
    info note saying the layout makes it untestable, or nothing. For a gradient, only a
    warning or note about the gradient's own axis counts."""
    axis = None
    if defects is not None and defects.gradient:
        axis = "rows" if defects.gradient_axis == "rows" else "columns"
    mine = [f for f in flags if f.code == code]
    if axis is not None:
        mine = [
            f for f in mine if axis in f.metrics.get("axes", ()) or f.metrics.get("axis") == axis
        ]
    if verdict != "pass" and any(f.severity != "info" for f in mine):
        return "flagged"
    if any(f.severity == "info" and f.metrics.get("untestable") for f in mine):
        return "untestable"
    return "missed"


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
