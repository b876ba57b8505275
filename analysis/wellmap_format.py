"""wellmap TOML layouts read with ``tomllib`` alone: no wellmap, pandas or matplotlib import.

``import wellmap`` costs most of a second (its package imports its plotting module and
pandas); reading a layout needs none of that. This module gives exactly what
``wellmap.load`` (3.5.2) gives for the part of the format it covers, and says so by
raising :class:`NeedsWellmap` for the rest, so the caller asks wellmap itself and never
gets a different answer.

Covered, with wellmap's semantics:

* ``[expt]``, ``[row.X]``, ``[col.N]``, ``[irow.X]``, ``[icol.N]``, ``[block.WxH.A1]``,
  ``[well.A1]``, with every pattern (:mod:`analysis.wellmap_patterns`), nested tables and
  dotted keys (``[col] 3.conc = 10``);
* which wells exist: every ``[well]`` and block well, each ``[row]``/``[irow]`` across
  the span of occupied columns, each ``[col]``/``[icol]`` down the span of occupied rows;
* precedence: ``[well]`` > ``[block]`` (smaller area first; the later of equal blocks) >
  ``[row]`` > ``[col]`` > ``[irow]`` > ``[icol]`` > ``[expt]``; tables merge key by key at
  every depth; within one section, a later pattern overrides an earlier one for a well both
  name;
* ``[meta] include`` (a path or a list of paths, relative to the including file; a later
  include overrides an earlier one, the file overrides its includes *key by key*: an
  included ``[row.'A,B']`` still overrides the file's ``[row.A]``, as in wellmap, because
  the two are different keys of one merged ``[row]`` table), and ``[meta] alert``;
* wellmap's errors for malformed layouts, with wellmap's message text.

Not covered (:class:`NeedsWellmap`): ``[plate]``, any ``[meta]`` key but ``include`` and
``alert`` (``path``, ``paths``, ``concat``, ``style``, ``param_styles``, ``paste``, …),
includes given as tables (``shift``), non-ASCII row/column/well names, sections that are
not tables, files that cannot be read or parsed, include cycles, and in
:func:`frame_records` parameters named like wellmap's own columns, date-times and integers
beyond 64 bits (pandas changes those).

Deliberate differences, where wellmap has no answer to copy: a parameter entry that is not a
table (``[row] A = 5``) raises :class:`errors.LayoutError` where wellmap crashes with an
``AttributeError``; and patterns, blocks or layouts of more than
:data:`~analysis.wellmap_patterns.MAX_WELLS` wells are refused instead of expanded.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import math
import re
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.wellmap_patterns import (
    MAX_WELLS,
    WellmapMessage,
    col_indices,
    interleave,
    row_indices,
    well_indices,
    well_name,
)
from errors import LayoutError

VERIFIED_WELLMAP = "3.5.2"
"""The wellmap release whose semantics this reader reproduces (tests check it is installed)."""

IDENTITY_COLUMNS = frozenset(["well", "well0", "row", "col", "row_i", "col_j", "plate", "path"])
"""Columns wellmap adds to every well's parameters (and ``plate``/``path`` from [meta])."""

_META_KEYS = frozenset(["include", "alert"])
_PATTERN_SECTIONS = ("well", "row", "col", "irow", "icol")
_BLOCK_SIZE = re.compile(r"([0-9]+)x([0-9]+)")
_INT64 = range(-(2**63), 2**63)

Ij = tuple[int, int]
Params = dict[str, Any]


class NeedsWellmap(Exception):
    """The layout uses a part of the format this reader does not cover: ask wellmap."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class WellmapLayout:
    """What a wellmap file says: each well's parameters (in wellmap's order), and alerts."""

    wells: dict[str, Params]
    alerts: list[tuple[Path, Any]]  # (resolved file, its [meta] alert), includes first


def read_wellmap(path: str | Path) -> WellmapLayout:
    """Read a wellmap layout as ``wellmap.load`` would.

    Raises :class:`errors.LayoutError` for a layout wellmap refuses (the message is the
    one :func:`wellmap_error` makes of wellmap's), :class:`NeedsWellmap` for what is not
    covered here.
    """
    source = Path(path)
    alerts: list[tuple[Path, Any]] = []
    try:
        config = _config_from_file(source, (), alerts)
        wells = _wells_from_config(config)
    except WellmapMessage as err:
        raise wellmap_error(source, f"{source}: {err.message}") from None
    return WellmapLayout({well_name(i, j): params for (i, j), params in wells.items()}, alerts)


def wellmap_error(source: Path, text: str) -> LayoutError:
    """The one-line :class:`LayoutError` for wellmap's error text about ``source``."""
    detail = " ".join(text.split()).replace(str(source), "").strip(" :")
    return LayoutError(f"invalid wellmap layout: {detail}", source=source)


def frame_records(wells: Mapping[str, Params]) -> list[dict[str, Any]]:
    """The rows of ``wellmap.load``'s table: ``well`` then every parameter, None if unset.

    The table is a pandas DataFrame, and pandas types each column: integers in a column
    that also holds floats, or that some well lacks, become floats; NaN means unset. The
    columns are in order of first appearance, as wellmap builds them. Date-times
    (pandas Timestamps), integers beyond 64 bits and parameters named like wellmap's own
    columns are left to wellmap (:class:`NeedsWellmap`).
    """
    columns = list(dict.fromkeys(key for params in wells.values() for key in params))
    clashing = sorted(IDENTITY_COLUMNS.intersection(columns))
    if clashing:
        raise NeedsWellmap(f"parameters named like wellmap's columns: {', '.join(clashing)}")
    as_float = {name for name in columns if _column_turns_float(name, wells)}
    records = []
    for well, params in wells.items():
        record: dict[str, Any] = {"well": well}
        for name in columns:
            value = params.get(name)
            if name in as_float and type(value) is int:
                value = float(value)
            if isinstance(value, float) and math.isnan(value):
                value = None
            record[name] = value
        records.append(record)
    return records


def _column_turns_float(name: str, wells: Mapping[str, Params]) -> bool:
    kinds: set[type] = set()
    missing = False
    for params in wells.values():
        if name not in params:
            missing = True
            continue
        value = params[name]
        if isinstance(value, dt.datetime):
            raise NeedsWellmap(f"{name} holds a date-time")
        if type(value) is int and value not in _INT64:
            raise NeedsWellmap(f"{name} holds an integer beyond 64 bits")
        kinds.add(type(value))
    return bool(kinds) and kinds <= {int, float} and (float in kinds or missing)


# Files, [meta] and includes ----------------------------------------------------------------


def _config_from_file(
    path: Path, chain: tuple[Path, ...], alerts: list[tuple[Path, Any]]
) -> Params:
    """One file's tables with its includes merged in (``[meta]`` taken out)."""
    resolved = path.resolve()
    if resolved in chain:
        raise NeedsWellmap(f"include cycle through {resolved.name}")
    try:
        with resolved.open("rb") as fh:
            config = tomllib.load(fh)
    except (OSError, ValueError):  # TOMLDecodeError and UnicodeDecodeError are ValueErrors
        raise NeedsWellmap(f"{resolved.name} cannot be read or parsed") from None
    meta = config.pop("meta", {})
    if not isinstance(meta, dict):
        raise NeedsWellmap("[meta] is not a table")
    unknown = sorted(set(meta) - _META_KEYS)
    if unknown:
        raise NeedsWellmap(f"[meta] {', '.join(unknown)}")
    for name in reversed(_include_names(meta.get("include", []))):
        included = Path(name)
        target = included if included.is_absolute() else resolved.parent / included
        _merge(config, _config_from_file(target, (*chain, resolved), alerts))
    if "alert" in meta:
        alerts.append((resolved, meta["alert"]))
    return config


def _include_names(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(name, str) for name in value):
        return value
    raise NeedsWellmap("[meta] include is neither a path nor a list of paths")


def _merge(target: Params, defaults: Mapping[str, Any], *, overwrite: bool = False) -> None:
    """Merge ``defaults`` into ``target``: tables key by key at every depth.

    Without ``overwrite`` what ``target`` has wins; with it, ``defaults`` win, and a table
    then replaces a plain value (copied). A plain value never replaces a table unless
    ``overwrite``.
    """
    for key, value in defaults.items():
        if isinstance(value, dict):
            if isinstance(target.get(key, {}), dict):
                _merge(target.setdefault(key, {}), value, overwrite=overwrite)
            elif overwrite:
                target[key] = copy.deepcopy(value)
        elif overwrite or key not in target:
            target[key] = value


# Wells -------------------------------------------------------------------------------------


def _wells_from_config(config: Params) -> dict[Ij, Params]:
    """Each well's parameters, created and merged in wellmap's order (errors likewise)."""
    sections = _sections(config)
    expt = config.get("expt", {})

    wells: dict[Ij, Params] = {}
    for pattern, params in sections["well"].items():
        for ij in well_indices(pattern):
            _merge(wells.setdefault(ij, {}), _table(params, "well", pattern), overwrite=True)
            _limit(wells)

    blocks = _blocks(sections["block"], wells)
    rows = _by_index(sections["row"], row_indices, "row")
    cols = _by_index(sections["col"], col_indices, "col")
    irows = _by_index(sections["irow"], row_indices, "irow")
    icols = _by_index(sections["icol"], col_indices, "icol")

    plain_rows = _span(itertools.chain((i for i, _ in wells), rows))
    plain_cols = _span(itertools.chain((j for _, j in wells), cols))
    all_rows = _span(_interleaved(irows, plain_cols), within=plain_rows)
    all_cols = _span(_interleaved(icols, plain_rows), within=plain_cols)
    for name, span, other in (
        ("row", all_cols, "columns"),
        ("irow", all_cols, "columns"),
        ("col", all_rows, "rows"),
        ("icol", all_rows, "rows"),
    ):
        if sections[name] and not span:
            count = len(sections[name])
            raise WellmapMessage(
                f"Found {count} [{name}] spec{'' if count == 1 else 's'}, but no {other}.  "
                "No wells defined."
            )

    new_wells = itertools.chain(
        ((i, j) for i in rows for j in all_cols),
        ((i, j) for i in all_rows for j in cols),
        ((interleave(ii, j), j) for ii in irows for j in all_cols),
        ((i, interleave(jj, i)) for i in all_rows for jj in icols),
    )
    for ij in new_wells:
        wells.setdefault(ij, {})
        _limit(wells)

    for (i, j), params in wells.items():
        for _, size, pattern, block in sorted(reversed(blocks.get((i, j), [])), key=_area):
            _merge(params, _table(block, f"block.{size}", pattern))
        _merge(params, rows.get(i, {}))
        _merge(params, cols.get(j, {}))
        _merge(params, irows.get(interleave(i, j), {}))
        _merge(params, icols.get(interleave(j, i), {}))
        if not isinstance(expt, dict):
            raise WellmapMessage(f"[expt] must be a table of parameters, not {_kind(expt)}")
        _merge(params, expt)

    for i, j in wells:
        if i < 0:
            raise WellmapMessage("Cannot reference negative rows")
        if j < 0:
            raise WellmapMessage("Cannot reference negative columns")
    if not wells:
        raise WellmapMessage("No wells defined.")
    return wells


def _sections(config: Params) -> dict[str, Params]:
    """The pattern tables, checked to be what this reader covers."""
    if "plate" in config:
        raise NeedsWellmap("[plate] tables")
    sections: dict[str, Params] = {}
    for name in (*_PATTERN_SECTIONS, "block"):
        table = config.get(name, {})
        if not isinstance(table, dict):
            raise NeedsWellmap(f"{name} is not a table")
        sections[name] = table
    patterns = [key for name in _PATTERN_SECTIONS for key in sections[name]]
    for size, table in sections["block"].items():
        if not isinstance(table, dict):
            raise NeedsWellmap(f"block.{size} is not a table")
        patterns += [size, *table]
    if not all(pattern.isascii() for pattern in patterns):
        raise NeedsWellmap("non-ASCII row, column or well names")
    return sections


BlockEntry = tuple[int, str, str, Any]  # area, size, top-left pattern, parameters


def _blocks(table: Params, wells: dict[Ij, Params]) -> dict[Ij, list[BlockEntry]]:
    """Every well each block covers (creating the wells), blocks in definition order."""
    covering: dict[Ij, list[BlockEntry]] = {}
    cells = 0
    for size, corners in table.items():
        match = _BLOCK_SIZE.match(size)
        if match is None:
            raise WellmapMessage(
                f"Unknown [block] size '{size}', expected 'WxH' "
                "(where W and H are both positive integers)."
            )
        width, height = int(match[1]), int(match[2])
        if width == 0:
            raise WellmapMessage(f"[block.{size}] has no width.  No wells defined.")
        if height == 0:
            raise WellmapMessage(f"[block.{size}] has no height.  No wells defined.")
        for pattern, params in corners.items():
            for i, j in well_indices(pattern):
                cells += width * height
                if cells > MAX_WELLS:
                    raise WellmapMessage(
                        f"[block.{size}] blocks cover more than {MAX_WELLS} wells; "
                        "no plate has that many"
                    )
                for di in range(height):
                    for dj in range(width):
                        ij = (i + di, j + dj)
                        covering.setdefault(ij, []).append((width * height, size, pattern, params))
                        wells.setdefault(ij, {})
                _limit(wells)
    return covering


def _area(entry: BlockEntry) -> int:
    return entry[0]


def _by_index(
    table: Params, indices: Callable[[str], Iterator[int]], name: str
) -> dict[int, Params]:
    """A row/col/irow/icol table keyed by index; later patterns override earlier ones."""
    merged: dict[int, Params] = {}
    for pattern, params in table.items():
        for index in indices(pattern):
            _merge(merged.setdefault(index, {}), _table(params, name, pattern), overwrite=True)
    return merged


def _span(indices: Iterable[int], within: range = range(0)) -> range:
    """The rows (or columns) from the lowest to the highest of ``indices`` and ``within``."""
    ends = [*indices, *((within[0], within[-1]) if within else ())]
    return range(min(ends), max(ends) + 1) if ends else range(0)


def _interleaved(keys: Iterable[int], across: range) -> list[int]:
    """Where interleaved lines ``keys`` land across ``across`` (only its parities matter)."""
    parities = {index % 2 for index in across[:2]}
    return [interleave(key, parity) for key in keys for parity in parities]


def _table(value: Any, section: str, pattern: str) -> Params:
    if not isinstance(value, dict):
        raise WellmapMessage(
            f"[{section}.{pattern}] must be a table of parameters, not {_kind(value)}"
        )
    return value


def _kind(value: Any) -> str:
    kinds = {str: "a string", bool: "a boolean", int: "an integer", float: "a float"}
    if isinstance(value, list):
        return "an array"
    return kinds.get(type(value), "a date or time")


def _limit(wells: dict[Ij, Params]) -> None:
    if len(wells) > MAX_WELLS:
        raise WellmapMessage(f"more than {MAX_WELLS} wells; no plate has that many")
