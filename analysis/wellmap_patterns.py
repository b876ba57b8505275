"""Row, column and well names and patterns of the wellmap layout format (wellmap 3.5).

The grammar, as wellmap reads it (``wellmap/util.py``, ``iter_*_indices``):

* a row is letters, counted in bijective base 26 (``A`` = 0 … ``Z`` = 25, ``AA`` = 26),
  upper or lower case; a column is digits, counted from 1 (``01`` = ``1``; ``0`` is the
  index -1, refused only when the table of wells is built); a well is a row then a column,
  and anything after the column digits is ignored (``A1x`` = ``A1``);
* a pattern is ``,``-separated tokens, each a name or a range ``first-last`` (``A-D``,
  ``1-6``, ``A1-B3``: a rectangle for wells), or exactly ``first,second,...,last`` (a step;
  for wells a step in rows and columns at once).

Errors carry wellmap's own message text (:class:`WellmapMessage`), so a malformed layout
reads the same whichever reader saw it. Only ASCII names are read here: the caller sends
anything else to wellmap itself (its ``str.isalpha``/``isdigit`` accept far more).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")

MAX_WELLS = 100_000
"""More wells (or rows, or columns in one range) than any plate has: refused, not expanded.

wellmap itself would expand ``[row.'A-ZZZZZZ']`` into 300 million rows; no plate has even
10 000 wells (the largest standard plate is 3456), so a layout past this names no plate.
"""

_WELL = re.compile(r"([A-Za-z]+)([0-9]+)")


class WellmapMessage(Exception):
    """A layout wellmap refuses, with wellmap's message text (no file name)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def row_index(token: str) -> int:
    """``'A'`` → 0, ``'AA'`` → 26 (letters only, either case)."""
    if not (token.isascii() and token.isalpha()):
        raise WellmapMessage(f"Cannot parse row '{token}', expected letter(s) e.g. 'A', 'B', etc.")
    index = 0
    for char in token.upper():
        index = index * 26 + (ord(char) - ord("A") + 1)
    return index - 1


def col_index(token: str) -> int:
    """``'1'`` → 0, ``'012'`` → 11 (digits only)."""
    if not (token.isascii() and token.isdigit()):
        raise WellmapMessage(
            f"Cannot parse column '{token}', expected digit(s) e.g. '1', '2', etc."
        )
    return int(token) - 1


def well_index(token: str) -> tuple[int, int]:
    """``'B3'`` → (1, 2); the name must start with letters then digits."""
    match = _WELL.match(token)
    if match is None:
        raise WellmapMessage(f"Cannot parse well '{token}', expected 'A1', 'B2', etc.")
    return row_index(match.group(1)), col_index(match.group(2))


def row_name(index: int) -> str:
    """0 → ``'A'``, 26 → ``'AA'``."""
    name = ""
    while index >= 0:
        name = chr(ord("A") + index % 26) + name
        index = index // 26 - 1
    return name


def well_name(i: int, j: int) -> str:
    return f"{row_name(i)}{j + 1}"


def interleave(a: int, b: int) -> int:
    """Swap between plain and interleaved coordinates (its own inverse).

    The interleaved row ``a`` runs along row ``a`` on even columns ``b`` and along its
    partner row (``a`` ± 1: A↔B, C↔D, …) on odd ones; the same with rows and columns
    exchanged for interleaved columns.
    """
    parity = b % 2
    return a + parity if a % 2 == 0 else a - parity


def row_indices(pattern: str) -> Iterator[int]:
    return _indices(pattern, row_index, _line, "rows")


def col_indices(pattern: str) -> Iterator[int]:
    return _indices(pattern, col_index, _line, "columns")


def well_indices(pattern: str) -> Iterator[tuple[int, int]]:
    return _indices(pattern, well_index, _wells_between, "wells")


def _indices(
    pattern: str,
    parse: Callable[[str], T],
    between: Callable[[T, T | None, T, dict[str, str]], Iterator[T]],
    what: str,
) -> Iterator[T]:
    """Every index a pattern names, in order, failing where wellmap fails (lazily too)."""
    tokens = pattern.split(",")
    if "..." in tokens:
        if len(tokens) != 4 or tokens.index("...") != 2:
            raise WellmapMessage(f"Expected '<first>,<second>,...,<last>', not '{pattern}'")
        first, second, last = parse(tokens[0]), parse(tokens[1]), parse(tokens[3])
        names = {"first": tokens[0], "second": tokens[1], "last": tokens[3]}
        yield from _named(pattern, between(first, second, last, names), what)
        return
    for token in tokens:
        if "-" not in token:
            yield parse(token)
            continue
        ends = token.split("-")
        if len(ends) != 2:
            raise WellmapMessage(f"Expected '<first>-<last>', not '{token}'")
        first, last = parse(ends[0]), parse(ends[1])
        names = {"first": ends[0], "last": ends[1]}
        yield from _named(pattern, between(first, None, last, names), what)


def _named(pattern: str, indices: Iterator[T], what: str) -> Iterator[T]:
    """A range's indices; its errors are prefixed with the pattern, as wellmap does."""
    try:
        yield from indices
    except WellmapMessage as err:
        raise WellmapMessage(f"{pattern!r}: {err.message}") from None
    except _TooMany as err:
        raise WellmapMessage(
            f"{pattern!r}: spans more than {MAX_WELLS} {what} ({err.count}); no plate has that many"
        ) from None


class _TooMany(Exception):
    def __init__(self, count: int) -> None:
        super().__init__(count)
        self.count = count


def _check_steps(
    first: int, second: int | None, last: int, names: dict[str, str], *, reach_last: bool
) -> None:
    """Can ``first`` reach ``last`` in steps of ``second - first`` (or of 1)?

    Ranges of rows or columns must move (``A-A`` is refused); a rectangle of wells may be
    one row or column thick in either direction (``reach_last``).
    """
    until = last + 1 if reach_last else last
    mark = "≤" if reach_last else "<"
    if second is None:
        if not first < until:
            raise WellmapMessage(f"Expected {names['first']} {mark} {names['last']}")
        return
    if not first < second < until:
        raise WellmapMessage(
            f"Expected {names['first']} < {names['second']} {mark} {names['last']}."
        )
    if (last - first) % (second - first) != 0:
        raise WellmapMessage(
            f"Cannot get from {names['first']} to {names['last']} in steps of {second - first}."
        )


def _steps(first: int, second: int | None, last: int) -> range:
    span = range(first, last + 1, 1 if second is None else second - first)
    if len(span) > MAX_WELLS:
        raise _TooMany(len(span))
    return span


def _line(first: int, second: int | None, last: int, names: dict[str, str]) -> Iterator[int]:
    _check_steps(first, second, last, names, reach_last=False)
    yield from _steps(first, second, last)


def _wells_between(
    first: tuple[int, int],
    second: tuple[int, int] | None,
    last: tuple[int, int],
    names: dict[str, str],
) -> Iterator[tuple[int, int]]:
    """Wells from ``first`` to ``last``: along one row, down one column, or a rectangle."""
    (i0, j0), (iz, jz) = first, last
    i1, j1 = second if second is not None else (None, None)
    if i0 == iz and (i1 == i0 or i1 is None):
        yield from ((i0, j) for j in _line(j0, j1, jz, names))
    elif j0 == jz and (j1 == j0 or j1 is None):
        yield from ((i, j0) for i in _line(i0, i1, iz, names))
    else:
        _check_steps(i0, i1, iz, names, reach_last=True)
        _check_steps(j0, j1, jz, names, reach_last=True)
        rows, cols = _steps(i0, i1, iz), _steps(j0, j1, jz)
        if len(rows) * len(cols) > MAX_WELLS:
            raise _TooMany(len(rows) * len(cols))
        yield from ((i, j) for i in rows for j in cols)
