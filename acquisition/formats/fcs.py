"""Flow Cytometry Standard files (FCS 2.0, 3.0, 3.1, 3.2) → :class:`CytometryFile`.

The reader is numpy only and tolerant of every quirk in SCIENCE.md §6 (the segments are
handled in ``fcs_text``, ``fcs_data`` and ``fcs_spill``). Values stay as stored: float32
stays float32 and is a zero-copy view of the file's bytes when the byte order is native;
integers are masked to ``$PnR``. A file still being written (the TEXT or DATA segment runs
past its end) is an :class:`IncompleteFileError`; a file that can never be read is a
:class:`FormatError` naming the keyword or offset at fault.

``fcs_record`` gives the ``platewatch parse FILE.fcs --json`` record of DESIGN.md §5.1.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from acquisition.formats.base import Reader, Sample
from acquisition.formats.fcs_data import Column, byte_order, decode, locate, storage_bits
from acquisition.formats.fcs_spill import find_spillover
from acquisition.formats.fcs_text import (
    HEADER_BYTES,
    Buffer,
    digits,
    float_keyword,
    int_keyword,
    merge_supplemental,
    parse_header,
    parse_text,
    quoted,
)
from analysis.model import jsonable
from datamodel.cytometry import CytometryFile, DataLayout, FcsDataset, FcsParameter
from errors import FormatError, IncompleteFileError

GiB = 1024**3
MAX_BYTES = 4 * GiB
MAX_DATASETS = 64
_FCS = re.compile(rb"FCS[0-9]\.[0-9]")
_TIME = re.compile(r"^(time|hdr-t|time lsw)\b", re.IGNORECASE)
_MAX_BITS = 64


def read_fcs(path: str | Path, data: Buffer | None = None) -> CytometryFile:
    """Read an FCS file (all its datasets). Raises FormatError / IncompleteFileError.

    Without ``data`` the file is read into one buffer (a single copy) that the events
    arrays then view.
    """
    source = Path(path)
    if data is None:
        data = _read_whole(source)
    return read_fcs_bytes(data, source)


PAGE = 4096


def _read_whole(source: Path) -> memoryview:
    """The file in one uninitialised numpy buffer (no zero-fill pass, unbuffered reads),
    placed so that the DATA segment the HEADER names starts on a page boundary: the kernel
    then copies the events as fast as ``numpy.fromfile`` does, and the events arrays are
    aligned views into the buffer."""
    try:
        with source.open("rb", buffering=0) as fh:
            size = fh.seek(0, 2)
            if size > MAX_BYTES:
                raise FormatError(
                    f"{size} bytes is too large for an FCS file (limit {MAX_BYTES})",
                    source=source,
                )
            fh.seek(26)
            field = fh.read(8).strip()
            data_start = int(field) if field.isdigit() else 0
            fh.seek(0)
            raw = np.empty(size + PAGE, dtype=np.uint8)
            shift = (-(raw.ctypes.data + data_start)) % PAGE
            buffer = raw.data[shift : shift + size]
            got = 0
            while got < size:
                n = fh.readinto(buffer[got:])
                if not n:
                    break
                got += n
    except OSError as exc:
        raise FormatError(f"cannot read: {exc.strerror or exc}", source=source) from None
    return buffer[:got]


def read_fcs_bytes(buf: Buffer, source: Path) -> CytometryFile:
    if len(buf) < 6 or not _FCS.fullmatch(bytes(buf[:6])):
        if len(buf) < 6 and b"FCS".startswith(bytes(buf[:3])):
            raise IncompleteFileError("the file ends inside the FCS HEADER", source=source)
        raise FormatError("not an FCS file (no FCSx.y HEADER)", source=source)
    datasets: list[FcsDataset] = []
    base = 0
    while True:
        dataset, nextdata = _read_dataset(buf, base, source, datasets)
        datasets.append(dataset)
        if nextdata == 0:
            break
        following = base + nextdata
        if following <= base + HEADER_BYTES or len(datasets) >= MAX_DATASETS:
            raise FormatError(
                f"$NEXTDATA={nextdata} of the dataset at byte {base} does not point forward "
                "to another dataset",
                source=source,
            )
        if following >= len(buf):
            raise IncompleteFileError(
                f"$NEXTDATA points to byte {following}, beyond the end of the file "
                f"({len(buf)} bytes): still being written?",
                source=source,
            )
        base = following
    first = datasets[0].keywords
    metadata: dict[str, Any] = {
        "instrument": first.get("$CYT") or None,
        "serial": first.get("$CYTSN") or None,
        "software": first.get("CREATOR") or first.get("$CREATOR") or None,
        "versions": [d.version for d in datasets],
    }
    return CytometryFile(format="fcs", datasets=datasets, metadata=metadata)


def _read_dataset(
    buf: Buffer, base: int, source: Path, earlier: list[FcsDataset]
) -> tuple[FcsDataset, int]:
    header = parse_header(buf, base, source)
    if header.text == (0, 0):
        raise FormatError("the HEADER gives no TEXT segment offsets", source=source)
    text = parse_text(buf, base + header.text[0], base + header.text[1], source)
    merge_supplemental(text, buf, base, source)
    kw = text.keywords
    warnings = list(text.warnings)

    n_par = int_keyword(kw, "$PAR", source)
    if n_par < 1 or n_par * 2 > len(kw):
        raise FormatError(
            f"$PAR={n_par}, but TEXT describes far fewer parameters ({len(kw)} keywords)",
            source=source,
        )
    datatype = kw.get("$DATATYPE", "").strip().upper()
    if datatype not in ("I", "F", "D", "A"):
        raise FormatError(f"$DATATYPE={quoted(datatype, 10)} is not I, F, D or A", source=source)
    mode = kw.get("$MODE", "L").strip().upper() or "L"
    if mode != "L":
        raise FormatError(
            f"$MODE={quoted(mode, 10)}: histogram-mode (correlated/uncorrelated) data are not "
            "supported, only list mode",
            source=source,
        )
    if kw.get("$BYTEORD", "").strip():
        order = byte_order(kw["$BYTEORD"], source)
    elif datatype == "A":
        order = "little"
    else:
        raise FormatError("required keyword $BYTEORD is missing", source=source)

    parameters, columns, notes = _parameters(kw, n_par, datatype, source)
    warnings += notes
    free_format = any(c.bits is None for c in columns)
    per_event = sum(c.storage_bits // 8 for c in columns)
    tot = int_keyword(kw, "$TOT", source, default=-1)
    expected = None if tot < 0 or free_format else tot * per_event
    segment = locate(header, kw, base=base, file_size=len(buf), expected=expected, source=source)
    if segment.note:
        warnings.append(segment.note)
    if tot < 0:
        if free_format:
            raise FormatError("free-format ASCII data without $TOT", source=source)
        tot = segment.length // per_event
        warnings.append(f"no $TOT: {tot} events from the DATA segment length")
        segment = replace(segment, length=tot * per_event)
    nextdata = _nextdata(kw, source)
    alone = nextdata == 0 and not any(
        d.layout is not None
        and d.layout.begin < segment.begin + segment.length
        and segment.begin < d.layout.begin + d.layout.length
        for d in earlier
    )  # the last dataset, sharing no bytes with the others: its events may be masked in place
    events, masked = decode(buf, segment, tot, columns, datatype, order, source, in_place=alone)
    spillover, spill_notes = find_spillover(kw, parameters)
    warnings += spill_notes
    layout = DataLayout(
        datatype=datatype,  # type: ignore[arg-type]
        byteorder=order,
        begin=segment.begin,
        length=segment.length,
        source=segment.source,
        storage_bits=tuple(c.storage_bits for c in columns),
        masked=masked,
    )
    dataset = FcsDataset(
        version=header.version,
        parameters=parameters,
        events=events,
        keywords=kw,
        spillover=spillover,
        layout=layout,
        offset=base,
        warnings=warnings,
    )
    return dataset, nextdata


def _nextdata(kw: dict[str, str], source: Path) -> int:
    value = kw.get("$NEXTDATA", "0").strip() or "0"
    if not digits(value):
        raise FormatError(f"$NEXTDATA={quoted(value, 20)} is not an offset", source=source)
    return int(value)


def _parameters(
    kw: dict[str, str], n_par: int, datatype: str, source: Path
) -> tuple[list[FcsParameter], list[Column], list[str]]:
    parameters: list[FcsParameter] = []
    columns: list[Column] = []
    notes: list[str] = []
    timestep = float_keyword(kw, "$TIMESTEP")
    if kw.get("$TIMESTEP", "").strip() and timestep is None:
        notes.append(f"$TIMESTEP={quoted(kw['$TIMESTEP'], 20)} is not a number; time left unscaled")
    zero_offset: list[int] = []
    for n in range(1, n_par + 1):
        name = kw.get(f"$P{n}N", "").strip() or f"P{n}"
        label = kw.get(f"$P{n}S", "").strip() or None
        raw_bits = kw.get(f"$P{n}B", "").strip()
        bits: int | None
        if raw_bits == "*" and datatype == "A":
            bits = None
        elif digits(raw_bits) and 0 < int(raw_bits) <= (_MAX_BITS if datatype != "A" else 64):
            bits = int(raw_bits)
        else:
            raise FormatError(
                f"$P{n}B={quoted(raw_bits, 20)} is not a usable bit width", source=source
            )
        if (datatype == "F" and bits != 32) or (datatype == "D" and bits != 64):
            notes.append(f"$P{n}B={bits} with $DATATYPE={datatype}: read as the type's width")
        rng = float_keyword(kw, f"$P{n}R")
        if rng is None or rng <= 0:
            notes.append(f"$P{n}R missing or not positive: no range mask for {name}")
            rng = 0.0
        decades, offset = _log_amplification(kw.get(f"$P{n}E", ""), n, datatype, notes)
        if decades > 0 and offset == 0:
            zero_offset.append(n)
            offset = 1.0
        if decades > 0 and rng <= 0:
            notes.append(f"$P{n}E is logarithmic but $P{n}R is unusable: read as linear")
            decades, offset = 0.0, 0.0
        gain = float_keyword(kw, f"$P{n}G")
        if gain is None or gain <= 0:
            gain = 1.0
        is_time = _TIME.match(name) is not None
        parameters.append(
            FcsParameter(
                index=n,
                name=name,
                label=label,
                bits=bits,
                range=rng,
                log_decades=decades,
                log_offset=offset,
                gain=gain,
                timestep=timestep if is_time and timestep and timestep > 0 else None,
            )
        )
        if bits is None:  # free-format ASCII
            columns.append(Column(None, 0, rng))
        else:
            width = 8 * bits if datatype == "A" else storage_bits(bits, datatype)
            columns.append(Column(bits, width, rng))
    if zero_offset:
        notes.append(f"$PnE with f2=0 on parameters {zero_offset}: read as f2=1")
    widths = {c.bits for c in columns if c.bits is not None and c.bits % 8}
    if widths and datatype == "I":
        notes.append(f"$PnB {sorted(widths)} are not whole bytes: read as 8/16/32/64-bit words")
    return parameters, columns, notes


def _log_amplification(value: str, n: int, datatype: str, notes: list[str]) -> tuple[float, float]:
    text = value.strip()
    if not text:
        return 0.0, 0.0
    parts = text.split(",")
    try:
        decades, offset = float(parts[0]), float(parts[1]) if len(parts) > 1 else 0.0
    except ValueError:
        notes.append(f"$P{n}E={quoted(text, 20)} is not f1,f2: read as linear")
        return 0.0, 0.0
    if not (math.isfinite(decades) and math.isfinite(offset)) or decades < 0 or offset < 0:
        notes.append(f"$P{n}E={quoted(text, 20)} is not usable: read as linear")
        return 0.0, 0.0
    if decades > 0 and datatype in ("F", "D"):
        notes.append(
            f"$P{n}E={quoted(text, 20)} on floating-point data ignored (values are linear)"
        )
        return 0.0, 0.0
    if decades > 30:
        notes.append(f"$P{n}E={quoted(text, 20)}: more decades than any detector; read as linear")
        return 0.0, 0.0
    return decades, offset


# --- the parse --json record -------------------------------------------------------------


def fcs_record(
    file: CytometryFile, *, path: str | None = None, sha256: str | None = None
) -> dict[str, Any]:
    """The ``parse --json`` record (DESIGN.md §5.1): per dataset its version, events,
    parameters with statistics of the raw stored values, keywords and spillover."""
    record: dict[str, Any] = {}
    if path is not None:
        record["path"] = path
    if sha256 is not None:
        record["sha256"] = sha256
    record["format"] = "fcs"
    record["instrument"] = {k: file.metadata.get(k) for k in ("instrument", "serial", "software")}
    record["datasets"] = [_dataset_record(d) for d in file.datasets]
    return record


def _dataset_record(d: FcsDataset) -> dict[str, Any]:
    params = []
    for k, p in enumerate(d.parameters):
        column = d.events[:, k]
        if column.dtype.kind == "f":
            column = column[np.isfinite(column)]
        empty = column.size == 0
        params.append(
            {
                "name": p.name,
                "label": p.label,
                "bits": p.bits,
                "range": p.range,
                "min": None if empty else column.min().item(),
                "max": None if empty else column.max().item(),
                "mean": None if empty else float(np.mean(column, dtype=np.float64)),
            }
        )
    layout = d.layout
    record: dict[str, Any] = jsonable(
        {
            "version": d.version,
            "events": d.n_events,
            "parameters": params,
            "keywords": dict(d.keywords),
            "spillover": d.spillover.to_dict() if d.spillover is not None else None,
            "well_id": d.well_id,
            "data": None
            if layout is None
            else {
                "datatype": layout.datatype,
                "byteorder": layout.byteorder,
                "offset": layout.begin,
                "bytes": layout.length,
                "offsets_from": layout.source,
                "masked_parameters": list(layout.masked),
            },
            "warnings": list(d.warnings),
        }
    )
    return record


def fcs_summary(file: CytometryFile) -> list[str]:
    """Human-readable lines for ``platewatch parse FILE.fcs`` without ``--json``."""
    lines = []
    for k, d in enumerate(file.datasets):
        names = ", ".join(p.name + (f" ({p.label})" if p.label else "") for p in d.parameters)
        spill = f", spillover from {d.spillover.source}" if d.spillover else ""
        well = f", well {d.well_id}" if d.well_id else ""
        lines.append(
            f"dataset {k}: {d.version}, {d.n_events} events × {len(d.parameters)} parameters"
            f"{spill}{well}: {names}"
        )
        lines += [f"  note: {w}" for w in d.warnings]
    return lines


# --- the reader contract -------------------------------------------------------------------


def _sniff(sample: Sample) -> str | None:
    head = sample.data[:6]
    return head.decode("ascii") if _FCS.fullmatch(head) else None


def _read(sample: Sample, found: str) -> CytometryFile:
    return read_fcs_bytes(sample.data, sample.path)


READER: Reader[str] = Reader(
    name="fcs",
    kind="cytometry",
    sniff=_sniff,
    read=_read,
    priority=5,
    max_bytes=MAX_BYTES,
    signature=lambda head: head[:3] == b"FCS",
    describe="Flow Cytometry Standard file (FCS 2.0–3.2)",
)
