"""Timecourses in the worker: every read of a timecourse updates its analysis (a finding).

Three ways a plate's reads become a timecourse (DESIGN.md §6, issue #13):

* planned reads, performed by the scheduler: their capture document names the timecourse
  and the scheduler recorded the point with its read time;
* repeated exports of one plate into a watch folder: the layout names the timecourse
  (``timecourse = "NAME"``, e.g. in ``[expt]``), or the same barcode comes again with a
  later read time; the read time is the file's own (the export's date and time), so
  files that arrive out of order still assemble in read-time order;
* a kinetic export (Gen5, SoftMax Pro, …): a timecourse by itself.

Each update re-analyses the whole series (``analysis.timecourse``) and is stored as one
``timecourse`` finding whose subject is ``timecourse:<id>``, so ``timecourse status``, the
dashboard, the alert rules and the report job see it like any other result.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import aliased

from acquisition.capture import Capture
from acquisition.formats import read_export
from acquisition.kinds.base import Finding, JobContext
from acquisition.queue import Purpose
from acquisition.store import (
    captures,
    jobs,
    planned_reads,
    plate_sightings,
    timecourse_points,
    timecourses,
)
from acquisition.timecourses import timecourse_subject
from analysis.layout import Layout, load_layout
from analysis.timecourse import MissedRead, TimePoint, analyze_timecourse, kinetic_points
from datamodel import ExportFile, Plate

_FORMATS = (
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %I:%M %p",
    "%d.%m.%Y %H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%d/%m/%Y %H:%M:%S",
)


def parse_read_time(text: str | None) -> float | None:
    """An export's own date and time (as the PC's locale wrote it) → epoch seconds, or None.

    US month-first is tried before day-first: Gen5 and SoftMax write the PC's short date,
    and the US form is the common one in their exports; an unreadable text gives None and
    the capture time is used instead.
    """
    if not text:
        return None
    clean = " ".join(text.replace(",", " ").split())
    try:
        return datetime.fromisoformat(clean).timestamp()
    except ValueError:
        pass
    for fmt in _FORMATS:
        try:
            return datetime.strptime(clean, fmt).timestamp()
        except ValueError:
            continue
    return None


def _iso_epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def layout_timecourse(layout: Layout) -> str | None:
    """The timecourse the layout names (``timecourse = "NAME"`` on every used well)."""
    names = {str(s.extra["timecourse"]) for s in layout.wells.values() if "timecourse" in s.extra}
    return names.pop() if len(names) == 1 else None


def _ensure(conn: Any, name: str, instrument: str, layout: str | None, t: float) -> int:
    found = conn.execute(select(timecourses.c.id).where(timecourses.c.name == name)).scalar()
    if found is not None:
        return int(found)
    return int(
        conn.execute(
            insert(timecourses).values(
                name=name,
                source="exports",
                reader=instrument,
                layout=layout,
                start_at=None,
                state="running",
                created_at=t,
            )
        ).inserted_primary_key[0]
    )


def join_exports(
    ctx: JobContext, capture: Capture, plate: Plate, layout: Layout, layout_path: str
) -> int | None:
    """The export-fed timecourse this plate belongs to (recording its point), or None.

    By the layout's ``timecourse`` key; else by barcode: a plate whose barcode was seen
    before (on this instrument) with another read time makes — or joins — the timecourse
    ``<instrument>:<barcode>``, with every earlier sighting as a point.
    """
    name = layout_timecourse(layout)
    first = plate.reads[0].measured_at if plate.reads else None
    read_at = parse_read_time(first) or _iso_epoch(capture.captured_at)
    with ctx.store.begin() as conn:
        earlier: list[tuple[int, float]] = []
        if plate.barcode:
            seen = conn.execute(
                select(plate_sightings.c.id).where(
                    plate_sightings.c.capture_id == capture.id,
                    plate_sightings.c.barcode == plate.barcode,
                )
            ).scalar()
            if seen is None:
                conn.execute(
                    insert(plate_sightings).values(
                        capture_id=capture.id,
                        instrument=capture.instrument,
                        barcode=plate.barcode,
                        read_at=read_at,
                    )
                )
            if name is None:
                earlier = [
                    (int(c), float(t))
                    for c, t in conn.execute(
                        select(plate_sightings.c.capture_id, plate_sightings.c.read_at).where(
                            plate_sightings.c.instrument == capture.instrument,
                            plate_sightings.c.barcode == plate.barcode,
                            plate_sightings.c.capture_id != capture.id,
                        )
                    ).all()
                    if abs(float(t) - read_at) > 1.0
                ]
                if earlier:
                    name = f"{capture.instrument}:{plate.barcode}"
        if name is None:
            return None
        tc_id = _ensure(conn, name, capture.instrument, layout_path, ctx.clock.now())
        have = set(
            conn.execute(
                select(timecourse_points.c.capture_id).where(
                    timecourse_points.c.timecourse_id == tc_id
                )
            ).scalars()
        )
        for capture_id, when in [(capture.id, read_at), *earlier]:
            if capture_id not in have:
                conn.execute(
                    insert(timecourse_points).values(
                        timecourse_id=tc_id, capture_id=capture_id, read_at=when
                    )
                )
                have.add(capture_id)
    return tc_id


def superseded(ctx: JobContext, tc_id: int, capture_id: int) -> bool:
    """Whether a later read of the timecourse still waits for (or is in) its analysis.

    That job analyses the whole series, this read included (its point is stored with the
    capture), so this one need not: when reads come faster than a summary takes, only
    the newest reads pay for it and the analyses cannot fall behind the reads.
    """
    this = aliased(timecourse_points)
    later = (
        select(timecourse_points.c.capture_id)
        .join(jobs, jobs.c.capture_id == timecourse_points.c.capture_id)
        .where(
            timecourse_points.c.timecourse_id == tc_id,
            timecourse_points.c.capture_id != capture_id,
            timecourse_points.c.read_at
            > select(this.c.read_at)
            .where(this.c.timecourse_id == tc_id, this.c.capture_id == capture_id)
            .scalar_subquery(),
            jobs.c.state.in_(("queued", "running")),
            jobs.c.purpose.in_((str(Purpose.ANALYZE), str(Purpose.REPROCESS))),
        )
        .limit(1)
    )
    with ctx.store.engine.connect() as conn:
        return conn.execute(later).first() is not None


def timecourse_finding(ctx: JobContext, tc_id: int, fallback_layout: Path | None) -> Finding | None:
    """The analysis of the whole series of one timecourse, as it stands now."""
    with ctx.store.engine.connect() as conn:
        tc = conn.execute(select(timecourses).where(timecourses.c.id == tc_id)).mappings().one()
        points = conn.execute(
            select(timecourse_points.c.capture_id, timecourse_points.c.read_at, captures.c.source_path,
                   captures.c.archive_path)
            .join(captures, captures.c.id == timecourse_points.c.capture_id)
            .where(timecourse_points.c.timecourse_id == tc_id)
            .order_by(timecourse_points.c.read_at)
        ).all()  # fmt: skip
        missed_rows = conn.execute(
            select(planned_reads.c.index, planned_reads.c.due_at, planned_reads.c.last_error).where(
                planned_reads.c.timecourse_id == tc_id, planned_reads.c.state == "missed"
            )
        ).all()
    if not points:
        return None
    layout_path = Path(tc["layout"]) if tc["layout"] else fallback_layout
    if layout_path is None:
        return None
    layout = load_layout(layout_path)
    start = float(tc["start_at"]) if tc["start_at"] is not None else float(points[0].read_at)
    series = []
    for capture_id, read_at, source, archive in points:
        export = read_export(Path(source), Path(archive).read_bytes())
        reads = [r for p in export.plates[:1] for r in p.reads]
        series.append(
            TimePoint(t_h=(float(read_at) - start) / 3600.0, reads=reads, id=str(capture_id))
        )
    missed = [
        MissedRead(int(i), (float(due) - start) / 3600.0, str(err or ""))
        for i, due, err in missed_rows
    ]
    settings = ctx.settings
    tcs = settings.timecourse
    from acquisition.pipeline import response_rules

    result = analyze_timecourse(
        series,
        layout,
        tcs,
        missed=missed,
        rules=response_rules(settings),
        references=ctx.references,
        plate_qc=settings.qc,
        wavelength_nm=settings.analysis.wavelength_nm,
        reference_band=settings.analysis.reference_nm,
        confidence_level=settings.analysis.confidence_level,
        doubling_time_h=dict(tcs.doubling_time_h) or None,
        curves=tcs.curves,
        end_h=float(tc["for_s"]) / 3600.0 if tc["for_s"] else None,
        timecourse_id=str(tc_id),
        assay=settings.analysis.assay,
    )
    body = result.to_dict() | {
        "name": tc["name"],
        "timecourse_id": tc_id,
        "layout": str(layout_path),
    }
    return Finding(
        subject=timecourse_subject(tc_id),
        key=f"timecourse:{tc_id}",
        name=f"timecourse {tc['name']}",
        kind="timecourse",
        verdict=result.verdict,
        flags=result.flags,
        body=body,
    )


def kinetic_finding(
    ctx: JobContext, capture: Capture, plate: Plate, layout: Layout, layout_path: str
) -> Finding | None:
    """A kinetic export is a timecourse by itself (at least three time points)."""
    times = {r.time_s for r in plate.reads if r.time_s is not None}
    if len(times) < 3:
        return None
    settings = ctx.settings
    result = analyze_timecourse(
        kinetic_points(plate.reads, id=str(capture.id)),
        layout,
        settings.timecourse,
        plate_qc=settings.qc,
        wavelength_nm=settings.analysis.wavelength_nm,
        reference_band=settings.analysis.reference_nm,
        curves=False,
        timecourse_id=f"{capture.id}:{plate.plate_id}",
        assay=settings.analysis.assay,
    )
    return Finding(
        subject=f"kinetic:{plate.plate_id}"[:190],
        key=f"{capture.instrument}:{capture.file_name}/{plate.plate_id}/kinetic",
        name=f"kinetic {plate.plate_id} ({capture.file_name})",
        kind="timecourse",
        verdict=result.verdict,
        flags=result.flags,
        body=result.to_dict()
        | {"name": f"{capture.file_name} {plate.plate_id}", "layout": layout_path},
    )


def document_timecourse(export: ExportFile) -> int | None:
    """The timecourse a driver read document names (a planned read), if any."""
    value = export.metadata.get("timecourse_id")
    return int(value) if isinstance(value, int) else None
