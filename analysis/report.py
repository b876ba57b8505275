"""The plate report: a PNG figure and a self-contained HTML page.

The figure has the plate heatmap (raw OD, flagged wells outlined by severity, controls
marked) and one panel per cell line with the measured viabilities, the fitted curves and
their 95 % confidence bands. The HTML page embeds the PNG and adds the verdict, the curve
table and the flag table. The only I/O in ``analysis/``: it writes where it is told.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from analysis.assay import PlateResult
from analysis.model import safe_stem
from datamodel import parse_well, row_label

_SEVERITY_COLOUR = {"critical": "#d62728", "warning": "#ff7f0e", "info": "#1f77b4"}
_VERDICT_COLOUR = {"pass": "#2ca02c", "warn": "#ff7f0e", "fail": "#d62728"}
_ROLE_MARK = {"blank": "B", "untreated": "U", "positive_control": "+", "empty": "·"}


def render_figure(result: PlateResult, title: str) -> Figure:
    lines = list(dict.fromkeys(c.cell_line for c in result.curves)) or [None]
    fig = Figure(figsize=(6.5 + 4.2 * len(lines), 5.2), dpi=110)
    grid = fig.add_gridspec(1, 1 + len(lines), width_ratios=[1.5] + [1.0] * len(lines))
    _heatmap(fig, fig.add_subplot(grid[0, 0]), result)
    for k, line in enumerate(lines):
        _curves(fig.add_subplot(grid[0, 1 + k]), result, line)
    colour = _VERDICT_COLOUR[result.verdict]
    fig.suptitle(
        f"{title} — {result.verdict.upper()}", color=colour, fontsize=13, fontweight="bold"
    )
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


def _heatmap(fig: Figure, ax: Axes, result: PlateResult) -> None:
    plate = result.plate
    rows, cols = plate.shape
    values = np.where(plate.status == "ok", plate.primary.values, np.nan).astype(float)
    image = ax.imshow(values, cmap="viridis", aspect="equal")
    fig.colorbar(image, ax=ax, fraction=0.035, pad=0.02, label=f"OD {plate.primary.label}")
    ax.set_xticks(range(cols), [str(c + 1) for c in range(cols)], fontsize=7)
    ax.set_yticks(range(rows), [row_label(r) for r in range(rows)], fontsize=7)
    ax.tick_params(length=0)
    ax.set_title("plate (flagged wells outlined)", fontsize=10)
    for well, spec in plate.layout.wells.items():
        mark = _ROLE_MARK.get(spec.role)
        if mark:
            r, c = parse_well(well)
            ax.text(c, r, mark, ha="center", va="center", fontsize=7, color="white")
    for r, c in zip(*np.nonzero(plate.status != "ok"), strict=True):
        ax.text(c, r, "×", ha="center", va="center", fontsize=11, color="#d62728")
    outlined: dict[str, str] = {}
    order = {"info": 0, "warning": 1, "critical": 2}
    for flag in result.flags:
        if flag.severity == "info" or len(flag.wells) > rows * cols // 2:
            continue  # plate-wide flags would outline everything
        for well in flag.wells:
            if order[flag.severity] >= order.get(outlined.get(well, "info"), 0):
                outlined[well] = flag.severity
    for well, severity in outlined.items():
        r, c = parse_well(well)
        ax.add_patch(
            Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, lw=1.8, ec=_SEVERITY_COLOUR[severity])
        )


def _curves(ax: Axes, result: PlateResult, line: str | None) -> None:
    curves = [c for c in result.curves if c.cell_line == line]
    ax.set_title(f"{line or 'all wells'}", fontsize=10)
    ax.set_xscale("log")
    ax.set_ylabel("viability, % of untreated")
    ax.axhline(100, color="0.8", lw=0.8)
    ax.axhline(50, color="0.8", lw=0.8, ls=":")
    colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, curve in enumerate(curves):
        fit, colour = curve.fit, colours[k % len(colours)]
        pos = curve.doses > 0
        if not pos.any():
            continue
        lo, hi = float(curve.doses[pos].min()), float(curve.doses[pos].max())
        zero_x = lo / 4  # untreated wells drawn at a quarter of the lowest dose
        ax.scatter(curve.doses[pos], curve.responses[pos], s=14, color=colour, alpha=0.8)
        ax.scatter(
            np.full((~pos).sum(), zero_x),
            curve.responses[~pos],
            s=14,
            color=colour,
            marker="s",
            alpha=0.8,
        )
        label = f"{curve.compound or 'curve'}: IC50 "
        label += (
            f"{fit.ic50_qualifier if fit.ic50_qualifier != '=' else ''}{fit.ic50:.3g}"
            if fit.ic50
            else "n/a"
        )
        label += f" {curve.unit}" if curve.unit else ""
        if fit.converged:
            xs = np.geomspace(lo / 2, hi * 2, 200)
            low, high = fit.band(xs)
            ax.plot(xs, fit.predict(xs), color=colour, lw=1.6, label=label)
            ax.fill_between(xs, low, high, color=colour, alpha=0.18, lw=0)
            if fit.ic50_qualifier == "=" and math.isfinite(fit.e):
                ax.axvline(fit.e, color=colour, lw=0.8, ls="--")
        else:
            ax.plot([], [], color=colour, label=label + " (no fit)")
        ax.annotate(
            "untr.",
            (zero_x, 0),
            xycoords=("data", "axes fraction"),
            fontsize=7,
            ha="center",
            va="bottom",
        )
    unit = next((c.unit for c in curves if c.unit), None)
    ax.set_xlabel(f"concentration{f' ({unit})' if unit else ''}")
    ax.legend(fontsize=7, loc="upper right")
    ax.set_ylim(min(-10.0, ax.get_ylim()[0]), max(130.0, ax.get_ylim()[1]))


def write_report(
    result: PlateResult, out_dir: str | Path, name: str, source: str = ""
) -> dict[str, str]:
    """Write ``<name>.png`` and ``<name>.html`` into ``out_dir``; returns their paths."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stem = safe_stem(name)
    png = folder / f"{stem}.png"
    page = folder / f"{stem}.html"
    fig = render_figure(result, name)
    fig.savefig(png)
    page.write_text(_html(result, name, source, png.read_bytes()), encoding="utf-8")
    return {"png": str(png), "html": str(page)}


def _num(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:.{digits}g}"


def _html(result: PlateResult, name: str, source: str, png: bytes) -> str:
    esc = html.escape
    colour = _VERDICT_COLOUR[result.verdict]
    curve_rows = []
    for c in result.curves:
        f = c.fit
        ci = f"{_num(f.ic50_ci[0])} – {_num(f.ic50_ci[1])}" if f.ic50_ci else "—"
        ic50 = f"{'' if f.ic50_qualifier == '=' else esc(f.ic50_qualifier)}{_num(f.ic50)}"
        absolute = (
            f"{'' if f.absolute_ic50_qualifier in ('=', None) else esc(str(f.absolute_ic50_qualifier))}"
            f"{_num(f.absolute_ic50)}"
            if f.absolute_ic50 is not None
            else "not reached"
        )
        expected = (
            f"{_num(c.expected.low)} – {'∞' if c.expected.resistant else _num(c.expected.high)}"
            if c.expected
            else "—"
        )
        curve_rows.append(
            "<tr>"
            + "".join(
                f"<td>{v}</td>"
                for v in (
                    esc(c.compound or ""),
                    esc(c.cell_line or ""),
                    ic50,
                    ci,
                    absolute,
                    esc(c.unit or ""),
                    _num(f.b),
                    _num(f.max_effect * 100 if math.isfinite(f.max_effect) else None),
                    esc(f.response),
                    expected,
                    _num(f.no_effect_p),
                )
            )
            + "</tr>"
        )
    flag_rows = [
        f'<tr><td style="color:{_SEVERITY_COLOUR[fl.severity]};font-weight:bold">{esc(fl.severity)}</td>'
        f"<td><code>{esc(fl.code)}</code></td><td>{esc(fl.message)}</td>"
        f"<td>{esc(', '.join(fl.wells[:24]))}{' …' if len(fl.wells) > 24 else ''}</td></tr>"
        for fl in result.flags
    ]
    image = base64.b64encode(png).decode("ascii")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(name)} — platewatch</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }}
table {{ border-collapse: collapse; margin: 0.8rem 0; font-size: 0.9rem; }}
th, td {{ border: 1px solid #ccc; padding: 0.3rem 0.5rem; text-align: left; vertical-align: top; }}
th {{ background: #f3f3f3; }}
.verdict {{ color: white; background: {colour}; padding: 0.2rem 0.6rem; border-radius: 4px; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>{esc(name)} <span class="verdict">{esc(result.verdict.upper())}</span></h1>
<p>Source: <code>{esc(source)}</code> · read {esc(str(result.qc.get("read")))}
{f"minus reference {esc(str(result.qc.get('reference_read')))}" if result.qc.get("reference_read") else ""}</p>
<img alt="plate heatmap and dose-response curves" src="data:image/png;base64,{image}">
<h2>Flags</h2>
{"<p>No flags.</p>" if not flag_rows else "<table><tr><th>severity</th><th>code</th><th>what happened, likely cause, what to do</th><th>wells</th></tr>" + "".join(flag_rows) + "</table>"}
<h2>Curves (LL.4)</h2>
<table><tr><th>compound</th><th>cell line</th><th>IC50 (relative)</th><th>95 % CI</th>
<th>absolute IC50</th><th>unit</th><th>slope b</th><th>max effect %</th><th>response</th>
<th>expected IC50</th><th>F-test p</th></tr>{"".join(curve_rows)}</table>
<p style="color:#777;font-size:0.8rem">platewatch · IC50s beyond the tested range are reported
as &gt;max / &lt;min, never extrapolated.</p>
</body></html>
"""
