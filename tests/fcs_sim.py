"""Synthetic Annexin V-FITC / PI samples with known truth, written as real FCS files.

No public Annexin V/PI data set exists (SCIENCE.md §6), so gating is tested on these. Each
event has a truth label: live, early apoptotic (AnnV+/PI−), late apoptotic (AnnV+/PI+),
necrotic (AnnV−/PI+), or debris, doublet, saturated. The detector model:

* dyes: Annexin V-FITC (log-normal, bright on apoptotic cells, dim non-specific binding on
  live and necrotic cells), PI (bright on late apoptotic and necrotic cells);
* detectors see dye · S (the spillover matrix) + autofluorescence + noise whose variance
  grows with the signal (photon statistics), so compensation spreads bright events;
* scatter: apoptotic cells shrink (FSC down, SSC up), debris is small, doublets have twice
  the area at about the same height;
* a fraction of events saturate the FITC detector; an optional flow-instability window
  (a clog: fewer events, dimmer signals);
* controls: unstained, Annexin V only, PI only, from the same cells.

The truth is counted on the events themselves (singlet cells, not saturated, outside the
instability window), so it is exact, not the nominal fractions.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from tests.fcs_writer import Param, build_dataset

POPULATIONS = ("live", "early_apoptotic", "late_apoptotic", "necrotic")
DEBRIS, DOUBLET, SATURATED = 4, 5, 6
TOP = 262144.0

Role = Literal["sample", "unstained", "annexin_only", "pi_only"]
Variant = Literal["fcs3.1-float", "fcs3.0-float-be", "fcs3.0-int", "fcs2.0-log"]


@dataclass(frozen=True)
class SampleSpec:
    """What one tube holds. Fractions are of the cells (they are normalised)."""

    fractions: tuple[float, float, float, float] = (0.55, 0.21, 0.16, 0.08)
    events: int = 20_000
    debris: float = 0.08  # of all events
    doublets: float = 0.05
    saturated: float = 0.004
    dim_annexin: float = 150.0  # median non-specific Annexin V on live/necrotic cells
    annexin_bright: tuple[float, float] = (6_000.0, 10_000.0)  # medians: early, late
    pi_bright: tuple[float, float] = (15_000.0, 20_000.0)  # medians: late, necrotic
    bright_sd: float = 0.6  # log-normal sd (natural log) of the bright populations
    photon_noise: float = 20.0  # detector noise variance per unit of signal
    spillover: tuple[tuple[float, float], tuple[float, float]] = ((1.0, 0.15), (0.02, 1.0))
    instability: tuple[float, float] | None = None  # (start, end) as fractions of the run
    instability_rate: float = 0.3
    instability_signal: float = 0.5
    duration_s: float = 60.0
    seed: int = 0


@dataclass
class SimulatedSample:
    detectors: npt.NDArray[np.float64]  # events × [Time, FSC-A, FSC-H, SSC-A, FITC, PI]
    labels: npt.NDArray[np.int64]
    stable: npt.NDArray[np.bool_]  # outside the instability window
    names: tuple[str, ...]
    truth: dict[str, float] = field(default_factory=dict)  # percent of true cells
    truth_counts: dict[str, int] = field(default_factory=dict)


CHANNELS = ("Time", "FSC-A", "FSC-H", "SSC-A", "BL1-A", "BL3-A")
LABELS = (None, None, None, None, "Annexin V-FITC", "PI")


def _lognormal(
    rng: np.random.Generator, median: float, sd: float, n: int
) -> npt.NDArray[np.float64]:
    return median * np.exp(sd * rng.standard_normal(n))


def _cells(
    rng: np.random.Generator, labels: npt.NDArray[np.int64], spec: SampleSpec, stains: set[str]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Scatter (n × 3: FSC-A, FSC-H, SSC-A) and dye amounts (n × 2) of cells with labels."""
    n = labels.size
    fsc_scale = np.array([1.0, 0.85, 0.70, 0.55, 0.0])[np.minimum(labels, 4)]
    ssc_scale = np.array([1.0, 1.10, 1.30, 0.80, 0.0])[np.minimum(labels, 4)]
    fsc = _lognormal(rng, 90_000, 0.14, n) * fsc_scale
    ssc = _lognormal(rng, 40_000, 0.22, n) * ssc_scale
    debris = labels == DEBRIS
    fsc[debris] = _lognormal(rng, 6_000, 0.5, int(debris.sum()))
    ssc[debris] = _lognormal(rng, 7_000, 0.6, int(debris.sum()))
    ratio = _lognormal(rng, 1.2, 0.035, n)
    scatter = np.column_stack([fsc, fsc / ratio, ssc])

    dyes = np.zeros((n, 2))
    if "annexin" in stains:
        dim = _lognormal(rng, spec.dim_annexin, 0.5, n) if spec.dim_annexin > 0 else np.zeros(n)
        dyes[:, 0] = dim
        for label, median in zip((1, 2), spec.annexin_bright, strict=True):
            hit = labels == label
            dyes[hit, 0] = _lognormal(rng, median, spec.bright_sd, int(hit.sum()))
        hit = debris & (rng.random(n) < 0.5)
        dyes[hit, 0] = _lognormal(rng, 3_000, 0.8, int(hit.sum()))
    if "pi" in stains:
        for label, median in zip((2, 3), spec.pi_bright, strict=True):
            hit = labels == label
            dyes[hit, 1] = _lognormal(rng, median, spec.bright_sd, int(hit.sum()))
        hit = debris & (rng.random(n) < 0.3)
        dyes[hit, 1] = _lognormal(rng, 5_000, 0.8, int(hit.sum()))
    return scatter, dyes, ratio


def simulate(spec: SampleSpec, stains: set[str]) -> SimulatedSample:
    """Events of one tube stained with ``stains`` ⊆ {"annexin", "pi"}."""
    rng = np.random.default_rng(spec.seed)
    fractions = np.asarray(spec.fractions, dtype=float)
    fractions = fractions / fractions.sum()
    n_total = spec.events
    n_debris = round(spec.debris * n_total)
    n_doublets = round(spec.doublets * n_total)
    n_cells = n_total - n_debris - n_doublets
    labels = np.concatenate(
        [rng.choice(4, size=n_cells, p=fractions), np.full(n_debris, DEBRIS)]
    ).astype(np.int64)
    scatter, dyes, _ = _cells(rng, labels, spec, stains)

    # doublets: two cells passing together (twice the area, about the same height)
    pair_labels = rng.choice(4, size=(n_doublets, 2), p=fractions)
    a_sc, a_dy, _ = _cells(rng, pair_labels[:, 0], spec, stains)
    b_sc, b_dy, _ = _cells(rng, pair_labels[:, 1], spec, stains)
    d_area = a_sc[:, 0] + b_sc[:, 0]
    d_height = np.maximum(a_sc[:, 1], b_sc[:, 1]) * 1.1
    d_scatter = np.column_stack([d_area, d_height, a_sc[:, 2] + b_sc[:, 2]])
    scatter = np.vstack([scatter, d_scatter])
    dyes = np.vstack([dyes, a_dy + b_dy])
    labels = np.concatenate([labels, np.full(n_doublets, DOUBLET)]).astype(np.int64)

    # detectors: dye · S + autofluorescence + signal-dependent noise
    s = np.asarray(spec.spillover, dtype=float)
    n = labels.size
    autofluorescence = np.column_stack([_lognormal(rng, 150, 0.3, n), _lognormal(rng, 80, 0.3, n)])
    signal = dyes @ s + autofluorescence
    noise_sd = np.sqrt(30.0**2 + spec.photon_noise * np.clip(signal, 0, None))
    fluorescence = signal + noise_sd * rng.standard_normal(signal.shape)

    # time, a clog window, saturated events
    order = rng.permutation(n)
    scatter, fluorescence, labels = scatter[order], fluorescence[order], labels[order]
    time = np.sort(rng.random(n)) * spec.duration_s
    stable = np.ones(n, dtype=bool)
    if spec.instability is not None:
        t0, t1 = (f * spec.duration_s for f in spec.instability)
        window = (time >= t0) & (time < t1)
        keep = ~window | (rng.random(n) < spec.instability_rate)
        scatter, fluorescence, labels, time = (
            scatter[keep],
            fluorescence[keep],
            labels[keep],
            time[keep],
        )
        window = window[keep]
        scatter[window] *= spec.instability_signal
        fluorescence[window] *= spec.instability_signal
        stable = ~window
        n = labels.size
    saturated = rng.random(n) < spec.saturated
    fluorescence[saturated, 0] = TOP - 1
    labels = np.where(saturated & (labels < 4), SATURATED, labels)
    scatter = np.clip(scatter, 0, TOP - 1)
    fluorescence = np.clip(fluorescence, -TOP, TOP - 1)

    detectors = np.column_stack([time / 0.01, scatter, fluorescence])  # time in 10 ms ticks
    cells = (labels < 4) & stable
    counts = {name: int(((labels == k) & stable).sum()) for k, name in enumerate(POPULATIONS)}
    total = max(int(cells.sum()), 1)
    truth = {name: 100.0 * c / total for name, c in counts.items()}
    return SimulatedSample(detectors, labels, stable, CHANNELS, truth, counts)


def stains_for(role: Role) -> set[str]:
    return {
        "sample": {"annexin", "pi"},
        "unstained": set(),
        "annexin_only": {"annexin"},
        "pi_only": {"pi"},
    }[role]


def fcs_bytes(
    sim: SimulatedSample,
    *,
    variant: Variant = "fcs3.1-float",
    spillover: npt.NDArray[np.float64] | None = None,
    keywords: dict[str, str] | None = None,
    names: tuple[str, ...] = CHANNELS,
    labels: tuple[str | None, ...] = LABELS,
) -> bytes:
    """The sample as an FCS file of one of the variants (spillover written when given)."""
    kw = {"$TIMESTEP": "0.01", "$CYT": "platewatch simulator", **(keywords or {})}
    data = sim.detectors.copy()
    fl = list(names[4:6])
    if variant == "fcs3.1-float":
        params = [Param(n, lab, 32, TOP) for n, lab in zip(names, labels, strict=True)]
        if spillover is not None:
            kw["$SPILLOVER"] = _spill_text(fl, spillover)
        return build_dataset(data, params, version="FCS3.1", datatype="F", keywords=kw)
    if variant == "fcs3.0-float-be":
        params = [Param(n, lab, 32, TOP) for n, lab in zip(names, labels, strict=True)]
        if spillover is not None:
            kw["SPILL"] = _spill_text(fl, spillover)
        return build_dataset(
            data,
            params,
            version="FCS3.0",
            datatype="F",
            order="big",
            keywords=kw,
            delimiter="\x0c",
            enddata_off_by_one=True,
        )
    if variant == "fcs3.0-int":
        # 18-bit detectors in 32-bit words; bits above $PnR hold junk (Beckman-style)
        data = np.clip(np.rint(data), 0, TOP - 1)
        junk = np.random.default_rng(1).integers(0, 1 << 10, size=data.shape) << 18
        data = data + junk
        data[:, 0] = sim.detectors[:, 0]
        params = [Param(n, lab, 32, TOP) for n, lab in zip(names, labels, strict=True)]
        params[0] = Param(names[0], None, 32, float(2**22))
        if spillover is not None:
            kw["$SPILLOVER"] = _spill_text(fl, spillover)
        return build_dataset(data, params, version="FCS3.0", datatype="I", keywords=kw)
    # FCS 2.0, FACSCalibur-like: fluorescence on 4-decade log amplifiers, 1024 channels
    scatter_names = ("Time", "FSC-A", "FSC-H", "SSC-A", "FL1 Log", "FL3 Log")
    data = np.clip(np.rint(data), 0, None)
    for k in (4, 5):  # the amplifiers cover 1..10^4: the 18-bit scale divided by 25
        linear = np.clip(sim.detectors[:, k] / 25.0, 1.0, None)
        data[:, k] = np.clip(np.floor(256.0 * np.log10(linear)), 0, 1023)
    data[:, 1:4] = np.clip(np.rint(sim.detectors[:, 1:4] / 4), 0, 65535)
    data[:, 0] = np.clip(sim.detectors[:, 0], 0, 65535)
    params = [
        Param(scatter_names[0], None, 16, 65536),
        Param(scatter_names[1], None, 16, 65536),
        Param(scatter_names[2], None, 16, 65536),
        Param(scatter_names[3], None, 16, 65536),
        Param(scatter_names[4], labels[4], 16, 1024, log="4,0"),
        Param(scatter_names[5], labels[5], 16, 1024, log="4,0"),
    ]
    if spillover is not None:
        kw["$DFC1TO3"] = f"{100 * spillover[0, 1]:.2f}"
        kw["$DFC3TO1"] = f"{100 * spillover[1, 0]:.2f}"
    return build_dataset(
        data, params, version="FCS2.0", datatype="I", order="big", keywords=kw, delimiter="\\"
    )


def _spill_text(channels: list[str], matrix: npt.NDArray[np.float64]) -> str:
    values = ",".join(f"{v:.6g}" for v in np.asarray(matrix).ravel())
    return f"{len(channels)},{','.join(channels)},{values}"


@dataclass
class Experiment:
    """The files of one simulated experiment and the truth of each sample."""

    folder: Path
    controls: dict[str, Path]
    samples: dict[Path, SimulatedSample]
    spillover: npt.NDArray[np.float64]


def write_experiment(
    folder: Path,
    samples: dict[str, SampleSpec],
    *,
    variant: Variant = "fcs3.1-float",
    file_matrix: bool = True,
    controls: tuple[Role, ...] = ("unstained", "annexin_only", "pi_only"),
    control_spec: SampleSpec | None = None,
    control_names: dict[str, str] | None = None,
) -> Experiment:
    """Controls and samples as FCS files in ``folder`` (names say the role, as labs do)."""
    folder.mkdir(parents=True, exist_ok=True)
    first = next(iter(samples.values()))
    spill = np.asarray(first.spillover, dtype=float)
    matrix = spill if file_matrix else None
    base = control_spec or replace(first, fractions=(0.45, 0.25, 0.2, 0.1), instability=None)
    names = {"unstained": "Unstained", "annexin_only": "Annexin V only", "pi_only": "PI only"}
    names.update(control_names or {})
    written: dict[str, Path] = {}
    for k, role in enumerate(controls):
        sim = simulate(replace(base, seed=base.seed + 1000 + k), stains_for(role))
        path = folder / f"{names[role]}.fcs"
        path.write_bytes(
            fcs_bytes(sim, variant=variant, spillover=matrix, keywords={"TUBE NAME": names[role]})
        )
        written[role] = path
    out: dict[Path, SimulatedSample] = {}
    for name, spec in samples.items():
        sim = simulate(spec, {"annexin", "pi"})
        path = folder / f"{name}.fcs"
        path.write_bytes(
            fcs_bytes(sim, variant=variant, spillover=matrix, keywords={"TUBE NAME": name})
        )
        out[path] = sim
    return Experiment(folder, written, out, spill)
