"""The FCS reader: every corpus file (parametrised over the folder), the quirks of SCIENCE.md
§6 one by one, round trips of written files, and bad input (truncated, bit-flipped, lying
headers) that must end in IncompleteFileError or a one-line FormatError."""

from __future__ import annotations

import json
import math
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acquisition.formats import read_any, read_export
from acquisition.formats.fcs import fcs_record, fcs_summary, read_fcs, read_fcs_bytes
from datamodel.cytometry import CytometryFile, FcsDataset
from errors import FormatError, IncompleteFileError
from tests.conftest import CORPUS
from tests.fcs_writer import Param, build_dataset, build_file

FCS_DIR = CORPUS / "fcs"
FILES = sorted(p for p in FCS_DIR.rglob("*") if p.is_file() and p.read_bytes()[:3] == b"FCS")


def _by_name(name: str) -> Path:
    return next(p for p in FILES if p.name == name)


def _event_by_hand(raw: bytes, d: FcsDataset, row: int) -> list[float]:
    """One event decoded with struct/int.from_bytes from the offsets the reader found."""
    layout = d.layout
    assert layout is not None
    widths = [b // 8 for b in layout.storage_bits]
    pos = layout.begin + row * sum(widths)
    out: list[float] = []
    for p, w in zip(d.parameters, widths, strict=True):
        chunk = raw[pos : pos + w]
        pos += w
        if layout.datatype == "F":
            out.append(struct.unpack("<f" if layout.byteorder == "little" else ">f", chunk)[0])
        elif layout.datatype == "D":
            out.append(struct.unpack("<d" if layout.byteorder == "little" else ">d", chunk)[0])
        else:
            value = int.from_bytes(chunk, layout.byteorder)
            if p.range >= 1 and math.ceil(math.log2(p.range)) < 8 * w:
                value &= (1 << math.ceil(math.log2(p.range))) - 1
            out.append(float(value))
    return out


def test_the_corpus_folder_is_found() -> None:
    assert len(FILES) >= 25


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_corpus_file_reads(path: Path) -> None:
    export = read_any(path)
    assert isinstance(export, CytometryFile) and export.kind == "cytometry"
    raw = path.read_bytes()
    for d in export.datasets:
        assert d.events.shape == (int(d.keywords["$TOT"]), int(d.keywords["$PAR"]))
        assert d.layout is not None and d.layout.begin + d.layout.length <= len(raw)
        if d.layout.datatype == "F":
            assert d.events.dtype == np.float32  # kept as stored, never widened
        if d.layout.datatype == "I":
            for k in d.layout.masked:
                p = d.parameters[k - 1]
                assert int(d.events[:, k - 1].max(initial=0)) < 2 ** math.ceil(math.log2(p.range))
        for row in {0, d.n_events - 1} if d.n_events else set():
            assert np.array_equal(
                d.events[row].astype(np.float64), _event_by_hand(raw, d, row), equal_nan=True
            )
    record = fcs_record(export, path=str(path), sha256="0" * 64)
    text = json.dumps(record, allow_nan=False)  # no NaN/inf anywhere
    assert [len(ds["parameters"]) for ds in record["datasets"]] == [
        len(d.parameters) for d in export.datasets
    ]
    assert record["format"] == "fcs" and "datasets" in json.loads(text)
    assert fcs_summary(export)


def test_parse_record_has_the_design_shape() -> None:
    cf = read_fcs(_by_name("flowio__G11.fcs"))
    record = fcs_record(cf, path="G11.fcs", sha256="ab")
    assert list(record)[:3] == ["path", "sha256", "format"]
    ds = record["datasets"][0]
    assert {"version", "events", "parameters", "keywords", "spillover"} <= set(ds)
    assert ds["version"] == "FCS3.1" and ds["events"] == 5785
    first = ds["parameters"][0]
    assert set(first) == {"name", "label", "bits", "range", "min", "max", "mean"}
    events = cf.primary.events
    fsc = cf.primary.channel("FSC-A")
    assert ds["parameters"][fsc]["mean"] == pytest.approx(
        float(np.mean(events[:, fsc], dtype=np.float64))
    )
    assert ds["spillover"]["source"] == "$SPILLOVER"
    assert ds["well_id"] == "G11"


def test_header_and_text_offsets_that_disagree_pick_the_one_that_fits() -> None:
    cyan = read_fcs(_by_name("cytoflow__Beckman_Coulter_-_Cyan.fcs")).primary
    assert cyan.layout is not None and cyan.layout.source == "HEADER"
    assert any("disagree" in w for w in cyan.warnings)
    count = cyan.channel("Event Count")
    assert np.all(np.diff(cyan.events[:, count].astype(np.int64)) == 1)
    s1400 = read_fcs(_by_name("flowio__data_start_offset_discrepancy_example.fcs")).primary
    assert s1400.layout is not None and s1400.layout.source == "TEXT" and s1400.n_events == 2


def test_blank_header_data_offsets_use_begindata() -> None:
    d = read_fcs(_by_name("fcsparser__fake_large_fcs.fcs")).primary
    assert d.layout is not None and d.layout.source == "TEXT" and d.n_events == 11585
    assert d.well_id == "A01"


def test_enddata_one_byte_late_is_read_and_noted() -> None:
    d = read_fcs(_by_name("fcsparser__EY_2013-07-19_PBS_FCS_3.1_Well_A1.001.fcs")).primary
    assert any("one byte past" in w for w in d.warnings)
    assert any("$SPILLOVER not used" in w for w in d.warnings)  # names without values


def test_doubled_delimiters_inside_values_are_literal() -> None:
    d = read_fcs(_by_name("flowio__G11.fcs")).primary
    assert d.keywords["$P3F"] == "488/10" and d.keywords["$P4F"] == "530/30"
    assert d.keywords["$P3L"] == "488"


def test_empty_values_are_not_escaped_delimiters() -> None:
    d = read_fcs(_by_name("cytoflow__Applied_Biosystems_-_Attune.fcs")).primary
    for key in ("$COM", "$SMNO", "$SRC", "$CELLS", "$LOST"):
        assert d.keywords[key] == ""
    assert d.keywords["$FIL"] == "Specimen 8 Peak Beads HS100.fcs"


def test_padding_inside_text_and_no_peer_needed() -> None:
    d = read_fcs(_by_name("cytoflow__Partec_-_CyFlow_v2.9.fcs")).primary
    assert d.keywords["$DATATYPE"] == "I" and d.n_events == 72989
    time = d.events[:, d.channel("Time")].astype(np.int64)
    assert np.all(np.diff(time) >= 0)  # events in acquisition order: the offsets are right
    assert d.parameters[0].name == "FSC"


def test_delimiter_form_feed_and_diva_spill() -> None:
    d = read_fcs(_by_name("fcsparser__facs_diva_test.fcs")).primary
    assert d.spillover is not None and d.spillover.source == "SPILL"
    assert d.spillover.channels[:2] == ("FITC-A", "PE-A")
    assert d.spillover.matrix.shape == (8, 8)
    assert d.spillover.matrix[0, 1] == pytest.approx(0.1839411109727794)
    assert d.parameter("FITC-A").label == "CD20"


def test_24_bit_integers_are_gathered() -> None:
    d = read_fcs(_by_name("fcsparser__Cytek_xP5.fcs")).primary
    assert d.layout is not None and d.layout.storage_bits == (24,) * 8
    assert d.events.dtype == np.uint32 and int(d.events.max()) < 2**24


def test_ten_bit_words_and_two_datasets() -> None:
    cf = read_fcs(_by_name("cytoflow__Beckman_Coulter_-_Cytomics_FC500.LMD"))
    assert [d.version for d in cf.datasets] == ["FCS2.0", "FCS3.0"]
    first = cf.datasets[0]
    assert first.layout is not None and first.layout.storage_bits == (16,) * 4
    assert int(first.events.max()) <= 1023
    assert cf.primary is cf.datasets[1] and cf.primary.n_events == first.n_events
    assert first.spillover is not None and first.spillover.source == "$DFCiTOj"
    ch = first.spillover.channels
    assert first.spillover.matrix[ch.index("FL1 Log"), ch.index("FL2 Log")] == pytest.approx(0.112)


def test_junk_above_the_range_is_masked() -> None:
    path = _by_name("fcsparser__fcs1_cleaned.lmd")
    d = read_fcs(path).primary
    assert d.layout is not None
    stored = np.frombuffer(path.read_bytes(), "<u2", count=d.n_events * 7, offset=d.layout.begin)
    stored = stored.reshape(-1, 7)
    assert int(stored.max()) > 1023  # junk in the high bits of the file
    assert np.array_equal(d.events, stored & 1023)


def test_mixed_widths_and_big_integers() -> None:
    cube = read_fcs(_by_name("fcsparser__cyflow_cube_8.fcs")).primary
    assert cube.layout is not None and set(cube.layout.storage_bits) == {8, 16, 32}
    astrios = read_fcs(
        _by_name("cytoflow__Beckman_Coulter_-_MoFlo_Astrios_-_log_settings.fcs")
    ).primary
    assert astrios.events.dtype == np.uint32  # values near 2^32 kept exactly
    assert int(astrios.events.max()) > 2**31


def test_numeric_spillover_names_and_latin1_text() -> None:
    gallios = read_fcs(_by_name("cytoflow__Beckman_Coulter_-_Gallios.LMD")).primary
    assert gallios.spillover is not None and gallios.spillover.channels == ("FL1-A", "FL2-A")
    a02 = read_fcs(_by_name("fcsparser__Sample_Well_A02.fcs")).primary
    assert "CellQuest Pro" in a02.keywords["CREATOR"]
    assert a02.well_id == "A02"
    fl1 = a02.parameter("FL1-H")
    assert fl1.log_decades == 4 and fl1.log_offset == 1.0  # "$PnE 4,0" read as f2 = 1
    assert a02.linear("FL1-H")[0] == pytest.approx(10 ** (4 * float(a02.events[0, 2]) / 1024))


def test_read_export_refuses_fcs_and_read_any_reads_it() -> None:
    path = _by_name("flowcal__Data002.fcs")
    with pytest.raises(FormatError, match="FCS"):
        read_export(path)
    assert isinstance(read_any(path), CytometryFile)


# --- written files: round trips ------------------------------------------------------------


def _params(widths: list[int], ranges: list[float]) -> list[Param]:
    return [
        Param(f"P{k}-A", f"stain {k}", w, r)
        for k, (w, r) in enumerate(zip(widths, ranges, strict=True))
    ]


@st.composite
def written_files(draw: st.DrawFn) -> tuple[bytes, np.ndarray, list[Param], str]:
    datatype = draw(st.sampled_from(["I", "F", "D"]))
    n_par = draw(st.integers(1, 6))
    n = draw(st.integers(0, 40))
    if datatype == "I":
        widths = [draw(st.sampled_from([8, 10, 16, 24, 32, 64])) for _ in range(n_par)]
        ranges = [float(2 ** draw(st.integers(1, min(w, 40)))) for w in widths]
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        cols = [rng.integers(0, 2 ** min(w if w % 8 == 0 else 16, 62), size=n) for w in widths]
        data = np.column_stack(cols).astype(np.float64) if n_par else np.zeros((n, 0))
        data = data.reshape(n, n_par)
    else:
        widths = [32 if datatype == "F" else 64] * n_par
        ranges = [262144.0] * n_par
        data = draw(
            st.lists(st.floats(-1e6, 1e6, width=32), min_size=n * n_par, max_size=n * n_par)
        )
        data = np.array(data, dtype=np.float64).reshape(n, n_par)
    params = _params(widths, ranges)
    version = draw(st.sampled_from(["FCS2.0", "FCS3.0", "FCS3.1"]))
    options = {
        "version": version,
        "datatype": datatype,
        "order": draw(st.sampled_from(["little", "big"])),
        "delimiter": draw(st.sampled_from(["/", "\\", "|", "\x0c", "*"])),
        "text_start": draw(st.sampled_from([58, 256])),
        "keywords": {"$COM": draw(st.sampled_from(["", "a/b", "x||y", "plain"])), "$FIL": "t.fcs"},
        "blank_header_data": draw(st.booleans()),
        "enddata_off_by_one": draw(st.booleans()),
    }
    return build_dataset(data, params, **options), data, params, datatype  # type: ignore[arg-type]


def _masked(data: np.ndarray, params: list[Param]) -> np.ndarray:
    out = data.copy()
    for k, p in enumerate(params):
        storage = p.bits if p.bits % 8 == 0 else 16
        bits = math.ceil(math.log2(p.range))
        if bits < storage:
            out[:, k] = np.bitwise_and(out[:, k].astype(np.uint64), (1 << bits) - 1)
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(written_files())
def test_written_files_read_back_exactly(case: tuple[bytes, np.ndarray, list[Param], str]) -> None:
    raw, data, params, datatype = case
    d = read_fcs_bytes(raw, Path("written.fcs")).primary
    assert d.events.shape == data.shape
    expected = _masked(data, params) if datatype == "I" else data
    if datatype == "F":
        expected = expected.astype(np.float32).astype(np.float64)
    assert np.array_equal(d.events.astype(np.float64), expected)
    assert d.keywords["$FIL"] == "t.fcs"


def test_nextdata_chains_datasets_and_the_last_is_primary() -> None:
    a = np.arange(12, dtype=np.float64).reshape(6, 2)
    b = np.arange(30, dtype=np.float64).reshape(10, 3)
    raw = build_file(
        [
            {
                "data": a,
                "params": _params([16, 16], [1024, 1024]),
                "version": "FCS2.0",
                "datatype": "I",
            },
            {
                "data": b,
                "params": _params([32] * 3, [2**20] * 3),
                "version": "FCS3.0",
                "datatype": "I",
            },
        ]
    )
    cf = read_fcs_bytes(raw, Path("two.lmd"))
    assert [d.n_events for d in cf.datasets] == [6, 10]
    assert np.array_equal(cf.primary.events, b)
    assert cf.datasets[1].offset > 0


# --- bad input ----------------------------------------------------------------------------


def _small_file() -> bytes:
    rng = np.random.default_rng(3)
    data = rng.integers(0, 1024, size=(300, 4)).astype(np.float64)
    return build_dataset(data, _params([16] * 4, [1024] * 4), version="FCS3.0", datatype="I")


SMALL = _small_file()
CORPUS_SMALL = _by_name("flowio__B01_KC-A-W---91-US.fcs").read_bytes()


def _outcome(raw: bytes) -> str:
    """'ok', 'incomplete' or 'format', and the FormatError's one line is checked."""
    try:
        read_fcs_bytes(raw, Path("case.fcs"))
    except IncompleteFileError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("case.fcs: ")
        return "incomplete"
    except FormatError as exc:
        text = str(exc)
        assert "\n" not in text and text.startswith("case.fcs: ")
        assert "nan" not in text.lower().split() and "inf" not in text.lower().split()
        return "format"
    return "ok"


def test_every_truncation_of_the_data_segment_is_incomplete() -> None:
    d = read_fcs_bytes(SMALL, Path("x")).primary
    assert d.layout is not None
    for cut in range(d.layout.begin, d.layout.begin + d.layout.length, 97):
        assert _outcome(SMALL[:cut]) == "incomplete"
    for cut in (0, 3, 10, 57, 100, 300):  # inside the HEADER and TEXT
        assert _outcome(SMALL[:cut]) in ("incomplete", "format")
    assert _outcome(SMALL) == "ok"


def test_a_lying_tot_is_a_format_error_not_a_wait() -> None:
    raw = SMALL.replace(b"$TOT/300/", b"$TOT/900/")
    assert _outcome(raw) == "format"
    huge = SMALL.replace(b"$TOT/300/", b"$TOT/9999999999999999/")
    assert _outcome(huge) in ("format", "incomplete")
    lying_par = SMALL.replace(b"$PAR/4/", b"$PAR/999999999/")
    assert _outcome(lying_par) == "format"


@settings(max_examples=300, deadline=None)
@given(
    base=st.sampled_from([SMALL, CORPUS_SMALL]),
    cut=st.floats(0, 1),
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 7)), max_size=6),
)
def test_truncated_and_bit_flipped_files_fail_cleanly(
    base: bytes, cut: float, flips: list[tuple[float, int]]
) -> None:
    raw = bytearray(base[: max(1, int(len(base) * cut))] if cut < 0.98 else base)
    for where, bit in flips:
        if raw:
            raw[int(where * (len(raw) - 1))] ^= 1 << bit
    tracemalloc.start()
    try:
        _outcome(bytes(raw))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 * len(base) + 8_000_000  # never an allocation the file cannot back


LIES = [
    ("$TOT", ["0", "1", "301", "4294967296", "-1", "abc", ""]),
    ("$PAR", ["0", "5", "100000", "x"]),
    ("$P1B", ["0", "7", "65", "128", "24", "*", "999999999999"]),
    ("$P2R", ["0", "-5", "1e400", "nan", "3"]),
    ("$BEGINDATA", ["0", "1", "57", "99999999999", "x"]),
    ("$ENDDATA", ["0", "1", "99999999999"]),
    ("$DATATYPE", ["A", "F", "D", "Q"]),
    ("$BYTEORD", ["4,3,2,1", "3,4,1,2", "1", "x"]),
    ("$NEXTDATA", ["1", "58", "999999999", "5000", "x"]),
    ("$MODE", ["C", "U"]),
    ("$P1E", ["4,0", "x,y", "1e9,1", "-1,0"]),
    ("$SPILLOVER", ["2,P0-A,P1-A,1,0,0,1", "2,P0-A,P1-A,1,0,0", "9,a", "2,P0-A,P0-A,1,1,1,1"]),
]


@pytest.mark.parametrize(("key", "values"), LIES, ids=[k for k, _ in LIES])
def test_lying_keywords_never_raise_anything_else(key: str, values: list[str]) -> None:
    rng = np.random.default_rng(5)
    data = rng.integers(0, 1024, size=(50, 2)).astype(np.float64)
    for value in values:
        raw = build_dataset(
            data,
            _params([16, 16], [1024, 1024]),
            version="FCS3.1",
            datatype="I",
            keywords={key: value},
        )
        _outcome(raw)


# --- regressions found by bench/fuzz_fcs.py -----------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [("$TOT", "inf"), ("$DATATYPE", "-inf"), ("$NEXTDATA", "nan"), ("$P1B", "Infinity")],
)
def test_messages_never_quote_a_non_finite_number(key: str, value: str) -> None:
    """fuzz: "$TOT='inf' is not a whole number" put an inf text in a message."""
    data = np.zeros((5, 2))
    raw = build_dataset(data, _params([16, 16], [1024, 1024]), datatype="I", keywords={key: value})
    with pytest.raises(FormatError) as err:
        read_fcs_bytes(raw, Path("case.fcs"))
    words = str(err.value).lower().replace("'", " ").split()
    assert "inf" not in words and "nan" not in words and "-inf" not in words


def test_supplemental_text_adds_keywords_without_overriding() -> None:
    data = np.arange(20, dtype=np.float64).reshape(10, 2)
    params = _params([16, 16], [1024, 1024])
    placeholder = {"$BEGINSTEXT": "0" * 12, "$ENDSTEXT": "0" * 12, "$FIL": "primary.fcs"}
    first = build_dataset(data, params, datatype="I", keywords=placeholder)
    extra = b"/$SRC/from supplemental/$FIL/not this one/"
    offsets = {
        "$BEGINSTEXT": f"{len(first):012d}",
        "$ENDSTEXT": f"{len(first) + len(extra) - 1:012d}",
    }
    raw = build_dataset(data, params, datatype="I", keywords={**placeholder, **offsets}) + extra
    d = read_fcs_bytes(raw, Path("stext.fcs")).primary
    assert d.keywords["$SRC"] == "from supplemental"
    assert d.keywords["$FIL"] == "primary.fcs"
    assert np.array_equal(d.events, data)


def test_ascii_data_fixed_width_and_free_format() -> None:
    data = np.random.default_rng(8).integers(0, 10_000, size=(25, 3)).astype(np.float64)
    params = [Param(f"P{k}", None, 6, 10_000) for k in range(3)]
    fixed = build_dataset(data, params, version="FCS3.0", datatype="A")
    assert np.array_equal(read_fcs_bytes(fixed, Path("a.fcs")).primary.events, data)
    # the same bytes (every field starts with a space) declared free-format: $PnB = *
    free = build_dataset(
        data, params, version="FCS3.0", datatype="A", keywords={f"$P{k}B": "*" for k in (1, 2, 3)}
    )
    d = read_fcs_bytes(free, Path("b.fcs")).primary
    assert np.array_equal(d.events, data) and d.parameters[0].bits is None


@pytest.mark.parametrize("value", ["3²", "³2", "١٢", "16\u00a0"])
def test_bit_widths_with_unicode_digits_are_a_format_error(value: str) -> None:
    """fuzz: str.isdigit() accepted '3²', which int() then refused (a ValueError escaped)."""
    data = np.zeros((5, 2))
    raw = build_dataset(
        data, _params([16, 16], [1024, 1024]), datatype="I", keywords={"$P1B": value}
    )
    assert _outcome(raw) in ("format", "ok")
    for key in ("$TOT", "$PAR", "$NEXTDATA", "$BYTEORD", "$BEGINDATA"):
        _outcome(
            build_dataset(
                data, _params([16, 16], [1024, 1024]), datatype="I", keywords={key: value}
            )
        )
