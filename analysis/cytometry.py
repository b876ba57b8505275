"""The Annexin V/PI analysis of one batch of tubes (SCIENCE.md §7). Pure: no files.

Per tube: saturated events out → time gate (flow instability) → debris gate (FSC-A/SSC-A)
→ singlets (FSC-A/FSC-H or FSC-W) → compensation (the file's matrix, or one estimated from
the single-stain controls, or none — the result says which) → a threshold per channel by
both methods (control percentile, density valley; the configured one is used, the other
checks it) → quadrant counts and percentages of the cells left after the gates.

Batch level: the controls set the control thresholds and the estimated matrix; the
untreated sample's viability is checked (``low_viability_control``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from analysis import cytometry_flags as flags
from analysis.compensation import (
    check_spillover,
    compensate,
    estimate_spillover,
    positive_events,
)
from analysis.cytometry_model import (
    CONTROL_ROLES,
    Array,
    ChannelMap,
    CytometryResult,
    CytometryThresholds,
    PlotData,
    SampleInput,
)
from analysis.gating import Gate, debris_gate, saturation_gate, singlet_gate, time_gate
from analysis.model import SEVERITY_RANK, Flag, verdict_of
from analysis.thresholds import Valley, control_threshold, valley_threshold
from analysis.transforms import Arcsinh, Logicle, make_transform
from datamodel.cytometry import FcsDataset, Spillover
from errors import AnalysisError

PLOT_EVENTS = 50_000


@dataclass
class GatedSample:
    """One tube after the gates: which events are cells, and the numbers of each gate."""

    sample: SampleInput
    cells: np.ndarray  # bool over all events
    gates: dict[str, Any]
    flags: list[Flag]
    plot_scatter: dict[str, Any] = field(default_factory=dict)

    @property
    def dataset(self) -> FcsDataset:
        return self.sample.dataset

    @property
    def n_cells(self) -> int:
        return int(self.cells.sum())

    def linear_cells(self, channels: tuple[str, ...]) -> Array:
        """Cells × channels, linear (``$PnE``/``$PnG`` applied), not compensated."""
        ds = self.dataset
        return np.column_stack([ds.linear(c)[self.cells] for c in channels])


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 4) if whole else 0.0


def gate_sample(sample: SampleInput, ch: ChannelMap, th: CytometryThresholds) -> GatedSample:
    ds = sample.dataset
    n = ds.n_events
    well = ds.well_id
    scatter = [c for c in (ch.fsc_a, ch.fsc_h, ch.fsc_w, ch.ssc_a) if c]
    checked = [*scatter, ch.annexin, ch.pi]
    own, _ = file_spillover(ds, ch)
    if own is not None and th.compensation in ("auto", "file"):
        checked += [c for c in _spilling_into(own, ch) if c not in checked]
    params = [ds.parameter(c) for c in checked]
    sat = saturation_gate(
        [ds.events[:, ds.channel(c)] for c in checked],
        [
            p.saturation if p.range > 0 and c not in (ch.fsc_h, ch.fsc_w) else 0.0
            for c, p in zip(checked, params, strict=True)
        ],  # widths clamp at the top by design
        checked,
        [c not in scatter for c in checked],
    )
    saturated = int(sat.info["excluded"])
    scatter_saturated = sat.info["scatter"]
    alive = sat.mask
    fsc_all, ssc_all = ds.linear(ch.fsc_a), ds.linear(ch.ssc_a)
    time_all = ds.linear(ch.time) if ch.time else None
    tg = time_gate(
        None if time_all is None else time_all[alive],
        [fsc_all[alive], ssc_all[alive]],
        rate_drop=th.time_rate_drop,
        shift_decades=th.time_shift_decades,
    )
    step = _expand(alive, tg)
    fsc, ssc = fsc_all[step], ssc_all[step]
    dg = debris_gate(
        fsc, ssc, fallback_fraction=th.debris_fraction, max_fraction=th.debris_max_fraction
    )
    after_debris = _expand(step, dg)
    other_name = ch.fsc_h or ch.fsc_w
    other_kind = "height" if ch.fsc_h else "width" if ch.fsc_w else None
    other_all = ds.linear(other_name) if other_name else None
    sg = singlet_gate(
        fsc_all[after_debris],
        None if other_all is None else other_all[after_debris],
        other_kind or "height",
        mads=th.singlet_mads,
    )
    cells = _expand(after_debris, sg)
    n_cells = int(cells.sum())
    time_excluded = int(alive.sum()) - int(step.sum())
    gates: dict[str, Any] = {
        "events": n,
        "saturated": {
            "events": saturated,
            "percent": _pct(saturated, n),
            "channels": sat.info["channels"],
            "scatter_kept": scatter_saturated,
            "invalid": sat.info["invalid"],
        },
        "time": {
            "applied": tg.applied,
            "events": int(step.sum()),
            "percent": _pct(int(step.sum()), n),
            "excluded": time_excluded,
            **tg.info,
        },
        "debris": {
            "events": int(after_debris.sum()),
            "percent": _pct(int(after_debris.sum()), n),
            "channel": ch.fsc_a,
            **dg.info,
        },
        "singlets": {
            "applied": sg.applied,
            "events": n_cells,
            "percent": _pct(n_cells, n),
            **sg.info,
        },
        "cells": n_cells,
    }
    found: list[Flag | None] = [
        flags.few_events(n_cells, n, th.min_events, well),
        flags.saturated_events(saturated, n, sat.info["channels"], th.saturated_max, well),
        flags.saturated_scatter(scatter_saturated, n, th.saturated_max, well),
        flags.flow_instability(
            time_excluded or int(tg.info.get("would_exclude", 0)),
            n,
            tg.info.get("unstable_intervals", []),
            th.instability_max,
            well,
            tg.applied,
        ),
    ]
    picked = _subsample(step, PLOT_EVENTS)
    plot = {
        "fsc": fsc_all[picked].astype(np.float32),
        "ssc": ssc_all[picked].astype(np.float32),
        "other": None if other_all is None else other_all[picked].astype(np.float32),
        "other_kind": other_kind,
        "debris_threshold": dg.info.get("channel_threshold"),
        "singlet_bounds": (sg.info["low"], sg.info["high"]) if "low" in sg.info else None,
    }
    return GatedSample(sample, cells, gates, [f for f in found if f is not None], plot)


def _spilling_into(spill: Spillover, ch: ChannelMap, floor: float = 0.005) -> list[str]:
    """The matrix's channels whose value changes the compensated Annexin V or PI by more
    than ``floor`` of itself: a clipped value there spoils those two channels."""
    inverse = np.linalg.inv(spill.matrix)
    cols = [spill.channels.index(ch.annexin), spill.channels.index(ch.pi)]
    weight = np.abs(inverse[:, cols]).max(axis=1)
    return [c for c, w in zip(spill.channels, weight, strict=True) if w >= floor]


def _expand(outer: np.ndarray, gate: Gate) -> np.ndarray:
    """A gate's mask (over the events ``outer`` kept) as a mask over all events."""
    full = np.zeros(outer.shape[0], dtype=bool)
    full[np.nonzero(outer)[0][gate.mask]] = True
    return full


def _subsample(mask: np.ndarray, limit: int) -> np.ndarray:
    index = np.nonzero(mask)[0]
    if index.size > limit:
        index = index[np.linspace(0, index.size - 1, limit).astype(np.int64)]
    return index


# --- compensation ------------------------------------------------------------------------


def file_spillover(ds: FcsDataset, ch: ChannelMap) -> tuple[Spillover | None, str]:
    """The file's matrix if it covers both channels and is not the identity there."""
    spill = ds.spillover
    if spill is None:
        return None, "no spillover keyword in the file"
    pair = spill.restricted((ch.annexin, ch.pi))
    if pair is None:
        return None, f"the file's {spill.source} matrix does not cover {ch.annexin} and {ch.pi}"
    if pair.is_identity:
        return None, f"the file's {spill.source} matrix is the identity for {ch.annexin}/{ch.pi}"
    present = {p.name for p in ds.parameters}
    chosen = spill if all(c in present for c in spill.channels) else pair
    try:
        check_spillover(chosen, f"the file's {spill.source} matrix")
    except AnalysisError as exc:
        return None, exc.message
    return chosen, ""


def estimated_spillover(
    controls: dict[str, GatedSample], ch: ChannelMap, th: CytometryThresholds
) -> tuple[Spillover | None, str]:
    """The 2 × 2 matrix from the unstained and single-stain controls (None and why)."""
    pair = (ch.annexin, ch.pi)
    missing = [r for r in CONTROL_ROLES if r not in controls]
    if missing:
        return None, f"no {', '.join(missing)} control to estimate it from"
    unstained = controls["unstained"].linear_cells(pair)
    stained: dict[str, Array] = {}
    for role, column in (("annexin_only", 0), ("pi_only", 1)):
        events = controls[role].linear_cells(pair)
        cutoff = float(np.percentile(unstained[:, column], th.control_percentile))
        stained[pair[column]] = positive_events(events, column, cutoff)
    try:
        return estimate_spillover(pair, unstained, stained), ""
    except AnalysisError as exc:
        return None, f"cannot estimate it from the controls: {exc.message}"


def compensated(gs: GatedSample, ch: ChannelMap, spill: Spillover | None) -> tuple[Array, Array]:
    """The cells' Annexin V and PI values, compensated by ``spill`` when there is one."""
    if spill is None:
        values = gs.linear_cells((ch.annexin, ch.pi))
        return values[:, 0], values[:, 1]
    values = compensate(gs.linear_cells(spill.channels), spill.matrix)
    return values[:, spill.channels.index(ch.annexin)], values[:, spill.channels.index(ch.pi)]


# --- thresholds and quadrants --------------------------------------------------------------


@dataclass
class ControlThresholds:
    annexin: tuple[float, str] | None  # value, the control it came from
    pi: tuple[float, str] | None


def control_thresholds(
    controls: dict[str, GatedSample], ch: ChannelMap, spill: Spillover | None, pct: float
) -> ControlThresholds:
    """Each channel's threshold on the compensated tube carrying the *other* stain (FMO
    idea), else on the unstained tube."""

    def pick(column: int, own: str) -> tuple[float, str] | None:
        for role in (own, "unstained"):
            if role in controls and controls[role].n_cells >= 100:
                values = compensated(controls[role], ch, spill)[column]
                value = control_threshold(values, pct)
                if value is not None:
                    return value, role
        return None

    return ControlThresholds(annexin=pick(0, "pi_only"), pi=pick(1, "annexin_only"))


def choose_threshold(
    values: Array,
    control: tuple[float, str] | None,
    transform: Arcsinh | Logicle,
    th: CytometryThresholds,
    channel: str,
    role: str = "sample",
) -> dict[str, Any]:
    """Both thresholds of one channel; the configured method is used (controls always use
    the control thresholds: they are what those are computed from)."""
    valley: Valley | None = valley_threshold(
        values, transform, min_fraction=th.valley_min_fraction, max_depth=th.valley_max_depth
    )
    info: dict[str, Any] = {
        "channel": channel,
        "value": None,
        "method": None,
        "control": control[0] if control else None,
        "control_source": control[1] if control else None,
        "valley": valley.threshold if valley else None,
        "positive_percent": {},
    }
    if values.size:
        if control:
            info["positive_percent"]["control"] = round(
                100.0 * float(np.mean(values >= control[0])), 4
            )
        if valley:
            info["positive_percent"]["valley"] = round(
                100.0 * float(np.mean(values >= valley.threshold)), 4
            )
    prefer_control = th.threshold_method == "control" or role in CONTROL_ROLES
    order = ["control", "valley"] if prefer_control else ["valley", "control"]
    for method in order:
        value = info[method]
        if value is not None:
            info["value"], info["method"] = float(value), method
            break
    return info


def quadrants(annexin: Array, pi: Array, ta: float, tp: float) -> dict[str, dict[str, float | int]]:
    a, p = annexin >= ta, pi >= tp
    counts = {
        "live": int((~a & ~p).sum()),
        "early_apoptotic": int((a & ~p).sum()),
        "late_apoptotic": int((a & p).sum()),
        "necrotic": int((~a & p).sum()),
    }
    total = annexin.size
    return {k: {"count": v, "percent": _pct(v, total)} for k, v in counts.items()}


# --- the batch ---------------------------------------------------------------------------


def _transform(th: CytometryThresholds) -> Arcsinh | Logicle:
    return make_transform(th.transform, cofactor=th.arcsinh_cofactor)


def analyze_batch(
    samples: list[SampleInput], ch: ChannelMap, th: CytometryThresholds
) -> list[CytometryResult]:
    """Analyse every tube of a batch (controls included) and return one result each."""
    if not samples:
        raise AnalysisError("no FCS files to analyse")
    gated = [gate_sample(s, ch, th) for s in samples]
    controls: dict[str, GatedSample] = {}
    for g in gated:
        if g.sample.role in CONTROL_ROLES and g.sample.role not in controls:
            controls[g.sample.role] = g
    missing = [r for r in CONTROL_ROLES if r not in controls]
    transform = _transform(th)
    estimates: list[tuple[Spillover | None, str]] = []

    def estimate() -> tuple[Spillover | None, str]:
        if not estimates:  # only when some tube needs it
            estimates.append(estimated_spillover(controls, ch, th))
        return estimates[0]

    cache: dict[bytes, ControlThresholds] = {}
    results: list[CytometryResult] = []
    for g in gated:
        spill, source, why = choose_compensation(g, ch, th, estimate)
        key = b"" if spill is None else spill.matrix.tobytes() + "|".join(spill.channels).encode()
        if key not in cache:
            cache[key] = control_thresholds(controls, ch, spill, th.control_percentile)
        results.append(_finish(g, ch, th, spill, source, why, cache[key], transform))
    _batch_flags(results, missing, th)
    for r in results:
        r.flags.sort(key=lambda f: -SEVERITY_RANK[f.severity])
        r.verdict = verdict_of(r.flags)
    return results


def choose_compensation(
    g: GatedSample,
    ch: ChannelMap,
    th: CytometryThresholds,
    estimate: Callable[[], tuple[Spillover | None, str]],
) -> tuple[Spillover | None, str, str]:
    """(matrix, "file" | "controls" | "none", why none) for one tube, as the settings say."""
    if th.compensation == "none":
        return None, "none", "compensation is switched off in the settings"
    own, why_file = file_spillover(g.dataset, ch)
    if th.compensation in ("auto", "file") and own is not None:
        return own, "file", ""
    if th.compensation == "file":
        return None, "none", why_file
    spill, why_controls = estimate()
    if spill is not None:
        return spill, "controls", ""
    reasons = [why_controls] if th.compensation == "controls" else [why_file, why_controls]
    return None, "none", "; ".join(r for r in reasons if r)


def _finish(
    g: GatedSample,
    ch: ChannelMap,
    th: CytometryThresholds,
    spill: Spillover | None,
    source: str,
    why: str,
    control: ControlThresholds,
    transform: Arcsinh | Logicle,
) -> CytometryResult:
    well = g.dataset.well_id
    annexin, pi = compensated(g, ch, spill)
    result_flags = list(g.flags)
    role = g.sample.role
    a_info = choose_threshold(annexin, control.annexin, transform, th, ch.annexin, role)
    p_info = choose_threshold(pi, control.pi, transform, th, ch.pi, role)
    gates = dict(g.gates)
    gates["thresholds"] = {"annexin": a_info, "pi": p_info}
    populations = None
    if a_info["value"] is None or p_info["value"] is None:
        for info, what in ((a_info, "Annexin V"), (p_info, "PI")):
            if info["value"] is None:
                result_flags.append(
                    flags.no_threshold(
                        what, "no control tube and no density valley in the sample", well
                    )
                )
    elif annexin.size:
        populations = quadrants(annexin, pi, a_info["value"], p_info["value"])
    if source == "none":
        result_flags.append(flags.no_compensation(well, why))
    is_sample = g.sample.role in ("sample", "untreated")
    if is_sample:
        for info, what in ((a_info, "Annexin V"), (p_info, "PI")):
            found = flags.thresholds_disagree(what, info, th.threshold_margin, well)
            if found:
                result_flags.append(found)
        if populations is not None:
            necrotic = flags.high_necrotic(
                float(populations["necrotic"]["percent"]), th.necrotic_max, well
            )
            if necrotic:
                result_flags.append(necrotic)
    compensation: dict[str, Any] = {
        "source": source,
        "keyword": spill.source if spill is not None and source == "file" else None,
        "matrix": None
        if spill is None
        else {"channels": list(spill.channels), "values": spill.matrix.tolist()},
    }
    if why and source == "none":
        compensation["reason"] = why
    picked = np.arange(annexin.size)
    if picked.size > PLOT_EVENTS:
        picked = np.linspace(0, annexin.size - 1, PLOT_EVENTS).astype(np.int64)
    ps = g.plot_scatter
    plot = PlotData(
        fsc=ps["fsc"],
        ssc=ps["ssc"],
        fsc_other=ps["other"],
        other_kind=ps["other_kind"],
        debris_threshold=ps["debris_threshold"],
        singlet_bounds=ps["singlet_bounds"],
        annexin=annexin[picked].astype(np.float32),
        pi=pi[picked].astype(np.float32),
        thresholds=(a_info["value"], p_info["value"]),
        names=(_axis_name(g.dataset, ch.annexin), _axis_name(g.dataset, ch.pi)),
    )
    return CytometryResult(
        path=g.sample.name,
        role=g.sample.role,
        verdict="pass",
        flags=result_flags,
        populations=populations,
        gates=gates,
        compensation=compensation,
        well=well,
        plot=plot,
    )


def _axis_name(ds: FcsDataset, channel: str) -> str:
    label = ds.parameter(channel).label
    return f"{channel} ({label})" if label else channel


def _batch_flags(
    results: list[CytometryResult], missing: Sequence[str], th: CytometryThresholds
) -> None:
    if missing:
        consequences = []
        if "pi_only" in missing or "annexin_only" in missing:
            consequences.append(
                "the control thresholds fall back to the unstained tube or the valley"
            )
        consequences.append("compensation cannot be estimated from single stains")
        flag = flags.missing_controls(missing, consequences, critical=False)
        for r in results:
            if r.role in ("sample", "untreated"):
                r.flags.append(
                    Flag(
                        flag.code,
                        flag.severity,
                        flag.message,
                        [r.well] if r.well else [],
                        dict(flag.metrics),
                    )
                )
    untreated = [r for r in results if r.role == "untreated" and r.populations is not None]
    for u in untreated:
        live = u.percent("live")
        if live is None or live >= th.viability_control_min:
            continue
        for r in results:
            if r is u:
                r.flags.append(
                    flags.low_viability_control(
                        live, th.viability_control_min, u.path, True, r.well
                    )
                )
            elif r.role == "sample":
                r.flags.append(
                    flags.low_viability_control(
                        live, th.viability_control_min, u.path, False, r.well
                    )
                )
