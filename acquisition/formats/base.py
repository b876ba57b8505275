"""The reader contract: what every export reader is, and the file content it is handed.

A reader module defines ``READER = Reader(...)``. Its ``sniff`` looks at a :class:`Sample`
and returns ``None`` ("not mine") or what it found (anything: a parsed header, the tables
it located), which is handed to its ``read`` so nothing is parsed twice. ``read`` returns
an :class:`ExportFile` (plate readers) or a :class:`CytometryFile` (FCS), never guesses
from the file name, and raises :class:`FormatError` (one line: the file, where, what was
expected) or :class:`IncompleteFileError` (still being written: the daemon waits).

Limits are part of the contract: a reader declares the largest file it reads
(``max_bytes``), the registry refuses bigger ones before reading them, and the shared
views below refuse content whose size would explode in memory or time before building it:
text tables beyond :data:`MAX_CELLS` cells (counted on the bytes), workbooks whose members
declare more than :data:`MAX_INFLATED_BYTES`, use a compression other than deflate, hold
more than :data:`MAX_XML_ELEMENTS` elements, or yield more than :data:`MAX_WORKBOOK_CELLS`
cells or :data:`MAX_WORKBOOK_TEXT` characters. The figures behind each limit are below.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from acquisition.formats.text import decode, shown
from datamodel import ExportFile
from datamodel.cytometry import CytometryFile
from errors import FormatError

ReaderKind = Literal["plate", "cytometry"]
Export = ExportFile | CytometryFile

MiB = 1024 * 1024
# Text tables: memory is the file plus some 75 bytes a cell once tokenised. At these
# limits the worst table (2 million cells of 15 characters) peaks near 240 MB, the
# interpreter included; real exports are kilobytes (the largest text export in the corpus,
# a 114-plate screen, is 1.3 MB and 350,000 cells).
DEFAULT_MAX_BYTES = 32 * MiB  # text and workbook exports
MAX_CELLS = 2_000_000  # cells of the tables of a text export (a 1536-well plate × 1,300 reads)
# Workbooks: openpyxl's read-only mode walks a sheet up to three times (twice looking for
# its size when there is no <dimension>), several microseconds per XML element each, and
# keeps every row element until the sheet ends; so workbooks get tighter limits than text
# tables. 150,000 cells is a 384-well plate × 390 reads or a 96-well plate × 1,560 reads,
# some 300,000 elements; 500,000 elements take 3-5 s. The largest workbook in the corpus
# (a Gen5 kinetic, 401 reads of 96 wells) inflates to 640 KiB with 31,000 elements.
MAX_INFLATED_BYTES = 32 * MiB  # every member of an xlsx together, as declared in the zip
MAX_MEMBERS = 10_000
MAX_XML_ELEMENTS = 500_000  # start tags in all members ("<" not followed by "/")
MAX_WORKBOOK_CELLS = 150_000  # cells yielded by openpyxl (padding included, rows at least 1)
MAX_WORKBOOK_TEXT = 16_000_000  # characters over all cells (a shared string once per cell)
HEAD_BYTES = 64 * 1024

T = TypeVar("T")


@dataclass
class Sample:
    """The content of one file, with decoded views made lazily for sniffers and readers."""

    path: Path
    data: bytes

    @property
    def is_zip(self) -> bool:
        return self.data[:4] == b"PK\x03\x04"

    @cached_property
    def text(self) -> str:
        """The file as text (FormatError for binary content or a zip)."""
        if self.is_zip:
            raise FormatError("a zip/xlsx workbook, not a text export", source=self.path)
        return decode(self.data, str(self.path))

    @cached_property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    @cached_property
    def head(self) -> str:
        """The first 64 KiB as text ('' for binary content): what sniffers look at."""
        if self.is_zip:
            return ""
        cut = self.data[:HEAD_BYTES]
        try:
            return decode(cut, str(self.path))
        except FormatError:
            return ""

    @cached_property
    def head_lines(self) -> list[str]:
        lines = self.head.splitlines()
        return lines[:-1] if len(self.data) > HEAD_BYTES and lines else lines

    @property
    def sheets(self) -> list[tuple[str, list[list[str]]]]:
        """Every worksheet of an xlsx workbook as rows of cell texts (FormatError if damaged).

        Read once: a refusal is remembered too, so several sniffers asking cost one read.
        """
        sheets = self._sheets
        if isinstance(sheets, FormatError):
            raise sheets
        return sheets

    @cached_property
    def _sheets(self) -> list[tuple[str, list[list[str]]]] | FormatError:
        try:
            return read_sheets(self.path, self.data)
        except FormatError as exc:
            return exc


@dataclass(frozen=True)
class Reader(Generic[T]):
    """One export format. ``sniff`` returns what it found (handed to ``read``) or None."""

    name: str
    kind: ReaderKind
    sniff: Callable[[Sample], T | None]
    read: Callable[[Sample, T], Any]  # ExportFile for kind "plate", CytometryFile otherwise
    priority: int = 50  # lower is tried first; the generic grid goes last
    max_bytes: int = DEFAULT_MAX_BYTES
    signature: Callable[[bytes], bool] | None = None  # cheap magic-bytes test on the head
    describe: str = ""  # "BioTek Gen5 text export": for messages and the README table

    def claims_size(self, head: bytes) -> bool:
        """Whether a file starting with ``head`` may be this reader's (for the size check)."""
        return self.signature is None or self.signature(head)


@dataclass
class Sniffed(Generic[T]):
    """A reader and what its sniffer found in the sample."""

    reader: Reader[T]
    found: T
    extra: dict[str, Any] = field(default_factory=dict)

    def read(self, sample: Sample) -> Any:
        return self.reader.read(sample, self.found)


# --- xlsx ------------------------------------------------------------------------------

_WORKBOOK_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    KeyError,
    ValueError,
    TypeError,
    IndexError,
    SyntaxError,  # xml.etree ParseError and lxml's XMLSyntaxError derive from it
    LookupError,  # an XML declaration naming an encoding no codec has
    NotImplementedError,  # openpyxl: compression methods and parts it does not know
    OSError,
)
# What spreadsheets write. zipfile inflates bzip2 and LZMA members without an output
# bound (one read can yield gigabytes), and Deflate64 and the rest it cannot read at all.
_ZIP_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
# OOXML parts never declare a DTD; entity declarations are how XML expansion bombs work
# (expat stops them only after megabytes of expansion).
_DTD = re.compile(rb"<!(DOCTYPE|ENTITY)")


def _check_zip(path: Path, data: bytes) -> None:
    """Refuse a workbook that is damaged or whose content would explode in memory or time.

    Checked before openpyxl sees it: the members' declared sizes (zipfile never inflates a
    member beyond its declared size), their compression methods, their CRCs (every member
    is inflated once, in 1 MiB steps), DTDs (entity expansion), and the number of XML
    elements (each one openpyxl would build; its read-only mode walks a sheet twice when it
    has no ``<dimension>``, keeping every row element of the first pass).
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = zf.infolist()
            if len(members) > MAX_MEMBERS:
                raise FormatError(f"xlsx with {len(members)} members: not an export", source=path)
            declared = sum(m.file_size for m in members)
            if declared > MAX_INFLATED_BYTES:
                raise FormatError(
                    f"xlsx members inflate to {declared} bytes (limit {MAX_INFLATED_BYTES}): "
                    "not a plate export, or a zip bomb",
                    source=path,
                )
            odd = next((m for m in members if m.compress_type not in _ZIP_METHODS), None)
            if odd is not None:
                raise FormatError(
                    f"xlsx member {shown(odd.filename)} uses zip compression method "
                    f"{odd.compress_type}; spreadsheets write only stored or deflated members",
                    source=path,
                )
            elements = 0
            for member in members:
                with zf.open(member) as fh:  # a bad CRC raises at the member's end
                    tail = b""
                    while chunk := fh.read(MiB):
                        elements += _start_tags(tail + chunk) - _start_tags(tail)
                        if _DTD.search(tail + chunk):
                            raise FormatError(
                                f"xlsx member {shown(member.filename)} declares a DTD or "
                                "entities: spreadsheets never do (an entity-expansion bomb?)",
                                source=path,
                            )
                        tail = chunk[-8:]
            if elements > MAX_XML_ELEMENTS:
                raise FormatError(
                    f"xlsx with {elements} XML elements (limit {MAX_XML_ELEMENTS}): "
                    "not a plate export",
                    source=path,
                )
    except FormatError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError) as exc:
        raise FormatError(f"damaged xlsx/zip ({_why(exc)})", source=path) from None
    except (NotImplementedError, ValueError, RuntimeError) as exc:  # encrypted, odd headers
        raise FormatError(f"unreadable xlsx/zip ({_why(exc)})", source=path) from None


def _start_tags(xml: bytes) -> int:
    """'<' that open an element ('<!' and '<?' too: a bound, not a parse)."""
    return xml.count(b"<") - xml.count(b"</")


def _why(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:120]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def read_sheets(path: Path, data: bytes) -> list[tuple[str, list[list[str]]]]:
    """Every worksheet as rows of cell texts, within the size, cell and text limits.

    Read by the streaming reader of :mod:`acquisition.formats.xlsx` (openpyxl's read-only
    mode was most of the parse time of workbook exports); :func:`read_sheets_openpyxl`
    is the reference it is tested against. Both count cells padding included, every row
    as at least one cell, and text per cell (a shared string once per cell showing it).
    """
    from acquisition.formats.xlsx import check_directory, read_workbook

    check_directory(path, data)
    _check_zip(path, data)
    sheets = read_workbook(
        path,
        data,
        max_bytes=MAX_INFLATED_BYTES,
        max_cells=MAX_WORKBOOK_CELLS,
        max_text=MAX_WORKBOOK_TEXT,
    )
    for _name, rows in sheets:
        while rows and not any(rows[-1]):
            rows.pop()
    return sheets


def read_sheets_openpyxl(path: Path, data: bytes) -> list[tuple[str, list[list[str]]]]:
    """Every worksheet through openpyxl (read-only), within the same limits: the
    reference for the fast reader."""
    _check_zip(path, data)
    import openpyxl  # imported here: only workbook exports pay for it

    cells = 0
    chars = 0
    sheets: list[tuple[str, list[list[str]]]] = []
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            for ws in book.worksheets:
                rows: list[list[str]] = []
                for row in ws.iter_rows(values_only=True):
                    cells += max(1, len(row))
                    if cells > MAX_WORKBOOK_CELLS:
                        raise FormatError(
                            f"workbook has more than {MAX_WORKBOOK_CELLS} cells: "
                            "not a plate export",
                            source=path,
                        )
                    texts = [cell_text(v) for v in row]
                    chars += sum(map(len, texts))
                    if chars > MAX_WORKBOOK_TEXT:
                        raise FormatError(
                            f"workbook cells hold more than {MAX_WORKBOOK_TEXT} characters: "
                            "not a plate export",
                            source=path,
                        )
                    rows.append(texts)
                while rows and not any(rows[-1]):
                    rows.pop()
                sheets.append((str(ws.title), rows))
        finally:
            book.close()
    except FormatError:
        raise
    except _WORKBOOK_ERRORS as exc:
        raise FormatError(f"not a readable xlsx workbook ({_why(exc)})", source=path) from None
    return sheets


def cell_text(value: object) -> str:
    """A workbook cell as the text a text export would hold (floats in full precision)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def count_cells(content: str | bytes, delimiter: str) -> int:
    """Cells of a delimited text (an upper bound, cheap): checked before tokenising it.

    Counted on the raw bytes too (a delimiter or line-end byte inside a UTF-16 character
    only makes the bound looser). CR and LF both count: old Mac files end lines with CR.
    """
    if isinstance(content, bytes):
        delim = delimiter.encode()
        return content.count(delim) + content.count(b"\n") + content.count(b"\r") + 1
    return content.count(delimiter) + content.count("\n") + content.count("\r") + 1


def check_cells(path: Path, cells: int) -> None:
    if cells > MAX_CELLS:
        raise FormatError(
            f"about {cells} cells: more than a plate export holds (limit {MAX_CELLS})",
            source=path,
        )
