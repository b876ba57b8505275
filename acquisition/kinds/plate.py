"""Plate exports and driver reads: read the archived file, analyse every plate in it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from acquisition.capture import Capture
from acquisition.formats import read_export
from acquisition.kinds.base import Finding, JobContext
from acquisition.pipeline import analyze_export
from acquisition.store import timecourses
from acquisition.timecourse_analysis import (
    document_timecourse,
    join_exports,
    kinetic_finding,
    superseded,
    timecourse_finding,
)
from analysis.report import write_report
from config.schema import Settings


def source_of(settings: Settings, instrument: str) -> tuple[Path | None, str | None]:
    """(default layout, reader format) of the watch folder or reader a capture came from."""
    watch = next((w for w in settings.watch if w.instrument == instrument), None)
    if watch is not None:
        return watch.layout, watch.format
    reader = next((r for r in settings.reader if r.name == instrument), None)
    if reader is not None:
        return reader.layout, None
    return None, None


def plate_key(instrument: str, file_name: str, plate_id: str, barcode: str | None) -> str:
    """A plate's identity across re-exports: its barcode, else file stem + plate id."""
    name = barcode or f"{Path(file_name).stem}/{plate_id}"
    return f"{instrument}:{name}"


def timecourse_layout(ctx: JobContext, tc_id: int) -> Path | None:
    """The layout a planned read's timecourse was started with."""
    from sqlalchemy import select

    with ctx.store.engine.connect() as conn:
        value = conn.execute(select(timecourses.c.layout).where(timecourses.c.id == tc_id)).scalar()
    return Path(value) if value else None


class PlateAnalyser:
    kind = "plate"

    def analyse(self, capture: Capture, ctx: JobContext) -> list[Finding]:
        data = capture.archive.read_bytes()  # OSError: the archive is unreadable, retried
        layout, reader_format = source_of(ctx.settings, capture.instrument)
        export = read_export(capture.source, data, format=reader_format)
        planned = document_timecourse(export)
        explicit = ctx.layout_override or (timecourse_layout(ctx, planned) if planned else None)
        analysed = analyze_export(
            capture.source,
            export,
            ctx.settings,
            layout=layout,
            explicit_layout=explicit,
            layouts_dir=ctx.settings.service.state_dir / "layouts",
            reference_table=dict(ctx.references),
        )
        findings = []
        series: set[int] = {planned} if planned is not None else set()
        for item in analysed:
            result, plate = item.result, item.plate
            findings.append(
                Finding(
                    subject=plate.plate_id,
                    key=plate_key(
                        capture.instrument, capture.file_name, plate.plate_id, plate.barcode
                    ),
                    name=f"{plate.plate_id} ({capture.file_name}, {capture.instrument})",
                    kind="plate",
                    verdict=result.verdict,
                    flags=result.flags,
                    body=result.to_dict(str(capture.source)) | {"layout": item.layout_source},
                )
            )
            used = result.plate.layout
            kinetic = kinetic_finding(ctx, capture, plate, used, item.layout_source)
            if kinetic is not None:
                findings.append(kinetic)
            elif planned is None:
                joined = join_exports(ctx, capture, plate, used, item.layout_source)
                if joined is not None:
                    series.add(joined)
        for tc_id in sorted(series):
            if superseded(ctx, tc_id, capture.id):
                continue
            update = timecourse_finding(ctx, tc_id, layout)
            if update is not None:
                findings.append(update)
        return findings

    def render(
        self, capture: Capture, body: dict[str, Any], out_dir: Path, name: str
    ) -> dict[str, str]:
        if body.get("kind") == "timecourse":
            from analysis.timecourse_report import write_timecourse_report

            return write_timecourse_report(body, out_dir, name, source=capture.source_path)
        return write_report(body, out_dir, name, source=capture.source_path)


ANALYSER = PlateAnalyser()
