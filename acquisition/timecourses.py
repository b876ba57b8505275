"""Timecourses as the CLI and the dashboard see them: status, reads, the latest analysis."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from acquisition.store import Store, planned_reads, results, timecourse_points, timecourses


def timecourse_subject(tc_id: int) -> str:
    """The ``results.plate`` value of a timecourse's analysis rows."""
    return f"timecourse:{tc_id}"


def list_timecourses(store: Store, tc_id: int | None = None) -> list[dict[str, Any]]:
    """Every timecourse (or one), newest first, in the shape of ``timecourse status --json``."""
    query = select(timecourses).order_by(timecourses.c.id.desc())
    if tc_id is not None:
        query = query.where(timecourses.c.id == tc_id)
    out = []
    with store.engine.connect() as conn:
        for tc in conn.execute(query).mappings().all():
            reads = (
                conn.execute(
                    select(
                        planned_reads.c.index,
                        planned_reads.c.due_at,
                        planned_reads.c.state,
                        planned_reads.c.done_at,
                        planned_reads.c.delay_s,
                        planned_reads.c.capture_id,
                        planned_reads.c.last_error,
                    )
                    .where(planned_reads.c.timecourse_id == tc["id"])
                    .order_by(planned_reads.c.index)
                )
                .mappings()
                .all()
            )
            points = conn.execute(
                select(timecourse_points.c.capture_id, timecourse_points.c.read_at)
                .where(timecourse_points.c.timecourse_id == tc["id"])
                .order_by(timecourse_points.c.read_at)
            ).all()
            latest = conn.execute(
                select(results.c.body)
                .where(results.c.plate == timecourse_subject(int(tc["id"])))
                .order_by(results.c.id.desc())
                .limit(1)
            ).scalar()
            analysis = json.loads(latest) if latest else {}
            counts = {"planned": 0, "done": 0, "late": 0, "missed": 0, "cancelled": 0}
            for r in reads:
                state = "planned" if r["state"] == "reading" else str(r["state"])
                counts[state] = counts.get(state, 0) + 1
            out.append(
                {
                    "id": int(tc["id"]),
                    "name": tc["name"],
                    "source": tc["source"],
                    "reader": tc["reader"],
                    "layout": tc["layout"],
                    "every_s": tc["every_s"],
                    "for_s": tc["for_s"],
                    "start_at": tc["start_at"],
                    "wavelengths": json.loads(tc["wavelengths"] or "[]"),
                    "state": tc["state"],
                    "counts": counts,
                    "reads": [
                        {
                            "index": int(r["index"]),
                            "due_at": r["due_at"],
                            "state": "planned" if r["state"] == "reading" else r["state"],
                            "done_at": r["done_at"],
                            "delay_s": r["delay_s"],
                            "capture_id": r["capture_id"],
                            "last_error": r["last_error"],
                        }
                        for r in reads
                    ],
                    "points": [{"capture_id": int(c), "read_at": float(t)} for c, t in points],
                    "flags": analysis.get("flags", []),
                    "summary": analysis.get("summary", {}),
                }
            )
    return out
