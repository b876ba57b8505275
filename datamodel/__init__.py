"""The in-memory records every stage shares (DESIGN.md §4): plate reads and cytometry data.

A top-level package, like ``errors.py``, so that drivers, readers and the analysis use one
``PlateRead`` without importing each other (data flows drivers → acquisition → analysis,
and code depends only in that direction). Pure data: numpy and the standard library.
"""

from datamodel.plates import (
    PLATE_FORMATS,
    STANDARD_PLATES,
    UNITS,
    ExportFile,
    FloatGrid,
    Plate,
    PlateRead,
    ReadMode,
    StatusGrid,
    WellStatus,
    parse_well,
    plate_format_for,
    row_index,
    row_label,
    well_name,
)

__all__ = [
    "PLATE_FORMATS",
    "STANDARD_PLATES",
    "UNITS",
    "ExportFile",
    "FloatGrid",
    "Plate",
    "PlateRead",
    "ReadMode",
    "StatusGrid",
    "WellStatus",
    "parse_well",
    "plate_format_for",
    "row_index",
    "row_label",
    "well_name",
]
