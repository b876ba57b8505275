"""Small server-rendered figures for the dashboard: SVG line charts and an HTML plate map.

Drawn here, in a few lines of SVG, so that pages stay fast (no plotting library on the
request path) and work on a closed lab network (no CDN, no script needed to see them).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from datamodel import row_label

# viridis at 9 stops (matplotlib's), interpolated linearly
_VIRIDIS = (
    (68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141),
    (39, 173, 129), (92, 200, 99), (170, 220, 50), (253, 231, 37),
)  # fmt: skip
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def viridis(fraction: float) -> str:
    f = min(max(fraction, 0.0), 1.0) * (len(_VIRIDIS) - 1)
    i = min(int(f), len(_VIRIDIS) - 2)
    t = f - i
    r, g, b = (round(a + (b_ - a) * t) for a, b_ in zip(_VIRIDIS[i], _VIRIDIS[i + 1], strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


@dataclass
class Series:
    label: str
    points: list[tuple[float, float]]  # (x, y); y > 0 when the axis is logarithmic
    colour: str = PALETTE[0]
    low: list[float] | None = None  # a band around the points (CI), same length
    high: list[float] | None = None
    markers: list[str] = field(default_factory=list)  # per point: "" or a title (e.g. "missed")


def line_chart(
    series: Sequence[Series],
    *,
    width: int = 640,
    height: int = 240,
    log_y: bool = False,
    y_band: tuple[float, float] | None = None,  # a shaded reference range (expected IC50)
    x_label: str = "",
    y_label: str = "",
    x_is_time: bool = False,
    vlines: Sequence[tuple[float, str]] = (),
) -> str:
    """An SVG line chart; empty series give a chart that says so."""
    pad_l, pad_r, pad_t, pad_b = 56, 12, 12, 34
    xs = [x for s in series for x, _ in s.points]
    ys = [y for s in series for _, y in s.points if (y > 0 or not log_y) and math.isfinite(y)]
    ys += [
        v
        for s in series
        for v in (s.low or []) + (s.high or [])
        if (v > 0 or not log_y) and math.isfinite(v)
    ]
    if y_band is not None:
        ys += [v for v in y_band if (v > 0 or not log_y) and math.isfinite(v)]
    if not xs or not ys:
        return (
            f'<svg class="chart" viewBox="0 0 {width} {height}" role="img"><text x="{width / 2}" '
            f'y="{height / 2}" text-anchor="middle" class="muted">no data yet</text></svg>'
        )

    def ty(v: float) -> float:
        return math.log10(v) if log_y else v

    x0, x1 = min(xs), max(xs)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    y0, y1 = min(ty(v) for v in ys), max(ty(v) for v in ys)
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    span = y1 - y0
    y0, y1 = y0 - 0.08 * span, y1 + 0.08 * span

    def px(x: float) -> float:
        return pad_l + (x - x0) / (x1 - x0) * (width - pad_l - pad_r)

    def py(v: float) -> float:
        return height - pad_b - (ty(v) - y0) / (y1 - y0) * (height - pad_t - pad_b)

    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(y_label)}">'
    ]
    if y_band is not None:
        lo, hi = y_band
        top = py(hi) if hi and math.isfinite(hi) and (hi > 0 or not log_y) else pad_t
        bottom = py(lo) if lo and (lo > 0 or not log_y) else height - pad_b
        out.append(
            f'<rect x="{pad_l}" y="{min(top, bottom):.1f}" width="{width - pad_l - pad_r}" '
            f'height="{abs(bottom - top):.1f}" class="band"><title>expected range</title></rect>'
        )
    for k in range(5):  # y grid and ticks
        v = y0 + (y1 - y0) * k / 4
        label = f"{10**v:.3g}" if log_y else f"{v:.3g}"
        y = height - pad_b - (v - y0) / (y1 - y0) * (height - pad_t - pad_b)
        out.append(
            f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
        )
        out.append(
            f'<text x="{pad_l - 4}" y="{y + 4:.1f}" text-anchor="end" class="tick">{label}</text>'
        )
    for k in range(5):  # x ticks
        v = x0 + (x1 - x0) * k / 4
        label = _time_label(v) if x_is_time else f"{v:.3g}"
        out.append(
            f'<text x="{px(v):.1f}" y="{height - pad_b + 14}" text-anchor="middle" class="tick">{label}</text>'
        )
    for x, title in vlines:
        out.append(
            f'<line x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{pad_t}" y2="{height - pad_b}" class="vline">'
            f"<title>{html.escape(title)}</title></line>"
        )
    for s in series:
        pts = [(x, y) for x, y in s.points if (y > 0 or not log_y) and math.isfinite(y)]
        if s.low is not None and s.high is not None:
            band = [
                (x, lo, hi)
                for (x, _), lo, hi in zip(s.points, s.low, s.high, strict=False)
                if lo is not None and hi is not None and (lo > 0 or not log_y)
            ]
            if len(band) >= 2:
                poly = [f"{px(x):.1f},{py(hi):.1f}" for x, _, hi in band] + [
                    f"{px(x):.1f},{py(lo):.1f}" for x, lo, _ in reversed(band)
                ]
                out.append(f'<polygon points="{" ".join(poly)}" fill="{s.colour}" opacity="0.15"/>')
        if len(pts) >= 2:
            path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
            out.append(
                f'<polyline points="{path}" fill="none" stroke="{s.colour}" stroke-width="1.6"/>'
            )
        for i, (x, y) in enumerate(pts):
            title = html.escape(
                f"{s.label}: {y:.4g}"
                + (f" ({s.markers[i]})" if i < len(s.markers) and s.markers[i] else "")
            )
            out.append(
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{s.colour}"><title>{title}</title></circle>'
            )
    legend_x = pad_l + 8
    for k, s in enumerate(series):
        out.append(
            f'<text x="{legend_x}" y="{pad_t + 12 + 13 * k}" class="legend" fill="{s.colour}">{html.escape(s.label)}</text>'
        )
    if x_label:
        out.append(
            f'<text x="{(width + pad_l) / 2}" y="{height - 4}" text-anchor="middle" class="axis">{html.escape(x_label)}</text>'
        )
    if y_label:
        out.append(
            f'<text x="12" y="{(height - pad_b) / 2}" transform="rotate(-90 12 {(height - pad_b) / 2})" '
            f'text-anchor="middle" class="axis">{html.escape(y_label)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _time_label(t: float) -> str:
    import time

    return time.strftime("%m-%d %H:%M", time.localtime(t))


def plate_map(grid: dict[str, object], flagged: dict[str, str], unit: str = "") -> str:
    """The plate as an HTML table: colour by signal, flagged wells outlined by severity."""
    rows, cols = int(grid["rows"]), int(grid["cols"])  # type: ignore[call-overload]
    values: list[list[float | None]] = grid["values"]  # type: ignore[assignment]
    status: list[list[str]] = grid["status"]  # type: ignore[assignment]
    roles: dict[str, str] = grid.get("roles") or {}  # type: ignore[assignment, attr-defined]
    finite = [v for row in values for v in row if v is not None]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    marks = {"blank": "B", "untreated": "U", "positive_control": "+", "empty": "·"}
    out = ['<table class="plate"><tr><th></th>']
    out += [f"<th>{c + 1}</th>" for c in range(cols)]
    out.append("</tr>")
    for r in range(rows):
        out.append(f"<tr><th>{row_label(r)}</th>")
        for c in range(cols):
            well = f"{row_label(r)}{c + 1}"
            v = values[r][c]
            if v is None:
                style = "background:#fff"
                text = "×" if status[r][c] != "not_read" else ""
                title = f"{well}: {status[r][c]}"
            else:
                fraction = (v - lo) / (hi - lo) if hi > lo else 0.5
                style = (
                    f"background:{viridis(fraction)};color:{'#000' if fraction > 0.6 else '#fff'}"
                )
                text = marks.get(roles.get(well, ""), "")
                title = f"{well}: {v:.4g} {unit}".strip() + (
                    f" ({roles[well]})" if well in roles else ""
                )
            severity = flagged.get(well)
            cls = f' class="flag-{severity}"' if severity else ""
            out.append(f'<td{cls} style="{style}" title="{html.escape(title)}">{text}</td>')
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)
