"""Shared helpers of the export readers: decoding, cell tokens, numbers, wavelengths."""

from __future__ import annotations

import codecs
import math
import re
from collections.abc import Iterable, Iterator

import numpy as np

from datamodel import PlateRead, WellStatus, plate_format_for, well_name
from errors import FormatError

_TOKENS: dict[str, WellStatus] = {
    "ovrflw": WellStatus.OVERFLOW,
    "over": WellStatus.OVERFLOW,
    "overflow": WellStatus.OVERFLOW,
    "#sat": WellStatus.OVERFLOW,
    "sat": WellStatus.OVERFLOW,
    "range?": WellStatus.OVERFLOW,
    "*": WellStatus.OVERFLOW,  # Bio-Rad: OD > 3.000
    "under": WellStatus.UNDERFLOW,
    "underflow": WellStatus.UNDERFLOW,
    "missed": WellStatus.MISSED,
    "masked": WellStatus.MASKED,
    "?????": WellStatus.INVALID,
    "invalid": WellStatus.INVALID,
    "error": WellStatus.INVALID,
    "#err": WellStatus.INVALID,
    "path?": WellStatus.INVALID,
    "nan": WellStatus.INVALID,
    "n/a": WellStatus.INVALID,
}
_NUMBER = re.compile(r"^[+-]?([0-9]+([.,][0-9]*)?|[.,][0-9]+)([eE][+-]?[0-9]+)?$", re.ASCII)
# Three or four digits, not part of a longer number ('1e977', '0.570', '4500')
_WAVELENGTH = re.compile(
    r"(?<![0-9.])(?<![0-9][eE])(?<![0-9][eE][+-])([2-9][0-9]{2}|1[0-9]{3})(?![0-9])"
)
_CLOCK = re.compile(r"[0-9]+(\.[0-9]+)?")


_LINE_END = re.compile(rb"\r\n?|\n")
BLOCK_BYTES = 1024 * 1024


def _codec(data: bytes, source: str) -> tuple[str, int]:
    """How ``data`` decodes: (codec, BOM bytes to skip), without building the text.

    BOM (UTF-8/UTF-16) → UTF-8 → cp1252; NUL bytes in what is left mean binary junk.
    """
    if data.startswith(b"\xff\xfe") or data.startswith(b"\xfe\xff"):
        return "utf-16", 0
    skip = 0
    if data.startswith(b"\xef\xbb\xbf"):
        skip = 3
    elif len(data) >= 4 and data[1:4:2] == b"\x00\x00" and data[0:4:2] != b"\x00\x00":
        # UTF-16LE without a BOM: every second byte of ASCII text is NUL.
        if _decodes(data, "utf-16-le", 0):
            return "utf-16-le", 0
    if data.find(b"\x00", skip) >= 0:
        raise FormatError("binary content, not a text export", source=source)
    if data.isascii() or _decodes(data, "utf-8", skip):
        return "utf-8", skip
    return "cp1252", skip


def _decodes(data: bytes, codec: str, skip: int) -> bool:
    """Whether ``data[skip:]`` is valid ``codec`` (checked in blocks: no whole copy)."""
    decoder = codecs.getincrementaldecoder(codec)()
    view = memoryview(data)
    try:
        for start in range(skip, len(data), BLOCK_BYTES):
            decoder.decode(view[start : start + BLOCK_BYTES])
    except UnicodeDecodeError:
        return False
    return True  # a character cut at the very end (a half-written file) is not junk


def _decode_all(data: bytes, codec: str, skip: int, source: str) -> str:
    body = data[skip:]
    try:
        return body.decode(codec, errors="replace" if codec == "cp1252" else "strict")
    except UnicodeDecodeError as exc:
        if exc.end >= len(body):
            # Cut inside its last character (a half-written file, or the 64 KiB head):
            # decode what is whole; the reader sees where the text stops.
            return body[: exc.start].decode(codec, errors="replace")
        raise FormatError(f"{codec.upper()} text that does not decode", source=source) from None


def decode(data: bytes, source: str) -> str:
    """The file as text: BOM (UTF-8/UTF-16) → UTF-8 → cp1252; FormatError for binary junk."""
    codec, skip = _codec(data, source)
    return _decode_all(data, codec, skip, source)


def check_text(data: bytes, source: str) -> None:
    """FormatError if :func:`decode` would refuse ``data`` (without keeping the text)."""
    codec, skip = _codec(data, source)
    if codec == "utf-16" and not _decodes(data, codec, skip):
        raise FormatError("UTF-16 text that does not decode", source=source)


def decode_blocks(data: bytes, source: str) -> Iterator[str]:
    """The text :func:`decode` gives, in blocks of about 1 MiB that end at a line end.

    A big export is tokenised block by block, so its whole text (up to four bytes a
    character once one character needs it) never sits in memory beside its tokens.
    """
    codec, skip = _codec(data, source)
    if codec.startswith("utf-16"):  # rare and small (SoftMax Pro): decoded whole
        yield _decode_all(data, codec, skip, source)
        return
    start = skip
    while start < len(data):
        found = _LINE_END.search(data, min(start + BLOCK_BYTES, len(data)))
        end = found.end() if found else len(data)
        if end == len(data):  # the last block: cut inside its last character, as decode
            yield _decode_all(data[start:end], codec, 0, source)
        else:
            yield data[start:end].decode(codec, errors="replace")
        start = end


def shown(text: str, limit: int = 40) -> str:
    """Text from a file as a message quotes it: repr (control characters escaped), cut short."""
    return repr(text[:limit]) + ("..." if len(text) > limit else "")


def parse_cell(token: str, *, decimal_comma: bool = True) -> tuple[float, WellStatus]:
    """One cell of a grid: a number, or a status for the reader's non-numeric tokens."""
    text = token.strip()
    if text[:1] == '"' or text[-1:] == '"':
        text = text.strip('"').strip()
    if _NUMBER.match(text):  # most cells: tried first
        if "," in text:
            if not decimal_comma:
                return math.nan, WellStatus.INVALID
            text = text.replace(",", ".")
        value = float(text)
        if not math.isfinite(value):  # '1e999': no reader measures that
            return math.nan, WellStatus.INVALID
        return value, WellStatus.OK
    if not text:
        return math.nan, WellStatus.NOT_READ
    status = _TOKENS.get(text.lower())
    if status is not None:
        return math.nan, status
    if len(text) > 2 and text[0] == "*" == text[-1] and _NUMBER.match(text[1:-1]):
        return math.nan, WellStatus.MASKED  # Gen5 marks a masked (excluded) well '*0.356*'
    if text.startswith(">"):
        return math.nan, WellStatus.OVERFLOW
    if text.startswith("<"):
        return math.nan, WellStatus.UNDERFLOW
    return math.nan, WellStatus.INVALID


def is_number(token: str, *, decimal_comma: bool = True) -> bool:
    return parse_cell(token, decimal_comma=decimal_comma)[1] is WellStatus.OK


def wavelength_from_label(label: str) -> float | None:
    """'abs450:450' → 450, '630nmAbsRead:630' → 630, 'nm562' → 562, '600' → 600."""
    if ":" in label:
        tail = label.rsplit(":", 1)[1].strip()
        if _NUMBER.match(tail):
            nm = float(tail.replace(",", "."))
            if 200 <= nm < 2000:  # what the pattern below accepts; '570nm:1e977' is not one
                return nm
    found = _WAVELENGTH.findall(label)
    return float(found[-1]) if found else None


def grid_to_read(
    cells: Iterable[tuple[int, int, str]],
    *,
    source: object,
    rows: int | None = None,
    cols: int | None = None,
    decimal_comma: bool = True,
    **meta: object,
) -> PlateRead:
    """Build a :class:`PlateRead` from (row, col, token) triples.

    The plate format is the smallest standard one holding every well unless given; wells
    not in ``cells`` are ``not_read``; every non-ok token is kept verbatim. A well that no
    standard plate holds is a FormatError naming ``source``.
    """
    items = list(cells)
    if not items:
        raise FormatError("a plate grid without wells", source=str(source))
    max_row = max(r for r, _, _ in items)
    max_col = max(c for _, c, _ in items)
    if rows is None or cols is None:
        try:
            rows, cols = plate_format_for(max_row, max_col)
        except ValueError as exc:
            raise FormatError(str(exc), source=str(source)) from None
    elif max_row >= rows or max_col >= cols or min(min(r, c) for r, c, _ in items) < 0:
        raise FormatError(
            f"well {well_name(max_row, max_col)} is outside the {rows}x{cols} plate",
            source=str(source),
        )
    read = PlateRead.empty(rows, cols, **meta)  # type: ignore[arg-type]
    for r, c, token in items:
        value, status = parse_cell(token, decimal_comma=decimal_comma)
        read.values[r, c] = value
        read.status[r, c] = status
        if status is not WellStatus.OK and token.strip():
            read.raw_tokens[well_name(r, c)] = token.strip()
    read.values = np.asarray(read.values, dtype=float)
    return read


def parse_clock(text: str) -> float | None:
    """'1:04:22' → 3862.0 seconds; '0:15:00' → 900.0; None when it is not a clock."""
    parts = text.strip().split(":")
    if len(parts) not in (2, 3) or not all(_CLOCK.fullmatch(p) for p in parts):
        return None
    total = 0.0
    for part in parts:
        total = total * 60 + float(part)
    return total


def numbered_columns(cells: list[str]) -> list[tuple[int, int]] | None:
    """A grid's column line ``,1,2,…`` (or ``,01,02,…``): [(cell index, 0-based column)],
    or None when the cells are not one (numbers 1, 2, … in order after an empty corner)."""
    if not cells or cells[0].strip():
        return None
    out: list[tuple[int, int]] = []
    for j, cell in enumerate(cells[1:], start=1):
        text = cell.strip()
        if not text:
            continue
        if not (text.isascii() and text.isdigit()) or int(text) != len(out) + 1:
            return None
        out.append((j, int(text) - 1))
    return out if len(out) >= 2 else None
