"""Cross-check: platewatch's events equal flowio's, fcsparser's and FlowCal's on every corpus
file those libraries read (raw stored values, integers masked to $PnR).

Where a peer cannot read a file, the test checks that it fails for the known reason and
skips with that reason; where a peer reads a file differently, the test proves who is right
from the file's own bytes. New corpus files are picked up without code changes: an
unexplained failure or disagreement on them fails the test.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from acquisition.formats.fcs import read_fcs
from datamodel.cytometry import CytometryFile
from tests.conftest import CORPUS
from tests.peers import run_peer

FCS_DIR = CORPUS / "fcs"
FILES = sorted(p for p in FCS_DIR.rglob("*") if p.is_file() and p.read_bytes()[:3] == b"FCS")
PEERS = ("flowio", "fcsparser", "flowcal")
SCRIPT = (Path(__file__).parent / "fcs_peer_reads.py").read_text(encoding="utf-8")

# (peer, file name) → (pattern the peer's error must match, why it cannot read the file)
KNOWN_FAILURES: dict[tuple[str, str], tuple[str, str]] = {
    ("flowio", "fcsparser__Cytek_xP5.fcs"): (
        r"cannot reshape",
        "flowio 1.4.0 does not read 24-bit integers ($PnB=24)",
    ),
    ("flowio", "cytoflow__Beckman_Coulter_-_Cytomics_FC500.LMD"): (
        r"cannot reshape",
        "flowio 1.4.0 does not read $PnB=10 (Beckman CXP stores it in 16-bit words)",
    ),
    ("flowio", "cytoflow__Partec_-_CyFlow_v2.9.fcs"): (
        r"KeyError: 'datatype'",
        "flowio does not strip the ~200 spaces Partec writes before $DATATYPE",
    ),
    ("fcsparser", "cytoflow__Partec_-_CyFlow_v2.9.fcs"): (
        r"KeyError: '\$DATATYPE'",
        "fcsparser does not strip the ~200 spaces Partec writes before $DATATYPE",
    ),
    ("flowcal", "cytoflow__Partec_-_CyFlow_v2.9.fcs"): (
        r"KeyError: '\$BEGINSTEXT'",
        "FlowCal does not strip the spaces Partec writes inside TEXT",
    ),
    ("flowio", "fcsparser__fake_large_fcs.fcs"): (
        r"invalid literal for int",
        "flowio cannot take blank HEADER DATA offsets (files > 99,999,999 bytes write them "
        "blank; $BEGINDATA/$ENDDATA hold them)",
    ),
    ("flowcal", "fcsparser__fake_large_fcs.fcs"): (
        r"invalid literal for int",
        "FlowCal cannot take blank HEADER DATA offsets",
    ),
    ("flowio", "cytoflow__Beckman_Coulter_-_Cyan.fcs"): (
        r"DataOffsetDiscrepancyError",
        "flowio refuses HEADER and TEXT DATA offsets that disagree (see the offsets test)",
    ),
    ("flowio", "flowio__data_start_offset_discrepancy_example.fcs"): (
        r"DataOffsetDiscrepancyError",
        "flowio refuses HEADER and TEXT DATA offsets that disagree (see the offsets test)",
    ),
    ("flowcal", "flowio__data_start_offset_discrepancy_example.fcs"): (
        r"DATA size does not match",
        "FlowCal follows the HEADER DATA offset, which points inside TEXT",
    ),
    ("flowcal", "cytoflow__Beckman_Coulter_-_Cytomics_FC500.LMD"): (
        r"only byte aligned parameter bit widths",
        "FlowCal does not read $PnB=10",
    ),
    ("flowcal", "cytoflow__Applied_Biosystems_-_Attune.fcs"): (
        r"odd # of \(keys \+ values\)",
        "FlowCal reads Attune's empty values (/$COM//$SMNO//) as escaped delimiters",
    ),
    ("flowcal", "cytoflow__Cytek_NL-2000.fcs"): (
        r"odd # of \(keys \+ values\)",
        "FlowCal needs a final delimiter, which SpectroFlo leaves out",
    ),
    ("flowcal", "fcsparser__cyflow_cube_8.fcs"): (
        r"odd # of \(keys \+ values\)",
        "FlowCal takes the spaces padding the end of the CyFlow Cube's TEXT for a keyword",
    ),
}
BIG_ENDIAN_REASON = (
    "fcsparser 0.2.8 fails on every big-endian file under NumPy ≥ 2 (it calls "
    "ndarray.newbyteorder, removed in NumPy 2; fcsparser issue #74)"
)


def _fc500_ten_bit(ours: CytometryFile, theirs: np.ndarray, k: int) -> bool:
    """fcsparser reads $PnB=10 as one byte per value; the words are 16 bits: its values are
    our words' bytes, and the DATA segment holds two bytes per value."""
    d = ours.datasets[k]
    words = np.asarray(d.events, dtype="<u2").tobytes()
    as_bytes = np.frombuffer(words, dtype=np.uint8)[: theirs.size].astype(np.float64)
    two_bytes_each = d.layout is not None and d.layout.length == d.n_events * len(d.parameters) * 2
    return bool(np.array_equal(as_bytes, theirs.ravel()) and two_bytes_each)


def _header_offset_inside_text(ours: CytometryFile, theirs: np.ndarray, k: int) -> bool:
    """fcsparser follows the HEADER DATA start, which lies inside TEXT; TEXT's $BEGINDATA
    starts right after TEXT and its length is $TOT × Σ$PnB / 8."""
    path = FCS_DIR / "flowio__data_start_offset_discrepancy_example.fcs"
    raw = path.read_bytes()
    text_start, text_end, header_data = int(raw[10:18]), int(raw[18:26]), int(raw[26:34])
    d = ours.datasets[k]
    inside = text_start <= header_data <= text_end
    right_after = (
        d.layout is not None and d.layout.begin == text_end + 1 and d.layout.source == "TEXT"
    )
    return inside and right_after and not np.array_equal(theirs, d.events.astype(np.float64))


# (peer, file name, dataset) → (who is right and why, the check that proves it)
KNOWN_DISAGREEMENTS: dict[
    tuple[str, str, int], tuple[str, Callable[[CytometryFile, np.ndarray, int], bool]]
] = {
    ("fcsparser", "cytoflow__Beckman_Coulter_-_Cytomics_FC500.LMD", 0): (
        "platewatch: fcsparser reads $PnB=10 as one byte per value",
        _fc500_ten_bit,
    ),
    ("fcsparser", "flowio__data_start_offset_discrepancy_example.fcs", 0): (
        "platewatch: fcsparser reads from the HEADER DATA offset that points inside TEXT",
        _header_offset_inside_text,
    ),
}


def _fill_header_offsets(raw: bytes) -> bytes:
    """The blank HEADER DATA offsets written in from $BEGINDATA/$ENDDATA (nothing else moves)."""
    text = raw[int(raw[10:18]) : int(raw[18:26]) + 1]
    d = text[:1]
    fields = text.split(d)
    begin = int(fields[fields.index(b"$BEGINDATA") + 1])
    end = int(fields[fields.index(b"$ENDDATA") + 1])
    return raw[:26] + f"{begin:>8d}{end:>8d}".encode() + raw[42:]


def _pad_as_a_keyword(raw: bytes) -> bytes:
    """Partec's run of spaces inside TEXT replaced by a dummy keyword of the same length."""
    match = re.search(rb"/( {20,})\$DATATYPE", raw[:4096])
    assert match is not None
    n = len(match.group(1))
    return raw[: match.start(1)] + b"PAD/" + b"x" * (n - 5) + b"/" + raw[match.end(1) :]


# Files no peer reads as they are: a copy with only the quirk repaired (the DATA segment and
# every offset unchanged) is read by the peers instead, and must give our events.
REPAIRS: dict[str, Callable[[bytes], bytes]] = {
    "fcsparser__fake_large_fcs.fcs": _fill_header_offsets,
    "cytoflow__Partec_-_CyFlow_v2.9.fcs": _pad_as_a_keyword,
}


@pytest.fixture(scope="module")
def reads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    ours = {p.name: read_fcs(p) for p in FILES}
    out = tmp_path_factory.mktemp("peers")
    specs = [f"{p}::{len(ours[p.name].datasets)}" for p in FILES]
    for name, repair in REPAIRS.items():
        copy = out / f"repaired__{name}"
        copy.write_bytes(repair((FCS_DIR / name).read_bytes()))
        specs.append(f"{copy}::1")
    report = run_peer(SCRIPT, str(out), *specs, timeout=600)
    return {"ours": ours, "peers": {Path(k).name: v for k, v in report.items()}}


def _big_endian(cf: CytometryFile) -> bool:
    return any(d.layout is not None and d.layout.byteorder == "big" for d in cf.datasets)


def test_the_corpus_has_fcs_files() -> None:
    assert len(FILES) >= 25


@pytest.mark.parametrize("peer", PEERS)
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_events_equal_the_peers(reads: dict[str, Any], path: Path, peer: str) -> None:
    ours: CytometryFile = reads["ours"][path.name]
    result = reads["peers"][path.name][peer]
    if not result["ok"]:
        if peer == "fcsparser" and _big_endian(ours) and "newbyteorder" in result["error"]:
            pytest.skip(BIG_ENDIAN_REASON)
        known = KNOWN_FAILURES.get((peer, path.name))
        assert known is not None, (
            f"{peer} failed on {path.name} for no known reason: {result['error']}"
        )
        assert re.search(known[0], result["error"]), result["error"]
        pytest.skip(f"{peer} cannot read it: {known[1]}")
    assert (peer, path.name) not in KNOWN_FAILURES, (
        f"{peer} now reads {path.name}: update the table"
    )
    assert len(result["datasets"]) <= len(ours.datasets)
    for k, npy in enumerate(result["datasets"]):
        theirs = np.load(npy, allow_pickle=False)
        mine = ours.datasets[k].events.astype(np.float64)
        if theirs.shape == mine.shape and np.array_equal(theirs, mine, equal_nan=True):
            assert (peer, path.name, k) not in KNOWN_DISAGREEMENTS, (
                "they agree now: update the table"
            )
            continue
        known_diff = KNOWN_DISAGREEMENTS.get((peer, path.name, k))
        assert known_diff is not None, (
            f"{peer} disagrees with platewatch on {path.name} dataset {k} "
            f"(shapes {theirs.shape} vs {mine.shape})"
        )
        why, proves = known_diff
        assert proves(ours, theirs, k), f"the explanation no longer holds: {why}"


def test_offsets_that_disagree_header_or_text_whichever_fits(reads: dict[str, Any]) -> None:
    """flowio makes the caller choose between HEADER and TEXT DATA offsets; platewatch picks
    the one that fits. On CyAn the HEADER is right (its Event Count column counts up by one
    from the HEADER offset only); on the S1400EXi file TEXT is right (the HEADER offset
    points inside TEXT, and flowio cannot even read from it)."""
    cyan = reads["peers"]["cytoflow__Beckman_Coulter_-_Cyan.fcs"]
    ours = reads["ours"]["cytoflow__Beckman_Coulter_-_Cyan.fcs"].primary
    header = np.load(cyan["flowio[header offsets]"]["datasets"][0], allow_pickle=False)
    text = np.load(cyan["flowio[text offsets]"]["datasets"][0], allow_pickle=False)
    assert np.array_equal(header, ours.events.astype(np.float64))
    count = ours.channel("Event Count")
    assert np.all(np.diff(ours.events[:, count].astype(np.int64)) == 1)
    assert not np.all(np.diff(text[:, count]) == 1)
    assert ours.layout is not None and ours.layout.source == "HEADER"

    s1400 = reads["peers"]["flowio__data_start_offset_discrepancy_example.fcs"]
    ours = reads["ours"]["flowio__data_start_offset_discrepancy_example.fcs"].primary
    assert not s1400["flowio[header offsets]"]["ok"]
    text = np.load(s1400["flowio[text offsets]"]["datasets"][0], allow_pickle=False)
    assert np.array_equal(text, ours.events.astype(np.float64))
    assert ours.layout is not None and ours.layout.source == "TEXT"


@pytest.mark.parametrize("name", sorted(REPAIRS))
def test_files_no_peer_reads_agree_once_their_quirk_is_repaired(
    reads: dict[str, Any], name: str
) -> None:
    """A blank HEADER (big files) and Partec's padding are the only obstacles: on a copy with
    just that repaired, the peers that read it give platewatch's events on the original."""
    assert not any(r["ok"] for r in reads["peers"][name].values())
    ours = reads["ours"][name].primary.events.astype(np.float64)
    repaired = reads["peers"][f"repaired__{name}"]
    agreeing = []
    for peer, result in repaired.items():
        if result["ok"]:
            theirs = np.load(result["datasets"][0], allow_pickle=False)
            assert np.array_equal(theirs, ours), peer
            agreeing.append(peer)
    assert agreeing, f"no peer reads the repaired copy: {repaired}"


def test_every_file_is_cross_checked_by_at_least_one_peer(reads: dict[str, Any]) -> None:
    unread = [
        name
        for name, peers in reads["peers"].items()
        if not name.startswith("repaired__") and not any(r["ok"] for r in peers.values())
    ]
    assert sorted(unread) == sorted(REPAIRS)
