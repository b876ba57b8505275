"""Property tests over the corpus files of the Tecan, Thermo and Gen5 readers.

Whatever is done to a file (truncated at any byte, bytes flipped, re-encoded, line ends
changed, decimal commas, lines deleted or duplicated; for workbooks rows deleted,
duplicated or cells replaced by reader tokens) the outcome is a parse, an
IncompleteFileError or a one-line FormatError naming the file; never another exception.
A Gen5 export cut anywhere after its signature and before the end of its data is always
"incomplete", never misread and never "invalid".
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acquisition.formats import Sample, read_export, sniff
from errors import FormatError, IncompleteFileError

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "platereaders"
TEXT = [
    "allotropy__gen5__240411_172731_BNCH2345883_abs450_96well_non_numeric_values.txt",
    "allotropy__gen5__endpoint_stdcurve_singleplate.txt",
    "allotropy__gen5__kinetic_helper_gene_growth_curve.txt",
    "MTPHandler__multiskan_spectrum_1500.txt",
]
WORKBOOKS = [
    "MTPHandler__BioTek_Epoch2.xlsx",
    "MTPHandler__Multiskan Sky.xlsx",
    "MTPHandler__magellan.xlsx",
    "MTPHandler__tekan_spark.xlsx",
    "MTPHandler__tekan_spark_endpoint.xlsx",
    "allotropy__magellan__SLA01P01_OD.xlsx",
    "allotropy__skanit__skanit_data.xlsx",
    "curveball__Sunrise_180515_0916.xlsx",
    "tread__single_time_multiple_reads.xlsx",
    "tread__single_time_single_reads.xlsx",
    "tread__time_series_single_reads.xlsx",
]
PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PATH = Path("mutated-export")


def outcome(data: bytes) -> str:
    """'ok', 'incomplete' or 'invalid'; any other exception fails the test."""
    try:
        read_export(PATH, data)
    except IncompleteFileError:
        return "incomplete"
    except FormatError as exc:
        text = str(exc)
        assert "\n" not in text and text.startswith(str(PATH)), text
        return "invalid"
    return "ok"


def outcome_of_sheets(data: bytes, sheets: list[tuple[str, list[list[str]]]]) -> str:
    sample = Sample(path=PATH, data=data)
    sample.__dict__["sheets"] = sheets  # the cached view: rows mutated, the zip untouched
    try:
        export = sniff(sample).read(sample)
    except IncompleteFileError:
        return "incomplete"
    except FormatError as exc:
        assert "\n" not in str(exc)
        return "invalid"
    return "ok" if any(p.reads for p in export.plates) else "invalid"


def _bytes(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


@pytest.mark.parametrize("name", TEXT + WORKBOOKS)
@PROPERTY
@given(data=st.data())
def test_truncation_at_any_byte(name: str, data: st.DataObject) -> None:
    raw = _bytes(name)
    cut = data.draw(st.integers(1, len(raw) - 1))
    assert outcome(raw[:cut]) in ("ok", "incomplete", "invalid")


def _data_end(raw: bytes) -> int:
    """Where the last data row of a Gen5 export ends (its line end included)."""
    rows = [m.end() for m in re.finditer(rb"\n(?:[A-H]\t|[0-9]+:[0-9]{2}:[0-9]{2}\t)[^\n]*\n", raw)]
    return max(rows)


@pytest.mark.parametrize("name", TEXT[:3])
@PROPERTY
@given(data=st.data())
def test_gen5_cut_before_the_end_of_its_data_is_incomplete(name: str, data: st.DataObject) -> None:
    raw = _bytes(name)
    start = raw.index(b"Software Version\t") + len(b"Software Version\t") + 4
    cut = data.draw(st.integers(start, _data_end(raw) - 3))
    assert outcome(raw[:cut]) == "incomplete"


@pytest.mark.parametrize("name", TEXT + WORKBOOKS)
@PROPERTY
@given(data=st.data())
def test_byte_flips(name: str, data: st.DataObject) -> None:
    raw = bytearray(_bytes(name))
    for _ in range(data.draw(st.integers(1, 8))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    assert outcome(bytes(raw)) in ("ok", "incomplete", "invalid")


@pytest.mark.parametrize("name", TEXT)
@PROPERTY
@given(
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"]),
    line_end=st.sampled_from(["\r\n", "\n", "\r"]),
    commas=st.booleans(),
)
def test_reencoded_line_ends_and_decimal_commas_read_the_same(
    name: str, encoding: str, line_end: str, commas: bool
) -> None:
    raw = _bytes(name)
    text = raw.decode("cp1252")
    expected = read_export(PATH, raw)
    lines = text.splitlines()
    if commas:
        lines = [re.sub(r"(?<=[0-9])\.(?=[0-9])", ",", ln) for ln in lines]
    mutated = line_end.join(lines) + line_end
    export = read_export(PATH, mutated.encode(encoding, errors="replace"))
    assert [len(p.reads) for p in export.plates] == [len(p.reads) for p in expected.plates]
    for plate, want in zip(export.plates, expected.plates, strict=True):
        for got, ref in zip(plate.reads, want.reads, strict=True):
            assert got.raw_tokens == ref.raw_tokens
            ok = ref.status == "ok"
            assert (got.status == ref.status).all()
            assert (abs(got.values[ok] - ref.values[ok]) < 1e-12).all()


@pytest.mark.parametrize("name", TEXT)
@PROPERTY
@given(data=st.data())
def test_deleted_and_duplicated_lines(name: str, data: st.DataObject) -> None:
    lines = _bytes(name).split(b"\n")
    for _ in range(data.draw(st.integers(1, 4))):
        k = data.draw(st.integers(0, len(lines) - 1))
        if data.draw(st.booleans()):
            del lines[k]
        else:
            lines.insert(k, lines[k])
    assert outcome(b"\n".join(lines)) in ("ok", "incomplete", "invalid")


_TOKENS = st.sampled_from(
    ["", "OVER", "Invalid", "NaN", "?????", "1e999", "-0", "0,5", "A1", "<>", "Time [s]"]
)


@pytest.mark.parametrize("name", WORKBOOKS)
@PROPERTY
@given(data=st.data())
def test_workbook_rows_deleted_duplicated_and_cells_replaced(
    name: str, data: st.DataObject
) -> None:
    from acquisition.formats.base import read_sheets

    raw = _bytes(name)
    sheets = [(n, [list(r) for r in rows]) for n, rows in read_sheets(CORPUS / name, raw)]
    for _ in range(data.draw(st.integers(1, 6))):
        s = data.draw(st.integers(0, len(sheets) - 1))
        rows = sheets[s][1]
        if not rows:
            continue
        k = data.draw(st.integers(0, len(rows) - 1))
        action = data.draw(st.sampled_from(["delete", "duplicate", "cell"]))
        if action == "delete":
            del rows[k]
        elif action == "duplicate":
            rows.insert(k, list(rows[k]))
        elif rows[k]:
            rows[k][data.draw(st.integers(0, len(rows[k]) - 1))] = data.draw(_TOKENS)
    assert outcome_of_sheets(raw, sheets) in ("ok", "incomplete", "invalid")


def _inflated(raw: bytes) -> int:
    import io
    import zipfile

    if raw[:4] != b"PK\x03\x04":
        return len(raw)
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        return sum(m.file_size for m in zf.infolist())


@pytest.mark.parametrize("name", TEXT + WORKBOOKS)
def test_memory_stays_within_a_few_times_the_content(name: str) -> None:
    import tracemalloc

    raw = _bytes(name)
    read_export(PATH, raw)  # imports and caches warmed up
    tracemalloc.start()
    try:
        read_export(PATH, raw)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= 12 * _inflated(raw) + 512 * 1024, (peak, _inflated(raw))


@pytest.mark.parametrize(
    "head",
    [b"PK\x03\x04", b"\r\n\r\nSoftware Version\t3.12.08\r\n", b"Results of Photometric1\r\n"],
)
def test_a_2_gb_file_is_refused_by_its_size_before_it_is_read(tmp_path: Path, head: bytes) -> None:
    import time

    path = tmp_path / "huge.bin"
    with path.open("wb") as fh:
        fh.write(head)
        fh.truncate(2 * 1024**3)  # sparse: no disk used, nothing to read
    started = time.monotonic()
    with pytest.raises(FormatError, match="too large"):
        read_export(path)
    assert time.monotonic() - started < 5
