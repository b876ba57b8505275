"""Files that sit in export folders but are not exports: refused by name, never half-read.

Labs keep plate layouts (wellmap TOML, plate-map CSV) and instrument definitions (YAML)
next to their exports. The generic grid reader would find a "plate" in a plate-map CSV
(``Row,Col,Strain,Color`` has a numeric column) and a bare "no plate grid found" says
nothing about a layout. So this reader recognises them by content and its ``read``
refuses them with a message that says what the file is and where it belongs.
It runs after every vendor reader and before the generic grid (priority 85).
"""

from __future__ import annotations

import csv
import re

from acquisition.formats.base import Reader, Sample
from errors import FormatError

_TOML_SECTION = re.compile(r"^\[{1,2}\s*([A-Za-z0-9_.\-\" ]+?)\s*\]{1,2}\s*(#.*)?$")
_TOML_KEY = re.compile(r"^[^=\[\]#\t]{1,80}=\s*\S")
_WELLMAP_SECTION = re.compile(
    r"^(row|col|irow|icol|well|block|expt|meta|plate|wells)(\.[^\]]*)?$", re.IGNORECASE
)
_YAML_KEY = re.compile(r"^(\s*-\s+)?\s*[A-Za-z0-9_\-\" ]+:(\s|$)")
_POSITION = {"well", "wells", "well id", "row", "col", "column"}
_LAYOUT_COLUMNS = {
    "role",
    "compound",
    "strain",
    "color",
    "colour",
    "cell_line",
    "cell line",
    "sample",
    "condition",
    "treatment",
    "conc_unit",
    "group",
    "content",
    "type",
    "name",
    "genotype",
    "media",
}


def _meaningful(lines: list[str]) -> list[str]:
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def _toml(lines: list[str]) -> str | None:
    body = _meaningful(lines)
    if len(body) < 2:
        return None
    sections = [m.group(1).strip('"') for ln in body if (m := _TOML_SECTION.match(ln))]
    keys = sum(1 for ln in body if _TOML_KEY.match(ln))
    if not sections or len(sections) + keys < 0.9 * len(body):
        return None
    if any(_WELLMAP_SECTION.match(s) for s in sections):
        return (
            "a wellmap plate layout (TOML), not a plate-reader export: give it as the "
            "layout of the plates it describes (--layout, or the watch folder's layout)"
        )
    return "a TOML file (configuration or layout), not a plate-reader export"


def _yaml(lines: list[str]) -> str | None:
    body = _meaningful(lines)
    if len(body) < 3 or any("\t" in ln for ln in lines[:50]):
        return None
    keyed = sum(1 for ln in body if _YAML_KEY.match(ln) or ln.startswith("- ") or ln == "---")
    if keyed < 0.8 * len(body):
        return None
    text = "\n".join(lines)
    if re.search(r"^devices:\s*$", text, re.MULTILINE) and re.search(
        r"^(spec|resources):", text, re.MULTILINE
    ):
        return (
            "a pyvisa-sim instrument definition (YAML), not a plate-reader export: it "
            "belongs in the reader configuration of a simulated instrument"
        )
    return "a YAML file (configuration), not a plate-reader export"


def _plate_map(lines: list[str]) -> str | None:
    body = [ln for ln in lines if ln.strip()]
    if len(body) < 3:
        return None
    for delimiter in (",", ";", "\t"):
        try:
            header = next(csv.reader([body[0]], delimiter=delimiter))
        except csv.Error:
            return None
        names = [h.strip().lower() for h in header]
        if len(names) < 2:
            continue
        positions = {n for n in names if n in _POSITION}
        layout = [h.strip() for h, n in zip(header, names, strict=True) if n in _LAYOUT_COLUMNS]
        if not (("well" in positions or {"row", "col"} <= positions) and layout):
            continue
        reads = [n for n in names if re.search(r"\bod\b|abs|^nm|[0-9]{3}|value|signal|rfu|rlu", n)]
        if reads:
            return None
        return (
            f"a plate map (layout CSV: {', '.join(h.strip() for h in header)[:60]}), not a "
            "plate-reader export: give it as the layout of the plates it describes"
        )
    return None


def _sniff(sample: Sample) -> str | None:
    if sample.is_zip or not sample.head:
        return None
    lines = sample.head_lines[:400]
    return _toml(lines) or _yaml(lines) or _plate_map(lines)


def _read(sample: Sample, what: str) -> object:
    raise FormatError(what, source=sample.path)


READER: Reader[str] = Reader(
    name="not-an-export",
    kind="plate",
    sniff=_sniff,
    read=_read,
    priority=85,
    max_bytes=16 * 1024 * 1024,
    describe="layout or configuration file (refused: not an export)",
)
