"""platewatch's well values against allotropy's, for every corpus file of this part's vendors.

allotropy (Benchling's parser library, 0.1.150, in the peer environment) reads the same
file with the vendor named; its ASM is reduced to plate → read → well → value by
``tests/allotropy_peer.py``. For every read allotropy reports, each of its wells must have
the same number in platewatch's read, or — where allotropy attached an error — the same
non-numeric token (an empty cell, which allotropy reports as the error ``nan``, is
platewatch's ``not_read``); and every well platewatch has a value for must be in
allotropy's read. Units are not compared: allotropy labels every absorbance ``mAU``
while its numbers are the reader's OD, as platewatch's are.

Where the two disagree the test says who is right and why (``KNOWN`` below), and checks
the disagreement itself, so that a change on either side shows up.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from acquisition.formats import read_export
from bench.parse import allotropy_vendor
from datamodel import ExportFile, PlateRead, WellStatus, parse_well
from tests.allotropy_peer import allotropy_reads, parse_key
from tests.conftest import CORPUS

FOLDER = CORPUS / "platereaders"
VENDORS = ("MOLDEV_SOFTMAX_PRO", "BMG_MARS", "PERKIN_ELMER_ENVISION", "REVVITY_KALEIDO")
FILES = sorted(
    p.name for p in FOLDER.iterdir() if p.is_file() and allotropy_vendor(p.name) in VENDORS
)

# Disagreements, file by file, and who is right.
KNOWN: dict[str, str] = {
    # allotropy 0.1.150 writes TimeFormat kinetic reads as data cubes with no values (every
    # measurement of every well has empty 'dimensions' and 'measures'). The values are in
    # the file (A1 at 00:00:00 is 0.0379, one line per time point): platewatch is right;
    # allotropy loses the whole run.
    "MTPHandler__Spectramax190 molecular Devices.txt": "allotropy-empty-cubes",
    # MARS names the data set 'Raw Data (450 1)': 450 nm, chromatic 1 (the first of the
    # chromatics MARS numbers). allotropy reads it as 'Ex Em' filters and reports a
    # detector wavelength of 1 nm. platewatch's 450 nm is right; the values agree.
    "allotropy__bmg_mars__BMG Labtech format.CSV": "allotropy-wavelength-is-chromatic",
    # allotropy gives these EnVision absorbance reads no detection type and no wavelength;
    # the file's Labels section says 'Excitation wavelength 562 nm' / filter 'BFP 450'
    # (CWL=450nm). platewatch's wavelengths are right; the values agree.
    "allotropy__envision__PE_Envision_absorbance_A450_example.csv": "allotropy-no-wavelength",
    "allotropy__envision__PE_Envision_absorbance_example01.csv": "allotropy-no-wavelength",
}
# Files allotropy cannot read at all (shown by the benchmark too).
UNREADABLE = {
    # the iD3 SpreadsheetML export: allotropy's SoftMax Pro parser takes .txt only and no
    # other allotropy parser reads SpectraMax iD3 XML
    "growth-curve-calculator__sample_endpoints_1.xml": "Unsupported file extension 'xml'",
}


@pytest.fixture(scope="module")
def peer() -> dict[str, Any]:
    return allotropy_reads([(str(FOLDER / n), str(allotropy_vendor(n))) for n in FILES])


def test_the_cross_check_covers_this_parts_corpus_files() -> None:
    assert len(FILES) >= 11
    assert set(KNOWN) | set(UNREADABLE) <= set(FILES)


@pytest.mark.parametrize("name", FILES)
def test_values_equal_allotropys(name: str, peer: dict[str, Any]) -> None:
    result = peer[str(FOLDER / name)]
    if name in UNREADABLE:
        assert UNREADABLE[name] in result.get("error", ""), result
        return
    assert "error" not in result, result
    ours = read_export(FOLDER / name)
    compared = 0
    for plate_name, reads in result["plates"].items():
        plate = next(p for p in ours.plates if plate_name in (p.plate_id, p.barcode))
        matched: set[int] = set()
        for key, wells in reads.items():
            parts = parse_key(key)
            if parts["empty_cube"]:
                assert KNOWN.get(name) == "allotropy-empty-cubes", key
                assert all(v is None for v in wells.values())
                continue
            read = _match(plate.reads, parts, matched, name)
            compared += _compare(read, wells, key)
        _check_known(name, ours, reads)
    if KNOWN.get(name) == "allotropy-empty-cubes":
        assert compared == 0  # nothing to compare: allotropy has no values at all
        assert ours.plates[0].reads[0].values[0, 0] == 0.0379  # what the file shows
    else:
        assert compared > 0


def _match(reads: list[PlateRead], parts: dict[str, Any], used: set[int], name: str) -> PlateRead:
    """Our read for allotropy's key: same time/spectrum point and wavelength, n-th of them."""
    wavelength = parts["wl"]
    if KNOWN.get(name) == "allotropy-wavelength-is-chromatic":
        wavelength = None  # allotropy's 1 nm is MARS's chromatic number
    same = [
        (k, r)
        for k, r in enumerate(reads)
        if (parts["t"] is None or r.time_s == parts["t"])
        and (parts["nm"] is None or r.wavelength_nm == parts["nm"])
        and (wavelength is None or parts["nm"] is not None or r.wavelength_nm == wavelength)
    ]
    assert len(same) > parts["n"], f"no read of ours matches allotropy's {parts}"
    k, read = same[parts["n"]]
    used.add(k)
    return read


def _compare(read: PlateRead, wells: dict[str, Any], key: str) -> int:
    n = 0
    for well, theirs in wells.items():
        rc = parse_well(well)
        status = read.status[rc]
        if isinstance(theirs, str):  # an error document: no number
            token = theirs[1:]
            assert status != WellStatus.OK, (key, well)
            if token == "nan":  # an empty cell
                assert status == WellStatus.NOT_READ, (key, well)
            else:
                assert read.raw_tokens[well] == token, (key, well)
        else:
            assert status == WellStatus.OK, (key, well, theirs)
            assert math.isclose(read.values[rc], theirs, rel_tol=1e-12, abs_tol=0), (key, well)
        n += 1
    ok_wells = {
        f"{chr(65 + r)}{c + 1}"
        for r in range(read.shape[0])
        for c in range(read.shape[1])
        if read.status[r, c] == WellStatus.OK
    }
    assert ok_wells <= set(wells), (
        f"{key}: wells with values allotropy lacks: {sorted(ok_wells - set(wells))[:5]}"
    )
    return n


def _check_known(name: str, ours: ExportFile, reads: dict[str, Any]) -> None:
    kind = KNOWN.get(name)
    keys = [parse_key(k) for k in reads]
    if kind == "allotropy-wavelength-is-chromatic":
        assert {(k["wl"], k["ex"]) for k in keys} == {(1.0, None)}
        assert ours.plates[0].reads[0].wavelength_nm == 450
    elif kind == "allotropy-no-wavelength":
        assert all(k["wl"] is None and k["detection"] == "None" for k in keys)
        assert all(
            r.wavelength_nm in (450, 562)
            for p in ours.plates
            for r in p.reads
            if r.mode == "absorbance"
        )


def test_read_modes_agree_where_allotropy_names_one(peer: dict[str, Any]) -> None:
    modes = {
        "absorbance": "absorbance",
        "fluorescence": "fluorescence",
        "luminescence": "luminescence",
    }
    checked = 0
    for name in FILES:
        result = peer[str(FOLDER / name)]
        if "plates" not in result:
            continue
        ours = {r.mode for p in read_export(FOLDER / name).plates for r in p.reads}
        for reads in result["plates"].values():
            for key in reads:
                detection = parse_key(key)["detection"].lower()
                theirs = next(
                    (
                        m
                        for word, m in modes.items()
                        if word in detection or word[:3] == detection[:3]
                    ),
                    None,
                )
                if theirs is not None:
                    assert theirs in ours, (name, key)
                    checked += 1
    assert checked > 0


def test_no_file_of_this_part_is_left_out(corpus: Path) -> None:
    from tests.test_platereader_corpus import FILES as ALL

    mine = {
        n
        for n in ALL
        if n.startswith(
            ("allotropy__softmaxpro", "allotropy__bmg", "allotropy__envision", "allotropy__kaleido")
        )
    }
    assert mine <= set(FILES)
