"""Layouts (wellmap TOML and CSV) and the configuration loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.layout import load_layout
from config import load_config, load_reference_ic50
from errors import ConfigError, LayoutError


def test_shipped_mtt_layout(layout96) -> None:  # type: ignore[no-untyped-def]
    assert len(layout96.wells) == 96
    assert layout96.wells["A1"].role == "blank"
    assert layout96.wells["A2"].role == "untreated"
    spec = layout96.wells["B3"]
    assert (spec.role, spec.compound, spec.conc, spec.unit, spec.cell_line) == (
        "treated",
        "asparaginase",
        10.0,
        "IU/mL",
        "MOLT-4P",
    )
    assert spec.expected_ic50 == (0.0008, 0.02)
    assert layout96.wells["A3"].expected_ic50 is None
    assert layout96.cell_lines == ["REH", "MOLT-4P"]


def test_wellmap_examples_from_the_corpus_load(corpus: Path) -> None:
    layout = load_layout(corpus / "platereaders" / "wellmap__std_curve.toml")
    assert layout.wells["B3"].extra["dilution"] == 1e3
    beta = load_layout(corpus / "platereaders" / "wellmap__beta_gal_assay.toml")
    assert beta.wells["B5"].extra["fit_start_min"] == 0


def test_csv_plate_map(tmp_path: Path) -> None:
    path = tmp_path / "map.csv"
    path.write_text(
        "well,role,compound,conc,conc_unit,cell_line\n"
        'A1,blank,,,,\nA2,untreated,,,,REH\nA3,treated,asp,0.5,IU/mL,REH\nB3,treated,asp,"1,5",IU/mL,REH\n'
    )
    layout = load_layout(path)
    assert layout.wells["A3"].conc == 0.5 and layout.wells["B3"].conc == 1.5
    assert layout.wells["A1"].role == "blank"


def _toml(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "layout.toml"
    path.write_text(body)
    return path


def test_unknown_role_names_the_well(tmp_path: Path) -> None:
    with pytest.raises(LayoutError, match=r"well A1: unknown role 'bank'"):
        load_layout(_toml(tmp_path, "[well.A1]\nrole = 'bank'\n"))


def test_treated_well_without_concentration_names_the_well(tmp_path: Path) -> None:
    with pytest.raises(LayoutError, match=r"well C4: treated well without a concentration"):
        load_layout(_toml(tmp_path, "[well.C4]\nrole = 'treated'\ncompound = 'asp'\n"))


def test_layout_for_a_larger_plate_names_the_well(tmp_path: Path) -> None:
    layout = load_layout(_toml(tmp_path, "[well.P24]\nrole = 'blank'\n[well.A1]\nrole='blank'\n"))
    with pytest.raises(LayoutError, match=r"well P24 is outside the 8x12 plate"):
        layout.check_fits(8, 12)


def test_expected_ic50_forms(tmp_path: Path) -> None:
    layout = load_layout(
        _toml(
            tmp_path,
            "[well.A1]\nrole='untreated'\nexpected_ic50='>25'\n"
            "[well.A2]\nrole='untreated'\nexpected_ic50='0.001-0.01'\n"
            "[well.A3]\nrole='untreated'\nexpected_ic50=2\n",
        )
    )
    assert layout.wells["A1"].expected_ic50 == (25.0, float("inf"))
    assert layout.wells["A2"].expected_ic50 == (0.001, 0.01)
    assert layout.wells["A3"].expected_ic50 == (0.4, 10.0)


def test_embedded_default_config_loads() -> None:
    settings = load_config()
    assert settings.store.url.startswith("sqlite:///")
    assert settings.qc.replicate_cv == 0.20
    assert settings.analysis.wavelength_nm == 570


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("[qc]\nedge_ratoi = 0.9\n", "qc.edge_ratoi: unknown key"),
        ("[qc]\nedge_ratio = 'low'\n", "qc.edge_ratio: Input should be a valid number"),
        ("[[watch]]\npath = '/x'\n", "watch[0].instrument: Field required"),
        ("[servcie]\n", "servcie: unknown key"),
        ("[qc\n", "not valid TOML"),
    ],
)
def test_config_errors_are_one_line_naming_file_and_key(
    tmp_path: Path, body: str, expected: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert text.startswith(str(path)) and expected in text and "\n" not in text


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")


def test_reference_table_shipped_and_overridable(tmp_path: Path) -> None:
    table = load_reference_ic50()
    assert table["MOLT4P"].ic50 == 0.004
    assert table["MOLT4R"].resistant and table["MOLT4R"].low == 25
    assert table["REH"].low <= 3.5 <= table["REH"].high
    own = tmp_path / "own.toml"
    own.write_text('unit = "IU/mL"\n[line.MyLine]\nrange = [1, 2]\n')
    assert load_reference_ic50(own)["MYLINE"].high == 2
    own.write_text("[line.MyLine]\nrange = [3, 1]\n")
    with pytest.raises(ConfigError, match=r"line.MyLine.range"):
        load_reference_ic50(own)
