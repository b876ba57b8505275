"""A small streaming xlsx reader: every worksheet as rows of cell texts, within limits.

openpyxl (even read-only) dominated the parse time of workbook exports, so the sheets are
read here with :mod:`zipfile`, ElementTree for the small parts and a regular-expression
scan of the worksheet XML: shared strings, inline strings, numbers, booleans, errors,
formula results, cell references with gaps, and number formats (a cell styled as a date or time becomes the text openpyxl would give:
``2023-11-03 00:00:00``, ``10:00:00``, ``3 days, 0:15:00``), so readers see the same
texts as before. Rows are padded to the sheet's last column; trailing empty rows dropped.

Limits (the contract of ``base.py``): members' declared sizes together at most
:data:`~acquisition.formats.base.MAX_INFLATED_BYTES` (and what actually inflates is
counted too), at most :data:`~acquisition.formats.base.MAX_WORKBOOK_CELLS` cells (padding
included, an empty row one) holding at most ``MAX_WORKBOOK_TEXT`` characters, no DTDs or
entity declarations in any part. A zip without its end-of-central-directory record is a
workbook still being written (zip writers put the directory last):
:class:`IncompleteFileError`; any other damage is a :class:`FormatError`.
"""

from __future__ import annotations

import datetime as dt
import io
import posixpath
import re
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError, fromstring

from errors import FormatError, IncompleteFileError

Rows = list[list[str]]

_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_EOCD = b"PK\x05\x06"
_REF = re.compile(r"^([A-Z]{1,3})([0-9]+)$")
_BUILTIN_DATES = set(range(14, 23)) | {45, 46, 47}
_BUILTIN_TIMEDELTA = {46}
_LITERAL = re.compile(r'".*?"|\[(?!hh?\]|mm?\]|ss?\])[^\]]*\]')
_TIMEDELTA = re.compile(
    r"\[hh?\](:mm(:ss(\.0*)?)?)?|\[mm?\](:ss(\.0*)?)?|\[ss?\](\.0*)?", re.IGNORECASE
)
_WINDOWS_EPOCH = dt.datetime(1899, 12, 30)
_MAC_EPOCH = dt.datetime(1904, 1, 1)


class _Budget:
    """Bytes inflated and cells read so far, against the limits."""

    def __init__(self, path: Path, max_bytes: int, max_cells: int, max_text: int) -> None:
        self.path, self.max_bytes, self.max_cells = path, max_bytes, max_cells
        self.max_text = max_text
        self.inflated = 0
        self.cells = 0
        self.text = 0

    def take_text(self, n: int) -> None:
        self.text += n
        if self.text > self.max_text:
            raise FormatError(
                f"workbook cells hold more than {self.max_text} characters: not a plate export",
                source=self.path,
            )

    def take_bytes(self, n: int) -> None:
        self.inflated += n
        if self.inflated > self.max_bytes:
            raise FormatError(
                f"xlsx members inflate beyond {self.max_bytes} bytes: not a plate export, "
                "or a zip bomb",
                source=self.path,
            )

    def take_cells(self, n: int) -> None:
        self.cells += n
        if self.cells > self.max_cells:
            raise FormatError(
                f"workbook has more than {self.max_cells} cells: not a plate export",
                source=self.path,
            )


def _why(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:120]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def check_directory(path: Path, data: bytes) -> None:
    """IncompleteFileError for a zip without its central directory (written last)."""
    if _EOCD not in data[-(65535 + 22) :]:
        raise IncompleteFileError(
            "xlsx/zip without its central directory (truncated, or still being written)",
            source=path,
        )


def _open_zip(path: Path, data: bytes, max_bytes: int) -> zipfile.ZipFile:
    check_directory(path, data)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        members = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError) as exc:
        raise FormatError(f"damaged xlsx/zip ({_why(exc)})", source=path) from None
    except (NotImplementedError, ValueError, RuntimeError) as exc:
        raise FormatError(f"unreadable xlsx/zip ({_why(exc)})", source=path) from None
    declared = sum(m.file_size for m in members)
    if declared > max_bytes:
        raise FormatError(
            f"xlsx members inflate to {declared} bytes (limit {max_bytes}): "
            "not a plate export, or a zip bomb",
            source=path,
        )
    if len(members) > 10_000:
        raise FormatError(f"xlsx with {len(members)} members: not an export", source=path)
    return zf


def _member(zf: zipfile.ZipFile, name: str, budget: _Budget) -> bytes | None:
    """One part of the package (None when absent), inflated within the budget."""
    try:
        info = zf.getinfo(name)
    except KeyError:
        return None
    try:
        with zf.open(info) as fh:
            data = fh.read(budget.max_bytes - budget.inflated + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise FormatError(f"damaged xlsx/zip: {name} ({_why(exc)})", source=budget.path) from None
    except (NotImplementedError, ValueError, RuntimeError) as exc:
        raise FormatError(
            f"unreadable xlsx part {name} ({_why(exc)})", source=budget.path
        ) from None
    budget.take_bytes(len(data))
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise FormatError(
            f"xlsx part {name} declares a DTD or entities: refused", source=budget.path
        )
    declared = _DECLARED_ENCODING.match(data)
    if declared is not None and declared.group(1).lower() not in _OOXML_ENCODINGS:
        # ECMA-376 Part 2 §8.1.4: parts are UTF-8 or UTF-16; expat would look any name up
        shown = declared.group(1)[:40].decode("ascii", "replace")
        raise FormatError(
            f"xlsx part {name} declares the encoding {shown!r} (parts are UTF-8 or UTF-16)",
            source=budget.path,
        )
    return data


_DECLARED_ENCODING = re.compile(
    rb"\A(?:\xef\xbb\xbf)?\s*<\?xml[^>]*?\bencoding\s*=\s*[\"']([^\"']*)[\"']"
)
_OOXML_ENCODINGS = frozenset({b"utf-8", b"utf8", b"utf-16", b"utf-16le", b"utf-16be"})


def _xml(data: bytes, name: str, path: Path) -> Element:
    try:
        return fromstring(data)
    except (ParseError, LookupError) as exc:  # LookupError: an encoding expat cannot look up
        raise FormatError(f"xlsx part {name} is not XML ({_why(exc)})", source=path) from None


def _text_of(node: Element) -> str:
    """A shared or inline string: its ``t`` text, or its runs' ``t`` texts joined."""
    t = node.find(f"{_NS}t")
    if t is not None:
        return t.text or ""
    return "".join(r.findtext(f"{_NS}t") or "" for r in node.iter(f"{_NS}r"))


def _shared_strings(zf: zipfile.ZipFile, budget: _Budget) -> list[str]:
    data = _member(zf, "xl/sharedStrings.xml", budget)
    if data is None:
        return []
    root = _xml(data, "xl/sharedStrings.xml", budget.path)
    return [_text_of(si) for si in root.iter(f"{_NS}si")]


def _is_date(fmt: str) -> bool:
    fmt = _LITERAL.sub("", fmt.split(";")[0])
    return re.search(r"(?<![_\\])[dmhysDMHYS]", fmt) is not None


def _styles(zf: zipfile.ZipFile, budget: _Budget) -> tuple[set[int], set[int]]:
    """The cell style indices that format dates, and those that format durations."""
    data = _member(zf, "xl/styles.xml", budget)
    if data is None:
        return set(), set()
    root = _xml(data, "xl/styles.xml", budget.path)
    custom: dict[int, str] = {}
    for fmt in root.iter(f"{_NS}numFmt"):
        try:
            custom[int(fmt.get("numFmtId", "-1"))] = fmt.get("formatCode", "")
        except ValueError:
            continue
    dates: set[int] = set()
    durations: set[int] = set()
    xfs = root.find(f"{_NS}cellXfs")
    for idx, xf in enumerate(xfs.iter(f"{_NS}xf") if xfs is not None else []):
        try:
            fid = int(xf.get("numFmtId", "0"))
        except ValueError:
            continue
        if fid in custom:
            code = custom[fid]
            if _is_date(code):
                dates.add(idx)
            if _TIMEDELTA.search(code.split(";")[0]):
                durations.add(idx)
        elif fid in _BUILTIN_DATES:
            dates.add(idx)
            if fid in _BUILTIN_TIMEDELTA:
                durations.add(idx)
    return dates, durations


def _sheet_parts(zf: zipfile.ZipFile, budget: _Budget) -> tuple[list[tuple[str, str]], bool]:
    """(name, part path) of every worksheet in workbook order; whether dates are 1904-based."""
    data = _member(zf, "xl/workbook.xml", budget)
    if data is None:
        raise FormatError("not an xlsx workbook (no xl/workbook.xml)", source=budget.path)
    book = _xml(data, "xl/workbook.xml", budget.path)
    pr = book.find(f"{_NS}workbookPr")
    mac = pr is not None and pr.get("date1904", "0").lower() in ("1", "true")
    rels_data = _member(zf, "xl/_rels/workbook.xml.rels", budget)
    targets: dict[str, str] = {}
    if rels_data is not None:
        for rel in _xml(rels_data, "xl/_rels/workbook.xml.rels", budget.path).iter(
            f"{_PKG_REL}Relationship"
        ):
            if rel.get("Type", "").endswith("/worksheet"):
                target = rel.get("Target", "")
                part = (
                    target.lstrip("/")
                    if target.startswith("/")
                    else posixpath.normpath(posixpath.join("xl", target))
                )
                targets[rel.get("Id", "")] = part
    sheets = []
    for sheet in book.iter(f"{_NS}sheet"):
        rid = sheet.get(f"{_REL_NS}id", "")
        if rid in targets:
            sheets.append((sheet.get("name", ""), targets[rid]))
    return sheets, mac


def _col_index(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n - 1


def _number_text(v: str) -> str:
    if "." in v or "E" in v or "e" in v:
        return repr(float(v))
    return str(int(v))


def _iso_text(text: str) -> str:
    """An ISO 8601 date cell (``t="d"``) as openpyxl shows it: ``2023-11-03 00:00:00``."""
    try:
        return str(dt.datetime.fromisoformat(text.rstrip("Z")))
    except ValueError:
        return text


def _date_text(value: float, epoch: dt.datetime, duration: bool) -> str:
    """The text of ``str()`` of what openpyxl makes of a date-styled serial."""
    if duration:
        td = dt.timedelta(days=value)
        if td.microseconds:
            td = dt.timedelta(
                seconds=td.total_seconds() // 1, microseconds=round(td.microseconds, -3)
            )
        return str(td)
    day, fraction = divmod(value, 1)
    diff = dt.timedelta(milliseconds=round(fraction * 86400 * 1000))
    if 0 <= value < 1 and diff.days == 0:
        minutes, seconds = divmod(diff.seconds, 60)
        hours, minutes = divmod(minutes, 60)
        return str(dt.time(hours, minutes, seconds, diff.microseconds))
    if 0 < value < 60 and epoch == _WINDOWS_EPOCH:
        day += 1
    return str(epoch + dt.timedelta(days=day) + diff)


_SHEET_DATA_OPEN = re.compile(rb"<(?:\w+:)?sheetData\b[^>]*?(/?)>")


def _sheet_data(data: bytes) -> bytes:
    """The inside of ``<sheetData>…</sheetData>`` (b'' when empty or absent)."""
    start = _SHEET_DATA_OPEN.search(data)
    if start is None or start.group(1):
        return b""
    end = data.rfind(b"sheetData>")
    if end <= start.end():
        return b""
    close = data.rfind(b"</", start.end(), end)
    return data[start.end() : close if close >= 0 else end]


_ROW = re.compile(rb"<(?:\w+:)?row\b([^>]*?)(?:/>|>(.*?)</(?:\w+:)?row>)", re.S)
_CELL = re.compile(rb"<(?:\w+:)?c\b([^>]*?)(?:/>|>(.*?)</(?:\w+:)?c>)", re.S)
_ATTR = re.compile(rb'\b(r|t|s)="([^"]*)"')
_VALUE = re.compile(rb"<(?:\w+:)?v>(.*?)</(?:\w+:)?v>", re.S)
_TEXT = re.compile(rb"<(?:\w+:)?t(?:\s[^>]*)?>(.*?)</(?:\w+:)?t>", re.S)
_PHONETIC = re.compile(rb"<(?:\w+:)?rPh\b.*?</(?:\w+:)?rPh>", re.S)
_ENTITY = re.compile(r"&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos);")
_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


def _entity(match: re.Match[str]) -> str:
    name = match.group(1)
    if name.startswith("#x"):
        code = int(name[2:], 16)
    elif name.startswith("#"):
        code = int(name[1:])
    else:
        return _NAMED[name]
    return chr(code) if 0 < code <= 0x10FFFF else ""


def _xml_text(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace")
    return _ENTITY.sub(_entity, text) if "&" in text else text


_FAST_CELL = re.compile(rb'<c r="([A-Z]{1,3})([0-9]{1,7})"([^>]*?)(?:/>|>(.*?)</c>)', re.S)
_COLUMNS: dict[bytes, int] = {}
_TYPE = re.compile(rb'\bt="([^"]*)"')
_STYLE = re.compile(rb'\bs="([0-9]+)"')


def _fast_cells(
    body: bytes,
    strings: list[str],
    dates: set[int],
    durations: set[int],
    epoch: dt.datetime,
) -> list[tuple[int, int, str]] | None:
    """All cells at once when every one is written ``<c r="B7" …>`` (None otherwise)."""
    found = _FAST_CELL.findall(body)
    if len(found) != body.count(b"<c ") + body.count(b"<c>"):
        return None  # cells without a reference, or a namespace prefix: the general scan
    out: list[tuple[int, int, str]] = []
    append = out.append
    parsed_attrs: dict[bytes, tuple[bytes, int]] = {}  # ' s="26" t="s"' → (type, style)
    for letters, digits, attrs, inner in found:
        col = _COLUMNS.get(letters)
        if col is None:
            col = _COLUMNS.setdefault(letters, _col_index(letters.decode()))
        row = int(digits) - 1
        if not inner:
            append((row, col, ""))
            continue
        known = parsed_attrs.get(attrs)
        if known is None:
            t = _TYPE.search(attrs) if b"t=" in attrs else None
            s = _STYLE.search(attrs) if b"s=" in attrs else None
            known = parsed_attrs[attrs] = (t.group(1) if t else b"n", int(s.group(1)) if s else 0)
        kind, style = known
        if kind == b"inlineStr":
            text = "".join(_xml_text(t) for t in _TEXT.findall(_PHONETIC.sub(b"", inner)))
            append((row, col, text))
            continue
        if inner.startswith(b"<v>") and inner.endswith(b"</v>"):
            raw = inner[3:-4]
        else:
            v = _VALUE.search(inner)
            raw = v.group(1) if v else b""
        if not raw:
            text = ""
        elif kind == b"n":
            value = raw.decode("ascii")
            if style in dates:
                text = _date_text(float(value), epoch, style in durations)
            elif b"." in raw or b"E" in raw or b"e" in raw:
                text = repr(float(value))
            else:
                text = str(int(value))
        elif kind == b"s":
            text = strings[int(raw)]
        elif kind == b"b":
            text = str(bool(int(raw)))
        elif kind == b"d":
            text = _iso_text(_xml_text(raw))
        else:
            text = _xml_text(raw)
        append((row, col, text))
    return out


def _cells(
    data: bytes,
    strings: list[str],
    dates: set[int],
    durations: set[int],
    epoch: dt.datetime,
    budget: _Budget,
) -> Iterator[tuple[int, int, str]]:
    """(row, column, text) of every cell element of a worksheet part (texts may be '').

    The worksheet part is scanned with regular expressions rather than an XML parser:
    sheet XML is regular (rows of ``<c r= s= t=><v>…</v></c>``) and this is several
    times faster than ``iterparse``; anything that does not match is simply not a cell.
    """
    body = _sheet_data(data)
    if not body:
        return
    if budget.cells + body.count(b"<c ") + body.count(b"<c>") > budget.max_cells:
        budget.take_cells(body.count(b"<c ") + body.count(b"<c>"))  # refused before parsing
    fast = _fast_cells(body, strings, dates, durations, epoch)
    if fast is not None:
        budget.take_cells(len(fast))
        yield from fast
        return
    row_no = -1
    for row in _ROW.finditer(body):
        attrs = dict(_ATTR.findall(row.group(1)))
        row_no = int(attrs[b"r"]) - 1 if b"r" in attrs else row_no + 1
        col_no = -1
        for c in _CELL.finditer(row.group(2) or b""):
            a = dict(_ATTR.findall(c.group(1)))
            ref = a.get(b"r")
            match = _REF.match(ref.decode("ascii", errors="replace")) if ref else None
            if match:
                col_no = _col_index(match.group(1))
            else:
                col_no += 1
            kind = a.get(b"t", b"n")
            inner = c.group(2) or b""
            if kind == b"inlineStr":
                text = "".join(_xml_text(t) for t in _TEXT.findall(_PHONETIC.sub(b"", inner)))
            else:
                v = _VALUE.search(inner)
                raw = v.group(1) if v else b""
                if not raw:
                    text = ""
                elif kind == b"n":
                    style = int(a.get(b"s", b"0") or b"0")
                    value = raw.decode("ascii")
                    if style in dates:
                        text = _date_text(float(value), epoch, style in durations)
                    else:
                        text = _number_text(value)
                elif kind == b"s":
                    text = strings[int(raw)]
                elif kind == b"b":
                    text = str(bool(int(raw)))
                elif kind == b"d":
                    text = _iso_text(_xml_text(raw))
                else:  # "str" (a formula's text), "e" (an error)
                    text = _xml_text(raw)
            budget.take_cells(1)
            yield row_no, col_no, text


def _dimension_cols(data: bytes) -> int:
    """The last column of the sheet's ``<dimension ref="A1:AM476">`` (0 when absent)."""
    match = re.search(
        rb'<(?:\w+:)?dimension ref="[A-Z]{1,3}[0-9]+:([A-Z]{1,3})[0-9]+"', data[:4096]
    )
    return _col_index(match.group(1).decode()) + 1 if match else 0


def _pad(found: dict[int, dict[int, str]], n_rows: int, width: int, budget: _Budget) -> Rows:
    """Rows as openpyxl's read-only mode gives them: padded to the sheet's declared width,
    or, when the sheet declares none, each row up to its last cell (empty rows empty)."""
    if width:
        budget.take_cells(n_rows * width - sum(len(r) for r in found.values()))
        return [
            [found[r].get(c, "") for c in range(width)] if r in found else [""] * width
            for r in range(n_rows)
        ]
    budget.take_cells(n_rows - len(found))  # an empty row counts as one cell
    rows: Rows = []
    for r in range(n_rows):
        cells = found.get(r)
        if not cells:
            rows.append([])
            continue
        last = max(cells) + 1
        budget.take_cells(last - len(cells))
        rows.append([cells.get(c, "") for c in range(last)])
    return rows


def read_workbook(
    path: Path, data: bytes, *, max_bytes: int, max_cells: int, max_text: int
) -> list[tuple[str, Rows]]:
    """Every worksheet of an xlsx as rows of cell texts (FormatError/IncompleteFileError)."""
    budget = _Budget(path, max_bytes, max_cells, max_text)
    zf = _open_zip(path, data, max_bytes)
    try:
        with zf:
            strings = _shared_strings(zf, budget)
            dates, durations = _styles(zf, budget)
            parts, mac = _sheet_parts(zf, budget)
            epoch = _MAC_EPOCH if mac else _WINDOWS_EPOCH
            sheets: list[tuple[str, Rows]] = []
            for name, part in parts:
                xml = _member(zf, part, budget)
                if xml is None:
                    raise FormatError(
                        f"xlsx sheet {name!r} is missing its part {part}", source=path
                    )
                found: dict[int, dict[int, str]] = {}
                width = _dimension_cols(xml)
                sized = width > 0
                for r, c, text in _cells(xml, strings, dates, durations, epoch, budget):
                    if r < 0 or c < 0 or r >= 1_048_576 or c >= 16_384:
                        raise FormatError(
                            f"xlsx sheet {name!r}: a cell outside the sheet", source=path
                        )
                    found.setdefault(r, {})[c] = text
                    width = max(width, c + 1)
                    budget.take_text(len(text))
                n_rows = max(found) + 1 if found else 0
                rows = _pad(found, n_rows, width if sized else 0, budget)
                sheets.append((name, rows))
    except (FormatError, IncompleteFileError):
        raise
    except (ParseError, ValueError, IndexError, KeyError, OverflowError, UnicodeDecodeError) as exc:
        raise FormatError(f"not a readable xlsx workbook ({_why(exc)})", source=path) from None
    return sheets
