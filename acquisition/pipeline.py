"""One export file → its analysed plates: what the CLI and the daemon's workers both run.

Layout resolution (DESIGN.md §5.2): a layout the user names explicitly wins; otherwise a
sidecar ``<stem>.layout.toml`` next to the file, then a layout named after the plate
barcode in the layouts folder, then the watch folder's default. The layout used is named
in every result.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from acquisition.formats import read_export
from analysis.assay import PlateResult, analyze_plate
from analysis.curves import ReferenceRange
from analysis.doseresponse import ResponseRules
from analysis.layout import Layout, load_layout
from analysis.model import safe_stem
from config import Settings, load_reference_ic50
from datamodel import ExportFile, Plate
from errors import LayoutError


@dataclass
class AnalysedPlate:
    path: Path
    plate: Plate
    result: PlateResult
    layout_source: str


_LAYOUTS: dict[Path, tuple[int, Layout]] = {}


def cached_layout(path: Path) -> Layout:
    """A layout, parsed again only when its file changed (workers analyse many plates)."""
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return load_layout(path)  # raises the one-line LayoutError
    hit = _LAYOUTS.get(path)
    if hit is None or hit[0] != stamp:
        hit = _LAYOUTS[path] = (stamp, load_layout(path))
    return hit[1]


def resolve_layout(
    path: Path,
    plate: Plate,
    default: Path | None,
    layouts_dir: Path | None = None,
    *,
    explicit: Path | None = None,
) -> Path:
    if explicit is not None:
        return explicit
    sidecar = path.with_name(f"{path.stem}.layout.toml")
    if sidecar.is_file():
        return sidecar
    if layouts_dir is not None and plate.barcode:
        named = layouts_dir / f"{safe_stem(plate.barcode)}.toml"
        if named.is_file():
            return named
    if default is not None:
        return default
    raise LayoutError(
        f"no layout: pass --layout, or put {sidecar.name} next to the export", source=path
    )


def response_rules(settings: Settings) -> ResponseRules:
    qc = settings.qc
    return ResponseRules(
        p_threshold=qc.response_p, min_effect=qc.min_effect, partial_below=qc.partial_below
    )


def references(settings: Settings) -> dict[str, ReferenceRange]:
    return dict(load_reference_ic50(settings.analysis.reference_ic50))


def report_name(path: Path, plate: Plate, n_plates: int) -> str:
    """A report name unique per plate: plate ids that differ only in punctuation differ here."""
    if n_plates == 1:
        return path.stem
    tag = hashlib.sha1(plate.plate_id.encode("utf-8")).hexdigest()[:6]
    return f"{path.stem}_{safe_stem(plate.plate_id)}_{tag}"


def analyze_export(
    path: Path,
    export: ExportFile,
    settings: Settings,
    *,
    layout: Path | None = None,
    explicit_layout: Path | None = None,
    layouts_dir: Path | None = None,
    reference_table: dict[str, ReferenceRange] | None = None,
) -> list[AnalysedPlate]:
    """Analyse every plate of an already-read export (pure: nothing is written)."""
    refs = reference_table if reference_table is not None else references(settings)
    rules = response_rules(settings)
    out: list[AnalysedPlate] = []
    for plate in export.plates:
        layout_path = resolve_layout(path, plate, layout, layouts_dir, explicit=explicit_layout)
        result = analyze_plate(
            plate.reads,
            cached_layout(layout_path),
            settings.qc,
            rules=rules,
            wavelength_nm=settings.analysis.wavelength_nm,
            reference_band=settings.analysis.reference_nm,
            references=refs,
            confidence_level=settings.analysis.confidence_level,
            plate_id=plate.plate_id,
            assay=settings.analysis.assay,
        )
        out.append(AnalysedPlate(path, plate, result, str(layout_path)))
    return out


def analyze_file(
    path: str | Path, settings: Settings, *, layout: Path | None = None
) -> list[AnalysedPlate]:
    """The CLI's analysis of one file: an explicit ``layout`` wins over a sidecar."""
    source = Path(path)
    export = read_export(source)
    return analyze_export(source, export, settings, explicit_layout=layout)
