"""FCS DATA segments (SCIENCE.md §6): where the events are, and decoding them with numpy.

* Offsets: the HEADER and TEXT (``$BEGINDATA``/``$ENDDATA``) candidates are checked against
  the length ``$TOT × Σ$PnB / 8`` and the file; the one that fits is used (Accuri C6 and
  CyAn disagree with themselves, MACSQuant/Partec/Diva put ``$ENDDATA`` one byte late, big
  files leave the HEADER blank, S1400EXi points the HEADER inside TEXT).
* Widths 8/16/32/64 are read zero-copy (``np.frombuffer``); mixed widths through a
  structured dtype; 24-bit (and other odd byte counts) by a byte gather; ``$PnB`` values that
  are not whole bytes (Beckman CXP writes 10) are stored in the next 8/16/32/64-bit word.
* Integer values are masked to ``$PnR`` (the next power of two) in one vectorised AND.
* Nothing is allocated before the file is known to hold it: a lying ``$TOT``/``$PAR`` is a
  FormatError, a data segment running past the end of the file an IncompleteFileError.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from acquisition.formats.fcs_text import HEADER_BYTES, Buffer, Header, digits, quoted
from errors import FormatError, IncompleteFileError

Order = Literal["little", "big"]
_NATIVE: Order = "little" if sys.byteorder == "little" else "big"
_WORDS = (8, 16, 32, 64)


@dataclass(frozen=True)
class Column:
    """How one parameter is stored."""

    bits: int | None  # $PnB (None: free-format ASCII)
    storage_bits: int  # bits it actually occupies in each event
    range: float  # $PnR (0 when unknown)


@dataclass(frozen=True)
class Segment:
    begin: int  # absolute offset of the first byte
    length: int  # bytes to read
    source: str  # "HEADER", "TEXT"
    note: str | None = None  # a quirk worth recording


def byte_order(value: str, source: Path) -> Order:
    """``$BYTEORD``: 1,2,3,4 / 1,2 → little; 4,3,2,1 / 2,1 → big; anything else refused."""
    parts = [d.strip() for d in value.split(",")]
    if not all(digits(d) for d in parts) or len(parts) > 8:
        raise FormatError(f"$BYTEORD={quoted(value, 20)} is not a byte order", source=source)
    numbers = [int(d) for d in parts]
    if numbers == sorted(numbers) and numbers == list(range(1, len(numbers) + 1)):
        return "little"
    if numbers == sorted(numbers, reverse=True) and sorted(numbers) == list(
        range(1, len(numbers) + 1)
    ):
        return "big"
    raise FormatError(
        f"$BYTEORD={quoted(value, 20)}: mixed-endian byte orders are not supported", source=source
    )


def storage_bits(bits: int, datatype: str) -> int:
    """Bits a value occupies: floats by type, whole-byte integers as declared, others rounded
    up to the next 8/16/32/64-bit word (``$PnB=10`` stored in 16 bits, Beckman CXP)."""
    if datatype == "F":
        return 32
    if datatype == "D":
        return 64
    if bits % 8 == 0:
        return bits
    return next(w for w in _WORDS if w >= bits)


def locate(
    header: Header,
    keywords: dict[str, str],
    *,
    base: int,
    file_size: int,
    expected: int | None,
    source: Path,
) -> Segment:
    """The DATA segment: the candidate offsets that agree with the expected length and file.

    ``expected`` is ``$TOT × bytes per event`` (None when ``$TOT`` is absent or the data are
    free-format ASCII: then the declared segment is taken as it is).
    """
    text_span = (base + header.text[0], base + header.text[1])
    candidates: list[tuple[str, int, int]] = []
    if header.data[0] or header.data[1]:
        candidates.append(("HEADER", header.data[0], header.data[1]))
    tb, te = _offset(keywords, "$BEGINDATA"), _offset(keywords, "$ENDDATA")
    if tb is not None and te is not None and (tb or te):
        candidates.append(("TEXT", tb, te))
    if expected == 0:
        return Segment(base + (candidates[0][1] if candidates else 0), 0, "empty")

    usable: list[tuple[str, int, int]] = []
    for name, begin, end in candidates:
        start = base + begin
        if begin < HEADER_BYTES or end < begin - 1:
            continue
        if start <= text_span[1] and start + max(end - begin + 1, 1) > text_span[0]:
            continue  # points inside TEXT (S1400EXi's HEADER)
        usable.append((name, start, end - begin + 1))
    if not usable:
        raise FormatError(
            "no usable DATA offsets (HEADER "
            f"{header.data[0]}..{header.data[1]}, $BEGINDATA/$ENDDATA {tb}..{te})",
            source=source,
        )
    if expected is None:
        name, start, length = usable[0]
        if start + length > file_size:
            raise IncompleteFileError(
                f"DATA segment ({name}) ends at byte {start + length - 1}, beyond the end of the "
                f"file ({file_size} bytes): still being written?",
                source=source,
            )
        return Segment(start, length, name)

    def fits(start: int) -> bool:
        return start + expected <= file_size

    starts = {start for _, start, _ in usable}
    for slack, note in ((0, None), (1, "DATA end offset one byte past the data")):
        for name, start, length in usable:
            if length == expected + slack and fits(start):
                if len(starts) > 1:
                    others = ", ".join(f"{n} {s - base}" for n, s, _ in usable if s != start)
                    note = f"DATA offsets disagree ({others}); {name} {start - base} used"
                return Segment(start, expected, name, note)
    for name, start, length in usable:
        if fits(start):
            return Segment(
                start,
                expected,
                name,
                f"{name} DATA segment is {length} bytes, $TOT × event size is {expected}",
            )
    name, start, length = max(usable, key=lambda c: c[1] + c[2])
    declared_end = start + length
    if declared_end > file_size or length >= expected:
        raise IncompleteFileError(
            f"DATA segment ends at byte {start + expected - 1}, beyond the end of the file "
            f"({file_size} bytes): still being written?",
            source=source,
        )
    raise FormatError(
        f"$TOT and $PnB say {expected} bytes of events, the file holds {file_size - start} "
        f"after the DATA start ({name} offset {start - base})",
        source=source,
    )


def _offset(keywords: dict[str, str], key: str) -> int | None:
    value = keywords.get(key, "").strip()
    return int(value) if digits(value) else None


def decode(
    buf: Buffer,
    segment: Segment,
    n_events: int,
    columns: list[Column],
    datatype: str,
    order: Order,
    source: Path,
    *,
    in_place: bool = False,
) -> tuple[npt.NDArray[Any], tuple[int, ...]]:
    """Events × parameters of raw stored values, and the 1-based parameters that were masked.

    The caller has checked that ``segment`` lies inside ``buf`` and holds ``n_events``.
    ``in_place`` lets the masking write into ``buf`` (a writable buffer no other dataset
    reads), saving a copy of the events.
    """
    if datatype == "A":
        return _ascii(buf, segment, n_events, columns, source), ()
    widths = [c.storage_bits // 8 for c in columns]
    per_event = sum(widths)
    count = n_events * len(columns)
    prefix = "<" if order == "little" else ">"
    if datatype in ("F", "D"):
        dtype = np.dtype(f"{prefix}f{widths[0]}")
        events = np.frombuffer(buf, dtype=dtype, count=count, offset=segment.begin)
        return _native(events.reshape(n_events, len(columns))), ()
    if len(set(widths)) == 1 and widths[0] in (1, 2, 4, 8):
        dtype = np.dtype(f"{prefix}u{widths[0]}")
        view = np.frombuffer(buf, dtype=dtype, count=count, offset=segment.begin)
        events = _native(view.reshape(n_events, len(columns)))
        owned = not np.may_share_memory(events, view)  # byte-swapped: a copy we own
    else:
        events = _mixed(buf, segment.begin, n_events, widths, per_event, prefix)
        owned = True
    return _mask(events, columns, writable=owned or (in_place and events.flags.writeable))


def _native(events: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """The same values in native byte order (a copy only when the file's order differs)."""
    if events.dtype.byteorder in ("=", "|") or events.dtype.byteorder == (
        "<" if _NATIVE == "little" else ">"
    ):
        return events
    return events.astype(events.dtype.newbyteorder("="))


def _mixed(
    buf: Buffer, begin: int, n: int, widths: list[int], per_event: int, prefix: str
) -> npt.NDArray[Any]:
    """Mixed or odd widths: a structured view for whole words, a byte gather for the rest."""
    widest = max(widths)
    out_bytes = next(w // 8 for w in _WORDS if w // 8 >= widest)
    out = np.empty((n, len(widths)), dtype=np.dtype(f"u{out_bytes}"))
    raw = np.frombuffer(buf, dtype=np.uint8, count=n * per_event, offset=begin).reshape(
        n, per_event
    )
    offsets = np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(int)
    word_fields = [(k, o, w) for k, (o, w) in enumerate(zip(offsets, widths, strict=True))]
    whole = [(k, o, w) for k, o, w in word_fields if w in (1, 2, 4, 8)]
    if whole:
        record = np.dtype(
            {
                "names": [f"p{k}" for k, _, _ in whole],
                "formats": [f"{prefix}u{w}" for _, _, w in whole],
                "offsets": [int(o) for _, o, _ in whole],
                "itemsize": per_event,
            }
        )
        records = np.frombuffer(buf, dtype=record, count=n, offset=begin)
        for k, _, _ in whole:
            out[:, k] = records[f"p{k}"]
    for k, o, w in word_fields:
        if w in (1, 2, 4, 8):
            continue
        acc = np.zeros(n, dtype=out.dtype)
        for b in range(w):
            shift = 8 * ((w - 1 - b) if prefix == ">" else b)
            acc = np.bitwise_or(acc, np.left_shift(raw[:, o + b].astype(out.dtype), shift))
        out[:, k] = acc
    return out


def _mask(
    events: npt.NDArray[Any], columns: list[Column], *, writable: bool
) -> tuple[npt.NDArray[Any], tuple[int, ...]]:
    """AND every integer column with 2^ceil(log2 $PnR) − 1 where that is below its width
    (into ``events`` itself when it may be written, else into a new array)."""
    all_ones = (1 << (events.dtype.itemsize * 8)) - 1
    masks = np.full(len(columns), all_ones, dtype=events.dtype)
    masked: list[int] = []
    for k, column in enumerate(columns):
        used = _bits_for_range(column.range)
        if used is not None and used < column.storage_bits:
            masks[k] = (1 << used) - 1
            masked.append(k + 1)
    if not masked:
        return events, ()
    if writable and events.flags.writeable:
        return np.bitwise_and(events, masks, out=events), tuple(masked)
    return np.bitwise_and(events, masks), tuple(masked)


def _bits_for_range(value: float) -> int | None:
    if not (value >= 1 and math.isfinite(value)):
        return None
    return max(1, math.ceil(math.log2(value)))


def _ascii(
    buf: Buffer, segment: Segment, n: int, columns: list[Column], source: Path
) -> npt.NDArray[np.float64]:
    raw = bytes(buf[segment.begin : segment.begin + segment.length])
    if any(c.bits is None for c in columns):  # free format: separated by space, comma, tab, CR/LF
        tokens = raw.replace(b",", b" ").split()
        if len(tokens) < n * len(columns):
            raise FormatError(
                f"free-format ASCII DATA holds {len(tokens)} values, $TOT × $PAR is "
                f"{n * len(columns)}",
                source=source,
            )
        tokens = tokens[: n * len(columns)]
        try:
            values = np.array([float(t) for t in tokens], dtype=np.float64)
        except ValueError:
            raise FormatError(
                "ASCII DATA holds a value that is not a number", source=source
            ) from None
        return values.reshape(n, len(columns))
    widths = [c.storage_bits // 8 for c in columns]
    per_event = sum(widths)
    table = np.frombuffer(raw, dtype=np.uint8, count=n * per_event).reshape(n, per_event)
    out = np.empty((n, len(columns)), dtype=np.float64)
    start = 0
    for k, w in enumerate(widths):
        cells = np.ascontiguousarray(table[:, start : start + w]).view(f"S{w}").ravel()
        try:
            out[:, k] = cells.astype(np.float64)
        except ValueError:
            raise FormatError(
                f"ASCII DATA of parameter {k + 1} holds a value that is not a number",
                source=source,
            ) from None
        start += w
    return out
