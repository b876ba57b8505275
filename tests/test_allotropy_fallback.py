"""The allotropy fallback (``format = "allotropy:VENDOR"``), run in the peer environment
(allotropy installed, platewatch on PYTHONPATH) and, for the missing-extra case, here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from acquisition.formats import read_any, read_export
from datamodel import WellStatus
from errors import FormatError
from tests.peers import ROOT, require_peers

PR = "platereaders"

FALLBACK = r"""
import json, sys
from acquisition.formats import read_any
from errors import FormatError

out = {}
for arg in sys.argv[1:]:
    fmt, path = arg.split("=", 1)
    try:
        export = read_any(path, format=fmt)
    except FormatError as exc:
        out[arg] = {"error": str(exc), "type": type(exc).__name__}
        continue
    out[arg] = {
        "format": export.format,
        "instrument": export.instrument,
        "plates": [
            {"plate": p.plate_id, "reads": [r.to_dict() for r in p.reads]} for p in export.plates
        ],
    }
print(json.dumps(out))
"""


def _run(*args: str) -> dict[str, Any]:
    python = require_peers()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"}
    out = subprocess.run(
        [str(python), "-c", FALLBACK, *args], capture_output=True, text=True, timeout=300, env=env
    )
    if out.returncode != 0:
        raise RuntimeError(f"peer script failed: {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout)
    return result


@pytest.fixture(scope="module")
def converted(corpus: Path) -> dict[str, Any]:
    pr = corpus / PR
    return _run(
        f"allotropy:AGILENT_GEN5={pr / 'allotropy__gen5__240411_172731_BNCH2345883_abs450_96well_non_numeric_values.txt'}",
        f"allotropy:agilent_gen5={pr / 'allotropy__gen5__kinetic_helper_gene_growth_curve.txt'}",
        f"allotropy:BMG_MARS={pr / 'allotropy__bmg_mars__BMG Labtech format.CSV'}",
        f"allotropy:TECAN_MAGELLAN={pr / 'MTPHandler__magellan.xlsx'}",
        f"allotropy:NO_SUCH_READER={pr / 'MTPHandler__magellan.xlsx'}",
    )


def _by_name(converted: dict[str, Any], name: str) -> dict[str, Any]:
    return next(v for k, v in converted.items() if k.endswith(name))


def test_endpoint_values_and_tokens_equal_the_native_reader(
    corpus: Path, converted: dict[str, Any]
) -> None:
    name = "allotropy__gen5__240411_172731_BNCH2345883_abs450_96well_non_numeric_values.txt"
    found = _by_name(converted, name)
    assert found["format"] == "allotropy:AGILENT_GEN5"
    assert found["instrument"]["model"] == "Synergy H1"
    (read,) = found["plates"][0]["reads"]
    native = read_export(corpus / PR / name).plates[0].reads[0]
    assert (read["rows"], read["cols"]) == native.shape
    assert read["mode"] == "absorbance" and read["wavelength_nm"] == 450
    assert read["raw_tokens"] == native.raw_tokens  # OVRFLW and MISSED, not -0.0
    assert read["status"] == [[str(s) for s in row] for row in native.status]
    ok = native.status == WellStatus.OK
    for r in range(8):
        for c in range(12):
            if ok[r, c]:
                assert read["values"][r][c] == native.values[r, c]
    assert read["status"][0][7] == "overflow" and read["status"][3][11] == "missed"


def test_kinetic_cubes_become_one_read_per_time_point(
    corpus: Path, converted: dict[str, Any]
) -> None:
    found = _by_name(converted, "allotropy__gen5__kinetic_helper_gene_growth_curve.txt")
    reads = found["plates"][0]["reads"]
    native = (
        read_export(corpus / PR / "allotropy__gen5__kinetic_helper_gene_growth_curve.txt")
        .plates[0]
        .reads
    )
    assert [r["time_s"] for r in reads] == [r.time_s for r in native]
    assert reads[0]["values"][0][0] == native[0].values[0, 0] == -0.066


def test_a_vendor_without_a_platewatch_reader(converted: dict[str, Any]) -> None:
    found = _by_name(converted, "allotropy__bmg_mars__BMG Labtech format.CSV")
    assert "error" not in found, found.get("error")
    reads = found["plates"][0]["reads"]
    # allotropy 0.1.150 writes 'detector wavelength setting' 1 nm for 'Raw Data (450 1)':
    # it takes the read number for the wavelength (allotropy is wrong: the file says 450 nm).
    # The fallback does not invent the 450 allotropy lost; it drops a wavelength no plate
    # reader measures at, rather than pass 1 nm on.
    assert reads and reads[0]["mode"] == "absorbance" and reads[0]["wavelength_nm"] is None
    assert any(v is not None for row in reads[0]["values"] for v in row)


def test_allotropy_refusals_are_one_line_format_errors(converted: dict[str, Any]) -> None:
    magellan = next(v for k, v in converted.items() if k.startswith("allotropy:TECAN_MAGELLAN="))
    assert magellan["type"] == "FormatError" and "cannot read it" in magellan["error"]
    assert "Well positions" in magellan["error"] and "\n" not in magellan["error"]
    unknown = next(v for k, v in converted.items() if k.startswith("allotropy:NO_SUCH_READER="))
    assert "no vendor 'NO_SUCH_READER'" in unknown["error"]


def test_without_the_extra_the_error_says_what_to_install(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "allotropy", None)  # import allotropy → ImportError
    monkeypatch.setitem(sys.modules, "allotropy.parser_factory", None)
    with pytest.raises(FormatError, match=r"pip install 'platewatch\[allotropy\]'") as info:
        read_any(corpus / PR / "MTPHandler__magellan.xlsx", format="allotropy:TECAN_MAGELLAN")
    assert "\n" not in str(info.value)
