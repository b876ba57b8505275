"""Export readers: one module per format, chosen by content (never by file extension).

A reader module defines ``READER = Reader(...)`` (the contract is in ``base.py``); every
module in this package that does is found at import time, so adding a vendor is adding
one module. Readers are tried in ``priority`` order (specific vendors first, the generic
grid last). Size limits are checked before a file is read.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
from collections.abc import Callable
from pathlib import Path

from acquisition.formats.base import HEAD_BYTES, Export, Reader, Sample, Sniffed
from acquisition.formats.text import check_text
from datamodel import ExportFile
from errors import FormatError, IncompleteFileError

GENERIC_PRIORITY = 90  # readers at or above this accept any grid: vendor checks run first

# Vendor exports recognised by signature that have no reader yet: (what, test on the head).
# They are refused with a message that names the vendor, rather than half-read by the
# generic grid reader. Every vendor of SCIENCE.md §5 has a reader now; the list stays for
# the next one that is recognised before it is supported.
UNSUPPORTED: tuple[tuple[str, Callable[[str, Sample], bool]], ...] = ()


def _text_head(sample: Sample, limit: int = 4000) -> str:
    if sample.is_zip:
        return "\n".join(
            name + "\n" + "\n".join("\t".join(row) for row in rows[:40])
            for name, rows in sample.sheets
        )[: limit * 4]
    return sample.head[:limit]


def _refuse_unsupported(sample: Sample) -> None:
    try:
        head = _text_head(sample)
    except FormatError:
        return
    for what, test in UNSUPPORTED:
        if test(head, sample):
            raise FormatError(
                f"looks like a {what}: platewatch has no reader for it yet "
                "(export a plain plate grid as CSV meanwhile)",
                source=sample.path,
            )


def _discover() -> list[Reader[object]]:
    readers: list[Reader[object]] = []
    for info in pkgutil.iter_modules(__path__):
        if info.name in ("base", "text"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        reader = getattr(module, "READER", None)
        if isinstance(reader, Reader):
            readers.append(reader)
    return sorted(readers, key=lambda r: (r.priority, r.name))


READERS: list[Reader[object]] = _discover()


def reader_named(name: str) -> Reader[object]:
    for reader in READERS:
        if reader.name == name:
            return reader
    known = ", ".join(r.name for r in READERS)
    raise FormatError(f"no reader named {name!r} (readers: {known})")


def sniff(sample: Sample) -> Sniffed[object]:
    """The reader for this content and what it found; FormatError naming the cause."""
    if _blank(sample.data):
        raise IncompleteFileError("empty file (nothing written yet)", source=sample.path)
    for reader in READERS:
        if reader.priority >= GENERIC_PRIORITY:
            _refuse_unsupported(sample)
        found = reader.sniff(sample)
        if found is not None:
            if len(sample.data) > reader.max_bytes:
                raise FormatError(
                    f"{len(sample.data)} bytes is too large for a {reader.describe or reader.name} "
                    f"(limit {reader.max_bytes})",
                    source=sample.path,
                )
            return Sniffed(reader, found)
    _refuse_unsupported(sample)
    if not sample.is_zip:
        check_text(sample.data, str(sample.path))  # the binary-junk error when it is junk
    raise FormatError(
        "not a plate-reader export platewatch knows (no plate grid found)", source=sample.path
    )


def size_limit(head: bytes) -> int:
    """The largest file any reader that may own content starting with ``head`` accepts."""
    return max((r.max_bytes for r in READERS if r.claims_size(head)), default=0)


def _check_size(size: int, head: bytes, source: Path) -> None:
    limit = size_limit(head)
    if size > limit:
        raise FormatError(
            f"{size} bytes is too large for any export platewatch reads (limit {limit})",
            source=source,
        )


def _blank(data: bytes) -> bool:
    return not data or data.isspace()  # no copy of the file, unlike data.strip()


def load_bytes(path: str | Path) -> bytes:
    """The file's bytes; FormatError with a plain cause when it cannot or must not be read.

    The size is checked against the readers' limits before the file is read whole.
    """
    source = Path(path)
    try:
        with source.open("rb") as fh:
            size = fh.seek(0, 2)
            fh.seek(0)
            _check_size(size, fh.read(HEAD_BYTES), source)
            fh.seek(0)
            return fh.read()  # one buffer: head + rest would hold the file twice
    except FileNotFoundError:
        raise FormatError("file not found", source=source) from None
    except IsADirectoryError:
        raise FormatError("is a directory", source=source) from None
    except PermissionError:
        raise FormatError("permission denied", source=source) from None
    except OSError as exc:
        raise FormatError(f"cannot read: {exc.strerror or exc}", source=source) from None


def read_any(path: str | Path, data: bytes | None = None, *, format: str | None = None) -> Export:
    """Read one export of any kind. Raises FormatError (IncompleteFileError while half-written).

    ``format`` names a reader to use instead of sniffing (a watch folder's ``format``);
    ``allotropy:VENDOR`` converts the file with allotropy's parser for that vendor (the
    optional extra ``platewatch[allotropy]``).
    """
    source = Path(path)
    if data is None:
        data = load_bytes(source)
    else:
        _check_size(len(data), data[:HEAD_BYTES], source)
    if format is not None and format.startswith("allotropy:"):
        if not data.strip():
            raise IncompleteFileError("empty file (nothing written yet)", source=source)
        from acquisition.formats.allotropy_fallback import read_with_allotropy

        return read_with_allotropy(source, data, format.split(":", 1)[1])
    sample = Sample(path=source, data=data)
    if format is not None:
        reader = reader_named(format)
        if _blank(sample.data):
            raise IncompleteFileError("empty file (nothing written yet)", source=source)
        found = reader.sniff(sample)
        if found is None:
            raise FormatError(f"not a {reader.describe or reader.name}", source=source)
        sniffed = Sniffed(reader, found)
    else:
        sniffed = sniff(sample)
    export = sniffed.read(sample)
    if isinstance(export, ExportFile) and not any(p.reads for p in export.plates):
        raise FormatError(f"{sniffed.reader.name}: no plate data in the file", source=source)
    if isinstance(export, ExportFile):
        _check_read_numbers(export, source)
    return export  # type: ignore[no-any-return]


def _check_read_numbers(export: ExportFile, source: Path) -> None:
    """A wavelength, read time or temperature that is not a finite number (a field of
    9,999 digits reads as inf) is a damaged export, never a read at an infinite time."""
    for plate in export.plates:
        for read in plate.reads:
            for what, number in (
                ("wavelength", read.wavelength_nm),
                ("read time", read.time_s),
                ("temperature", read.temperature_c),
            ):
                if number is not None and not math.isfinite(number):
                    raise FormatError(
                        f"plate {plate.plate_id}: the {what} is not a finite number", source=source
                    )


def read_export(
    path: str | Path, data: bytes | None = None, *, format: str | None = None
) -> ExportFile:
    """Read one plate export; a cytometry file is a FormatError saying so."""
    export = read_any(path, data, format=format)
    if not isinstance(export, ExportFile):
        raise FormatError(
            "an FCS cytometry file, not a plate-reader export (analyse it with the other "
            "FCS files of its experiment)",
            source=path,
        )
    return export
