"""Tecan XFLUOR4 xlsx exports (Sunrise, GENios, Spectrafluor: the Excel add-in).

Signature: the first cell names the reader and ``XFLUOR4 Version`` (``SUNRISE;   Serial
number: …;   Firmware: …;   XFLUOR4 Version: V 4.50``). Then ``Date:``/``Time:``,
``Measurement mode:``, ``Measurement wavelength:`` and one ``Rawdata`` + ``<>`` grid per
read, parsed by :mod:`acquisition.formats.tecan_sheet`.
"""

from __future__ import annotations

import re

from acquisition.formats.base import Reader, Sample
from acquisition.formats.tecan_sheet import tecan_export
from acquisition.formats.workbook import Rows, first_cells, sheets_of
from datamodel import ExportFile


def _banner(rows: Rows) -> str | None:
    return next((c for c in first_cells(rows, 2) if "XFLUOR4" in c.upper()), None)


def _sniff(sample: Sample) -> list[tuple[str, Rows]] | None:
    if not sample.is_zip:
        return None
    found = [(name, rows) for name, rows in sheets_of(sample) if _banner(rows)]
    return found or None


def _read(sample: Sample, sheets: list[tuple[str, Rows]]) -> ExportFile:
    export = tecan_export(
        sample.path, sheets, fmt="tecan_xfluor4", describe="Tecan XFLUOR4 workbook"
    )
    banner = _banner(sheets[0][1]) or ""
    parts = [p.strip() for p in banner.split(";") if p.strip()]
    fields = dict(
        (k.strip().lower(), v.strip()) for k, _, v in (p.partition(":") for p in parts[1:])
    )
    version = next((v for k, v in fields.items() if "xfluor4" in k), "")
    export.instrument = {
        "model": parts[0].title() if parts else None,
        "serial": fields.get("serial number"),
        "software": f"XFLUOR4 {version}".strip(),
    }
    if "firmware" in fields:
        export.metadata["firmware"] = fields["firmware"]
    export.metadata["banner"] = re.sub(r"\s+", " ", banner)
    return export


READER: Reader[list[tuple[str, Rows]]] = Reader(
    name="tecan_xfluor4",
    kind="plate",
    sniff=_sniff,
    read=_read,
    priority=22,
    max_bytes=32 * 1024 * 1024,
    signature=lambda head: head[:4] == b"PK\x03\x04",
    describe="Tecan XFLUOR4 (Sunrise) workbook",
)
