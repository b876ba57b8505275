"""The plate report: a PNG figure and a self-contained HTML page, drawn from a stored result.

It is rendered from the result's JSON body (``PlateResult.to_dict``), never from a second
analysis, so the report shows exactly what was stored and alerted. The figure has the
plate heatmap (raw signal, flagged wells outlined by severity, controls marked) and one
panel per cell line with the measured viabilities and each curve as what was concluded:
an LL.4 fit with its 95 % band, a bounded fit with its IC50 bracket shaded, or — for a
curve without a dose response — the flat line it is. Axes follow the data; bands are
clipped to them. The only I/O in ``analysis/``: it writes where it is told.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from analysis.doseresponse import band_of, ll4
from analysis.model import number_text as _num
from analysis.model import page_head, write_report_files
from datamodel import parse_well, row_label

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_SEVERITY_COLOUR = {"critical": "#d62728", "warning": "#ff7f0e", "info": "#1f77b4"}
_VERDICT_COLOUR = {"pass": "#2ca02c", "warn": "#ff7f0e", "fail": "#d62728"}
_ROLE_MARK = {"blank": "B", "untreated": "U", "positive_control": "+", "empty": "·"}
_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


def render_figure(body: dict[str, Any], title: str) -> Figure:
    from matplotlib.figure import Figure  # only reports pay for matplotlib

    curves = body.get("curves") or []
    lines = list(dict.fromkeys(c["group"]["cell_line"] for c in curves)) or [None]
    fig = Figure(figsize=(6.5 + 4.2 * len(lines), 5.2), dpi=110)
    grid = fig.add_gridspec(1, 1 + len(lines), width_ratios=[1.5] + [1.0] * len(lines))
    _heatmap(fig, fig.add_subplot(grid[0, 0]), body)
    for k, line in enumerate(lines):
        _curves(
            fig.add_subplot(grid[0, 1 + k]),
            [c for c in curves if c["group"]["cell_line"] == line],
            line,
        )
    verdict = str(body.get("verdict", "pass"))
    fig.suptitle(
        f"{title} — {verdict.upper()}",
        color=_VERDICT_COLOUR.get(verdict, "#222"),
        fontsize=13,
        fontweight="bold",
    )
    # Fixed margins: tight_layout measured every tick label in an extra draw (~40 % of a
    # report's time, and reports are most of a re-analysis of the archive).
    width = fig.get_figwidth()
    fig.subplots_adjust(
        left=0.55 / width,
        right=1 - 0.2 / width,
        bottom=0.11,
        top=0.86,
        wspace=0.45,
    )
    return fig


def _heatmap(fig: Figure, ax: Axes, body: dict[str, Any]) -> None:
    plate = body["grid"]
    rows, cols = int(plate["rows"]), int(plate["cols"])
    values = np.array(
        [[np.nan if v is None else float(v) for v in row] for row in plate["values"]], dtype=float
    )
    status = np.array(plate["status"], dtype=object)
    finite = values[np.isfinite(values)]
    image = ax.imshow(
        values,
        cmap="viridis",
        aspect="equal",
        vmin=float(finite.min()) if finite.size else 0.0,
        vmax=float(finite.max()) if finite.size else 1.0,
    )
    unit = plate.get("unit") or ""
    fig.colorbar(
        image, ax=ax, fraction=0.035, pad=0.02, label=f"{unit} {plate.get('read', '')}".strip()
    )
    step = 1 if cols <= 12 else 2
    ax.set_xticks(range(0, cols, step), [str(c + 1) for c in range(0, cols, step)], fontsize=7)
    ax.set_yticks(range(rows), [row_label(r) for r in range(rows)], fontsize=7)
    ax.tick_params(length=0)
    ax.set_title("plate (flagged wells outlined)", fontsize=10)
    small = 7 if cols <= 12 else 4
    for well, role in (plate.get("roles") or {}).items():
        mark = _ROLE_MARK.get(role)
        if mark:
            r, c = parse_well(well)
            ax.text(c, r, mark, ha="center", va="center", fontsize=small, color="white")
    for r, c in zip(*np.nonzero(status != "ok"), strict=True):
        ax.text(c, r, "×", ha="center", va="center", fontsize=small + 4, color="#d62728")
    outlined: dict[str, str] = {}
    order = {"info": 0, "warning": 1, "critical": 2}
    from matplotlib.patches import Rectangle

    for flag in body.get("flags") or []:
        wells = flag.get("wells") or []
        if flag["severity"] == "info" or len(wells) > rows * cols // 2:
            continue  # plate-wide flags would outline everything
        for well in wells:
            if order[flag["severity"]] >= order.get(outlined.get(well, "info"), 0):
                outlined[well] = flag["severity"]
    for well, severity in outlined.items():
        r, c = parse_well(well)
        ax.add_patch(
            Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, lw=1.8, ec=_SEVERITY_COLOUR[severity])
        )


def _params(curve: dict[str, Any]) -> tuple[float, float, float, float] | None:
    values = [curve.get(k) for k in "bcde"]
    numbers = [float(v) for v in values if isinstance(v, int | float)]
    if len(numbers) != 4 or not all(math.isfinite(v) for v in numbers) or numbers[3] <= 0:
        return None
    b, c, d, e = numbers
    return b, c, d, e


def _curves(ax: Axes, curves: list[dict[str, Any]], line: str | None) -> None:
    ax.set_title(f"{line or 'all wells'}", fontsize=10)
    ax.set_xscale("log")
    ax.set_ylabel("viability, % of untreated")
    ax.axhline(100, color="0.8", lw=0.8)
    ax.axhline(50, color="0.8", lw=0.8, ls=":")
    seen: list[float] = [0.0, 100.0]
    for k, curve in enumerate(curves):
        colour = _COLOURS[k % len(_COLOURS)]
        doses = np.asarray(curve.get("doses") or [], dtype=float)
        responses = np.asarray(curve.get("responses") or [], dtype=float)
        pos = doses > 0
        if not pos.any():
            continue
        lo, hi = float(doses[pos].min()), float(doses[pos].max())
        zero_x = lo / 4  # untreated wells drawn at a quarter of the lowest dose
        ax.scatter(doses[pos], responses[pos], s=14, color=colour, alpha=0.8)
        ax.scatter(
            np.full(int((~pos).sum()), zero_x),
            responses[~pos],
            s=14,
            color=colour,
            marker="s",
            alpha=0.8,
        )
        seen += responses.tolist()
        xs = np.geomspace(lo / 2, hi * 2, 200)
        label = f"{curve['group'].get('compound') or 'curve'}: {_ic50_text(curve)}"
        params = _params(curve)
        if curve.get("response") == "none" or params is None or not curve.get("converged"):
            level = float(np.mean(responses)) if len(responses) else 100.0
            ax.plot(
                xs, np.full_like(xs, level), color=colour, lw=1.4, ls="--", label=label + " (flat)"
            )
        else:
            fitted = ll4(xs, *params)
            ax.plot(xs, fitted, color=colour, lw=1.6, label=label)
            seen += [float(fitted.min()), float(fitted.max())]
            method = curve.get("ic50_ci_method")
            if method == "bracket" and curve.get("ic50_ci"):
                a, b = curve["ic50_ci"]
                ax.axvspan(a, b, color=colour, alpha=0.12, lw=0)  # the IC50 is only bracketed
            elif curve.get("vcov") is not None and curve.get("df", 0) > 0:
                low, high = band_of(
                    params, np.asarray(curve["vcov"], dtype=float), int(curve["df"]), xs
                )
                ax.fill_between(xs, low, high, color=colour, alpha=0.18, lw=0)
            if curve.get("ic50_qualifier") == "=" and curve.get("ic50"):
                ax.axvline(float(curve["ic50"]), color=colour, lw=0.8, ls="--")
        ax.annotate(
            "untr.",
            (zero_x, 0),
            xycoords=("data", "axes fraction"),
            fontsize=7,
            ha="center",
            va="bottom",
        )
    unit = next((c.get("unit") for c in curves if c.get("unit")), None)
    ax.set_xlabel(f"concentration{f' ({unit})' if unit else ''}")
    if curves:
        ax.legend(fontsize=7, loc="best")
    finite = [v for v in seen if math.isfinite(v)]
    bottom, top = min(finite), max(finite)
    pad = 0.08 * max(top - bottom, 10.0)
    ax.set_ylim(bottom - pad, top + pad)  # the data decide; bands are clipped to this


def _ic50_text(curve: dict[str, Any]) -> str:
    if curve.get("response") == "none":
        return "no response"
    value = curve.get("ic50")
    if value is None:
        return "IC50 n/a"
    q = curve.get("ic50_qualifier") or "="
    unit = f" {curve['unit']}" if curve.get("unit") else ""
    return f"IC50 {'' if q == '=' else q}{value:.3g}{unit}"


def write_report(
    body: dict[str, Any], out_dir: str | Path, name: str, source: str = ""
) -> dict[str, str]:
    """Write ``<name>.png`` and ``<name>.html`` into ``out_dir``; returns their paths."""
    fig = render_figure(body, name)
    return write_report_files(fig, out_dir, name, lambda png: _html(body, name, source, png))


def _curve_row(c: dict[str, Any]) -> str:
    esc = html.escape
    flat = c.get("response") == "none"
    if flat:
        ic50, ci, absolute, slope = "none (flat)", "—", "not reached", "—"
    else:
        q = c.get("ic50_qualifier") or "="
        ic50 = f"{'' if q == '=' else esc(q)}{_num(c.get('ic50'))}"
        ci = (
            f"{_num(c['ic50_ci'][0])} – {_num(c['ic50_ci'][1])} ({esc(str(c.get('ic50_ci_method')))})"
            if c.get("ic50_ci")
            else "—"
        )
        aq = c.get("absolute_ic50_qualifier")
        absolute = (
            f"{'' if aq in ('=', None) else esc(str(aq))}{_num(c.get('absolute_ic50'))}"
            if c.get("absolute_ic50") is not None
            else "not reached"
        )
        slope = "—" if c.get("slope_at_bound") else _num(c.get("b"))
    expected = c.get("expected_ic50")
    exp_text = (
        f"{_num(expected['low'])} – {'∞' if expected.get('high') is None else _num(expected['high'])}"
        if expected
        else "—"
    )
    effect = c.get("max_effect")
    cells = (
        esc(c["group"].get("compound") or ""),
        esc(c["group"].get("cell_line") or ""),
        ic50,
        ci,
        absolute,
        esc(c.get("unit") or ""),
        slope,
        "—" if flat or effect is None else _num(100 * float(effect)),
        esc(str(c.get("response"))),
        exp_text,
        _num(c.get("no_effect_p")),
    )
    return "<tr>" + "".join(f"<td>{v}</td>" for v in cells) + "</tr>"


def _html(body: dict[str, Any], name: str, source: str, png: bytes) -> str:
    esc = html.escape
    verdict = str(body.get("verdict", "pass"))
    colour = _VERDICT_COLOUR.get(verdict, "#222")
    qc = body.get("qc") or {}
    flag_rows = [
        f'<tr><td style="color:{_SEVERITY_COLOUR[fl["severity"]]};font-weight:bold">{esc(fl["severity"])}</td>'
        f"<td><code>{esc(fl['code'])}</code></td><td>{esc(fl['message'])}</td>"
        f"<td>{esc(', '.join(fl['wells'][:24]))}{' …' if len(fl['wells']) > 24 else ''}</td></tr>"
        for fl in body.get("flags") or []
    ]
    curve_rows = [_curve_row(c) for c in body.get("curves") or []]
    image = base64.b64encode(png).decode("ascii")
    reference = (
        f" minus reference {esc(str(qc.get('reference_read')))}" if qc.get("reference_read") else ""
    )
    layout = f" · layout <code>{esc(str(body.get('layout')))}</code>" if body.get("layout") else ""
    return (
        page_head(f"{esc(name)} — platewatch")
        + f"""\
<h1>{esc(name)} <span class="verdict" style="background: {colour}">{
            esc(verdict.upper())
        }</span></h1>
<p>Source: <code>{esc(source)}</code> · read {esc(str(qc.get("read")))}{reference}{layout}</p>
<img alt="plate heatmap and dose-response curves" src="data:image/png;base64,{image}">
<h2>Flags</h2>
{
            "<p>No flags.</p>"
            if not flag_rows
            else "<table><tr><th>severity</th><th>code</th><th>what happened, likely cause, what to do</th><th>wells</th></tr>"
            + "".join(flag_rows)
            + "</table>"
        }
<h2>Curves (LL.4)</h2>
{
            "<p>No dose-response curves in this layout.</p>"
            if not curve_rows
            else '''<table><tr><th>compound</th><th>cell line</th><th>IC50 (relative)</th><th>95 % CI</th>
<th>absolute IC50</th><th>unit</th><th>slope b</th><th>max effect %</th><th>response</th>
<th>expected IC50</th><th>F-test p</th></tr>'''
            + "".join(curve_rows)
            + "</table>"
        }
<p style="color:#777;font-size:0.8rem">platewatch · IC50s beyond the tested range are reported
as &gt;max / &lt;min, never extrapolated; curves without a dose response are drawn flat.</p>
</body></html>
"""
    )
