"""The reader contract: what every export reader is, and the file content it is handed.

A reader module defines ``READER = Reader(...)``. Its ``sniff`` looks at a :class:`Sample`
and returns ``None`` ("not mine") or what it found (anything: a parsed header, the tables
it located), which is handed to its ``read`` so nothing is parsed twice. ``read`` returns
an :class:`ExportFile` (plate readers) or a :class:`CytometryFile` (FCS), never guesses
from the file name, and raises :class:`FormatError` (one line: the file, where, what was
expected) or :class:`IncompleteFileError` (still being written: the daemon waits).

Limits are part of the contract: a reader declares the largest file it reads
(``max_bytes``), the registry refuses bigger ones before reading them, and the shared
views below refuse content whose size would explode in memory (xlsx members that inflate
beyond :data:`MAX_INFLATED_BYTES`, tables beyond :data:`MAX_CELLS` cells).
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from acquisition.formats.text import decode
from datamodel import ExportFile
from datamodel.cytometry import CytometryFile
from errors import FormatError

ReaderKind = Literal["plate", "cytometry"]
Export = ExportFile | CytometryFile

MiB = 1024 * 1024
DEFAULT_MAX_BYTES = 64 * MiB  # text and workbook exports: real ones are kilobytes
MAX_INFLATED_BYTES = 64 * MiB  # every member of an xlsx together, as declared in the zip
MAX_CELLS = 2_000_000  # cells of all tables of one export (a 1536-well plate × 1,300 reads)
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

    @cached_property
    def sheets(self) -> list[tuple[str, list[list[str]]]]:
        """Every worksheet of an xlsx workbook as rows of cell texts (FormatError if damaged)."""
        return read_sheets(self.path, self.data)


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
    NotImplementedError,  # openpyxl: compression methods and parts it does not know
    OSError,
)


def _check_zip(path: Path, data: bytes) -> None:
    """Refuse a workbook whose members would inflate beyond the limit, or that is damaged."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = zf.infolist()
            declared = sum(m.file_size for m in members)
            if declared > MAX_INFLATED_BYTES:
                raise FormatError(
                    f"xlsx members inflate to {declared} bytes (limit {MAX_INFLATED_BYTES}): "
                    "not a plate export, or a zip bomb",
                    source=path,
                )
            if len(members) > 10_000:
                raise FormatError(f"xlsx with {len(members)} members: not an export", source=path)
            bad = zf.testzip()  # reads every member: CRC and compression errors show here
    except FormatError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError) as exc:
        raise FormatError(f"damaged xlsx/zip ({_why(exc)})", source=path) from None
    except (NotImplementedError, ValueError, RuntimeError) as exc:  # encrypted, odd methods
        raise FormatError(f"unreadable xlsx/zip ({_why(exc)})", source=path) from None
    if bad is not None:
        raise FormatError(f"damaged xlsx/zip: member {bad} fails its CRC check", source=path)


def _why(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:120]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def read_sheets(path: Path, data: bytes) -> list[tuple[str, list[list[str]]]]:
    """Every worksheet as rows of cell texts, within the size and cell limits.

    Read by the streaming reader of :mod:`acquisition.formats.xlsx` (openpyxl's read-only
    mode was most of the parse time of workbook exports); :func:`read_sheets_openpyxl`
    is the reference it is tested against.
    """
    from acquisition.formats.xlsx import read_workbook

    sheets = read_workbook(path, data, max_bytes=MAX_INFLATED_BYTES, max_cells=MAX_CELLS)
    for _name, rows in sheets:
        while rows and not any(rows[-1]):
            rows.pop()
    return sheets


def read_sheets_openpyxl(path: Path, data: bytes) -> list[tuple[str, list[list[str]]]]:
    """Every worksheet through openpyxl (read-only): the reference for the fast reader."""
    _check_zip(path, data)
    import openpyxl  # imported here: only workbook exports pay for it

    cells = 0
    sheets: list[tuple[str, list[list[str]]]] = []
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            for ws in book.worksheets:
                rows: list[list[str]] = []
                for row in ws.iter_rows(values_only=True):
                    cells += len(row)
                    if cells > MAX_CELLS:
                        raise FormatError(
                            f"workbook has more than {MAX_CELLS} cells: not a plate export",
                            source=path,
                        )
                    rows.append([cell_text(v) for v in row])
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


def count_cells(text: str, delimiter: str) -> int:
    """Cells of a delimited text (an upper bound, cheap): checked before tokenising it."""
    return text.count(delimiter) + text.count("\n") + 1


def check_cells(path: Path, cells: int) -> None:
    if cells > MAX_CELLS:
        raise FormatError(
            f"about {cells} cells: more than a plate export holds (limit {MAX_CELLS})",
            source=path,
        )
