"""Driver reads as archived documents: the JSON platewatch writes for a read it performed.

A read that platewatch performs through a driver (``platewatch read --store``, a scheduled
timecourse read) becomes a capture like any export: this versioned JSON document is
archived, hashed and analysed by the same plate analysis. The document holds the reads in
the ``parse --json`` shape, the reader's identity and the time of the read.
"""

from __future__ import annotations

import json
from typing import Any

from acquisition.formats.base import Reader, Sample
from acquisition.formats.text import shown
from datamodel import ExportFile, Plate, PlateRead
from errors import FormatError

FORMAT = "platewatch-read"
VERSION = 1


def read_document(
    export: ExportFile,
    *,
    reader: str,
    protocol: str,
    port: str,
    read_at: str,
    extra: dict[str, Any] | None = None,
) -> bytes:
    """The archived bytes of one driver read (UTF-8 JSON, keys in a stable order)."""
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "reader": reader,
        "protocol": protocol,
        "port": port,
        "read_at": read_at,
        "instrument": export.instrument,
        "plates": [
            {"plate": p.plate_id, "barcode": p.barcode, "reads": [r.to_dict() for r in p.reads]}
            for p in export.plates
        ],
        "metadata": export.metadata | (extra or {}),
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _sniff(sample: Sample) -> dict[str, Any] | None:
    head = sample.head.lstrip()
    if not head.startswith("{") or f'"format":"{FORMAT}"' not in head[:200].replace(" ", ""):
        return None
    try:  # platewatch writes these whole (never half-written): broken means damaged
        doc = json.loads(sample.text, parse_constant=_no_constant)
    except ValueError as exc:
        raise FormatError(
            f"a platewatch read document that is not valid JSON ({exc})", source=sample.path
        ) from None
    return doc if isinstance(doc, dict) else None


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number a read holds")


def _read(sample: Sample, doc: dict[str, Any]) -> ExportFile:
    if doc.get("version") != VERSION:
        raise FormatError(
            f"platewatch read document version {doc.get('version')!r} (this platewatch reads {VERSION})",
            source=sample.path,
        )
    try:
        plates = [
            Plate(
                plate_id=str(p["plate"]),
                barcode=None if p.get("barcode") is None else str(p["barcode"]),
                reads=[PlateRead.from_dict(r) for r in p["reads"]],
            )
            for p in doc["plates"]
        ]
        instrument = {
            str(k): (None if v is None else str(v))
            for k, v in dict(doc.get("instrument", {})).items()
        }
        metadata = {
            "reader": doc.get("reader"),
            "read_at": doc.get("read_at"),
            **{str(k): v for k, v in dict(doc.get("metadata", {})).items()},
        }
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise FormatError(
            f"not a valid platewatch read document ({type(exc).__name__}: {shown(str(exc), 80)})",
            source=sample.path,
        ) from None
    return ExportFile(
        format=f"driver:{shown(str(doc.get('protocol', 'unknown')), 40)}",
        plates=plates,
        instrument=instrument,
        metadata=metadata,
    )


READER: Reader[dict[str, Any]] = Reader(
    name="driver-read",
    kind="plate",
    sniff=_sniff,
    read=_read,
    priority=5,
    max_bytes=16 * 1024 * 1024,
    describe="platewatch driver read document (JSON)",
)
