"""Cross-check with allotropy (the peer environment) on the Gen5, Magellan and SkanIt files.

allotropy 0.1.150 reads, among this helper's formats, Gen5 text (``AGILENT_GEN5``),
Magellan (``TECAN_MAGELLAN``) and SkanIt workbooks (``THERMO_SKANIT``); it has no parser
for i-control, SparkControl, XFLUOR4, Multiskan or Gen5 workbooks. For every corpus file it
reads, every well value it reports must equal platewatch's, and every well it flags with an
error must be a non-ok well in platewatch carrying the same raw token.

Unit conventions: allotropy labels absorbance values "mAU" but writes the OD the file shows
(2.1 for a well reading 2.100, no factor 1000), so values compare as they are. A well it
could not read is written -0.0 with an error document; platewatch keeps NaN, a status and
the token.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from acquisition.formats import read_export
from datamodel import ExportFile, WellStatus, parse_well
from tests.peers import run_peer

PEER = r"""
import json, sys
from allotropy.parser_factory import Vendor
from allotropy.to_allotrope import allotrope_from_file

out = {}
for arg in sys.argv[1:]:
    vendor, path = arg.split("=", 1)
    try:
        asm = allotrope_from_file(path, Vendor[vendor])
    except Exception as exc:  # reported as data: the test says who is right
        out[path] = {"error": (type(exc).__name__ + ": " + str(exc))[:300]}
        continue
    rows = []
    for doc in asm["plate reader aggregate document"]["plate reader document"]:
        agg = doc["measurement aggregate document"]
        for md in agg["measurement document"]:
            sd = md["sample document"]
            errors = [e.get("error") for e in md.get("error aggregate document", {}).get("error document", [])]
            base = [sd.get("well plate identifier"), sd["location identifier"]]
            for key in ("absorbance", "fluorescence", "luminescence"):
                if key in md:
                    rows.append(base + [key, None, md[key]["value"], md[key].get("unit"), errors])
            for key, cube in md.items():
                if key.endswith("data cube"):
                    measure = cube["cube-structure"]["measures"][0]
                    times = cube["data"]["dimensions"][0]
                    values = cube["data"]["measures"][0]
                    for t, v in zip(times, values):
                        rows.append(base + [measure["concept"], t, v, measure.get("unit"), errors])
    out[path] = {"rows": rows, "wells": agg.get("plate well count", {}).get("value")}
print(json.dumps(out))
"""

FILES = {
    "allotropy__gen5__240411_172731_BNCH2345883_abs450_96well_non_numeric_values.txt": "AGILENT_GEN5",
    "allotropy__gen5__endpoint_stdcurve_singleplate.txt": "AGILENT_GEN5",
    "allotropy__gen5__kinetic_helper_gene_growth_curve.txt": "AGILENT_GEN5",
    "allotropy__magellan__SLA01P01_OD.xlsx": "TECAN_MAGELLAN",
    "MTPHandler__magellan.xlsx": "TECAN_MAGELLAN",
    "allotropy__skanit__skanit_data.xlsx": "THERMO_SKANIT",
}


@pytest.fixture(scope="module")
def peer(corpus: Path) -> dict[str, Any]:
    args = [f"{vendor}={corpus / 'platereaders' / name}" for name, vendor in FILES.items()]
    result: dict[str, Any] = run_peer(PEER, *args)
    return {Path(path).name: found for path, found in result.items()}


def _ours(export: ExportFile) -> dict[tuple[str, float | None], tuple[float, str, str | None]]:
    """(well, time) → (value, status, token) of platewatch's raw reads."""
    found: dict[tuple[str, float | None], tuple[float, str, str | None]] = {}
    for plate in export.plates:
        for read in plate.reads:
            rows, cols = read.shape
            for r in range(rows):
                for c in range(cols):
                    well = f"{'ABCDEFGHIJKLMNOP'[r]}{c + 1}"
                    found[(well, read.time_s)] = (
                        float(read.values[r, c]),
                        str(read.status[r, c]),
                        read.raw_tokens.get(well),
                    )
    return found


@pytest.mark.parametrize("name", sorted(FILES))
def test_well_values_equal_allotropy(corpus: Path, peer: dict[str, Any], name: str) -> None:
    export = read_export(corpus / "platereaders" / name)
    theirs = peer[name]
    if name == "MTPHandler__magellan.xlsx":
        # allotropy refuses Magellan's kinetic layout ("missing required 'Well positions'
        # column"): it reads only the list layout. The file is a real Magellan kinetic
        # export (time-point header lines, then 'well, v1 … v7' groups) and platewatch's
        # values are the cells the sheet shows (tests/test_reader_tecan.py), so platewatch
        # is right to read it; there is nothing to compare.
        assert "Well positions" in theirs["error"]
        assert len(export.plates[0].reads) == 7
        return
    assert "error" not in theirs, theirs.get("error")
    ours = _ours(export)
    compared = 0
    for _plate, well, _concept, time_s, value, unit, errors in theirs["rows"]:
        r, c = parse_well(well)
        key = (f"{'ABCDEFGHIJKLMNOP'[r]}{c + 1}", time_s)
        assert key in ours, f"allotropy has {key}, platewatch does not"
        mine, status, token = ours[key]
        if errors:
            assert status != WellStatus.OK and token in errors, (key, status, token, errors)
        else:
            assert status == WellStatus.OK, (key, status, token, value)
            assert math.isclose(mine, value, rel_tol=1e-9, abs_tol=1e-12), (key, mine, value)
        if unit == "mAU":  # allotropy's label for absorbance: the same OD numbers
            assert export.plates[0].reads[0].unit == "OD"
        compared += 1
    assert compared == len(theirs["rows"]) > 0
    n_ok = sum(1 for v in ours.values() if v[1] == WellStatus.OK or v[2] is not None)
    # platewatch reports no well value allotropy does not (its raw reads only)
    assert n_ok == compared, (n_ok, compared)


def test_kinetic_plate_format_differs_and_why(corpus: Path, peer: dict[str, Any]) -> None:
    # The growth-curve export reads wells A1–D6 on a plate type named 'Generic_Plate_123'.
    # allotropy calls it a 24-well plate (it counts the wells it saw); platewatch places
    # the wells on the smallest standard plate that holds them (96), as nothing in the file
    # names the format. Both keep the same 24 well values (checked above); neither can be
    # sure of the plate, so platewatch does not guess a 24-well plate from a well count.
    name = "allotropy__gen5__kinetic_helper_gene_growth_curve.txt"
    assert peer[name]["wells"] == 24
    read = read_export(corpus / "platereaders" / name).plates[0].reads[0]
    assert read.shape == (8, 12) and (read.status == WellStatus.OK).sum() == 24
