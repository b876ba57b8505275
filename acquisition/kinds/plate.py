"""Plate exports and driver reads: read the archived file, analyse every plate in it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from acquisition.capture import Capture
from acquisition.formats import read_export
from acquisition.kinds.base import Finding, JobContext
from acquisition.pipeline import analyze_export
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


class PlateAnalyser:
    kind = "plate"

    def analyse(self, capture: Capture, ctx: JobContext) -> list[Finding]:
        data = capture.archive.read_bytes()  # OSError: the archive is unreadable, retried
        layout, reader_format = source_of(ctx.settings, capture.instrument)
        export = read_export(capture.source, data, format=reader_format)
        analysed = analyze_export(
            capture.source,
            export,
            ctx.settings,
            layout=layout,
            explicit_layout=ctx.layout_override,
            layouts_dir=ctx.settings.service.state_dir / "layouts",
            reference_table=dict(ctx.references),
        )
        findings = []
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
        return findings

    def render(
        self, capture: Capture, body: dict[str, Any], out_dir: Path, name: str
    ) -> dict[str, str]:
        return write_report(body, out_dir, name, source=capture.source_path)


ANALYSER = PlateAnalyser()
