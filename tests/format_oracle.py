"""What a reader did with one input: the outcome classes of the fuzz harness and property tests.

``ok`` (an export that passes the invariants below), ``incomplete``
(:class:`IncompleteFileError`), ``format_error`` (:class:`FormatError` with a proper
message), ``oom`` (:class:`MemoryError`), and ``crash`` for anything else, including a
FormatError whose message is not one short line naming the file, and an export that breaks
an invariant (an ok well without a finite value, a grid no plate has).
"""

from __future__ import annotations

import math
import traceback
from dataclasses import dataclass
from pathlib import Path

from acquisition.formats import read_any
from datamodel import PLATE_FORMATS, ExportFile, WellStatus
from errors import FormatError, IncompleteFileError

MAX_MESSAGE = 300  # characters after "<source>: "; a message quoting a whole field is a bug
_ROOT = str(Path(__file__).resolve().parent.parent) + "/"


@dataclass(frozen=True)
class Outcome:
    kind: str  # ok | incomplete | format_error | crash | oom
    error: str = ""  # exception type name ("" for ok)
    where: str = ""  # innermost frame "file:line" (crashes)
    message: str = ""

    @property
    def signature(self) -> str:
        return f"{self.error} at {self.where}"


class BadMessage(Exception):
    """A FormatError whose text is not one short line naming the file."""


class BrokenInvariant(Exception):
    """A read that returned an export the rest of platewatch cannot trust."""


def classify(path: Path, data: bytes) -> Outcome:
    """Read ``data`` as the file ``path`` and say what happened (never raises for bad input)."""
    try:
        export = read_any(path, data)
        if isinstance(export, ExportFile):
            check_export(export)
    except IncompleteFileError as exc:
        return _checked(exc, path, "incomplete")
    except FormatError as exc:
        return _checked(exc, path, "format_error")
    except MemoryError as exc:
        return Outcome("oom", "MemoryError", crash(exc).where)
    except Exception as exc:  # the harness counts what the readers must never raise
        return crash(exc)
    return Outcome("ok")


def _checked(exc: FormatError, path: Path, kind: str) -> Outcome:
    text = str(exc)
    problem = message_problem(text, path)
    if problem:
        return crash(BadMessage(f"{problem}: {text[:200]!r}"), exc)
    return Outcome(kind, type(exc).__name__, message=text)


def message_problem(text: str, path: Path) -> str:
    """Why ``text`` is not a proper one-line FormatError message for ``path`` ('' if it is)."""
    if not text.startswith(f"{path}: "):
        return "does not start with the file name"
    body = text[len(str(path)) + 2 :]
    if len(text.splitlines()) != 1:
        return "more than one line"
    if len(body) > MAX_MESSAGE:
        return f"{len(body)} characters long"
    if not body.strip():
        return "no cause"
    return ""


def crash(exc: BaseException, origin: BaseException | None = None) -> Outcome:
    frames = traceback.extract_tb((origin or exc).__traceback__)
    where = "?"
    if frames:
        last = frames[-1]
        where = f"{last.filename.removeprefix(_ROOT)}:{last.lineno}"
    return Outcome("crash", type(exc).__name__, where, " ".join(str(exc).split())[:300])


def check_export(export: ExportFile) -> None:
    """The invariants every read must satisfy; BrokenInvariant naming the first broken one."""
    shapes = set(PLATE_FORMATS.values())
    for plate in export.plates:
        for read in plate.reads:
            if read.shape not in shapes:
                raise BrokenInvariant(f"{read.shape} is not a plate format")
            for r in range(read.shape[0]):
                for c in range(read.shape[1]):
                    status, value = read.status[r, c], float(read.values[r, c])
                    if not isinstance(status, WellStatus):
                        raise BrokenInvariant(f"status {status!r} is not a WellStatus")
                    if (status is WellStatus.OK) != math.isfinite(value):
                        raise BrokenInvariant(f"well ({r},{c}) is {status} with value {value}")
            for number in (read.wavelength_nm, read.time_s, read.temperature_c):
                if number is not None and not math.isfinite(number):
                    raise BrokenInvariant("non-finite wavelength, time or temperature")
