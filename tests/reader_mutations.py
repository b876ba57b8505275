"""Mutations of export files for the readers' property tests, and the outcome they must have.

Every mutation of a real or generated export must end in a parse, an
IncompleteFileError or a FormatError whose one-line message names the file — never in
another exception (a crash) and never in a message with a line break or a NaN.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from hypothesis import strategies as st

from acquisition.formats import read_any
from datamodel import ExportFile, parse_well
from errors import FormatError, IncompleteFileError

_NUMBER_JUNK = re.compile(r"(?<![A-Za-z])-?(nan|inf)(?![A-Za-z])")
ENCODINGS = ("utf-8", "utf-16", "cp1252", "utf-8-sig")


def decode_for_mutation(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """One seed, changed by one to three of: truncation, byte flips, re-encoding, line-end
    changes, decimal commas, deleted or duplicated lines, inserted tokens."""
    data = draw(st.sampled_from(seeds))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(
            st.sampled_from(
                ["truncate", "flip", "encode", "newline", "comma", "delete", "duplicate", "token"]
            )
        )
        if kind == "truncate" and data:
            data = data[: draw(st.integers(0, len(data)))]
        elif kind == "flip" and data:
            at = draw(st.integers(0, len(data) - 1))
            data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]
        elif kind in ("encode", "newline", "comma", "delete", "duplicate", "token"):
            text = decode_for_mutation(data)
            lines = text.splitlines(keepends=True)
            if kind == "newline":
                ending = draw(st.sampled_from(["\n", "\r\n", "\r"]))
                text = ending.join(ln.rstrip("\r\n") for ln in lines)
            elif kind == "comma":
                text = text.replace(".", ",")
            elif kind in ("delete", "duplicate") and lines:
                at = draw(st.integers(0, len(lines) - 1))
                lines[at : at + 1] = [] if kind == "delete" else [lines[at], lines[at]]
                text = "".join(lines)
            elif kind == "token" and lines:
                at = draw(st.integers(0, len(lines) - 1))
                token = draw(
                    st.sampled_from(
                        [
                            "1e999",
                            "-1",
                            "0",
                            "²",
                            "Ä",
                            "NaN",
                            "\x00",
                            "Range?",
                            "x" * 140_000,
                            "\t",
                            ",",
                        ]
                    )
                )
                lines.insert(at, token + lines[at])
                text = "".join(lines)
            encoding = draw(st.sampled_from(ENCODINGS)) if kind == "encode" else "utf-8"
            if encoding == "utf-16":
                data = b"\xff\xfe" + text.encode("utf-16-le", errors="replace")
            else:
                data = text.encode(encoding, errors="replace")
    return data


def check_outcome(path: Path, data: bytes) -> str:
    """Read ``data`` as ``path``: 'ok', 'incomplete' or 'invalid'; fails on anything else."""
    try:
        export = read_any(path, data)
    except IncompleteFileError as exc:
        _check_message(path, exc)
        return "incomplete"
    except FormatError as exc:
        _check_message(path, exc)
        return "invalid"
    if isinstance(export, ExportFile):
        for plate in export.plates:
            for read in plate.reads:
                ok = read.status == "ok"
                assert all(math.isfinite(v) for v in read.values[ok].tolist())
                for well in read.raw_tokens:
                    r, c = parse_well(well)
                    assert r < read.shape[0] and c < read.shape[1], well
                    assert read.status[r, c] != "ok", well
    return "ok"


def _check_message(path: Path, exc: FormatError) -> None:
    text = str(exc)
    assert "\n" not in text and "\r" not in text, text
    assert str(path) in text, text
    assert _NUMBER_JUNK.search(text) is None, text
