"""analysis.wellmap_format reads wellmap layouts exactly as wellmap.load does.

Checked against wellmap itself (installed in the main environment): every real layout,
random layouts of the covered grammar (wells, values, their types, order, errors), and
the fallback to wellmap for what the reader does not cover. Plus the point of it all: a
layout loads without importing wellmap, pandas or matplotlib.
"""

from __future__ import annotations

import dataclasses
import math
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import wellmap
from hypothesis import HealthCheck, Phase, event, given, settings

from analysis import layout as layout_module
from analysis.layout import Layout, load_layout
from analysis.wellmap_format import (
    VERIFIED_WELLMAP,
    NeedsWellmap,
    frame_records,
    read_wellmap,
    wellmap_error,
)
from errors import LayoutError
from tests.conftest import CORPUS, ROOT
from tests.wellmap_layouts import layout_files, to_toml, write_files

_IDENTITY = ("well0", "row", "col", "row_i", "col_j")

REAL_LAYOUTS = sorted(
    [
        *(CORPUS / "platereaders").glob("wellmap__*.toml"),
        *(ROOT / "config" / "layouts").glob("*.toml"),
        *(ROOT / "examples").glob("*.toml"),
    ]
)


# What each side says about a layout ------------------------------------------------------


def strict(value: Any) -> Any:
    """A value with its type at every depth (1 ≠ 1.0 ≠ True), NaN equal to NaN, order kept."""
    if isinstance(value, dict):
        return ("dict", tuple((k, strict(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return (type(value).__name__, tuple(strict(v) for v in value))
    if isinstance(value, float) and math.isnan(value):
        return ("float", "nan")
    return (type(value).__name__, value)


def ours(path: Path) -> tuple[Any, ...]:
    """("ok", rows, alerts) | ("error", message) | ("wellmap", reason) from the fast reader."""
    try:
        parsed = read_wellmap(path)
        rows = frame_records(parsed.wells)
    except NeedsWellmap as err:
        return ("wellmap", err.reason)
    except LayoutError as err:
        return ("error", str(err))
    alerts = [(p, str(m)) for p, m in parsed.alerts]
    return ("ok", [strict(row) for row in rows], alerts)


def theirs(path: Path) -> tuple[Any, ...]:
    """("ok", rows, alerts) | ("error", message) | ("crash", exception type) from wellmap."""
    alerts: list[tuple[Path, str]] = []
    try:
        frame = wellmap.load(path, on_alert=lambda p, m: alerts.append((p, str(m))))
    except wellmap.LayoutError as err:
        return ("error", str(wellmap_error(path, str(err))))
    except (AttributeError, TypeError) as err:  # wellmap's crashes on non-table entries
        return ("crash", type(err).__name__)
    rows = []
    for record in frame.to_dict("records"):
        row = {k: v for k, v in record.items() if k not in _IDENTITY}
        rows.append(
            {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
        )
    return ("ok", [strict(row) for row in rows], alerts)


def assert_same(path: Path) -> tuple[Any, ...]:
    """Our reader and wellmap agree on ``path`` (or ours defers to wellmap)."""
    mine, wm = ours(path), theirs(path)
    if mine[0] == "wellmap":
        return mine
    if mine[0] == "ok":
        assert wm[0] == "ok", (mine, wm)
        assert mine[1] == wm[1]  # same wells, same order, same values of the same types
        assert mine[2] == wm[2]
    elif wm[0] == "crash":  # wellmap has no message: ours names the entry
        assert "must be a table of parameters" in mine[1], (mine, wm)
    else:
        assert mine == wm
    return mine


def layout_outcome(path: Path) -> tuple[str, Any]:
    """What load_layout makes of it: the wells (types kept) and warnings, or the error."""
    try:
        layout = load_layout(path)
    except LayoutError as err:
        return ("error", str(err))
    return ("ok", describe(layout))


def describe(layout: Layout) -> Any:
    wells = [(name, strict(dataclasses.asdict(spec))) for name, spec in layout.wells.items()]
    return wells, layout.warnings, layout.source, layout.declared_shape


def by_wellmap() -> Any:
    """load_layout with the fast reader switched off: the behaviour before it existed."""
    return mock.patch.object(
        layout_module, "_wellmap_records_fast", side_effect=NeedsWellmap("forced")
    )


def assert_same_layout(path: Path) -> None:
    fast = layout_outcome(path)
    with by_wellmap():
        slow = layout_outcome(path)
    if fast != slow:  # only where wellmap crashed on a non-table entry: ours names it
        assert slow[0] == "error" and "object has no attribute 'items'" in slow[1], (fast, slow)
        assert fast[0] == "error" and "must be a table of parameters" in fast[1], (fast, slow)


# The installed wellmap is the one the reader reproduces ----------------------------------


def test_installed_wellmap_is_the_verified_release() -> None:
    # Upgrading wellmap means re-checking its semantics (file.py, util.py) against
    # analysis/wellmap_format.py before bumping VERIFIED_WELLMAP.
    assert wellmap.__version__ == VERIFIED_WELLMAP


# (1) every real layout ------------------------------------------------------------------


@pytest.mark.parametrize("path", REAL_LAYOUTS, ids=lambda p: p.name)
def test_real_layouts_read_exactly_as_wellmap(path: Path, tmp_path: Path) -> None:
    if path.name == "wellmap__bradford_assay.toml":
        # It includes 'bradford_standards.toml', stored in the corpus under another name:
        # as stored, wellmap cannot follow the include, and neither do we.
        assert ours(path)[0] == "wellmap"
        with pytest.raises(FileNotFoundError):
            wellmap.load(path)
        copy = tmp_path / path.name
        shutil.copy(path, copy)
        shutil.copy(
            path.with_name("wellmap__bradford_standards.toml"), tmp_path / "bradford_standards.toml"
        )
        path = copy
    outcome = assert_same(path)
    assert outcome[0] == "ok", outcome  # covered: no real layout needs wellmap
    assert_same_layout(path)


def test_the_shipped_layout_is_what_wellmap_says() -> None:
    # Not only equal: the 96 wells in wellmap's order, [col] keys merged with [col.'3-10'].
    outcome = ours(ROOT / "config" / "layouts" / "mtt-96.toml")
    assert outcome[0] == "ok"
    rows = read_wellmap(ROOT / "config" / "layouts" / "mtt-96.toml").wells
    assert len(rows) == 96 and list(rows)[:3] == ["A1", "A2", "A3"]
    assert rows["B3"] == {
        "cell_line": "MOLT-4P",
        "expected_ic50": [0.0008, 0.02],
        "role": "treated",
        "compound": "asparaginase",
        "conc_IU_mL": 10,
    }


# (2) random layouts of the covered grammar ------------------------------------------------


PROPERTY = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
)


@PROPERTY
@given(layout_files())
def test_random_layouts_read_exactly_as_wellmap(files: dict[str, dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        outcome = assert_same(write_files(Path(folder), files))
    event(f"outcome: {outcome[0]}" + (f" ({outcome[1]})" if outcome[0] == "wellmap" else ""))


@settings(PROPERTY, max_examples=150)
@given(layout_files(kind="platewatch"))
def test_random_platewatch_layouts_load_as_before(files: dict[str, dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = write_files(Path(folder), files)
        outcome = assert_same(path)
        assert_same_layout(path)
    event(f"outcome: {outcome[0]}" + (f" ({outcome[1]})" if outcome[0] == "wellmap" else ""))


# Precedence, errors and limits, one at a time --------------------------------------------


def _layout(tmp_path: Path, body: str, name: str = "layout.toml") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


@pytest.mark.parametrize(
    "body",
    [
        # well > block (smaller first) > row > col > irow > icol > expt
        "[expt]\nx='expt'\n[icol.1]\nx='icol'\n[irow.A]\nx='irow'\n[col.1]\nx='col'\n"
        "[row.A]\nx='row'\n[block.2x2.A1]\nx='big'\n[block.1x2.A1]\nx='small'\n"
        "[well.A1]\nx='well'\n",
        # equal blocks: the later wins; later patterns win within a section
        "[block.2x2]\nA1.x = 1\nB1.x = 2\n[row]\n'A-C'.y = 1\nB.y = 2\n",
        # interleaved rows and columns create wells across the occupied span
        "[irow.A]\nx = 1\n[icol.3]\ny = 2\n[col.'1,3,...,7']\nz = 3\n",
        # nested tables merge key by key; dotted keys
        "[expt.drug]\nname='a'\nlot=1\n[row.A.drug]\nlot=2\n[col]\n1.drug.name='b'\n",
        # rows beyond Z, lowercase, padded columns, ellipsis over wells
        "[row.'Z,AA,AB']\nx = 1\n[col.'01-3']\ny = 2\n[well.'a1,c3,...,e5']\nz = 3\n",
    ],
)
def test_precedence_and_patterns_as_wellmap(tmp_path: Path, body: str) -> None:
    assert assert_same(_layout(tmp_path, body))[0] == "ok"


EDGE_CASES = [
    ("ok", "[icol.1]\nx=1\n[row.'A-C']\ny=2\n"),
    ("ok", "[irow.B]\nx=1\n[col.'1-3']\ny=2\n"),
    ("ok", "[irow.A]\nx=1\n[icol.2]\ny=2\n[well.D4]\nz=1\n"),
    ("ok", "[block.2x2.'A1-C3']\nx=1\n[block.2x2.B2]\nx=2\n"),
    ("ok", "[block.02x1.B2]\nx=1\n[block.1x1.B2]\nx=2\n[block.2x1.B2]\ny=3\n"),
    ("ok", "[block.2x3abc.A1]\nx=1\n"),  # wellmap reads the size from the start only
    # a table over a plain value and back, at several precedences
    ("ok", "[well.A1]\nx=1\n[well.'A1,A2']\nx.y=2\n[row.A]\nx=3\n[col.1]\nx.z=4\n"),
    ("ok", "[expt]\nx={a=1}\n[row.A]\nx=5\n[col.'1,2']\nw=1\n"),
    ("ok", "[row.A]\nx.y.z=1\n[col.1]\nx.y.w=2\n[expt]\nx.y=3\n"),
    ("ok", "title='t'\n[row.A]\n[col.'1-2']\n"),  # wells without parameters
    ("ok", "[well.'A1,B3,...,E9']\nx=1\n[well.'b03,A1x']\ny=1\n"),
    ("ok", "[well.'A1-B2,C3-D4']\nx=1\n[row.'ZZ,A-B,D']\ny=1\n[col.'1-2,5']\nz=1\n"),
    ("ok", "[meta.alert]\na=1\n[well.A1]\nx=1\n"),
    # pandas' column types: lists, int+bool, int+float, int+unset, NaN, dates and times
    ("ok", "[well.A1]\nx=[1,2]\nb=1\n[well.A2]\nx=[1,2]\nb=true\n"),
    ("ok", "[well.A1]\nx=1\n[well.A2]\ny=2.5\n[well.A3]\nx=2.0\n"),
    ("ok", "[well.A1]\nx=nan\n[well.A2]\nx=1\n"),
    ("ok", "[well.A1]\nx=1979-05-27\n[well.A2]\ny=07:32:00\n"),
    ("error", "[icol.0]\nx=1\n[row.A]\ny=2\n"),
    ("error", "[well]\n[row]\n[col]\n[irow.C]\n[icol.3]\n"),
    ("error", "[well.'A1,A1,...,A1']\nx=1\n"),
    ("error", "[col.'3,2,...,1']\nx=1\n[row.A]\ny=1\n"),
    ("error", "[well.'A3-C1']\nx=1\n"),
    ("error", "[well.'A1,A3,...,A8']\nx=1\n"),
    ("error", "[well.'A1,B1,...,C3']\nx=1\n"),
    ("error", "expt = 5\n[well.A1]\nx=1\n"),  # wellmap crashes; ours names [expt]
    ("wellmap", "[well.A1]\nx=1979-05-27T07:32:00Z\n"),
    ("wellmap", "[well.A1]\nx=99999999999999999999\n"),
    ("wellmap", "[well.A1]\nrow='r'\n"),
]


@pytest.mark.parametrize(("kind", "body"), EDGE_CASES)
def test_edge_cases_as_wellmap(tmp_path: Path, kind: str, body: str) -> None:
    path = _layout(tmp_path, body)
    assert assert_same(path)[0] == kind
    assert_same_layout(path)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[block.3y2.A1]\nx = 1\n", "Unknown [block] size '3y2'"),
        ("[block.0x2.A1]\nx = 1\n", "[block.0x2] has no width. No wells defined."),
        ("[row.A]\nx = 1\n", "Found 1 [row] spec, but no columns. No wells defined."),
        ("[icol.1]\nx = 1\n[icol.2]\nx = 1\n", "Found 2 [icol] specs, but no rows."),
        ("[row.'A-A']\nx = 1\n[col.1]\ny = 1\n", "'A-A': Expected A < A"),
        ("[col.'1,3,...,8']\nx = 1\n[row.A]\ny = 1\n", "Cannot get from 1 to 8 in steps of 2."),
        ("[well.'A1,B2,...']\nx = 1\n", "Expected '<first>,<second>,...,<last>', not 'A1,B2,...'"),
        ("[well.'B2-A1']\nx = 1\n", "'B2-A1': Expected B2 ≤ A1"),
        ("[well.'A1-B2-C3']\nx = 1\n", "Expected '<first>-<last>', not 'A1-B2-C3'"),
        ("[row.'A1']\nx = 1\n[col.1]\ny = 1\n", "Cannot parse row 'A1'"),
        ("[well.A0]\nx = 1\n", "Cannot reference negative columns"),
        ("[expt]\nx = 1\n", "No wells defined."),
    ],
)
def test_malformed_layouts_fail_with_wellmaps_message(
    tmp_path: Path, body: str, message: str
) -> None:
    path = _layout(tmp_path, body)
    with pytest.raises(LayoutError) as info:
        read_wellmap(path)
    text = str(info.value)
    assert text.startswith(f"{path}: invalid wellmap layout: ") and message in text
    assert "\n" not in text
    assert assert_same(path)[0] == "error"
    assert_same_layout(path)


def test_an_entry_that_is_not_a_table_is_named_where_wellmap_crashes(tmp_path: Path) -> None:
    path = _layout(tmp_path, "[row]\nA = 5\n[col.1]\nx = 1\n")
    with pytest.raises(AttributeError):
        wellmap.load(path)
    with pytest.raises(
        LayoutError, match=r"\[row.A\] must be a table of parameters, not an integer"
    ):
        load_layout(path)


def test_patterns_beyond_any_plate_are_refused_quickly(tmp_path: Path) -> None:
    path = _layout(tmp_path, "[row.'A-ZZZZ']\nx = 1\n[col.1]\ny = 1\n")
    started = time.monotonic()
    with pytest.raises(LayoutError, match=r"'A-ZZZZ': spans more than 100000 rows"):
        load_layout(path)
    wide = _layout(
        tmp_path, "[well.A1]\nx = 1\n[well.A999999999]\nx = 1\n[row.B]\ny = 1\n", "w.toml"
    )
    with pytest.raises(LayoutError, match=r"more than 100000 wells"):
        load_layout(wide)
    assert time.monotonic() - started < 10


def test_includes_merge_like_wellmap(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    _layout(tmp_path, "[row.'A,B']\nx = 'first'\n[col.1]\nc = 1\n", "sub/first.toml")
    _layout(
        tmp_path,
        "[meta]\ninclude = 'first.toml'\nalert = 'from second'\n[row.A]\nx = 'second'\ny = 2\n",
        "sub/second.toml",
    )
    path = _layout(
        tmp_path,
        "[meta]\ninclude = ['sub/first.toml', 'sub/second.toml']\nalert = 'top'\n"
        "[row.A]\ny = 'top'\n[expt]\nz = 0\n",
    )
    assert assert_same(path)[0] == "ok"
    layout = read_wellmap(path)
    # The file wins key by key; the later include wins over the earlier one; an included
    # pattern key ('A,B') is a different key from the file's 'A' and, merged later, wins.
    assert layout.wells["A1"] == {"y": "top", "x": "first", "c": 1, "z": 0}
    assert [str(m) for _, m in layout.alerts] == ["from second", "top"]
    assert load_layout(path).warnings == ["from second", "top"]


def test_include_checks_still_run_first(tmp_path: Path) -> None:
    inner = _layout(tmp_path, "[meta]\ninclude = 'layout.toml'\n[well.A1]\nx = 1\n", "inner.toml")
    _layout(tmp_path, f"[meta]\ninclude = '{inner.name}'\n[well.A2]\nx = 1\n")
    with pytest.raises(LayoutError, match=r"include cycle: layout.toml → inner.toml → layout.toml"):
        load_layout(tmp_path / "layout.toml")
    outside = _layout(tmp_path, "[meta]\ninclude = '../x.toml'\n[well.A1]\nx = 1\n", "out.toml")
    with pytest.raises(LayoutError, match="points outside the layout's folder"):
        load_layout(outside)


# (3) what the reader leaves to wellmap ------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("[plate.A]\nx = 1\n[plate.B]\nx = 2\n[well.A1]\ny = 1\n", "[plate] tables"),
        ("[meta]\nstyle.cmap = 'viridis'\n[well.A1]\ny = 1\n", "[meta] style"),
        ("[meta]\nconcat = []\n[well.A1]\ny = 1\n", "[meta] concat"),
        ("[expt]\nwhen = 2024-05-01T10:00:00\n[well.A1]\ny = 1\n", "date-time"),
        ("[well.A1]\nplate = 'mine'\n", "named like wellmap's columns"),
        ("[row.'Ä']\nx = 1\n[col.1]\ny = 1\n", "non-ASCII"),
        ("row = 'A'\n", "row is not a table"),
    ],
)
def test_what_is_not_covered_goes_to_wellmap(tmp_path: Path, body: str, reason: str) -> None:
    path = _layout(tmp_path, body)
    with pytest.raises(NeedsWellmap, match=re.escape(reason)):
        frame_records(read_wellmap(path).wells)


def test_a_plate_layout_still_loads_through_wellmap(tmp_path: Path) -> None:
    path = _layout(
        tmp_path,
        "[plate.A]\nrole = 'blank'\n[plate.B]\nrole = 'untreated'\n"
        "[well.'A1,A2']\ncell_line = 'REH'\n",
    )
    with pytest.raises(LayoutError, match="several plates"):
        load_layout(path)
    layout = load_layout(path, plate="B")
    frame = wellmap.load(path)
    assert list(layout.wells) == list(frame[frame["plate"] == "B"]["well"]) == ["A1", "A2"]
    assert {s.role for s in layout.wells.values()} == {"untreated"}
    assert layout.wells["A2"].cell_line == "REH"


# The point: no wellmap, pandas or matplotlib to load a layout or analyse a plate ------------


_HEAVY = "sorted(m for m in sys.modules if m.split('.')[0] in {'wellmap', 'pandas', 'matplotlib'})"


def _python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=100
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_loading_a_layout_imports_no_wellmap_pandas_or_matplotlib() -> None:
    out = _python(
        "import sys; from analysis.layout import load_layout; "
        "layout = load_layout('config/layouts/mtt-96.toml'); "
        f"print(len(layout.wells), {_HEAVY})"
    )
    assert out == "96 []"


def test_analyze_without_report_imports_no_pandas_or_matplotlib() -> None:
    out = _python(
        "import sys\nfrom service import main\n"
        "sys.argv = ['platewatch', 'analyze', 'examples/mtt_plate_clean.txt', "
        "'--layout', 'config/layouts/mtt-96.toml']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print('HEAVY', {_HEAVY})"
    )
    assert out.splitlines()[-1] == "HEAVY []", out
    assert "PASS" in out


def test_toml_writer_round_trips() -> None:
    import tomllib

    doc = {"row": {"A,B": {"x": 1, "d": {"a": [1, 2]}}}, "expt": {"s": 'é"q', "f": -0.5}}
    assert tomllib.loads(to_toml(doc)) == doc
