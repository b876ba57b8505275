"""What each dashboard page shows: plain data (and small SVG/HTML figures) for the templates."""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from acquisition.daemon_state import DaemonState
from acquisition.queue import counts
from acquisition.store import Store
from analysis.model import SEVERITY_RANK, safe_stem
from config.schema import Settings
from monitoring.web import queries
from monitoring.web.charts import PALETTE, Series, line_chart, plate_map

_VERDICT_ORDER = {"fail": 0, "warn": 1, "pass": 2}


def when(t: float | str | None) -> str:
    if t is None:
        return "—"
    if isinstance(t, str):
        return t.replace("T", " ")[:19]
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def overview(store: Store, state: DaemonState | None) -> dict[str, Any]:
    results = queries.latest_results(store, 50)
    instruments = queries.instruments(store)
    online: dict[str, str] = {}
    if state is not None:
        for w in state.watchers:
            online[w.instrument] = "online" if w.alive else "offline"
        for r in state.readers:
            online[r.name] = "offline" if r.state in ("offline", "error") else "online"
    for row in instruments:
        row["status"] = online.get(row["instrument"], "unknown" if state is None else "not watched")
    for name, status in online.items():
        if not any(r["instrument"] == name for r in instruments):
            instruments.append(
                {
                    "instrument": name,
                    "captures": 0,
                    "last_capture_at": None,
                    "next_read_at": None,
                    "status": status,
                }
            )
    alerts = queries.open_alerts(store, 50)
    alerts.sort(key=lambda a: (-SEVERITY_RANK.get(a["severity"], 0), -a["id"]))
    return {
        "results": results,
        "instruments": instruments,
        "queue": counts(store).by_state,
        "open_alerts": alerts,
        "daemon": asdict(state) if state else None,
        "when": when,
    }


def _flagged_wells(flags: list[dict[str, Any]], n_wells: int) -> dict[str, str]:
    outlined: dict[str, str] = {}
    for flag in flags:
        wells = flag.get("wells") or []
        if flag["severity"] == "info" or len(wells) > n_wells // 2:
            continue
        for well in wells:
            if SEVERITY_RANK[flag["severity"]] >= SEVERITY_RANK.get(outlined.get(well, "info"), 0):
                outlined[well] = flag["severity"]
    return outlined


def plate(store: Store, result_id: int, settings: Settings) -> dict[str, Any] | None:
    detail = queries.result_detail(store, result_id)
    if detail is None:
        return None
    body = detail["body"]
    grid = body.get("grid")
    figure = None
    if grid:
        figure = plate_map(
            grid,
            _flagged_wells(body.get("flags") or [], grid["rows"] * grid["cols"]),
            grid.get("unit") or "",
        )
    curves = []
    for c in body.get("curves") or []:
        curves.append(
            c
            | {
                "label": " × ".join(
                    p for p in (c["group"].get("compound"), c["group"].get("cell_line")) if p
                )
            }
        )
    return {
        "detail": detail,
        "body": body,
        "figure": figure,
        "curves": curves,
        "flags": sorted(body.get("flags") or [], key=lambda f: -SEVERITY_RANK[f["severity"]]),
        "qc": body.get("qc") or {},
        "layouts": sorted(known_layouts(settings)),
        "when": when,
        "kind": detail["kind"],
    }


def known_layouts(settings: Settings) -> dict[str, Path]:
    """The layouts a re-analysis may pick: the configured ones and those in the state dir."""
    found: dict[str, Path] = {}
    for watch in settings.watch:
        if watch.layout is not None:
            found[watch.layout.name] = watch.layout
    for reader in settings.reader:
        if reader.layout is not None:
            found[reader.layout.name] = reader.layout
    for folder in (
        settings.service.state_dir / "layouts",
        settings.service.state_dir / "layouts" / "uploads",
    ):
        if folder.is_dir():
            for path in sorted(folder.glob("*.toml")) + sorted(folder.glob("*.csv")):
                found.setdefault(path.name, path)
    return found


def save_uploaded_layout(state_dir: Path, filename: str, data: bytes) -> Path:
    """Keep an uploaded layout (parsed first: it must be a layout, and is never executed)."""
    from fastapi import HTTPException

    from analysis.layout import load_layout
    from errors import PlatewatchError

    folder = state_dir / "layouts" / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".csv" if filename.lower().endswith(".csv") else ".toml"
    digest = hashlib.sha256(data).hexdigest()[:12]
    path = folder / f"{safe_stem(Path(filename).stem)}_{digest}{suffix}"
    path.write_bytes(data)
    try:
        text = data.decode("utf-8", errors="strict") if suffix == ".toml" else ""
        if "include" in text or "paste" in text or "concat" in text:
            raise HTTPException(400, "an uploaded layout cannot include other files")
        load_layout(path)
    except PlatewatchError as exc:
        path.unlink(missing_ok=True)
        raise HTTPException(400, f"not a usable layout: {exc.message}") from None
    except (UnicodeDecodeError, HTTPException) as exc:
        path.unlink(missing_ok=True)
        if isinstance(exc, HTTPException):
            raise
        raise HTTPException(400, "not a usable layout: not UTF-8 text") from None
    return path


def alerts(store: Store) -> dict[str, Any]:
    open_ = queries.open_alerts(store, 200)
    recent = queries.all_alerts(store, 200)
    return {"open_alerts": open_, "recent": recent, "when": when}


def trends(store: Store) -> dict[str, Any]:
    series = []
    for k, s in enumerate(queries.trends(store)):
        pts = s["points"]
        ic50 = [(p["at"], p["ic50"]) for p in pts if p["ic50"] is not None and p["ic50"] > 0]
        zp = [
            (p["at"], p["z_prime"])
            for p in pts
            if p["z_prime"] is not None and math.isfinite(p["z_prime"])
        ]
        colour = PALETTE[k % len(PALETTE)]
        band = (
            s["expected_low"] or 0.0,
            s["expected_high"] if s["expected_high"] is not None else math.inf,
        )
        series.append(
            s
            | {
                "ic50_chart": line_chart(
                    [Series(f"IC50 ({s['unit'] or ''})", ic50, colour)],
                    log_y=True,
                    y_band=band,
                    x_is_time=True,
                    y_label="IC50",
                ),
                "z_chart": line_chart(
                    [Series("Z′", zp, "#555")], x_is_time=True, y_label="Z′", height=160
                ),
                "plates": len(pts),
            }
        )
    return {"series": series, "when": when}


def timecourses(store: Store) -> dict[str, Any]:
    from acquisition.timecourses import list_timecourses

    return {"timecourses": list_timecourses(store), "when": when}


def timecourse(store: Store, tc_id: int) -> dict[str, Any] | None:
    from acquisition.timecourses import list_timecourses

    rows = list_timecourses(store, tc_id)
    if not rows:
        return None
    tc = rows[0]
    summary = tc.get("summary") or {}
    start = tc.get("start_at") or 0.0
    t_h = [float(t) for t in summary.get("t_h") or []]

    def along(values: list[Any] | None) -> list[tuple[float, float]]:
        return [
            (t, float(v))
            for t, v in zip(t_h, values or [], strict=False)
            if isinstance(v, int | float)
        ]

    growth = summary.get("growth") or {}
    blank = summary.get("blank") or {}
    edge = summary.get("edge") or {}
    charts: dict[str, str] = {
        "growth": line_chart(
            [
                Series("untreated (blank-corrected)", along(growth.get("series")), PALETTE[0]),
                Series("blank", along(blank.get("series")), PALETTE[1]),
            ],
            x_label="hours",
            y_label=str(summary.get("unit") or "signal"),
        ),
        "edge": line_chart(
            [
                Series(
                    "outer ring / interior",
                    list(zip(edge.get("t_h") or [], edge.get("series") or [], strict=False)),
                    PALETTE[2],
                )
            ],
            x_label="hours",
            y_label="ring ratio",
            height=180,
        ),
    }
    ic50_series = []
    for k, curve in enumerate(summary.get("ic50") or []):
        pts = [
            p for p in curve.get("points", []) if p.get("ic50") and p.get("ic50_qualifier") == "="
        ]
        ic50_series.append(
            Series(
                " × ".join(x for x in (curve.get("compound"), curve.get("cell_line")) if x),
                [(float(p["t_h"]), float(p["ic50"])) for p in pts],
                PALETTE[(k + 3) % len(PALETTE)],
                [p["ic50_ci"][0] if p.get("ic50_ci") else None for p in pts],  # type: ignore[misc]
                [p["ic50_ci"][1] if p.get("ic50_ci") else None for p in pts],  # type: ignore[misc]
            )
        )
    missed = [
        ((r["due_at"] - start) / 3600.0, f"read #{r['index']} missed")
        for r in tc["reads"]
        if r["state"] == "missed"
    ]
    charts["ic50"] = line_chart(
        ic50_series, log_y=True, x_label="hours", y_label="IC50", vlines=missed
    )
    tc["doubling_time_h"] = growth.get("doubling_time_h")
    return {"tc": tc, "charts": charts, "when": when}
