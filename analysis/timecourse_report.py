"""The timecourse report: a PNG figure and a self-contained HTML page, drawn from the stored
body of a timecourse analysis (``TimecourseResult.to_dict``), never from a re-analysis.

Panels, all against hours since the start: the untreated wells' growth per cell line (log
scale) with the exponential phase shaded and its fitted line; the blank level at the
measurement and the reference wavelength; the edge ring ratio (outer ring / interior) with
its trend and threshold; the IC50 of each curve with its 95 % CI (censored IC50s as
triangles at the tested bound, never extrapolated); GR50 and GRmax per curve. Missed
planned reads are marked on every time axis (red dotted lines) and listed on the page.
The only I/O: it writes where it is told.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from analysis.model import number_text as _num
from analysis.model import page_head, write_report_files

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_SEVERITY_COLOUR = {"critical": "#d62728", "warning": "#ff7f0e", "info": "#1f77b4"}
_VERDICT_COLOUR = {"pass": "#2ca02c", "warn": "#ff7f0e", "fail": "#d62728"}
_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf")
_MISSED = "#d62728"


def _floats(values: Any) -> np.ndarray[Any, np.dtype[np.float64]]:
    return np.array([math.nan if v is None else float(v) for v in values or []], dtype=float)


def _flagged(body: dict[str, Any], code: str) -> bool:
    return any(f.get("code") == code for f in body.get("flags") or [])


def _mark_missed(ax: Axes, missed: list[dict[str, Any]], label: bool = False) -> None:
    for k, m in enumerate(missed):
        if m.get("due_h") is None:
            continue
        ax.axvline(
            float(m["due_h"]),
            color=_MISSED,
            lw=0.9,
            ls=":",
            alpha=0.8,
            label="missed read" if label and k == 0 else None,
        )


def _legend(ax: Axes) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best")


def _title(ax: Axes, text: str, flagged: bool) -> None:
    ax.set_title(
        text + (" — flagged" if flagged else ""),
        fontsize=10,
        color=_SEVERITY_COLOUR["warning"] if flagged else "#222",
    )


def _growth(ax: Axes, body: dict[str, Any], missed: list[dict[str, Any]]) -> None:
    summary = body.get("summary") or {}
    growth = summary.get("growth") or {}
    t = _floats(summary.get("t_h"))
    _title(ax, "untreated growth", _flagged(body, "growth_stalled"))
    plotted = False
    for k, (line, values) in enumerate((growth.get("lines") or {}).items()):
        y = _floats(values)
        keep = np.isfinite(y) & (y > 0)
        if keep.any():
            ax.plot(
                t[keep],
                y[keep],
                "o-",
                ms=3,
                lw=1,
                color=_COLOURS[k % len(_COLOURS)],
                label=str(line),
            )
            plotted = True
    pooled = _floats(growth.get("series"))
    keep = np.isfinite(pooled) & (pooled > 0)
    if keep.any():
        ax.plot(t[keep], pooled[keep], "-", lw=2, color="0.25", alpha=0.6, label="all untreated")
        plotted = True
    window = growth.get("window_h")
    rate, intercept = growth.get("rate_per_h"), growth.get("log_intercept")
    if window and rate is not None and intercept is not None:
        ax.axvspan(window[0], window[1], color="#2ca02c", alpha=0.10, lw=0)
        xs = np.linspace(window[0], window[1], 20)
        td = growth.get("doubling_time_h")
        ci = growth.get("doubling_time_ci") or [None, None]
        band = f" [{ci[0]:.3g}–{ci[1]:.3g}]" if ci[0] is not None and ci[1] is not None else ""
        label = f"exp. phase: Td {td:.3g} h{band}" if td is not None else "exp. phase"
        ax.plot(xs, np.exp(intercept + rate * xs), "--", color="#2ca02c", lw=1.6, label=label)
    since = growth.get("stalled_since_h")
    if since is not None:
        ax.axvline(
            float(since), color=_SEVERITY_COLOUR["warning"], lw=1.2, label=f"stalled ~{since:.3g} h"
        )
    if plotted:
        ax.set_yscale("log")
    unit = summary.get("unit") or ""
    ax.set_ylabel(f"blank-corrected signal ({unit})".replace(" ()", ""))
    _mark_missed(ax, missed, label=True)
    _legend(ax)


def _trend_line(ax: Axes, trend: dict[str, Any] | None, colour: str) -> None:
    if not trend or trend.get("fitted_first") is None or trend.get("fitted_last") is None:
        return
    t0, t1 = trend["window_h"]
    ax.plot(
        [t0, t1],
        [trend["fitted_first"], trend["fitted_last"]],
        "--",
        color=colour,
        lw=1.2,
        label="trend (Theil–Sen)",
    )


def _blank(ax: Axes, body: dict[str, Any], missed: list[dict[str, Any]]) -> None:
    summary = body.get("summary") or {}
    blank = summary.get("blank") or {}
    t = _floats(summary.get("t_h"))
    _title(ax, "blank wells", _flagged(body, "blank_rising"))
    raw = _floats(blank.get("series"))
    ref = _floats(blank.get("reference_series"))
    if np.isfinite(raw).any():
        ax.plot(
            t,
            raw,
            "o-",
            ms=3,
            lw=1,
            color=_COLOURS[0],
            label=str(summary.get("read") or "measurement"),
        )
    if np.isfinite(ref).any():
        ax.plot(
            t,
            ref,
            "s-",
            ms=3,
            lw=1,
            color=_COLOURS[1],
            label=f"{summary.get('reference_read')} (reference)",
        )
    _trend_line(ax, blank.get("trend"), _COLOURS[0])
    ax.set_ylabel(f"mean blank ({summary.get('unit') or ''})".replace(" ()", ""))
    _mark_missed(ax, missed)
    _legend(ax)


def _edge(ax: Axes, body: dict[str, Any], missed: list[dict[str, Any]]) -> None:
    edge = (body.get("summary") or {}).get("edge") or {}
    _title(ax, "edge vs interior", _flagged(body, "edge_drift"))
    t = _floats(edge.get("t_h"))
    ratio = _floats(edge.get("series"))
    if np.isfinite(ratio).any():
        ax.plot(
            t, ratio, "o-", ms=3, lw=1, color=_COLOURS[3], label="ring ratio (outer / interior)"
        )
    threshold = edge.get("threshold")
    if threshold is not None:
        ax.axhline(
            float(threshold),
            color=_SEVERITY_COLOUR["warning"],
            lw=0.9,
            ls="--",
            label=f"drift threshold {threshold:g}",
        )
    ax.axhline(1.0, color="0.8", lw=0.8)
    _trend_line(ax, edge.get("trend"), _COLOURS[3])
    if edge.get("note"):
        ax.text(
            0.5,
            0.5,
            edge["note"],
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=7,
            wrap=True,
        )
    ax.set_ylabel("ring ratio")
    _mark_missed(ax, missed)
    _legend(ax)


def _censored(ax: Axes, t: float, value: float, qualifier: str, colour: str) -> None:
    ax.scatter(
        [t],
        [value],
        marker="^" if qualifier == ">" else "v",
        s=22,
        facecolors="none",
        edgecolors=colour,
    )


def _ic50(ax: Axes, body: dict[str, Any], missed: list[dict[str, Any]]) -> None:
    curves = (body.get("summary") or {}).get("ic50") or []
    _title(ax, "IC50 over time (95 % CI)", False)
    drawn = False
    for k, curve in enumerate(curves):
        colour = _COLOURS[k % len(_COLOURS)]
        label = " × ".join(str(p) for p in (curve.get("compound"), curve.get("cell_line")) if p)
        xs, ys, lo, hi = [], [], [], []
        for p in curve.get("points") or []:
            value, q = p.get("ic50"), p.get("ic50_qualifier")
            if value is None or value <= 0:
                continue
            if q == "=" and p.get("response") != "none":
                ci = p.get("ic50_ci") or [value, value]
                xs.append(p["t_h"])
                ys.append(value)
                lo.append(value - (ci[0] if ci[0] is not None else value))
                hi.append((ci[1] if ci[1] is not None else value) - value)
            else:
                _censored(ax, p["t_h"], value, ">" if q != "<" else "<", colour)
            drawn = True
        if xs:
            ax.errorbar(
                xs, ys, yerr=[lo, hi], fmt="o-", ms=3, lw=1, capsize=2, color=colour, label=label
            )
        expected = curve.get("expected_ic50")
        if expected and expected.get("low"):
            ax.axhspan(
                expected["low"],
                expected.get("high") or expected["low"] * 1e3,
                color=colour,
                alpha=0.08,
                lw=0,
            )
    if drawn:
        ax.set_yscale("log")
    unit = next((c.get("unit") for c in curves if c.get("unit")), None)
    ax.set_ylabel(f"IC50{f' ({unit})' if unit else ''}")
    ax.text(
        0.01, 0.01, "△ ▽ beyond the tested doses", transform=ax.transAxes, fontsize=6, color="0.4"
    )
    _mark_missed(ax, missed)
    if curves:
        _legend(ax)


def _gr(ax50: Axes, axmax: Axes, body: dict[str, Any], missed: list[dict[str, Any]]) -> None:
    gr = (body.get("summary") or {}).get("gr") or {}
    source = gr.get("source")
    suffix = {
        "time_zero": "from the time-zero read",
        "doubling_time": "from the known doubling time",
    }.get(source or "", "not computed")
    _title(ax50, f"GR50 ({suffix})", False)
    _title(axmax, "GRmax", False)
    drawn = False
    for k, curve in enumerate(gr.get("curves") or []):
        colour = _COLOURS[k % len(_COLOURS)]
        label = " × ".join(str(p) for p in (curve.get("compound"), curve.get("cell_line")) if p)
        pts = curve.get("points") or []
        exact = [
            (p["t_h"], p["gr50"]) for p in pts if p.get("gr50_qualifier") == "=" and p.get("gr50")
        ]
        for p in pts:
            if p.get("gr50_qualifier") in (">", "<") and p.get("gr50"):
                _censored(ax50, p["t_h"], p["gr50"], p["gr50_qualifier"], colour)
                drawn = True
        if exact:
            ax50.plot(
                [x for x, _ in exact],
                [y for _, y in exact],
                "o-",
                ms=3,
                lw=1,
                color=colour,
                label=label,
            )
            drawn = True
        grmax = [(p["t_h"], p["gr_max"]) for p in pts if p.get("gr_max") is not None]
        if grmax:
            axmax.plot(
                [x for x, _ in grmax],
                [y for _, y in grmax],
                "o-",
                ms=3,
                lw=1,
                color=colour,
                label=label,
            )
    if drawn:
        ax50.set_yscale("log")
        _legend(ax50)
    if not gr.get("curves") and gr.get("note"):
        ax50.text(
            0.5,
            0.5,
            gr["note"],
            transform=ax50.transAxes,
            ha="center",
            va="center",
            fontsize=7,
            wrap=True,
        )
    for y, style in ((0.0, ":"), (1.0, "-"), (-1.0, "-")):
        axmax.axhline(y, color="0.8", lw=0.8, ls=style)
    axmax.set_ylim(-1.1, 1.1)
    axmax.set_ylabel("GR at the two highest doses (lowest mean)")
    ax50.set_ylabel("GR50")
    for ax in (ax50, axmax):
        _mark_missed(ax, missed)
    if gr.get("curves"):
        _legend(axmax)


def render_figure(body: dict[str, Any], title: str) -> Figure:
    from matplotlib.figure import Figure  # only reports pay for matplotlib

    fig = Figure(figsize=(15.5, 8.6), dpi=100)
    axes = fig.subplots(2, 3)
    missed = (body.get("summary") or {}).get("missed") or []
    _growth(axes[0, 0], body, missed)
    _blank(axes[0, 1], body, missed)
    _edge(axes[0, 2], body, missed)
    _ic50(axes[1, 0], body, missed)
    _gr(axes[1, 1], axes[1, 2], body, missed)
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    summary = body.get("summary") or {}
    hours = [float(v) for v in summary.get("t_h") or [] if v is not None]
    hours += [float(m["due_h"]) for m in missed if m.get("due_h") is not None]
    if summary.get("end_h") is not None:
        hours.append(float(summary["end_h"]))
    span = max(hours, default=1.0) or 1.0
    plain = FuncFormatter(lambda v, _pos: f"{v:.3g}")
    for ax in axes.ravel():
        ax.set_xlabel("hours since start")
        ax.set_xlim(-0.04 * span, 1.04 * span)
        if ax.get_yscale() == "log":
            ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(plain)
            ax.yaxis.set_minor_formatter(NullFormatter())
    verdict = str(body.get("verdict", "pass"))
    reads = (body.get("summary") or {}).get("reads", 0)
    fig.suptitle(
        f"{title} — {verdict.upper()} · {reads} reads, {len(missed)} missed",
        color=_VERDICT_COLOUR.get(verdict, "#222"),
        fontsize=13,
        fontweight="bold",
    )
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


def write_timecourse_report(
    body: dict[str, Any], out_dir: str | Path, name: str, source: str = ""
) -> dict[str, str]:
    """Write ``<name>.png`` and ``<name>.html`` into ``out_dir``; returns their paths."""
    fig = render_figure(body, name)
    return write_report_files(fig, out_dir, name, lambda png: _html(body, name, source, png))


def _ic50_text(p: dict[str, Any] | None) -> str:
    if not p:
        return "—"
    if p.get("response") == "none":
        return "no response"
    q = p.get("ic50_qualifier") or "="
    text = f"{'' if q == '=' else html.escape(q)}{_num(p.get('ic50'))}"
    ci = p.get("ic50_ci")
    if q == "=" and ci:
        text += f" [{_num(ci[0])} – {_num(ci[1])}]"
    return text


def _html(body: dict[str, Any], name: str, source: str, png: bytes) -> str:
    esc = html.escape
    summary = body.get("summary") or {}
    verdict = str(body.get("verdict", "pass"))
    colour = _VERDICT_COLOUR.get(verdict, "#222")
    growth = summary.get("growth") or {}
    ci = growth.get("doubling_time_ci") or [None, None]
    window = growth.get("window_h")
    recent = growth.get("recent") or {}
    latest = summary.get("latest") or {}
    facts = [
        ("reads", f"{summary.get('reads', 0)} done, {len(summary.get('missed') or [])} missed"),
        (
            "doubling time (untreated)",
            f"{_num(growth.get('doubling_time_h'))} h, 95 % CI {_num(ci[0])} – {_num(ci[1]) if ci[1] is not None else '∞'} h"
            + (
                f", hours {_num(window[0])}–{_num(window[1])} ({growth.get('points')} reads)"
                if window
                else ""
            )
            if growth.get("doubling_time_h") is not None
            else esc(growth.get("note") or "not measured"),
        ),
        (
            "recent growth",
            f"{_num(recent.get('rate_per_h'))} per h over hours {_num((recent.get('window_h') or [None])[0])}–{_num((recent.get('window_h') or [None, None])[1])}"
            if recent
            else "—",
        ),
        ("growth", f"<code>{esc(summary.get('sparkline') or '')}</code>"),
        (
            "latest read",
            f"hour {_num(latest.get('t_h'))}: blank {_num(latest.get('blank'))}, ring ratio {_num(latest.get('ring_ratio'))}, plate verdict {esc(str(latest.get('plate_verdict') or '—'))}",
        ),
        (
            "GR values",
            esc(
                {
                    "time_zero": "from the time-zero read",
                    "doubling_time": "from the known doubling time",
                }.get(
                    str((summary.get("gr") or {}).get("source")),
                    (summary.get("gr") or {}).get("note") or "not computed",
                )
            ),
        ),
    ]
    fact_rows = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in facts)
    flag_rows = "".join(
        f'<tr><td style="color:{_SEVERITY_COLOUR[f["severity"]]};font-weight:bold">{esc(f["severity"])}</td>'
        f"<td><code>{esc(f['code'])}</code></td><td>{esc(f['message'])}</td></tr>"
        for f in body.get("flags") or []
    )
    curve_rows = "".join(
        "<tr>"
        + f"<td>{esc(str(c.get('compound') or ''))}</td><td>{esc(str(c.get('cell_line') or ''))}</td>"
        + f"<td>{_ic50_text(c.get('latest'))} {esc(c.get('unit') or '')}</td>"
        + f"<td>{_num((c.get('trend') or {}).get('fold_per_day'))}</td>"
        + f"<td>{len(c.get('points') or [])}</td></tr>"
        for c in summary.get("ic50") or []
    )
    missed_rows = "".join(
        f"<tr><td>{m.get('index')}</td><td>{_num(m.get('due_h'))}</td><td>{esc(m.get('reason') or '')}</td></tr>"
        for m in summary.get("missed") or []
    )
    point_rows = "".join(
        f"<tr><td>{p.get('index')}</td><td>{_num(p.get('t_h'))}</td><td>{esc(str(p.get('id') or ''))}</td>"
        f"<td>{_num(p.get('untreated_all'))}</td><td>{_num(p.get('blank'))}</td><td>{_num(p.get('ring_ratio'))}</td>"
        f"<td>{esc(str(p.get('plate_verdict') or '—'))}</td><td>{esc(p.get('error') or '')}</td></tr>"
        for p in body.get("points") or []
    )
    image = base64.b64encode(png).decode("ascii")
    return (
        page_head(f"{esc(name)} — platewatch timecourse")
        + f"""\
<h1>{esc(name)} <span class="verdict" style="background: {colour}">{esc(verdict.upper())}</span></h1>
<p>Timecourse <code>{esc(str(body.get("id") or ""))}</code>{f" · source <code>{esc(source)}</code>" if source else ""} · read {esc(str(summary.get("read")))}{f" minus reference {esc(str(summary.get('reference_read')))}" if summary.get("reference_read") else ""}</p>
<table>{fact_rows}</table>
<img alt="timecourse: growth, blank, edge, IC50 and GR over time" src="data:image/png;base64,{image}">
<h2>Flags</h2>
{"<p>No flags.</p>" if not flag_rows else "<table><tr><th>severity</th><th>code</th><th>what happened, likely cause, what to do</th></tr>" + flag_rows + "</table>"}
<h2>IC50 over time</h2>
{"<p>No dose-response curves fitted.</p>" if not curve_rows else "<table><tr><th>compound</th><th>cell line</th><th>latest IC50 [95 % CI]</th><th>fold change per day</th><th>reads</th></tr>" + curve_rows + "</table>"}
<h2>Missed reads</h2>
{"<p>None.</p>" if not missed_rows else "<table><tr><th>index</th><th>due (h)</th><th>reason</th></tr>" + missed_rows + "</table>"}
<h2>Reads</h2>
<table><tr><th>#</th><th>hour</th><th>id</th><th>untreated</th><th>blank</th><th>ring ratio</th><th>plate verdict</th><th>error</th></tr>{point_rows}</table>
<p style="color:#777;font-size:0.8rem">platewatch · drawn from the stored timecourse analysis; IC50s and GR50s beyond the tested doses are shown as △/▽ at the bound, never extrapolated.</p>
</body></html>
"""
    )
