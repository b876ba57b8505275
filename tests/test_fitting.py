"""Fits of big tables on every core: acquisition.fitting, the table reader, ``platewatch fit``."""

from __future__ import annotations

import json
import math
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acquisition import tables
from acquisition.fitting import IN_PROCESS_BELOW, fit_curves, iter_lines
from acquisition.formats.text import parse_cell
from bench.fit import write_table
from bench.screen import make_screen
from errors import FormatError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fit") / "screen.csv"
    write_table(path, IN_PROCESS_BELOW + 200, seed=3)
    return path


def test_two_processes_give_exactly_what_one_gives() -> None:
    curves = [(c.dose, c.response) for c in make_screen(IN_PROCESS_BELOW + 100, 9)]
    done: list[int] = []
    here = fit_curves(curves, workers=1)
    spread = fit_curves(curves, workers=2, progress=done.append)
    assert sum(done) == len(curves) and len(done) > 1
    assert [f.to_dict() for f in spread] == [f.to_dict() for f in here]


def test_lines_come_in_order_with_their_group() -> None:
    curves = [(c.dose, c.response) for c in make_screen(30, 2)]
    labels = [{"curve": f"k{i}"} for i in range(30)]
    lines = list(iter_lines(curves, labels, as_json=True, workers=1, chunk=7))
    assert [json.loads(line)["group"] for line in lines] == labels
    text = list(iter_lines(curves, labels, as_json=False, workers=1))
    assert all(line.startswith(f"curve=k{i}: ") for i, line in enumerate(text))


def test_fit_of_a_table_on_two_cores_is_jsonl_in_table_order(table: Path) -> None:
    out = _fit(table, "--dose", "dose", "--response", "response", "--group", "curve_id",
               "--json", "--workers", "2")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""  # no terminal: no progress bar, nothing else either
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["group"]["curve_id"] for r in records] == [
        f"c{i:06d}" for i in range(IN_PROCESS_BELOW + 200)
    ]
    assert {r["response"] for r in records} == {"yes", "partial", "none"}
    one = _fit(table, "--dose", "dose", "--response", "response", "--group", "curve_id",
               "--json", "--workers", "1")  # fmt: skip
    assert one.stdout == out.stdout


def _fit(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "service.py"), "fit", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_progress_bar_on_a_terminal_and_only_jsonl_on_stdout(table: Path) -> None:
    """stderr a terminal, stdout a pipe (``platewatch fit … --json > out.jsonl``)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "service.py"), "fit", str(table), "--dose", "dose",
         "--response", "response", "--group", "curve_id", "--json"],
        stdout=subprocess.PIPE, stderr=follower, cwd=ROOT,
    )  # fmt: skip
    os.close(follower)
    assert proc.stdout is not None
    shown, stdout = b"", b""
    deadline = time.monotonic() + 120
    streams = [leader, proc.stdout.fileno()]
    while streams and time.monotonic() < deadline:
        ready, _, _ = select.select(streams, [], [], 1.0)
        for fd in ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the terminal side closed
                chunk = b""
            if not chunk:
                streams.remove(fd)
            elif fd == leader:
                shown += chunk
            else:
                stdout += chunk
    proc.wait(timeout=30)
    os.close(leader)
    proc.stdout.close()
    assert proc.returncode == 0
    assert b"fitting" in shown and b"curves" in shown and b"fits/s" in shown
    lines = stdout.decode().splitlines()
    assert len(lines) == IN_PROCESS_BELOW + 200
    assert all(json.loads(line)["model"] == "LL.4" for line in lines)


def test_a_table_bigger_than_a_plate_export_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 100,000-curve screen is ~9 million cells; exports stop at 2 million."""
    assert tables.MAX_TABLE_CELLS >= 20_000_000
    path = tmp_path / "t.csv"
    path.write_text("dose,r\n" + "".join(f"{i % 7},{i}\n" for i in range(50)))
    assert len(tables.read_table(path, ["dose", "r"], numeric=["dose", "r"])) == 50
    monkeypatch.setattr(tables, "MAX_TABLE_CELLS", 60)
    with pytest.raises(FormatError, match="more than a table for fit holds"):
        tables.read_table(path, ["dose", "r"], numeric=["dose", "r"])


CELLS = st.one_of(
    st.text(alphabet="0123456789.,eE+-_ xX\"'>n ai", max_size=12),
    st.from_regex(r"\A[+-]?[0-9]{1,5}([.,][0-9]{0,4})?([eE][+-]?[0-9]{1,3})?\Z"),
    st.sampled_from(["nan", "inf", "-Infinity", "1e999", "OVRFLW", "١٢", "1_000", "0x10"]),
)


@settings(max_examples=300, deadline=None)
@given(cell=CELLS, comma=st.booleans())
def test_the_fast_number_path_reads_exactly_what_parse_cell_reads(cell: str, comma: bool) -> None:
    value, status = parse_cell(cell.strip(), decimal_comma=comma)
    expected = value if status == "ok" else math.nan
    got = tables._number(cell.strip(), comma)
    assert (math.isnan(got) and math.isnan(expected)) or got == expected
