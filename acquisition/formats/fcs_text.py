"""FCS HEADER and TEXT segments (SCIENCE.md §6): offsets, delimiters, keywords.

Real files break the standard in known ways, all handled here:

* HEADER offset fields blank or 0 (files beyond 99,999,999 bytes), or padded oddly;
* any delimiter byte; a doubled delimiter is a literal one inside a value, but right after a
  keyword it is an empty value (Attune writes ``/$COM//$SMNO//``), since keywords never
  contain the delimiter;
* no final delimiter (Cytek), whitespace padding between pairs (Partec), NUL padding after
  the segment (FlowKit's Diva file), bytes that are not UTF-8 (latin-1 fallback).

Keywords are case-insensitive (FCS 3.1 §3.2.9): keys are upper-cased and stripped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from errors import FormatError, IncompleteFileError

Buffer = bytes | bytearray | memoryview
HEADER_BYTES = 58
_VERSION = re.compile(rb"FCS[0-9]\.[0-9]")
_MAX_KEYWORDS = 1_000_000  # a TEXT segment of a few MB at most holds far fewer


@dataclass(frozen=True)
class Header:
    """The 58-byte HEADER of one dataset; offsets are relative to the dataset's start."""

    version: str
    text: tuple[int, int]
    data: tuple[int, int]
    analysis: tuple[int, int]


@dataclass
class TextSegment:
    keywords: dict[str, str]
    delimiter: bytes
    warnings: list[str] = field(default_factory=list)


def parse_header(buf: Buffer, base: int, source: Path) -> Header:
    """The HEADER at byte ``base``; IncompleteFileError when the file stops inside it."""
    head = bytes(buf[base : base + HEADER_BYTES])
    if not _VERSION.fullmatch(head[:6]):
        where = "" if base == 0 else f" at byte {base} ($NEXTDATA)"
        raise FormatError(f"no FCS HEADER{where} (starts {quoted(head, 6)})", source=source)
    if len(head) < HEADER_BYTES:
        raise IncompleteFileError(
            f"the file ends inside the {HEADER_BYTES}-byte FCS HEADER (at byte {len(buf)})",
            source=source,
        )
    fields: list[int] = []
    names = ("TEXT start", "TEXT end", "DATA start", "DATA end", "ANALYSIS start", "ANALYSIS end")
    for k, name in enumerate(names):
        raw = head[10 + 8 * k : 18 + 8 * k]
        text = raw.strip(b" \x00")
        if not text:
            fields.append(0)
            continue
        if not text.isdigit():
            raise FormatError(
                f"HEADER {name} offset {quoted(raw.decode('latin-1'), 8)} is not a number",
                source=source,
            )
        fields.append(int(text))
    return Header(
        version=head[:6].decode("ascii"),
        text=(fields[0], fields[1]),
        data=(fields[2], fields[3]),
        analysis=(fields[4], fields[5]),
    )


def digits(text: str) -> bool:
    """ASCII digits only (str.isdigit also takes '²' and other digits int() refuses)."""
    return text.isascii() and text.isdigit()


_NON_FINITE = re.compile(r"(?<![a-z])(nan|inf)(?![a-z])", re.IGNORECASE)


def quoted(value: str | bytes, width: int = 30) -> str:
    """A value from the file for a one-line message: cut short, and never a NaN/inf text."""
    text = (value.decode("latin-1") if isinstance(value, bytes) else value)[:width]
    return "'<non-finite number>'" if _NON_FINITE.search(text) else repr(text)


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def split_pairs(segment: bytes, delimiter: bytes) -> tuple[list[tuple[bytes, bytes]], list[str]]:
    """Keyword/value pairs of a TEXT segment body (after its first delimiter byte).

    A run of n delimiters inside a value holds n // 2 literal delimiters and ends the value
    when n is odd. A keyword ends at the first delimiter; a run of n after a keyword is the
    keyword's end followed by a value-position run of n - 1 (so ``K//`` is an empty value).
    """
    pairs: list[tuple[bytes, bytes]] = []
    warnings: list[str] = []
    runs = re.finditer(re.escape(delimiter) + b"+", segment)
    in_key = True
    key = b""
    parts: list[bytes] = []
    pos = 0
    for run in runs:
        parts.append(segment[pos : run.start()])
        pos = run.end()
        n = run.end() - run.start()
        if in_key:
            key = b"".join(parts)
            parts = []
            in_key = False
            n -= 1
            if n == 0:
                continue
        parts.append(delimiter * (n // 2))
        if n % 2:
            pairs.append((key, b"".join(parts)))
            parts = []
            in_key = True
        if len(pairs) > _MAX_KEYWORDS:
            break
    tail = segment[pos:]
    if in_key:
        rest = b"".join([*parts, tail]).strip(b" \t\r\n\x00")
        if rest:
            warnings.append(
                f"TEXT ends with a keyword without a value ({quoted(_decode(rest), 40)})"
            )
    else:
        pairs.append((key, b"".join([*parts, tail]).rstrip(b"\x00")))
    return pairs, warnings


def parse_text(buf: Buffer, begin: int, end: int, source: Path, what: str = "TEXT") -> TextSegment:
    """Keywords of the segment ``buf[begin:end + 1]`` (absolute, inclusive offsets)."""
    if begin < 0 or end < begin:
        raise FormatError(f"{what} segment offsets {begin}..{end} are not a segment", source=source)
    if end >= len(buf):
        raise IncompleteFileError(
            f"{what} segment ends at byte {end}, beyond the end of the file ({len(buf)} bytes)",
            source=source,
        )
    raw = bytes(buf[begin : end + 1])
    delimiter = raw[:1]
    if not delimiter or delimiter in b" \x00\r\n" or delimiter.isalnum():
        raise FormatError(
            f"{what} segment at byte {begin} starts with {quoted(delimiter, 1)}, not a delimiter",
            source=source,
        )
    pairs, warnings = split_pairs(raw[1:], delimiter)
    keywords: dict[str, str] = {}
    for key_raw, value_raw in pairs:
        key = _decode(key_raw).strip(" \t\r\n\x00").upper()
        if not key:
            if value_raw.strip():
                warnings.append(
                    f"value without a keyword ({quoted(_decode(value_raw), 40)}) skipped"
                )
            continue
        if key in keywords:
            warnings.append(f"keyword {key} repeated; the first value is kept")
            continue
        keywords[key] = _decode(value_raw).strip(" \t\r\n\x00")
    return TextSegment(keywords, delimiter, warnings)


def merge_supplemental(text: TextSegment, buf: Buffer, base: int, source: Path) -> None:
    """Add the keywords of a supplemental TEXT segment ($BEGINSTEXT/$ENDSTEXT), if any."""
    begin = int_keyword(text.keywords, "$BEGINSTEXT", source, default=0)
    end = int_keyword(text.keywords, "$ENDSTEXT", source, default=0)
    if not begin or not end:
        return
    if end < begin or base + end >= len(buf):
        text.warnings.append(f"supplemental TEXT offsets {begin}..{end} ignored (outside the file)")
        return
    raw = bytes(buf[base + begin : base + end + 1])
    body = raw[1:] if raw[:1] == text.delimiter else raw
    pairs, warnings = split_pairs(body, text.delimiter)
    text.warnings.extend(warnings)
    for key_raw, value_raw in pairs:
        key = _decode(key_raw).strip(" \t\r\n\x00").upper()
        if key and key not in text.keywords:
            text.keywords[key] = _decode(value_raw).strip(" \t\r\n\x00")


def int_keyword(
    keywords: dict[str, str], key: str, source: Path, *, default: int | None = None
) -> int:
    """A non-negative integer keyword; FormatError naming it when it is not one."""
    value = keywords.get(key, "").strip()
    if not value:
        if default is None:
            raise FormatError(f"required keyword {key} is missing", source=source)
        return default
    if not digits(value):
        if default is not None and key in _LENIENT:
            return default
        raise FormatError(f"keyword {key}={quoted(value, 30)} is not a whole number", source=source)
    return int(value)


# Offsets that some writers fill with junk; a bad one is ignored rather than fatal.
_LENIENT = frozenset({"$BEGINSTEXT", "$ENDSTEXT", "$BEGINANALYSIS", "$ENDANALYSIS"})


def float_keyword(keywords: dict[str, str], key: str) -> float | None:
    """A number keyword, None when absent or not a finite number."""
    value = keywords.get(key, "").strip()
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None
