"""A writer of FCS 2.0 / 3.0 / 3.1 files for tests and benchmarks (truth known by design).

Writes what the standard says, plus the real-world quirks on request (blank HEADER data
offsets, ``$ENDDATA`` one byte late, junk above ``$PnR``, odd delimiters, padding), so the
reader can be tested on files whose every value is known.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

Order = Literal["little", "big"]


@dataclass(frozen=True)
class Param:
    name: str
    label: str | None = None
    bits: int = 32
    range: float = 262144.0
    log: str = "0,0"  # $PnE
    gain: float | None = None


def _escape(value: str, delimiter: str) -> str:
    return value.replace(delimiter, delimiter * 2)


def encode_events(
    data: npt.NDArray[np.float64], params: Sequence[Param], datatype: str, order: Order
) -> bytes:
    """The DATA segment for ``data`` (events × parameters), as the writer of a file would."""
    o = "<" if order == "little" else ">"
    if datatype == "F":
        return np.ascontiguousarray(data, dtype=f"{o}f4").tobytes()
    if datatype == "D":
        return np.ascontiguousarray(data, dtype=f"{o}f8").tobytes()
    if datatype == "A":
        widths = [p.bits for p in params]
        rows = [
            "".join(f"{int(v):>{w}d}" for v, w in zip(row, widths, strict=True)) for row in data
        ]
        return "".join(rows).encode("ascii")
    widths = [
        (p.bits + 7) // 8 if p.bits % 8 == 0 or p.bits == 24 else _word(p.bits) for p in params
    ]
    ints = np.asarray(np.rint(data), dtype=np.uint64)
    n = ints.shape[0]
    out = np.zeros((n, sum(widths)), dtype=np.uint8)
    pos = 0
    for k, w in enumerate(widths):
        for b in range(w):
            shift = 8 * ((w - 1 - b) if order == "big" else b)
            out[:, pos + b] = (ints[:, k] >> np.uint64(shift)) & np.uint64(0xFF)
        pos += w
    return out.tobytes()


def _word(bits: int) -> int:
    return next(w for w in (1, 2, 4, 8) if 8 * w >= bits)


def build_dataset(
    data: npt.NDArray[np.float64],
    params: Sequence[Param],
    *,
    version: str = "FCS3.1",
    datatype: str = "F",
    order: Order = "little",
    keywords: Mapping[str, str] | None = None,
    delimiter: str = "/",
    text_start: int = 256,
    nextdata: int = 0,
    blank_header_data: bool = False,
    enddata_off_by_one: bool = False,
    header_data_start: int | None = None,
) -> bytes:
    """One dataset: HEADER, TEXT, DATA. Offsets are relative to the dataset's start."""
    payload = encode_events(data, params, datatype, order)
    kw: dict[str, str] = {
        "$BEGINANALYSIS": "0",
        "$ENDANALYSIS": "0",
        "$BEGINSTEXT": "0",
        "$ENDSTEXT": "0",
        "$BEGINDATA": "0" * 12,
        "$ENDDATA": "0" * 12,
        "$BYTEORD": "1,2,3,4" if order == "little" else "4,3,2,1",
        "$DATATYPE": datatype,
        "$MODE": "L",
        "$NEXTDATA": f"{nextdata:012d}",
        "$PAR": str(len(params)),
        "$TOT": str(data.shape[0]),
    }
    if version == "FCS2.0":
        for key in ("$BEGINANALYSIS", "$ENDANALYSIS", "$BEGINSTEXT", "$ENDSTEXT"):
            del kw[key]
        kw["$BYTEORD"] = "1,2" if order == "little" else "2,1"
    for n, p in enumerate(params, start=1):
        kw[f"$P{n}N"] = p.name
        kw[f"$P{n}B"] = str(p.bits)
        kw[f"$P{n}R"] = f"{p.range:.0f}"
        kw[f"$P{n}E"] = p.log
        if p.label:
            kw[f"$P{n}S"] = p.label
        if p.gain is not None:
            kw[f"$P{n}G"] = f"{p.gain:g}"
    given = dict(keywords or {})  # a given $BEGINDATA/$ENDDATA is written as it is (a lie)
    kw.update(given)

    def text(begin: int, end: int) -> bytes:
        if "$BEGINDATA" not in given:
            kw["$BEGINDATA"] = f"{begin:012d}"
        if "$ENDDATA" not in given:
            kw["$ENDDATA"] = f"{end:012d}"
        body = "".join(
            f"{_escape(k, delimiter)}{delimiter}{_escape(v, delimiter)}{delimiter}"
            for k, v in kw.items()
        )
        return (delimiter + body).encode("utf-8")

    probe = text(0, 0)
    data_begin = text_start + len(probe)
    data_end = data_begin + len(payload) - 1 + (1 if enddata_off_by_one else 0)
    segment = text(data_begin, data_end)
    text_end = text_start + len(segment) - 1
    fields = [text_start, text_end, data_begin, data_end, 0, 0]
    if header_data_start is not None:
        fields[2] = header_data_start
    if blank_header_data:
        fields[2] = fields[3] = -1
    header = (
        version.ljust(6)[:6]
        + "    "
        + "".join(
            " " * 8 if f < 0 else f"{f:>8d}" if f <= 99_999_999 else f"{0:>8d}" for f in fields
        )
    )
    pad = b" " * (text_start - len(header))
    return header.encode("ascii") + pad + segment + payload


def build_file(datasets: Sequence[dict[str, object]]) -> bytes:
    """Several datasets chained by ``$NEXTDATA`` (each dict: build_dataset's arguments)."""
    blobs = [build_dataset(**spec) for spec in datasets]  # type: ignore[arg-type]
    out = b""
    for k, spec in enumerate(datasets):
        nextdata = len(blobs[k]) if k + 1 < len(datasets) else 0
        out += build_dataset(**{**spec, "nextdata": nextdata})  # type: ignore[arg-type]
    return out


def write_fcs(
    path: Path, data: npt.NDArray[np.float64], params: Sequence[Param], **options: object
) -> Path:
    path.write_bytes(build_dataset(data, params, **options))  # type: ignore[arg-type]
    return path
