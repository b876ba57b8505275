"""allotropy as the fallback for vendors platewatch has no reader for.

A watch folder with ``format = "allotropy:VENDOR"`` (``VENDOR`` one of allotropy's
``Vendor`` names, e.g. ``BMG_LABTECH_SMART_CONTROL``) has its files converted by allotropy
(the optional extra ``platewatch[allotropy]``, imported only here and only when used) and
its ASM turned into :class:`PlateRead` s: one read per plate, detection mode, wavelength
(and excitation) and occurrence per well, kinetic data cubes split into one read per time
point; a well allotropy reports with an error document keeps that token (``OVRFLW`` →
overflow …) and its status, never a silent number (allotropy writes such wells as -0.0).
Absorbance values are the OD the file shows (allotropy labels them ``mAU``).

Anything allotropy refuses becomes a one-line FormatError naming the file, the vendor and
allotropy's reason.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acquisition.formats.text import grid_to_read
from datamodel import PLATE_FORMATS, ExportFile, Plate, PlateRead, ReadMode, parse_well
from errors import FormatError

_MODES: dict[str, ReadMode] = {
    "absorbance": "absorbance",
    "fluorescence": "fluorescence",
    "luminescence": "luminescence",
}
# allotropy's own errors, and what its parsers raise on malformed input (pandas, parsing)
_PEER_DATA_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    KeyError,
    IndexError,
    TypeError,
    UnicodeError,
    EOFError,
)


def _one_line(text: object, limit: int = 200) -> str:
    return " ".join(str(text).split())[:limit]


def _vendor(name: str, source: Path) -> Any:
    try:
        from allotropy.parser_factory import Vendor
    except ImportError:
        raise FormatError(
            "format 'allotropy:...' needs allotropy: install the extra, "
            "pip install 'platewatch[allotropy]'",
            source=source,
        ) from None
    key = name.strip().upper().replace("-", "_").replace(" ", "_")
    try:
        return Vendor[key]
    except KeyError:
        close = sorted(v.name for v in Vendor if key.split("_")[0] in v.name)[:8]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise FormatError(f"allotropy has no vendor {name!r}{hint}", source=source) from None


def read_with_allotropy(path: str | Path, data: bytes, vendor: str) -> ExportFile:
    """The export converted by allotropy's ``vendor`` parser, as platewatch reads."""
    source = Path(path)
    chosen = _vendor(vendor, source)
    from allotropy.exceptions import AllotropyError
    from allotropy.to_allotrope import allotrope_from_io

    try:
        asm = allotrope_from_io(io.BytesIO(data), str(source), chosen)
    except AllotropyError as exc:
        raise FormatError(
            f"allotropy {chosen.name} cannot read it: {_one_line(exc)}", source=source
        ) from None
    except _PEER_DATA_ERRORS as exc:
        raise FormatError(
            f"allotropy {chosen.name} failed on it ({type(exc).__name__}: {_one_line(exc)})",
            source=source,
        ) from None
    return export_from_asm(asm, source=source, vendor=chosen.name)


@dataclass
class _Series:
    """One read being assembled: its key and the wells' tokens."""

    mode: ReadMode
    wavelength: float | None
    excitation: float | None
    time_s: float | None
    label: str
    tokens: dict[tuple[int, int], str] = field(default_factory=dict)


def _value_token(value: object, errors: list[str]) -> str:
    if errors:
        return errors[0]
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return repr(float(value))
    return "" if value is None else str(value)


def _setting(md: dict[str, Any], key: str) -> float | None:
    for dc in md.get("device control aggregate document", {}).get("device control document", []):
        quantity = dc.get(key)
        if isinstance(quantity, dict) and isinstance(quantity.get("value"), int | float):
            return float(quantity["value"])
    return None


def _wavelength(nm: float | None) -> float | None:
    """A plate reader's wavelength, or None: allotropy 0.1.150 writes 1 nm for BMG MARS's
    'Raw Data (450 1)' (it takes the read number), and no reader measures below 200 nm."""
    return nm if nm is not None and 200 <= nm <= 1100 else None


def _errors(md: dict[str, Any]) -> list[str]:
    docs = md.get("error aggregate document", {}).get("error document", [])
    return [str(d.get("error")) for d in docs if isinstance(d, dict) and d.get("error")]


def _measurements(
    md: dict[str, Any], well: tuple[int, int]
) -> list[tuple[tuple[Any, ...], ReadMode, float | None, str, str]]:
    """(key, mode, time, label, token) of each value one measurement document holds."""
    wavelength = _wavelength(_setting(md, "detector wavelength setting"))
    excitation = _wavelength(_setting(md, "excitation wavelength setting"))
    errors = _errors(md)
    found: list[tuple[tuple[Any, ...], ReadMode, float | None, str, str]] = []
    for key, mode in _MODES.items():
        if key in md and isinstance(md[key], dict):
            token = _value_token(md[key].get("value"), errors)
            found.append(((mode, wavelength, excitation), mode, None, key, token))
    for key, cube in md.items():
        if not key.endswith("data cube") or not isinstance(cube, dict):
            continue
        measure = (cube.get("cube-structure", {}).get("measures") or [{}])[0]
        mode = _MODES.get(str(measure.get("concept", "")), "other")
        dims = (cube.get("data", {}).get("dimensions") or [[]])[0]
        values = (cube.get("data", {}).get("measures") or [[]])[0]
        cube_errors = {  # allotropy ties a cube's errors to their time point: '120.0s'
            str(d.get("error feature", "")): str(d.get("error"))
            for d in md.get("error aggregate document", {}).get("error document", [])
            if isinstance(d, dict)
        }
        label = str(cube.get("label") or key)
        for t, v in zip(dims, values, strict=False):
            feature = f"{t}s"
            token = cube_errors.get(feature) or _value_token(v, [])
            found.append(
                ((mode, wavelength, excitation, "cube", label), mode, float(t), label, token)
            )
    return found


def export_from_asm(asm: dict[str, Any], *, source: Path, vendor: str) -> ExportFile:
    """PlateReads from an ASM plate-reader document (as allotropy writes them)."""
    aggregate = next((v for k, v in asm.items() if k.endswith("aggregate document")), None)
    if not isinstance(aggregate, dict):
        raise FormatError(f"allotropy {vendor} returned no aggregate document", source=source)
    documents = next(
        (
            v
            for k, v in aggregate.items()
            if k.endswith("reader document") or k.endswith("technique document")
        ),
        None,
    )
    if not isinstance(documents, list):
        raise FormatError(
            f"allotropy {vendor} returned no plate reader documents (not a plate reader)",
            source=source,
        )
    plates: dict[str, dict[tuple[Any, ...], _Series]] = {}
    well_counts: dict[str, int] = {}
    measured: dict[str, str] = {}
    for doc in documents:
        agg = doc.get("measurement aggregate document", {})
        for md in agg.get("measurement document", []):
            sample = md.get("sample document", {})
            plate_id = str(sample.get("well plate identifier") or "Plate 1")
            try:
                rc = parse_well(str(sample.get("location identifier", "")))
            except ValueError:
                continue
            count = agg.get("plate well count", {}).get("value")
            if isinstance(count, int | float):
                well_counts[plate_id] = int(count)
            if agg.get("measurement time"):
                measured.setdefault(plate_id, str(agg["measurement time"]))
            series = plates.setdefault(plate_id, {})
            seen: dict[tuple[Any, ...], int] = {}
            for key, mode, time_s, label, token in _measurements(md, rc):
                n = seen.get(key, 0)
                seen[key] = n + 1
                full = (*key, n, time_s)
                if full not in series:
                    series[full] = _Series(mode, key[1], key[2], time_s, label)
                series[full].tokens[rc] = token
    if not plates:
        raise FormatError(f"allotropy {vendor} returned no well measurements", source=source)
    out: list[Plate] = []
    for plate_id, series in plates.items():
        shape = PLATE_FORMATS.get(well_counts.get(plate_id, 0))
        reads: list[PlateRead] = []
        for s in series.values():
            cells = [(r, c, t) for (r, c), t in s.tokens.items()]
            if shape is not None and any(r >= shape[0] or c >= shape[1] for r, c, _ in cells):
                shape = None
            read = grid_to_read(
                cells,
                source=source,
                rows=shape[0] if shape else None,
                cols=shape[1] if shape else None,
                label=s.label,
                wavelength_nm=s.wavelength,
                time_s=s.time_s,
            )
            read.mode = s.mode
            read.measured_at = measured.get(plate_id)
            reads.append(read)
        out.append(Plate(plate_id=plate_id, reads=reads))
    device = aggregate.get("device system document", {})
    system = aggregate.get("data system document", {})
    software = " ".join(
        str(system[k]) for k in ("software name", "software version") if system.get(k)
    )
    return ExportFile(
        format=f"allotropy:{vendor}",
        plates=out,
        instrument={
            "model": device.get("model number"),
            "serial": device.get("equipment serial number"),
            "software": software or None,
        },
        metadata={
            "converted_by": "allotropy",
            "converter": f"{system.get('ASM converter name', '')} {system.get('ASM converter version', '')}".strip(),
            "manifest": asm.get("$asm.manifest"),
        },
    )
