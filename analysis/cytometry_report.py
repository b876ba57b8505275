"""The cytometry report: a PNG per tube, one self-contained HTML page, CSV and JSON.

Each tube's figure has three panels: FSC-A/SSC-A with the debris threshold, FSC-A against
FSC-H (or FSC-W) with the singlet band, and the compensated Annexin V/PI density on
arcsinh or logicle axes with the quadrant lines and the four percentages in the corners.
The page adds the per-tube table and the flags. It writes only where it is told.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from analysis.cytometry_model import POPULATIONS, CytometryResult, CytometryThresholds, PlotData
from analysis.model import page_head, safe_stem
from analysis.transforms import Arcsinh, Logicle, decade_ticks, make_transform

_VERDICT_COLOUR = {"pass": "#2ca02c", "warn": "#ff7f0e", "fail": "#d62728"}
_SEVERITY_COLOUR = {"critical": "#d62728", "warning": "#ff7f0e", "info": "#1f77b4"}
_SHORT = {
    "live": "live",
    "early_apoptotic": "early apopt.",
    "late_apoptotic": "late apopt.",
    "necrotic": "necrotic",
}


def _density(ax: Axes, x: np.ndarray, y: np.ndarray, bins: int, extent: tuple[float, ...]) -> None:
    finite = np.isfinite(x) & np.isfinite(y)
    if not finite.any():
        ax.text(0.5, 0.5, "no events", ha="center", va="center", transform=ax.transAxes)
        return
    counts, _, _ = np.histogram2d(
        x[finite], y[finite], bins=bins, range=[[extent[0], extent[1]], [extent[2], extent[3]]]
    )
    masked = np.ma.masked_where(counts.T == 0, counts.T)
    ax.imshow(
        masked,
        origin="lower",
        extent=(extent[0], extent[1], extent[2], extent[3]),
        aspect="auto",
        interpolation="nearest",
        cmap="jet",
        norm=LogNorm(vmin=1, vmax=max(2.0, float(counts.max()))),
    )


def _scatter_panel(ax: Axes, plot: PlotData) -> None:
    fsc, ssc = plot.fsc.astype(float), plot.ssc.astype(float)
    top = float(np.nanpercentile(fsc, 99.9)) * 1.1 if fsc.size else 1.0
    stop = float(np.nanpercentile(ssc, 99.9)) * 1.1 if ssc.size else 1.0
    _density(ax, fsc, ssc, 150, (0.0, top, 0.0, stop))
    if plot.debris_threshold:
        ax.axvline(plot.debris_threshold, color="k", lw=1.2, ls="--")
        ax.text(plot.debris_threshold, stop * 0.97, " debris gate", fontsize=7, va="top")
    ax.set_xlabel("FSC-A", fontsize=8)
    ax.set_ylabel("SSC-A", fontsize=8)
    ax.set_title("debris gate", fontsize=9)


def _singlet_panel(ax: Axes, plot: PlotData) -> None:
    if plot.fsc_other is None:
        ax.text(
            0.5,
            0.5,
            "no FSC-H/FSC-W:\nno singlet gate",
            ha="center",
            va="center",
            transform=ax.transAxes,
            fontsize=8,
        )
        ax.set_axis_off()
        return
    fsc, other = plot.fsc.astype(float), plot.fsc_other.astype(float)
    top = float(np.nanpercentile(fsc, 99.9)) * 1.1 if fsc.size else 1.0
    otop = float(np.nanpercentile(other, 99.9)) * 1.1 if other.size else 1.0
    _density(ax, fsc, other, 150, (0.0, top, 0.0, otop))
    name = "FSC-H" if plot.other_kind == "height" else "FSC-W"
    if plot.singlet_bounds is not None:
        low, high = plot.singlet_bounds
        xs = np.array([0.0, top])
        if plot.other_kind == "height":
            for ratio in (low, high):
                if ratio > 0:
                    ax.plot(xs, xs / ratio, color="k", lw=1.0, ls="--")
        else:
            for w in (low, high):
                ax.axhline(w, color="k", lw=1.0, ls="--")
    ax.set_xlim(0, top)
    ax.set_ylim(0, otop)
    ax.set_xlabel("FSC-A", fontsize=8)
    ax.set_ylabel(name, fontsize=8)
    ax.set_title("singlets", fontsize=9)


def _display_range(plot: PlotData) -> tuple[float, float]:
    """Data limits of the Annexin V/PI axes: the events' spread, a little beyond."""
    both = np.concatenate([plot.annexin, plot.pi]).astype(float)
    both = both[np.isfinite(both)]
    if both.size == 0:
        return -100.0, 1e4
    low = float(np.percentile(both, 0.1))
    high = float(np.percentile(both, 99.9))
    return min(-100.0, 2.0 * low), max(1000.0, 3.0 * high)


def _quadrant_panel(
    ax: Axes, result: CytometryResult, plot: PlotData, transform: Arcsinh | Logicle
) -> None:
    x = transform.forward(plot.annexin.astype(float))
    y = transform.forward(plot.pi.astype(float))
    low_value, high_value = _display_range(plot)
    lo = float(transform.forward(np.array([low_value]))[0])
    hi = float(transform.forward(np.array([high_value]))[0])
    _density(ax, x, y, 200, (lo, hi, lo, hi))
    ta, tp = plot.thresholds
    if ta is not None:
        ax.axvline(float(transform.forward(np.array([ta]))[0]), color="k", lw=1.2)
    if tp is not None:
        ax.axhline(float(transform.forward(np.array([tp]))[0]), color="k", lw=1.2)
    pos, labels = decade_ticks(transform, low_value, high_value)
    ax.set_xticks(pos, labels, fontsize=7)
    ax.set_yticks(pos, labels, fontsize=7)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel(f"{plot.names[0]}, compensated ({transform.name})", fontsize=8)
    ax.set_ylabel(f"{plot.names[1]}, compensated", fontsize=8)
    ax.set_title(f"Annexin V / PI ({result.compensation.get('source')} compensation)", fontsize=9)
    if result.populations is None:
        return
    corners = {
        "necrotic": (0.03, 0.97, "left", "top"),
        "late_apoptotic": (0.97, 0.97, "right", "top"),
        "live": (0.03, 0.03, "left", "bottom"),
        "early_apoptotic": (0.97, 0.03, "right", "bottom"),
    }
    for name, (cx, cy, ha, va) in corners.items():
        pct = float(result.populations[name]["percent"])
        ax.text(
            cx,
            cy,
            f"{_SHORT[name]}\n{pct:.1f} %",
            transform=ax.transAxes,
            ha=ha,
            va=va,
            fontsize=8,
            fontweight="bold",
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "0.6", "alpha": 0.85},
        )


def render_sample(result: CytometryResult, transform: Arcsinh | Logicle) -> Figure:
    fig = Figure(figsize=(13.0, 4.3), dpi=100)
    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.0, 1.0, 1.25]})
    if result.plot is not None:
        _scatter_panel(axes[0], result.plot)
        _singlet_panel(axes[1], result.plot)
        _quadrant_panel(axes[2], result, result.plot, transform)
    for ax in axes:
        ax.tick_params(labelsize=7)
    title = (
        f"{Path(result.path).name} ({result.role}{', well ' + result.well if result.well else ''})"
    )
    codes = ", ".join(dict.fromkeys(f.code for f in result.flags))
    fig.suptitle(
        f"{title} — {result.verdict.upper()}" + (f": {codes}" if codes else ""),
        color=_VERDICT_COLOUR[result.verdict],
        fontsize=11,
        fontweight="bold",
    )
    fig.subplots_adjust(left=0.06, right=0.985, bottom=0.13, top=0.86, wspace=0.28)
    return fig


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _num(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def _percent(value: Any) -> str:
    return f"{float(value):.1f}" if isinstance(value, int | float) else "—"


CSV_FIELDS = [
    "path",
    "role",
    "well",
    "verdict",
    "events",
    "cells",
    *[f"{p}_{k}" for p in POPULATIONS for k in ("count", "percent")],
    "annexin_threshold",
    "annexin_method",
    "pi_threshold",
    "pi_method",
    "compensation",
    "flags",
]


def csv_row(r: CytometryResult) -> dict[str, Any]:
    th = r.gates.get("thresholds", {})
    row: dict[str, Any] = {
        "path": r.path,
        "role": r.role,
        "well": r.well or "",
        "verdict": r.verdict,
        "events": r.gates.get("events"),
        "cells": r.gates.get("cells"),
        "annexin_threshold": th.get("annexin", {}).get("value"),
        "annexin_method": th.get("annexin", {}).get("method"),
        "pi_threshold": th.get("pi", {}).get("value"),
        "pi_method": th.get("pi", {}).get("method"),
        "compensation": r.compensation.get("source"),
        "flags": " ".join(f.code for f in r.flags),
    }
    for p in POPULATIONS:
        pop = (r.populations or {}).get(p, {})
        row[f"{p}_count"] = pop.get("count", "")
        row[f"{p}_percent"] = pop.get("percent", "")
    return row


def write_cytometry_report(
    results: list[CytometryResult], out_dir: str | Path, name: str, th: CytometryThresholds
) -> dict[str, str]:
    """``<name>.html`` (every tube), ``<name>.csv``, ``<name>.json`` and a PNG per tube.

    Sets each result's ``report`` to its PNG and the batch files; returns the batch files.
    """
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stem = safe_stem(name)
    transform = make_transform(th.transform, cofactor=th.arcsinh_cofactor)
    page, csv_path, json_path = (folder / f"{stem}.{ext}" for ext in ("html", "csv", "json"))
    batch = {"html": str(page), "csv": str(csv_path), "json": str(json_path)}
    sections: list[str] = []
    used: set[str] = set()
    for r in results:
        png_stem = safe_stem(f"{stem}_{Path(r.path).stem}")
        while png_stem in used:
            png_stem += "_"
        used.add(png_stem)
        png = folder / f"{png_stem}.png"
        fig = render_sample(r, transform)
        data = _png(fig)
        png.write_bytes(data)
        r.report = {"png": str(png), **batch}
        sections.append(_section(r, data))
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for r in results:
            writer.writerow(csv_row(r))
    json_path.write_text(
        json.dumps({"schema": 1, "results": [r.to_dict() for r in results]}, indent=1),
        encoding="utf-8",
    )
    page.write_text(_html(results, name, sections), encoding="utf-8")
    return batch


def _section(r: CytometryResult, png: bytes) -> str:
    esc = html.escape
    rows = "".join(
        f'<tr><td style="color:{_SEVERITY_COLOUR[f.severity]};font-weight:bold">{esc(f.severity)}'
        f"</td><td><code>{esc(f.code)}</code></td><td>{esc(f.message)}</td></tr>"
        for f in r.flags
    )
    image = base64.b64encode(png).decode("ascii")
    th = r.gates.get("thresholds", {})
    notes = "; ".join(
        f"{esc(k)} threshold {_num(v.get('value'))} ({esc(str(v.get('method')))}; control "
        f"{_num(v.get('control'))} from {esc(str(v.get('control_source')))}, valley {_num(v.get('valley'))})"
        for k, v in th.items()
    )
    matrix = r.compensation.get("matrix")
    spill = (
        "; ".join(
            f"{esc(c)}: " + ", ".join(f"{v:.4g}" for v in row)
            for c, row in zip(matrix["channels"], matrix["values"], strict=True)
        )
        if matrix
        else "none"
    )
    return (
        f'<h3 id="{esc(safe_stem(r.path))}">{esc(Path(r.path).name)} '
        f'<span class="v" style="background:{_VERDICT_COLOUR[r.verdict]}">{esc(r.verdict)}</span></h3>'
        f'<img alt="gates and Annexin V/PI density of {esc(Path(r.path).name)}" '
        f'src="data:image/png;base64,{image}">'
        f"<p class=small>{notes}.<br>Spillover ({esc(str(r.compensation.get('source')))}): "
        f"{spill}</p>"
        + (
            f"<table><tr><th>severity</th><th>code</th><th>what happened, likely cause, what to do"
            f"</th></tr>{rows}</table>"
            if rows
            else "<p>No flags.</p>"
        )
    )


def _html(results: list[CytometryResult], name: str, sections: list[str]) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(_SHORT[p])} %</th>" for p in POPULATIONS)
    rows = []
    for r in results:
        pops = "".join(
            f"<td>{_percent((r.populations or {}).get(p, {}).get('percent'))}</td>"
            for p in POPULATIONS
        )
        g = r.gates
        rows.append(
            f'<tr><td><a href="#{esc(safe_stem(r.path))}">{esc(Path(r.path).name)}</a></td>'
            f"<td>{esc(r.role)}</td><td>{esc(r.well or '')}</td>"
            f'<td style="color:{_VERDICT_COLOUR[r.verdict]};font-weight:bold">{esc(r.verdict)}</td>'
            f"<td>{g.get('events')}</td><td>{g.get('cells')}</td>{pops}"
            f"<td>{esc(str(r.compensation.get('source')))}</td>"
            f"<td>{esc(', '.join(f.code for f in r.flags))}</td></tr>"
        )
    return (
        page_head(f"{esc(name)} — platewatch cytometry")
        + f"""\
<h1>{esc(name)}: Annexin V / PI</h1>
<p class=small>Percentages are of the cells left after the saturation, time, debris and singlet
gates. Quadrants: live AnnV−/PI−, early apoptotic AnnV+/PI−, late apoptotic AnnV+/PI+,
necrotic AnnV−/PI+.</p>
<table><tr><th>file</th><th>role</th><th>well</th><th>verdict</th><th>events</th><th>cells</th>
{head}<th>compensation</th><th>flags</th></tr>{"".join(rows)}</table>
{"".join(sections)}
<p class=small>platewatch</p>
</body></html>
"""
    )
