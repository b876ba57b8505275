"""Allotrope Simple Model (ASM) JSON of plate reads: the plate-reader schema REC/2025/03.

That is the schema version allotropy 0.1.150 itself writes for plate readers
(``http://purl.allotrope.org/manifests/plate-reader/REC/2025/03/plate-reader.manifest``),
so a LIMS or ELN that takes allotropy's documents takes these. The layout follows it:

* ``device system document`` (model, serial) and ``data system document`` (the file, its
  SHA-256, the exporting software, platewatch as the converter);
* one ``plate reader document`` per plate and well, whose ``measurement aggregate
  document`` holds the measurement time, the plate's well count and one ``measurement
  document`` per read of that well: a point measurement (``absorbance``, ``fluorescence``
  or ``luminescence``) for endpoint reads, or a profile data cube over elapsed time for a
  kinetic series (reads sharing label and wavelength with a time);
* a well without a usable value keeps its place with ``-0.0`` and an ``error document``
  holding the export's raw token (or the status), as allotropy writes them; wells that
  were not read are left out;
* analysis results go where the schema has room for them: every number of a fitted curve
  (IC50, its CI, b/c/d/e) and the plate QC numbers become ``calculated data documents``
  whose data sources are the plate's measurements; the verdict and the flags, which are
  words, go in the custom information of the plate's first document.

Units: the schema allows absorbance only in ``mAU``; like allotropy, the value written is
the OD the export shows (no factor 1000), so documents compare one to one with
allotropy's. Measurement times are the export's own date text turned into ISO 8601 when
its form is recognised (taken as UTC, as allotropy does), else the time of the export
file; the raw text is kept beside it. Identifiers are UUIDs derived from the file's
SHA-256, so the same file always gives the same document.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
from pathlib import PurePath
from typing import Any

from datamodel import ExportFile, PlateRead, WellStatus, well_name

MANIFEST = "http://purl.allotrope.org/manifests/plate-reader/REC/2025/03/plate-reader.manifest"
CONVERTER = "platewatch"
_NEGATIVE_ZERO = -0.0

_QUANTITY = {
    "absorbance": "absorbance",
    "fluorescence": "fluorescence",
    "luminescence": "luminescence",
}
_UNIT = {"absorbance": "mAU", "fluorescence": "RFU", "luminescence": "RLU", "other": "(unitless)"}
_CUBE = {
    "absorbance": "absorption profile data cube",
    "fluorescence": "fluorescence emission profile data cube",
    "luminescence": "luminescence profile data cube",
}
_DETECTION = {
    "absorbance": "Absorbance",
    "fluorescence": "Fluorescence",
    "luminescence": "Luminescence",
}
_DATE_FORMATS = (
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %H:%M:%S",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%d/%m/%Y %H:%M:%S",
    "%A, %B %d, %Y %H:%M:%S",
    "%m/%d/%Y",
    "%Y-%m-%d",
)


def iso_time(text: str | None) -> str | None:
    """The export's date text as ISO 8601 (UTC), or None when its form is not known."""
    if not text:
        return None
    cleaned = re.sub(r"\s+", " ", text.strip())
    cleaned = re.sub(r"\.[0-9]+$", "", cleaned)
    for fmt in _DATE_FORMATS:
        try:
            stamp = dt.datetime.strptime(cleaned, fmt)
        except ValueError:
            continue
        return stamp.replace(tzinfo=dt.UTC).isoformat()
    return None


class _Ids:
    """Deterministic UUIDs: the same file gives the same identifiers."""

    def __init__(self, sha256: str) -> None:
        self.namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"platewatch:{sha256}")

    def __call__(self, *parts: object) -> str:
        return str(uuid.uuid5(self.namespace, "/".join(str(p) for p in parts)))


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit}


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _series(reads: list[PlateRead]) -> list[list[PlateRead]]:
    """Reads grouped into kinetic series (same label, mode, wavelength, with times) and
    single reads, in export order."""
    groups: dict[tuple[str, str, float | None], list[PlateRead]] = {}
    order: list[list[PlateRead]] = []
    for read in reads:
        if read.time_s is None:
            order.append([read])
            continue
        key = (read.label, read.mode, read.wavelength_nm)
        if key not in groups:
            groups[key] = []
            order.append(groups[key])
        groups[key].append(read)
    return order


def _device_control(read: PlateRead, export: ExportFile) -> dict[str, Any]:
    doc: dict[str, Any] = {"device type": "plate reader"}
    if read.mode in _DETECTION:
        doc["detection type"] = _DETECTION[read.mode]
    if read.wavelength_nm is not None and read.mode != "luminescence":
        doc["detector wavelength setting"] = _quantity(float(read.wavelength_nm), "nm")
    return {"device control document": [doc]}


def _error(read: PlateRead, r: int, c: int, feature: str) -> dict[str, str]:
    token = read.raw_tokens.get(well_name(r, c)) or str(read.status[r, c])
    return {"error": token, "error feature": feature}


def _point(
    read: PlateRead, r: int, c: int, base: dict[str, Any], export: ExportFile
) -> dict[str, Any] | None:
    status = read.status[r, c]
    if status == WellStatus.NOT_READ:
        return None
    quantity = _QUANTITY.get(read.mode, "absorbance")
    doc = dict(base)
    doc["device control aggregate document"] = _device_control(read, export)
    if status == WellStatus.OK:
        doc[quantity] = _quantity(float(read.values[r, c]), _UNIT.get(read.mode, "mAU"))
    else:
        doc[quantity] = _quantity(_NEGATIVE_ZERO, _UNIT.get(read.mode, "mAU"))
        doc["error aggregate document"] = {"error document": [_error(read, r, c, quantity)]}
    if read.temperature_c is not None:
        doc["compartment temperature"] = _quantity(float(read.temperature_c), "degC")
    return doc


def _cube(
    series: list[PlateRead], r: int, c: int, base: dict[str, Any], export: ExportFile
) -> dict[str, Any] | None:
    points = [rd for rd in series if rd.status[r, c] != WellStatus.NOT_READ]
    if not points:
        return None
    first = points[0]
    quantity = _QUANTITY.get(first.mode, "absorbance")
    unit = _UNIT.get(first.mode, "mAU")
    values: list[float] = []
    errors: list[dict[str, str]] = []
    for rd in points:
        if rd.status[r, c] == WellStatus.OK:
            values.append(float(rd.values[r, c]))
        else:
            values.append(_NEGATIVE_ZERO)
            errors.append(_error(rd, r, c, f"{rd.time_s:g}s"))
    doc = dict(base)
    doc["device control aggregate document"] = _device_control(first, export)
    doc[_CUBE.get(first.mode, _CUBE["absorbance"])] = {
        "label": first.label or quantity,
        "cube-structure": {
            "dimensions": [
                {"@componentDatatype": "double", "concept": "elapsed time", "unit": "s"}
            ],
            "measures": [{"@componentDatatype": "double", "concept": quantity, "unit": unit}],
        },
        "data": {"dimensions": [[float(rd.time_s or 0.0) for rd in points]], "measures": [values]},
    }
    if errors:
        doc["error aggregate document"] = {"error document": errors}
    return doc


def asm_document(
    export: ExportFile, *, source: str, sha256: str, results: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The ASM document of one export (and its analysis ``results``, one dict per plate in
    the ``analyze --json`` shape: ``verdict``, ``flags``, ``curves``, ``qc``)."""
    ids = _Ids(sha256)
    name = PurePath(source).name
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    documents: list[dict[str, Any]] = []
    sources_by_plate: dict[int, list[str]] = {}
    for p, plate in enumerate(export.plates):
        groups = _series(plate.reads)
        measured = next((rd.measured_at for rd in plate.reads if rd.measured_at), None)
        when = iso_time(measured) or now
        rows, cols = plate.reads[0].shape if plate.reads else (8, 12)
        for r in range(rows):
            for c in range(cols):
                well = well_name(r, c)
                measurements: list[dict[str, Any]] = []
                for g, group in enumerate(groups):
                    if group[0].shape != (rows, cols):
                        continue
                    base = {
                        "measurement identifier": ids(p, g, well),
                        "sample document": {
                            "location identifier": well,
                            "sample identifier": f"{plate.plate_id} {well}",
                            "well plate identifier": plate.barcode or plate.plate_id,
                        },
                    }
                    doc = (
                        _cube(group, r, c, base, export)
                        if group[0].time_s is not None
                        else _point(group[0], r, c, base, export)
                    )
                    if doc is not None:
                        measurements.append(doc)
                        sources_by_plate.setdefault(p, []).append(doc["measurement identifier"])
                if not measurements:
                    continue
                aggregate: dict[str, Any] = {
                    "measurement time": when,
                    "plate well count": _quantity(rows * cols, "#"),
                    "container type": "well plate",
                    "measurement document": measurements,
                }
                if measured:
                    aggregate["custom information document"] = {
                        "measurement time as exported": measured
                    }
                documents.append({"measurement aggregate document": aggregate})
    aggregate_doc: dict[str, Any] = {
        "device system document": {
            "device identifier": export.instrument.get("model") or "N/A",
            "model number": export.instrument.get("model") or "N/A",
        },
        "data system document": {
            "ASM file identifier": f"{PurePath(name).stem}.json",
            "data system instance identifier": "N/A",
            "ASM converter name": CONVERTER,
            "ASM converter version": _version(),
            "UNC path": source,
            "file name": name,
            "software name": export.instrument.get("software") or export.format,
            "custom information document": {"sha256": sha256, "platewatch format": export.format},
        },
        "plate reader document": documents,
    }
    serial = export.instrument.get("serial")
    if serial:
        aggregate_doc["device system document"]["equipment serial number"] = serial
    calculated = _calculated(results or [], sources_by_plate, ids)
    if calculated:
        aggregate_doc["calculated data aggregate document"] = {
            "calculated data document": calculated
        }
    _attach_verdicts(results or [], documents, export)
    return {"$asm.manifest": MANIFEST, "plate reader aggregate document": aggregate_doc}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("platewatch")
    except PackageNotFoundError:
        return "0"


def _calculated(
    results: list[dict[str, Any]], sources: dict[int, list[str]], ids: _Ids
) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for p, result in enumerate(results):
        plate_sources = [
            {"data source identifier": s, "data source feature": "measurement"}
            for s in sources.get(p, [])
        ]
        if not plate_sources:
            continue
        numbers: list[tuple[str, float]] = []
        for curve in result.get("curves") or []:
            group = curve.get("group") or {}
            tag = (
                " ".join(f"{k}={v}" for k, v in sorted(group.items()))
                if isinstance(group, dict)
                else str(group)
            )
            for key in ("ic50", "absolute_ic50", "b", "c", "d", "e", "rse"):
                v = _number(curve.get(key))
                if v is not None:
                    numbers.append((f"{key.upper() if 'ic50' in key else key} [{tag}]", v))
            ci = curve.get("ic50_ci")
            if isinstance(ci, list | tuple) and len(ci) == 2:
                for side, v in zip(("lower", "upper"), ci, strict=True):
                    n = _number(v)
                    if n is not None:
                        numbers.append((f"IC50 CI {side} [{tag}]", n))
        for key, value in sorted((result.get("qc") or {}).items()):
            v = _number(value)
            if v is not None:
                numbers.append((f"QC {key}", v))
        for k, (label, value) in enumerate(numbers):
            docs.append(
                {
                    "calculated data identifier": ids("calc", p, k, label),
                    "calculated data name": label,
                    "calculated result": _quantity(value, "(unitless)"),
                    "data source aggregate document": {"data source document": plate_sources},
                }
            )
    return docs


def _attach_verdicts(
    results: list[dict[str, Any]], documents: list[dict[str, Any]], export: ExportFile
) -> None:
    """Verdict and flag codes in the custom information of each plate's first document."""
    by_plate: dict[str, dict[str, Any]] = {}
    for plate, result in zip(export.plates, results, strict=False):
        by_plate[plate.barcode or plate.plate_id] = result
    seen: set[str] = set()
    for doc in documents:
        first = doc["measurement aggregate document"]["measurement document"][0]
        plate_id = first["sample document"]["well plate identifier"]
        if plate_id in seen or plate_id not in by_plate:
            continue
        seen.add(plate_id)
        result = by_plate[plate_id]
        info = doc["measurement aggregate document"].setdefault("custom information document", {})
        if result.get("verdict") is not None:
            info["platewatch verdict"] = str(result["verdict"])
        flags = [str(f.get("code")) for f in result.get("flags") or [] if isinstance(f, dict)]
        if flags:
            info["platewatch flags"] = ", ".join(flags)
