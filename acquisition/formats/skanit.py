"""Thermo SkanIt Software xlsx reports (Varioskan, Multiskan FC/GO, Fluoroskan, Luminoskan).

One sheet per protocol step, named ``<step> <n>_<nn>`` and starting ``Measurement results``,
the session file, the execution time, the step name and its settings (``Wavelength: 450
nm``, ``Excitation: …``/``Emission: …``), then per plate (``Plate 1``) a labelled grid whose
corner names the data (``Abs``, ``Fluor``/``RFU``, ``Lum``/``RLU``, ``Value``) followed by a
``Sample`` layout grid. The information sheets (``General information``, ``Session
information``, ``Instrument information``, ``Protocol parameters``, ``Run log``, ``Layout
definitions``) describe the run. Measurement steps (``Absorbance``, ``Fluorescence``,
``Luminescence``, ``Photometric``) are reads; calculation steps (``Blank Subtraction``,
``Standard Curve``, ``Dilution Factor`` …) are listed in the metadata only.

Signature: an ``Instrument information`` or ``Session information`` sheet beside step
sheets that start ``Measurement results``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from acquisition.formats.base import Reader, Sample
from acquisition.formats.text import grid_to_read
from acquisition.formats.workbook import (
    Rows,
    cell,
    grid_at,
    key_value,
    leading_number,
    mode_from,
    sheets_of,
)
from datamodel import ExportFile, Plate, PlateRead, ReadMode
from errors import FormatError

_INFO_SHEETS = {
    "general information",
    "session information",
    "instrument information",
    "protocol parameters",
    "run log",
    "layout definitions",
}
_MEASUREMENT_STEP = re.compile(
    r"^(absorbance|photometric|fluorescence|fluorometric|luminescence|luminometric|time ?resolved|spectrum|abs)\b",
    re.I,
)
_PLATE = re.compile(r"\b(?:\w+\s+)?plate(?:\s+[0-9]+)?\b", re.IGNORECASE)
_LAYOUT_CORNERS = {
    "sample",
    "sample type",
    "group",
    "layout",
    "well id",
    "conc.",
    "dilution factor",
}


@dataclass
class _Found:
    steps: list[tuple[str, Rows]]
    info: dict[str, Rows]


def _sniff(sample: Sample) -> _Found | None:
    if not sample.is_zip:
        return None
    sheets = sheets_of(sample)
    names = {name.strip().lower() for name, _ in sheets}
    if not ({"instrument information", "session information"} & names):
        return None
    steps = [
        (name, rows)
        for name, rows in sheets
        if name.strip().lower() not in _INFO_SHEETS
        and any(cell(r, 0).lower() == "measurement results" for r in rows[:3])
    ]
    if not steps and "absorbance results" in names:
        return None  # a Multiskan Sky workbook (multiskan_sky.py)
    info = {
        name.strip().lower(): rows for name, rows in sheets if name.strip().lower() in _INFO_SHEETS
    }
    return _Found(steps, info)


def _info_values(rows: Rows) -> dict[str, str]:
    """An information sheet's ``None | Key | None | None | value`` rows as a dict."""
    values: dict[str, str] = {}
    for row in rows[1:]:
        texts = [c.strip() for c in row if c.strip()]
        if len(texts) >= 2 and texts[0] not in values:
            values[texts[0]] = texts[1]
    return values


def _step_name(rows: Rows) -> str:
    """The step's name: the first cell of the first row after the session file and time."""
    for row in rows[3:8]:
        first = cell(row, 0)
        if first and not first.lower().startswith(("wavelength", "plate")):
            return first
    return ""


def _step_reads(
    name: str, rows: Rows, sample: Sample, measured_at: str | None
) -> dict[str, list[PlateRead]]:
    """Reads of one measurement step sheet, by plate."""
    step = _step_name(rows) or name
    mode: ReadMode = mode_from(step) or "absorbance"
    wavelength = None
    settings: dict[str, str] = {}
    plate = "Plate 1"
    reads: dict[str, list[PlateRead]] = {}
    i = 0
    while i < len(rows):
        row = rows[i]
        first = cell(row, 0)
        _key, value, _unit = key_value(row)
        if _PLATE.search(first) and not value and not first.lower().startswith("plate template"):
            plate = first  # "Plate 1", "Blank plate", "gch - Plate"
        elif first.lower().startswith(
            ("wavelength:", "emission:", "excitation:", "wavelength [nm]")
        ):
            head, _, rest = first.partition(":")
            settings[head.strip().lower()] = (rest.strip() or value).strip()
            if head.strip().lower() in ("wavelength", "emission"):
                wavelength = leading_number(rest or value)
        grid = grid_at(rows, i) if first else None
        if grid is not None:
            if grid.corner.strip().lower() not in _LAYOUT_CORNERS:
                read = grid_to_read(
                    grid.cells, source=sample.path, label=step, wavelength_nm=wavelength
                )
                read.mode = mode_from(grid.corner) or mode
                read.measured_at = measured_at
                reads.setdefault(plate, []).append(read)
            i = grid.end
            continue
        i += 1
    return reads


def _read(sample: Sample, found: _Found) -> ExportFile:
    general = _info_values(found.info.get("general information", []))
    session = _info_values(found.info.get("session information", []))
    instrument = _info_values(found.info.get("instrument information", []))
    measured_at = session.get("Execution time")
    plates: dict[str, list[PlateRead]] = {}
    derived: list[str] = []
    for name, rows in found.steps:
        step = _step_name(rows) or name
        if not _MEASUREMENT_STEP.match(step):
            derived.append(step)
            continue
        when = cell(rows[2], 0) if len(rows) > 2 else ""
        for plate, reads in _step_reads(name, rows, sample, when or measured_at).items():
            plates.setdefault(plate, []).extend(reads)
    if not plates:
        what = (
            "no measurement step sheets"
            if not found.steps
            else "no raw measurement step with a plate grid"
        )
        raise FormatError(
            f"SkanIt workbook with {what} (settings only, or calculated steps only: "
            f"{', '.join(derived) or 'none'})",
            source=sample.path,
        )
    software = general.get("Report generated with SW version") or session.get("Executed with")
    metadata: dict[str, Any] = {
        "derived_steps": derived,
        "session": session,
        "instrument": instrument,
        "protocol": _info_values(found.info.get("protocol parameters", [])),
    }
    return ExportFile(
        format="skanit",
        plates=[Plate(plate_id=p, reads=r) for p, r in plates.items()],
        instrument={
            "model": instrument.get("Name"),
            "serial": instrument.get("Serial number"),
            "software": " ".join(software.split()) if software else "SkanIt",
        },
        metadata=metadata,
    )


READER: Reader[_Found] = Reader(
    name="skanit",
    kind="plate",
    sniff=_sniff,
    read=_read,
    priority=25,
    max_bytes=32 * 1024 * 1024,
    signature=lambda head: head[:4] == b"PK\x03\x04",
    describe="Thermo SkanIt workbook",
)
