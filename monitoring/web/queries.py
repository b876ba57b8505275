"""What the dashboard shows, read from the store (read-only, indexed, bounded queries).

Every function takes a :class:`Store` and returns plain data (dicts and lists) that both
the HTML pages and the JSON API render. Nothing here writes, except :func:`acknowledge`
and :func:`queue_reanalysis`, which the daemon's dashboard (never ``platewatch serve``)
offers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from acquisition.queue import Purpose, enqueue
from acquisition.store import (
    Store,
    alerts,
    captures,
    control_points,
    flags,
    jobs,
    planned_reads,
    results,
    timecourses,
)

PLATE_KINDS = ("plate",)


def latest_results(store: Store, limit: int = 50, kind: str | None = None) -> list[dict[str, Any]]:
    """The newest results with their capture and the codes of their non-info flags."""
    query = (
        select(
            results.c.id,
            results.c.capture_id,
            results.c.plate,
            results.c.kind,
            results.c.verdict,
            results.c.analyzed_at,
            results.c.report,
            captures.c.file_name,
            captures.c.instrument,
            captures.c.source_path,
        )
        .join(captures, captures.c.id == results.c.capture_id)
        .order_by(results.c.id.desc())
        .limit(limit)
    )
    if kind is not None:
        query = query.where(results.c.kind == kind)
    with store.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
        ids = [r["id"] for r in rows]
        codes: dict[int, list[tuple[str, str]]] = {}
        if ids:
            for result_id, code, severity in conn.execute(
                select(flags.c.result_id, flags.c.code, flags.c.severity).where(
                    flags.c.result_id.in_(ids)
                )
            ).all():
                codes.setdefault(int(result_id), []).append((str(code), str(severity)))
    for row in rows:
        found = codes.get(int(row["id"]), [])
        row["flag_codes"] = sorted({c for c, s in found if s != "info"})
        row["flags"] = [{"code": c, "severity": s} for c, s in found]
        row["has_report"] = bool(row.pop("report"))
    return rows


def counts_by_kind(store: Store) -> dict[str, int]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(results.c.kind, func.count()).group_by(results.c.kind)).all()
    return {str(k): int(n) for k, n in rows}


def result_detail(store: Store, result_id: int) -> dict[str, Any] | None:
    with store.engine.connect() as conn:
        row = conn.execute(
            select(results, captures.c.file_name, captures.c.instrument, captures.c.source_path, captures.c.sha256,
                   captures.c.captured_at, captures.c.archive_path)
            .join(captures, captures.c.id == results.c.capture_id)
            .where(results.c.id == result_id)
        ).mappings().first()  # fmt: skip
        if row is None:
            return None
        flag_rows = (
            conn.execute(
                select(flags.c.code, flags.c.severity, flags.c.message, flags.c.wells).where(
                    flags.c.result_id == result_id
                )
            )
            .mappings()
            .all()
        )
        siblings = conn.execute(
            select(results.c.id, results.c.plate)
            .where(results.c.job_id == row["job_id"])
            .order_by(results.c.id)
        ).all()
    detail = dict(row)
    detail["body"] = json.loads(detail["body"])
    detail["report"] = json.loads(detail["report"]) if detail["report"] else None
    detail["flags"] = [dict(f) | {"wells": json.loads(f["wells"])} for f in flag_rows]
    detail["siblings"] = [{"id": int(i), "plate": p} for i, p in siblings]
    return detail


def open_alerts(store: Store, limit: int = 200) -> list[dict[str, Any]]:
    """Findings whose (subject, code) has not been resolved since, and not acknowledged."""
    later = alerts.alias("later")
    superseded = (
        select(later.c.id)
        .where(
            later.c.plate_key == alerts.c.plate_key,
            later.c.code == alerts.c.code,
            later.c.id > alerts.c.id,
        )
        .exists()
    )
    query = (
        select(alerts)
        .where(
            alerts.c.kind.in_(("finding", "quarantine")),
            alerts.c.acknowledged_at.is_(None),
            ~superseded,
        )
        .order_by(alerts.c.id.desc())
        .limit(limit)
    )
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def all_alerts(store: Store, limit: int = 200) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                select(alerts).order_by(alerts.c.id.desc()).limit(limit)
            ).mappings()
        ]


def acknowledge(store: Store, alert_id: int, who: str) -> bool:
    with store.begin() as conn:
        changed = conn.execute(
            update(alerts)
            .where(alerts.c.id == alert_id, alerts.c.acknowledged_at.is_(None))
            .values(acknowledged_at=store.now(), acknowledged_by=who[:200])
        ).rowcount
    return changed == 1


def queue_reanalysis(store: Store, capture_id: int, layout: Path) -> int:
    with store.begin() as conn:
        return enqueue(
            conn, capture_id, Purpose.REANALYSE, clock=store.clock, params={"layout": str(layout)}
        )


def instruments(store: Store) -> list[dict[str, Any]]:
    """Per instrument: captures, the last one, and the next planned read."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(captures.c.instrument, func.count(), func.max(captures.c.captured_at)).group_by(
                captures.c.instrument
            )
        ).all()
        next_reads = conn.execute(
            select(timecourses.c.reader, func.min(planned_reads.c.due_at))
            .join(timecourses, timecourses.c.id == planned_reads.c.timecourse_id)
            .where(planned_reads.c.state == "planned", timecourses.c.state == "running")
            .group_by(timecourses.c.reader)
        ).all()
    nxt = {str(r): float(t) for r, t in next_reads if r is not None}
    out = {
        str(name): {
            "instrument": str(name),
            "captures": int(n),
            "last_capture_at": last,
            "next_read_at": nxt.get(str(name)),
        }
        for name, n, last in rows
    }
    for reader, t in nxt.items():
        out.setdefault(
            reader,
            {"instrument": reader, "captures": 0, "last_capture_at": None, "next_read_at": t},
        )
    return sorted(out.values(), key=lambda r: r["instrument"])


def trends(store: Store, limit_per_series: int = 500) -> list[dict[str, Any]]:
    """Per compound × control line: every plate's IC50 and Z′, oldest first."""
    with store.engine.connect() as conn:
        keys = conn.execute(
            select(control_points.c.compound, control_points.c.cell_line)
            .distinct()
            .order_by(control_points.c.compound, control_points.c.cell_line)
        ).all()
        series = []
        for compound, line in keys:
            rows = (
                conn.execute(
                    select(control_points)
                    .where(
                        control_points.c.compound == compound, control_points.c.cell_line == line
                    )
                    .order_by(control_points.c.at.desc(), control_points.c.id.desc())
                    .limit(limit_per_series)
                )
                .mappings()
                .all()
            )
            points = [dict(r) for r in reversed(rows)]
            last = points[-1] if points else {}
            series.append(
                {
                    "compound": compound,
                    "cell_line": line,
                    "unit": last.get("unit"),
                    "expected_low": last.get("expected_low"),
                    "expected_high": last.get("expected_high"),
                    "points": [
                        {
                            "at": p["at"],
                            "ic50": p["ic50"],
                            "qualifier": p["qualifier"],
                            "z_prime": p["z_prime"],
                            "result_id": p["result_id"],
                            "instrument": p["instrument"],
                        }
                        for p in points
                    ],
                }
            )
    return series


def change_marker(store: Store) -> tuple[int, int, int, int]:
    """Something to compare between two polls: it changes whenever anything visible does."""
    with store.engine.connect() as conn:
        r = conn.execute(select(func.coalesce(func.max(results.c.id), 0))).scalar_one()
        a = conn.execute(select(func.coalesce(func.max(alerts.c.id), 0))).scalar_one()
        acked = conn.execute(
            select(func.count()).where(alerts.c.acknowledged_at.is_not(None))
        ).scalar_one()
        pr = conn.execute(
            select(func.count()).where(
                planned_reads.c.state.in_(("done", "late", "missed", "cancelled"))
            )
        ).scalar_one()
        queued = conn.execute(
            select(func.count()).where(jobs.c.state.in_(("queued", "running")))
        ).scalar_one()
    return int(r), int(a) + int(acked) * 1_000_000, int(pr), int(queued)
