"""Random wellmap layouts for the property tests: a hypothesis strategy and a TOML writer.

The layouts use the grammar ``analysis.wellmap_format`` covers (every section, every
pattern form, overlapping definitions, nested tables, includes, alerts) and, now and then,
what it must refuse the way wellmap does (bad names, bad ranges, bad block sizes, a row
without columns, a zero column) or leave to wellmap (date-times, ``[plate]``, ``[meta]``
keys it does not cover). Rows and columns stay within a small plate (plus a row beyond
Z) so that wellmap's own loading of every example stays quick.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

BAD_ROWS = ["", "1", "A1", "?", " B"]
BAD_COLS = ["", "x", "1.5", " 3", "0"]
BAD_WELLS = ["", "A", "1A", " A1", "?3", "A0"]
JUNK = ["...", "A,...", "A-B-C", "A,B,...", "1,...,3,5", "A1,...,B2,C3"]


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """``one_of`` with integer weights (hypothesis has none of its own)."""
    return st.one_of(*[strategy for weight, strategy in choices for _ in range(weight)])


def rare(weight: int) -> st.SearchStrategy[bool]:
    """True about once in ``weight`` draws (integers() would favour the boundary)."""
    return st.sampled_from([False] * (weight - 1) + [True])


row_index = weighted((9, st.integers(0, 9)), (1, st.sampled_from([24, 25, 26])))
col_index = st.integers(0, 12)


def row_text(i: int, lower: bool) -> str:
    name = ""
    while i >= 0:
        name = chr(ord("A") + i % 26) + name
        i = i // 26 - 1
    return name.lower() if lower else name


def col_text(j: int, padded: bool) -> str:
    return f"{j + 1:02d}" if padded else str(j + 1)


def well_text(ij: tuple[int, int], style: tuple[bool, bool]) -> str:
    return row_text(ij[0], style[0]) + col_text(ij[1], style[1])


case = weighted((5, st.just(False)), (1, st.just(True)))
style = st.tuples(case, case)


@st.composite
def line_pattern(
    draw: st.DrawFn, text: Any, index: st.SearchStrategy[int], steps: bool = True
) -> str:
    """A valid single name, range or ellipsis (unless not ``steps``) of rows or columns."""
    form = draw(st.sampled_from(["one", "one", "range", "steps"] if steps else ["one", "range"]))
    a, casing = draw(index), draw(case)
    if form == "one":
        return str(text(a, casing))
    if form == "range":
        return f"{text(a, casing)}-{text(a + draw(st.integers(1, 4)), casing)}"
    step, count = draw(st.integers(1, 3)), draw(st.integers(2, 3))
    return f"{text(a, casing)},{text(a + step, casing)},...,{text(a + step * count, casing)}"


@st.composite
def well_pattern(draw: st.DrawFn, steps: bool = True) -> str:
    """A valid single well, range (row, column or rectangle) or ellipsis of wells."""
    form = draw(st.sampled_from(["one", "one", "range", "steps"] if steps else ["one", "range"]))
    i, j, how = draw(row_index), draw(col_index), draw(style)
    if form == "one":
        return well_text((i, j), how)
    di, dj = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    if (di, dj) == (0, 0):
        dj = 1
    if form == "range":
        return f"{well_text((i, j), how)}-{well_text((i + di, j + dj), how)}"
    second = (i + di, j + dj)
    if di and dj:  # a rectangle of steps: as many as wanted each way
        last = (i + di * draw(st.integers(1, 2)), j + dj * draw(st.integers(1, 2)))
    else:  # along a row or a column: at least two steps
        n = draw(st.integers(2, 3))
        last = (i + di * n, j + dj * n)
    return f"{well_text((i, j), how)},{well_text(second, how)},...,{well_text(last, how)}"


def random_tokens(good: st.SearchStrategy[str], bad: list[str]) -> st.SearchStrategy[str]:
    """Tokens thrown together: often invalid ranges, steps or names."""
    token = weighted((3, good), (1, st.sampled_from(bad)))
    dash = st.builds(lambda a, b: f"{a}-{b}", token, token)
    ellipsis = st.builds(lambda a, b, c: f"{a},{b},...,{c}", token, token, token)
    return st.one_of(token, dash, ellipsis, st.sampled_from(JUNK))


def pattern(valid: st.SearchStrategy[str], no_steps: st.SearchStrategy[str]) -> Any:
    """A pattern, or a comma list of names and ranges (an ellipsis stands alone)."""
    listed = st.lists(no_steps, min_size=2, max_size=3).map(",".join)
    return weighted((4, valid), (1, listed))


row_pattern = pattern(
    line_pattern(row_text, row_index), line_pattern(row_text, row_index, steps=False)
)
col_pattern = pattern(
    line_pattern(col_text, col_index), line_pattern(col_text, col_index, steps=False)
)
well_patterns = pattern(well_pattern(), well_pattern(steps=False))
ANY_PATTERN = {
    "row": random_tokens(st.builds(row_text, row_index, case), BAD_ROWS),
    "irow": random_tokens(st.builds(row_text, row_index, case), BAD_ROWS),
    "col": random_tokens(st.builds(col_text, col_index, case), BAD_COLS),
    "icol": random_tokens(st.builds(col_text, col_index, case), BAD_COLS),
    "well": random_tokens(st.builds(well_text, st.tuples(row_index, col_index), style), BAD_WELLS),
}


scalar = st.one_of(
    st.integers(-3, 3),
    st.integers(-3, 3),
    st.sampled_from([2**53 + 1, -(2**63), 2**63 - 1]),
    st.floats(-10, 10, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.5, -0.0, math.inf, math.nan, 1e300]),
    st.text(alphabet="abc XYZ-é", max_size=4),
    st.booleans(),
    st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2030, 1, 1)),
)
rare_datetime = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2030, 1, 1))
value = st.one_of(
    scalar,
    scalar,
    scalar,
    st.lists(st.integers(0, 3), max_size=3),
    st.dictionaries(st.sampled_from(["a", "b"]), scalar, max_size=2),
)
generic_params = st.dictionaries(
    st.sampled_from(["x", "y", "z", "n", "conc", "role", "cell_line"]), value, max_size=3
)
platewatch_params = st.fixed_dictionaries(
    {},
    optional={
        "role": st.sampled_from(["blank", "untreated", "treated", "positive_control", "empty"]),
        "compound": st.sampled_from(["asp", "drug b"]),
        "conc": st.one_of(st.integers(0, 100), st.floats(0, 10), st.just("1,5")),
        "conc_nM": st.integers(0, 1000),
        "cell_line": st.sampled_from(["REH", "MOLT-4P"]),
        "replicate": st.integers(1, 3),
        "expected_ic50": st.sampled_from([[0.001, 0.01], ">25", 2, 0.5]),
        "note": scalar,
    },
)
PARAMS = {"generic": generic_params, "platewatch": platewatch_params}


def _section(patterns: st.SearchStrategy[str], entry: st.SearchStrategy[Any]) -> Any:
    return st.dictionaries(patterns, entry, min_size=1, max_size=3)


block_size = st.builds(lambda w, h: f"{w}x{h}", st.integers(1, 4), st.integers(1, 3))
BAD_BLOCK_SIZES = ["big", "x2", "2x", "2X2", "0x2", "3x0", "02x1"]


@st.composite
def layout_doc(
    draw: st.DrawFn, *, kind: str = "generic", datetimes: bool = False
) -> dict[str, Any]:
    """One file's tables (no [meta]): a random subset of the sections."""
    params = entry = PARAMS[kind]
    blocks = st.dictionaries(
        block_size,
        st.dictionaries(well_patterns, entry, min_size=1, max_size=2),
        max_size=2,
    )
    doc: dict[str, Any] = {}
    for name, strategy in (
        ("expt", params),
        ("row", _section(row_pattern, entry)),
        ("col", _section(col_pattern, entry)),
        ("irow", _section(row_pattern, entry)),
        ("icol", _section(col_pattern, entry)),
        ("block", blocks),
        ("well", _section(well_patterns, entry)),
    ):
        if draw(st.booleans()):
            doc[name] = draw(strategy)
    if not ({"well", "block"} & set(doc) or {"row", "col"} <= set(doc)) and not draw(rare(4)):
        doc["well"] = draw(_section(well_patterns, entry))  # mostly layouts with wells
    if draw(rare(4)):
        _malform(draw, doc, params)
    if draw(rare(10)):
        doc["notes"] = {"who": "me"}  # a top-level table wellmap ignores
    if datetimes and draw(rare(25)):
        doc.setdefault("expt", {})["when"] = draw(rare_datetime)
    return doc


def _malform(draw: st.DrawFn, doc: dict[str, Any], params: Any) -> None:
    """One thing wellmap refuses (or crashes on): a bad pattern, block size, or entry."""
    how = draw(st.sampled_from(["pattern", "pattern", "block", "entry"]))
    section = draw(st.sampled_from(sorted(ANY_PATTERN)))
    table = doc.setdefault(section, {})
    if how == "pattern":
        table[draw(ANY_PATTERN[section])] = draw(params)
    elif how == "entry":
        table[draw(ANY_PATTERN[section])] = 5
    else:
        doc.setdefault("block", {})[draw(st.sampled_from(BAD_BLOCK_SIZES))] = {"A1": {"x": 1}}


@st.composite
def layout_files(draw: st.DrawFn, kind: str = "generic") -> dict[str, dict[str, Any]]:
    """A main file ``layout.toml`` and up to two included files (one may include the other)."""
    includes = draw(st.sampled_from([0, 0, 1, 2]))
    files = {f"inc{n}.toml": draw(layout_doc(kind=kind)) for n in range(includes)}
    main = draw(layout_doc(kind=kind, datetimes=True))
    meta: dict[str, Any] = {}
    if includes == 1:
        meta["include"] = "inc0.toml"
    elif includes == 2:
        shape = draw(st.sampled_from(["list", "reversed", "chained"]))
        if shape == "chained":
            meta["include"] = "inc0.toml"
            files["inc0.toml"]["meta"] = {"include": "inc1.toml"}
        else:
            names = ["inc0.toml", "inc1.toml"]
            meta["include"] = names if shape == "list" else names[::-1]
    for doc in (main, *files.values()):
        if draw(rare(5)):
            doc.setdefault("meta", {})["alert"] = draw(st.sampled_from(["check me", "dim", 3]))
    deferred = draw(st.sampled_from([*["none"] * 38, "plate", "concat"]))
    if deferred == "plate":
        main["plate"] = {"p1": {"expt": {"x": 1}}}  # left to wellmap
    elif deferred == "concat":
        meta["concat"] = []  # a [meta] key left to wellmap
    if meta:
        main["meta"] = {**main.get("meta", {}), **meta}
    return {"layout.toml": main, **files}


def write_files(folder: Path, files: dict[str, dict[str, Any]]) -> Path:
    for name, doc in files.items():
        (folder / name).write_text(to_toml(doc), encoding="utf-8")
    return folder / "layout.toml"


def to_toml(doc: dict[str, Any]) -> str:
    """TOML for a document whose values are tables, as ``[section]`` + inline tables."""
    lines = []
    for name, table in doc.items():
        if not isinstance(table, dict):
            lines.append(f"{_key(name)} = {_value(table)}")
            continue
        lines.append(f"[{_key(name)}]")
        lines += [f"{_key(k)} = {_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def _key(key: str) -> str:
    return json.dumps(key)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, dt.date):  # dates and date-times
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"no TOML for {v!r}")
