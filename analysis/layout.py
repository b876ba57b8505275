"""Plate layouts: which well holds what (DESIGN.md §5.3).

wellmap TOML is the main format (read by :mod:`analysis.wellmap_format`, which gives what
``wellmap.load`` gives without importing wellmap, pandas or matplotlib; wellmap itself reads
what that module does not cover); a CSV plate map (``well,role,compound,conc,conc_unit,
cell_line``, or ``row,col`` instead of ``well``) is accepted too. Keys platewatch understands:
``role``, ``compound``, ``conc`` + ``conc_unit`` (or one key such as ``conc_IU_mL``),
``cell_line``, ``replicate``, ``expected_ic50``; every other key is carried as metadata.
"""

from __future__ import annotations

import csv
import io
import math
import re
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, cast, get_args

from analysis.wellmap_format import NeedsWellmap, frame_records, read_wellmap, wellmap_error
from datamodel import parse_well, plate_format_for, well_name
from errors import LayoutError

Role = Literal[
    "blank",
    "untreated",
    "treated",
    "positive_control",
    "empty",
    "unstained",
    "annexin_only",
    "pi_only",
    "sample",
]
ROLES: frozenset[str] = frozenset(get_args(Role))
CELL_ROLES: frozenset[str] = frozenset(["untreated", "treated", "positive_control"])

_UNIT_SPELLING = {
    "iu_ml": "IU/mL",
    "u_ml": "U/mL",
    "mu_ml": "mU/mL",
    "nm": "nM",
    "um": "µM",
    "mm": "mM",
    "pm": "pM",
    "m": "M",
    "ng_ml": "ng/mL",
    "ug_ml": "µg/mL",
    "mg_ml": "mg/mL",
}
_KNOWN = {"role", "compound", "conc", "conc_unit", "cell_line", "replicate", "expected_ic50"}
_WELLMAP_COLUMNS = {"well", "well0", "row", "col", "row_i", "col_j", "plate", "path"}


@dataclass(frozen=True)
class WellSpec:
    """What one well holds."""

    role: str
    compound: str | None = None
    conc: float | None = None
    unit: str | None = None
    cell_line: str | None = None
    replicate: str | None = None
    expected_ic50: tuple[float, float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Layout:
    """A plate layout: well name → :class:`WellSpec`, for wells the layout names."""

    wells: dict[str, WellSpec]
    source: str = ""
    warnings: list[str] = field(default_factory=list)
    declared_shape: tuple[int, int] | None = None  # wellmap [meta] or a CSV's wells

    @cached_property
    def shape(self) -> tuple[int, int] | None:
        """The smallest standard plate the layout's wells fit on (None when empty)."""
        if self.declared_shape is not None:
            return self.declared_shape
        if not self.wells:
            return None
        positions = [parse_well(w) for w in self.wells]
        try:
            return plate_format_for(max(r for r, _ in positions), max(c for _, c in positions))
        except ValueError:
            return None

    def dose_of(self, well: str) -> float:
        """The dose a cell well received: its concentration if treated, 0 if untreated."""
        spec = self.wells[well]
        return (spec.conc or 0.0) if spec.role == "treated" else 0.0

    def untreated_for(self, line: str | None) -> list[str]:
        """The untreated wells that are 100 % for ``line``: its own, else every untreated well."""
        own = [w for w, s in self.wells.items() if s.role == "untreated" and s.cell_line == line]
        return own or self.wells_with("untreated")

    def check_fits(self, rows: int, cols: int) -> None:
        """Every well the layout names must exist on a rows × cols plate."""
        for name in self.wells:
            r, c = parse_well(name)
            if r >= rows or c >= cols:
                raise LayoutError(
                    f"well {name} is outside the {rows}x{cols} plate "
                    f"({rows * cols}-well): layout for another plate size?",
                    source=self.source,
                )

    def wells_with(self, *roles: str) -> list[str]:
        return [name for name, spec in self.wells.items() if spec.role in roles]

    @property
    def cell_lines(self) -> list[str | None]:
        return list(dict.fromkeys(s.cell_line for s in self.wells.values() if s.role in CELL_ROLES))


MAX_LAYOUT_BYTES = 4 * 1024 * 1024  # a plate map is a few kB; refuse anything that is not


def load_layout(path: str | Path, *, plate: str | None = None) -> Layout:
    """Load a wellmap TOML or CSV plate map; the format is told by content, not name."""
    source = Path(path)
    try:
        if source.is_dir():
            raise LayoutError("is a directory, not a layout file", source=source)
        data = source.read_bytes()
    except FileNotFoundError:
        raise LayoutError("layout file not found", source=source) from None
    except OSError as exc:
        raise LayoutError(f"cannot read layout: {exc.strerror}", source=source) from None
    if len(data) > MAX_LAYOUT_BYTES:
        raise LayoutError(f"{len(data)} bytes is too large for a plate layout", source=source)
    if not data.strip():
        raise LayoutError("empty layout file", source=source)
    if b"\x00" in data:
        raise LayoutError("binary content, not a layout (wellmap TOML or CSV)", source=source)
    text = _decode(data, source)
    lines = (ln.strip() for ln in text.splitlines())
    first = next((ln for ln in lines if ln and not ln.startswith("#")), "")
    if first.startswith("[") or re.match(r"^[\w.'\"-]+\s*=", first):
        return _load_wellmap(source, plate)
    return _load_csv(source, text)


def _decode(data: bytes, source: Path) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise LayoutError("not text (neither UTF-8 nor cp1252)", source=source)


def _check_includes(path: Path, root: Path, chain: tuple[Path, ...] = ()) -> None:
    """Every ``[meta] include``/``paste``/``concat`` stays in the layout's folder; no cycles.

    Checked before wellmap follows them, so a layout cannot make platewatch read (and echo
    in an error) any file on the machine, and an include cycle is named as one.
    """
    resolved = path.resolve()
    if resolved in chain:
        cycle = " → ".join(p.name for p in (*chain, resolved))
        raise LayoutError(f"include cycle: {cycle}", source=chain[0])
    try:
        with path.open("rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        raise LayoutError("included layout not found", source=path) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LayoutError(f"invalid layout TOML: {_one_line(str(exc))}", source=path) from None
    meta = doc.get("meta", {})
    if not isinstance(meta, dict):
        return
    for key in ("include", "paste", "concat"):
        value = meta.get(key)
        if value is None:
            continue
        names = (
            value
            if isinstance(value, list)
            else list(value.values())
            if isinstance(value, dict)
            else [value]
        )
        for name in names:
            if not isinstance(name, str):
                raise LayoutError(f"[meta] {key} must name files", source=path)
            target = (path.parent / name).resolve()
            if not target.is_relative_to(root):
                raise LayoutError(
                    f"[meta] {key} = {name!r} points outside the layout's folder", source=path
                )
            if key == "include":
                _check_includes(target, root, (*chain, resolved))


def _load_wellmap(source: Path, plate: str | None) -> Layout:
    """A wellmap layout: read here when the format allows (fast), else by wellmap itself."""
    _check_includes(source, source.parent.resolve())
    try:
        records, warnings = _wellmap_records_fast(source)
    except NeedsWellmap:
        records, warnings = _wellmap_records_by_wellmap(source, plate)
    wells = {str(rec["well"]): _spec(rec, str(rec["well"]), source) for rec in records}
    return Layout(wells=wells, source=str(source), warnings=warnings)


def _wellmap_records_fast(source: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """wellmap's table rows without importing wellmap (or pandas): analysis.wellmap_format."""
    parsed = read_wellmap(source)
    return frame_records(parsed.wells), [str(message) for _, message in parsed.alerts]


def _wellmap_records_by_wellmap(
    source: Path, plate: str | None
) -> tuple[list[dict[str, Any]], list[str]]:
    """wellmap's table rows from ``wellmap.load`` (what the fast reader does not cover)."""
    import pandas as pd
    import wellmap

    warnings: list[str] = []

    def on_alert(_path: Path, message: str) -> None:
        warnings.append(str(message))

    try:
        frame = wellmap.load(source, on_alert=on_alert)
    except (wellmap.LayoutError, ValueError, KeyError, TypeError, OSError) as exc:
        raise wellmap_error(source, str(exc)) from None
    except AttributeError as exc:  # wellmap's answer to `[row] A = 5`: not a table
        raise wellmap_error(source, f"{exc} (a pattern's value must be a table)") from None
    if frame.empty:
        raise LayoutError("the layout names no wells", source=source)
    missing = pd.NA
    if "plate" in frame.columns:
        names = sorted(set(frame["plate"]))
        if plate is None and len(names) > 1:
            raise LayoutError(
                f"layout describes several plates ({', '.join(names)}); name one", source=source
            )
        chosen = plate if plate is not None else names[0]
        if chosen not in names:
            raise LayoutError(f"layout has no plate {chosen!r}", source=source)
        frame = frame[frame["plate"] == chosen]
    records = cast(list[dict[str, Any]], frame.to_dict("records"))
    return [{k: _unset(v, missing) for k, v in rec.items()} for rec in records], warnings


def _unset(value: Any, missing: Any) -> Any:
    """wellmap fills keys a well lacks with NaN/NA: make those plainly absent."""
    if value is missing or value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        return value.item()  # numpy scalars → Python
    return value


def _load_csv(source: Path, text: str) -> Layout:
    try:
        dialect = csv.Sniffer().sniff(text[:2048], delimiters=",;\t")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    header = {h.strip().lower(): h for h in (reader.fieldnames or [])}
    if "well" not in header and not {"row", "col"} <= set(header):
        raise LayoutError(
            "not a layout: a wellmap TOML file or a CSV plate map with a 'well' column "
            "(or 'row' and 'col')",
            source=source,
        )
    wells: dict[str, WellSpec] = {}
    for line_no, raw in enumerate(reader, start=2):
        rec = {
            k.strip().lower(): (v.strip() if isinstance(v, str) else v) for k, v in raw.items() if k
        }
        try:
            if "well" in header:
                r, c = parse_well(str(rec["well"]))
            else:
                r, c = parse_well(f"{rec['row']}{int(str(rec['col']))}")
        except (ValueError, KeyError):
            raise LayoutError(f"line {line_no}: not a well", source=source) from None
        name = well_name(r, c)
        if name in wells:
            raise LayoutError(f"line {line_no}: well {name} is listed twice", source=source)
        rec = {
            k: v for k, v in rec.items() if v not in ("", None) and k not in ("well", "row", "col")
        }
        wells[name] = _spec(rec, name, source)
    return Layout(wells=wells, source=str(source))


def _spec(rec: dict[str, Any], well: str, source: Path) -> WellSpec:
    values = {k: v for k, v in rec.items() if k not in _WELLMAP_COLUMNS and not _is_missing(v)}
    role = str(values.get("role", "")).strip().lower().replace("-", "_").replace(" ", "_")
    if not role:
        role = "treated" if _conc_of(values, well, source)[0] is not None else "empty"
    if role not in ROLES:
        raise LayoutError(
            f"well {well}: unknown role {values.get('role')!r} (roles: {', '.join(sorted(ROLES))})",
            source=source,
        )
    conc, unit = _conc_of(values, well, source)
    if role == "treated" and conc is None:
        raise LayoutError(f"well {well}: treated well without a concentration", source=source)
    if conc is not None and (not math.isfinite(conc) or conc < 0):
        raise LayoutError(f"well {well}: concentration {conc:g} is not a dose", source=source)
    extra = {
        k: _plain(v)
        for k, v in values.items()
        if k not in _KNOWN and not (k.startswith("conc_") and k != "conc_unit")
    }
    return WellSpec(
        role=role,
        compound=_text(values.get("compound")),
        conc=conc,
        unit=unit,
        cell_line=_text(values.get("cell_line")),
        replicate=_text(values.get("replicate")),
        expected_ic50=_expected_range(values.get("expected_ic50"), well, source),
        extra=extra,
    )


def _conc_of(values: dict[str, Any], well: str, source: Path) -> tuple[float | None, str | None]:
    if "conc" in values:
        return _dose(values["conc"], "conc", well, source), _text(values.get("conc_unit"))
    for key, value in values.items():
        if key.startswith("conc_") and key != "conc_unit":
            suffix = key[len("conc_") :]
            unit = _UNIT_SPELLING.get(suffix.lower(), suffix.replace("_", "/"))
            return _dose(value, key, well, source), unit
    return None, None


def _dose(value: Any, key: str, well: str, source: Path) -> float | None:
    """A concentration: a number (or a number in text, decimal comma allowed), nothing else."""
    if _is_missing(value):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise LayoutError(f"well {well}: {key} = {value!r} is not a number", source=source)
    if isinstance(value, str):
        text = value.strip().replace(",", ".")
        if not re.fullmatch(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?", text):
            raise LayoutError(f"well {well}: {key} = {value!r} is not a number", source=source)
        return float(text)
    return float(value)


def _expected_range(value: Any, well: str, source: Path) -> tuple[float, float] | None:
    """[low, high], a single value (→ [v/5, 5v]) or a string '>25' / '0.001-0.01'."""
    if value is None or _is_missing(value):
        return None
    try:
        if isinstance(value, bool) or (
            isinstance(value, list | tuple) and any(isinstance(v, bool) for v in value)
        ):
            raise TypeError("a boolean is not a range")
        if isinstance(value, list | tuple) and len(value) == 2:
            low, high = float(value[0]), float(value[1])
        elif isinstance(value, int | float):
            low, high = float(value) / 5, float(value) * 5
        else:
            text = str(value).strip().replace(" ", "")
            if text.startswith(">"):
                low, high = float(text[1:]), math.inf
            elif text.startswith("<"):
                low, high = 0.0, float(text[1:])
            elif re.fullmatch(r"[0-9.eE+]+-[0-9.eE+]+", text):
                a, b = text.split("-", 1)
                low, high = float(a), float(b)
            else:
                low = float(text) / 5
                high = float(text) * 5
    except (TypeError, ValueError):
        raise LayoutError(
            f"well {well}: expected_ic50 {value!r} is not a range", source=source
        ) from None
    if not 0 <= low <= high:
        raise LayoutError(f"well {well}: expected_ic50 {value!r} is not a range", source=source)
    return low, high


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _text(value: Any) -> str | None:
    if value is None or _is_missing(value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, str | bytes | list | dict):
        return value.item()
    return value


def _one_line(text: str) -> str:
    return " ".join(text.split())
