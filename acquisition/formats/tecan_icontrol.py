"""Tecan i-control xlsx exports (infinite M200/M1000/F200, …), English and German.

Signature: a cell ``Application: Tecan i-control`` (German ``Programm: Tecan i-control``)
in the first rows of a sheet. The sheet layouts (``<>`` grids, kinetic one row per well,
several reads per well) are read by :mod:`acquisition.formats.tecan_sheet`.
"""

from __future__ import annotations

import re

from acquisition.formats.base import Reader, Sample
from acquisition.formats.tecan_sheet import tecan_export
from acquisition.formats.workbook import Rows, first_cells, sheets_of
from datamodel import ExportFile

_SIGNATURE = re.compile(r"^(application|programm|anwendung):\s*tecan i-control", re.IGNORECASE)


def is_icontrol(rows: Rows) -> bool:
    return any(_SIGNATURE.match(c) for c in first_cells(rows, 3))


def _sniff(sample: Sample) -> list[tuple[str, Rows]] | None:
    if not sample.is_zip:
        return None
    found = [(name, rows) for name, rows in sheets_of(sample) if is_icontrol(rows)]
    return found or None


def _read(sample: Sample, sheets: list[tuple[str, Rows]]) -> ExportFile:
    return tecan_export(
        sample.path, sheets, fmt="tecan_icontrol", describe="Tecan i-control workbook"
    )


READER: Reader[list[tuple[str, Rows]]] = Reader(
    name="tecan_icontrol",
    kind="plate",
    sniff=_sniff,
    read=_read,
    priority=20,
    max_bytes=32 * 1024 * 1024,
    signature=lambda head: head[:4] == b"PK\x03\x04",
    describe="Tecan i-control workbook",
)
