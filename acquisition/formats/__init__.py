"""Export readers: one module per format, chosen by content (never by file extension).

A reader module defines ``READER = Reader(...)``; every module in this package that does
is found at import time, so adding a vendor is adding one module. Readers are tried in
``priority`` order (specific vendors first, the generic grid last).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import IO

import openpyxl

from acquisition.formats.text import decode
from analysis.model import ExportFile
from errors import FormatError, IncompleteFileError

MAX_TEXT_BYTES = 64 * 1024 * 1024
GENERIC_PRIORITY = 90  # readers at or above this accept any grid: vendor checks run first


@dataclass
class Sample:
    """The content of a file, decoded lazily for the sniffers and readers."""

    path: Path
    data: bytes
    _sheets: list[tuple[str, list[list[str]]]] | None = field(default=None, repr=False)
    cache: dict[str, object] = field(default_factory=dict, repr=False)  # a sniffer's findings

    @property
    def is_zip(self) -> bool:
        return self.data[:4] == b"PK\x03\x04"

    @cached_property
    def text(self) -> str:
        """The file as text (raises FormatError for binary junk)."""
        if self.is_zip:
            raise FormatError("a zip/xlsx workbook, not a text export", source=self.path)
        return decode(self.data, str(self.path))

    @cached_property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    @property
    def sheets(self) -> list[tuple[str, list[list[str]]]]:
        """Every worksheet of an xlsx file as rows of cell texts."""
        if self._sheets is None:
            self._sheets = _read_sheets(self.path, self.data)
        return self._sheets


@dataclass(frozen=True)
class Reader:
    name: str
    sniff: Callable[[Sample], bool]
    read: Callable[[Sample], ExportFile]
    priority: int = 50  # lower is tried first


# Vendor exports recognised by signature that have no reader yet. They are refused with a
# message that names the vendor, rather than half-read by the generic grid reader (whose
# first grid in such files is often a layout, a blank-subtracted copy or a template).
def _text_head(sample: Sample, limit: int = 4000) -> str:
    if sample.is_zip:
        return "\n".join(
            name + "\n" + "\n".join("\t".join(row) for row in rows[:40])
            for name, rows in sample.sheets
        )[: limit * 4]
    return sample.text[:limit]


UNSUPPORTED: tuple[tuple[str, Callable[[str, Sample], bool]], ...] = (
    ("SoftMax Pro text export", lambda h, s: "##BLOCKS" in h),
    ("BioTek Gen5 workbook (xlsx)", lambda h, s: s.is_zip and "Software Version" in h),
    ("BMG MARS export", lambda h, s: "Test run no." in h),
    ("PerkinElmer EnVision export", lambda h, s: h.lstrip().startswith("Plate information")),
    ("Revvity Kaleido export", lambda h, s: re.match(r"\s*Results\s+for\s", h) is not None),
    ("Tecan i-control/SparkControl workbook", lambda h, s: "Application: " in h and s.is_zip),
    ("Tecan Sunrise/XFLUOR4 workbook", lambda h, s: "XFLUOR4" in h),
    ("Tecan Magellan workbook", lambda h, s: "Well positions" in h or "Magellan" in h),
    (
        "Thermo SkanIt workbook",
        lambda h, s: s.is_zip and ("Measurement results" in h or "Session information" in h),
    ),
    ("Thermo SkanIt text export", lambda h, s: "Results of Photometric" in h),
    (
        "SpectraMax SpreadsheetML (xml)",
        lambda h, s: h.startswith("<?xml") and 'progid="Excel.Sheet"' in h,
    ),
)


def _refuse_unsupported(sample: Sample) -> bool:
    if sample.data[:3] == b"FCS" and sample.data[3:6].replace(b".", b"").isdigit():
        raise FormatError(
            "an FCS cytometry file: plate analysis cannot read it (cytometry support is "
            "not built yet)",
            source=sample.path,
        )
    try:
        head = _text_head(sample)
    except FormatError:
        return False
    for what, test in UNSUPPORTED:
        if test(head, sample):
            raise FormatError(
                f"looks like a {what}: platewatch has no reader for it yet "
                "(export a plain plate grid as CSV meanwhile)",
                source=sample.path,
            )
    return False


def _discover() -> list[Reader]:
    readers: list[Reader] = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        reader = getattr(module, "READER", None)
        if isinstance(reader, Reader):
            readers.append(reader)
    return sorted(readers, key=lambda r: (r.priority, r.name))


READERS: list[Reader] = _discover()


def sniff(sample: Sample) -> Reader:
    """The reader for this content; FormatError naming the cause when there is none."""
    if not sample.data.strip():
        raise IncompleteFileError("empty file (nothing written yet)", source=sample.path)
    for reader in READERS:
        if reader.priority >= GENERIC_PRIORITY:
            _refuse_unsupported(sample)
        if reader.sniff(sample):
            return reader
    _refuse_unsupported(sample)
    if not sample.is_zip:
        sample.text  # noqa: B018 - raises the binary-junk error when it is junk
    raise FormatError(
        "not a plate-reader export platewatch knows (no plate grid found)", source=sample.path
    )


def load_bytes(path: str | Path) -> bytes:
    """The file's bytes; FormatError with a plain cause when it cannot be read."""
    source = Path(path)
    try:
        size = source.stat().st_size
        if size > MAX_TEXT_BYTES:
            raise FormatError(f"{size} bytes is too large for a plate export", source=source)
        return source.read_bytes()
    except FileNotFoundError:
        raise FormatError("file not found", source=source) from None
    except IsADirectoryError:
        raise FormatError("is a directory", source=source) from None
    except PermissionError:
        raise FormatError("permission denied", source=source) from None
    except OSError as exc:
        raise FormatError(f"cannot read: {exc.strerror}", source=source) from None


def read_export(path: str | Path, data: bytes | None = None) -> ExportFile:
    """Read one export file. Raises FormatError (IncompleteFileError while half-written)."""
    source = Path(path)
    if data is None:
        data = load_bytes(source)
    sample = Sample(path=source, data=data)
    reader = sniff(sample)
    export = reader.read(sample)
    if not export.plates or not any(p.reads for p in export.plates):
        raise FormatError(f"{reader.name}: no plate data in the file", source=source)
    return export


def _read_sheets(path: Path, data: bytes) -> list[tuple[str, list[list[str]]]]:
    import io

    stream: IO[bytes] = io.BytesIO(data)
    try:
        book = openpyxl.load_workbook(stream, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise FormatError(
            f"not a readable xlsx workbook ({type(exc).__name__})", source=path
        ) from None
    sheets: list[tuple[str, list[list[str]]]] = []
    try:
        for ws in book.worksheets:
            rows = [[_cell_text(v) for v in row] for row in ws.iter_rows(values_only=True)]
            sheets.append((ws.title, rows))
    finally:
        book.close()
    return sheets


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)
