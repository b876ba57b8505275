"""ASM export: documents of corpus files validate against the plate-reader schema that
allotropy ships (REC/2025/03, with jsonschema in the peer environment), and carry the
reads' values, tokens, kinetic series and analysis results."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from acquisition.asm import MANIFEST, asm_document, iso_time
from acquisition.formats import read_export
from datamodel import WellStatus
from tests.peers import run_peer

VALIDATE = r"""
import json, pathlib, sys
import allotropy, jsonschema
root = pathlib.Path(allotropy.__file__).parent / "allotrope" / "schemas"
store = {}
for f in root.rglob("*.schema.json"):
    s = json.loads(f.read_text(encoding="utf-8"))
    if "$id" in s:
        store[s["$id"]] = s
schema = json.loads((root / "adm/plate-reader/REC/2025/03/plate-reader.schema.json").read_text(encoding="utf-8"))
resolver = jsonschema.RefResolver(base_uri=schema["$id"], referrer=schema, store=store)
validator = jsonschema.Draft202012Validator(
    schema, resolver=resolver, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)
out = {}
for path in sys.argv[1:]:
    doc = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    out[pathlib.Path(path).name] = ["/".join(map(str, e.absolute_path)) + ": " + e.message[:200] for e in errors[:5]]
print(json.dumps(out))
"""

FILES = [
    "allotropy__gen5__240411_172731_BNCH2345883_abs450_96well_non_numeric_values.txt",
    "allotropy__gen5__kinetic_helper_gene_growth_curve.txt",
    "MTPHandler__tekan_spark_endpoint.xlsx",
    "MTPHandler__tekan_spark.xlsx",
    "tread__single_time_single_reads.xlsx",
    "allotropy__magellan__SLA01P01_OD.xlsx",
    "allotropy__skanit__skanit_data.xlsx",
    "MTPHandler__multiskan_spectrum_1500.txt",
]
RESULTS = [
    {
        "verdict": "warn",
        "flags": [{"code": "edge_effect", "severity": "warning"}],
        "curves": [
            {"group": {"compound": "cisplatin"}, "ic50": 1.5, "ic50_ci": [1.1, 2.0], "b": 1.2}
        ],
        "qc": {"z_prime": 0.62, "cv_untreated": 4.1},
    }
]


def _document(path: Path, results: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    data = path.read_bytes()
    return asm_document(
        read_export(path),
        source=str(path),
        sha256=hashlib.sha256(data).hexdigest(),
        results=results,
    )


def _measurements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        m
        for prd in doc["plate reader aggregate document"]["plate reader document"]
        for m in prd["measurement aggregate document"]["measurement document"]
    ]


def test_documents_validate_against_the_plate_reader_schema(corpus: Path, tmp_path: Path) -> None:
    paths = []
    for name in FILES:
        doc = _document(corpus / "platereaders" / name, RESULTS)
        out = tmp_path / f"{name}.json"
        out.write_text(json.dumps(doc, allow_nan=False), encoding="utf-8")
        paths.append(str(out))
    # a negative control: the validator does refuse a document missing a required field
    broken = json.loads(Path(paths[0]).read_text(encoding="utf-8"))
    del broken["plate reader aggregate document"]["plate reader document"][0][
        "measurement aggregate document"
    ]["plate well count"]
    bad = tmp_path / "broken.json"
    bad.write_text(json.dumps(broken), encoding="utf-8")
    found = run_peer(VALIDATE, *paths, str(bad))
    assert found.pop("broken.json"), "the schema validator accepted a broken document"
    assert found == {Path(p).name: [] for p in paths}


def test_endpoint_values_tokens_and_units(corpus: Path) -> None:
    path = corpus / "platereaders" / FILES[0]
    doc = _document(path)
    assert doc["$asm.manifest"] == MANIFEST
    read = read_export(path).plates[0].reads[0]
    by_well = {m["sample document"]["location identifier"]: m for m in _measurements(doc)}
    assert len(by_well) == 96
    assert by_well["A1"]["absorbance"] == {
        "value": 2.1,
        "unit": "mAU",
    }  # the OD, as allotropy writes it
    assert by_well["A8"]["absorbance"]["value"] == 0.0
    assert by_well["A8"]["error aggregate document"]["error document"] == [
        {"error": "OVRFLW", "error feature": "absorbance"}
    ]
    assert by_well["D12"]["error aggregate document"]["error document"][0]["error"] == "MISSED"
    ok = [w for w, m in by_well.items() if "error aggregate document" not in m]
    assert len(ok) == (read.status == WellStatus.OK).sum()
    system = doc["plate reader aggregate document"]["data system document"]
    assert (
        system["custom information document"]["sha256"]
        == hashlib.sha256(path.read_bytes()).hexdigest()
    )
    assert (
        doc["plate reader aggregate document"]["device system document"]["model number"]
        == "Synergy H1"
    )
    agg = doc["plate reader aggregate document"]["plate reader document"][0][
        "measurement aggregate document"
    ]
    assert agg["measurement time"] == "2024-04-11T17:27:15+00:00"
    assert (
        agg["custom information document"]["measurement time as exported"] == "4/11/2024 5:27:15 PM"
    )


def test_kinetic_reads_are_data_cubes_and_luminescence_is_rlu(corpus: Path) -> None:
    doc = _document(
        corpus / "platereaders" / "allotropy__gen5__kinetic_helper_gene_growth_curve.txt"
    )
    a1 = next(m for m in _measurements(doc) if m["sample document"]["location identifier"] == "A1")
    cube = a1["absorption profile data cube"]
    assert cube["data"]["dimensions"][0][:3] == [22.0, 262.0, 502.0]
    assert cube["data"]["measures"][0][:3] == [-0.066, -0.068, -0.068]
    lum = _document(corpus / "platereaders" / "MTPHandler__tekan_spark_endpoint.xlsx")
    (c11, *_rest) = [
        m for m in _measurements(lum) if m["sample document"]["location identifier"] == "C11"
    ]
    assert c11["luminescence"] == {"value": 47088.0, "unit": "RLU"}
    assert len(_measurements(lum)) == 9  # unread wells are left out


def test_results_become_calculated_data_and_custom_information(corpus: Path) -> None:
    doc = _document(corpus / "platereaders" / FILES[0], RESULTS)
    calc = doc["plate reader aggregate document"]["calculated data aggregate document"][
        "calculated data document"
    ]
    names = {c["calculated data name"]: c["calculated result"]["value"] for c in calc}
    assert names["IC50 [compound=cisplatin]"] == 1.5
    assert names["IC50 CI lower [compound=cisplatin]"] == 1.1 and names["QC z_prime"] == 0.62
    sources = calc[0]["data source aggregate document"]["data source document"]
    ids = {m["measurement identifier"] for m in _measurements(doc)}
    assert sources and all(s["data source identifier"] in ids for s in sources)
    first = doc["plate reader aggregate document"]["plate reader document"][0][
        "measurement aggregate document"
    ]
    assert first["custom information document"]["platewatch verdict"] == "warn"
    assert first["custom information document"]["platewatch flags"] == "edge_effect"


def test_identifiers_are_deterministic(corpus: Path) -> None:
    path = corpus / "platereaders" / "tread__single_time_single_reads.xlsx"
    one, two = _document(path), _document(path)
    assert [m["measurement identifier"] for m in _measurements(one)] == [
        m["measurement identifier"] for m in _measurements(two)
    ]


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("4/11/2024 5:27:15 PM", "2024-04-11T17:27:15+00:00"),
        ("2023-04-18 13:22:05", "2023-04-18T13:22:05+00:00"),
        ("24.12.2023 14:05:10", "2023-12-24T14:05:10+00:00"),
        ("Wednesday, August 16, 2023 16:12:40", "2023-08-16T16:12:40+00:00"),
        ("sometime last week", None),
        (None, None),
    ],
)
def test_iso_time(text: str | None, iso: str | None) -> None:
    assert iso_time(text) == iso


def test_export_asm_from_the_command_line_validates(tmp_path: Path) -> None:
    """`platewatch export --asm … -o DIR --layout L`: reads plus the real analysis."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    plates = [
        root / "examples" / "mtt_plate_edge_effect.txt",
        root / "examples" / "mtt_plate_failed.txt",
    ]
    out = subprocess.run(
        [sys.executable, str(root / "service.py"), "export", "--asm", *map(str, plates), "-o", str(tmp_path),
         "--layout", str(root / "config" / "layouts" / "mtt-96.toml")],
        capture_output=True, text=True, timeout=120, cwd=root,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    written = sorted(tmp_path.glob("*.asm.json"))
    assert [p.name for p in written] == [
        "mtt_plate_edge_effect.asm.json",
        "mtt_plate_failed.asm.json",
    ]
    assert "edge_effect" in written[0].read_text()  # the analysis went in
    assert run_peer(VALIDATE, *map(str, written)) == {p.name: [] for p in written}
    bad = subprocess.run(
        [sys.executable, str(root / "service.py"), "export", "--asm", str(tmp_path / "nope.txt")],
        capture_output=True, text=True, timeout=60, cwd=root,
    )  # fmt: skip
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
