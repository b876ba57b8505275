"""Parse time per corpus export: platewatch against allotropy, on the same files in one run.

For every file of ``../shared/corpus/platereaders/`` that platewatch reads as an export:
platewatch's ``read_any(path)`` (file read included), warm, median of N runs; and
allotropy's ``allotrope_from_file(path, Vendor.X)`` (file read and ASM validation
included: that is what a user of allotropy calls), warm, median of N runs, in the peer
environment (``.venv-peers``; ``PLATEWATCH_PEERS_PYTHON`` overrides), with allotropy's
import time reported apart. Files allotropy has no parser for, or fails on, are shown as
such. The ratio column is allotropy ÷ platewatch; the goal is a median ≥ 10×.

    python -m bench.parse [--repeat 15] [--only PATTERN] [--json]

The file → allotropy vendor map is the ``ALLOTROPY_VENDORS`` table below (first matching
name pattern wins); add a row when a corpus file from another vendor is added.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from acquisition.formats import read_any
from errors import FormatError

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus" / "platereaders"

# (file-name pattern, allotropy Vendor member) — the vendor allotropy is told the file is.
ALLOTROPY_VENDORS: tuple[tuple[str, str], ...] = (
    ("allotropy__softmaxpro__*", "MOLDEV_SOFTMAX_PRO"),
    ("MTPHandler__Spectramax190*", "MOLDEV_SOFTMAX_PRO"),
    ("growth-curve-calculator__*.xml", "MOLDEV_SOFTMAX_PRO"),
    ("allotropy__bmg_mars__*", "BMG_MARS"),
    ("allotropy__envision__*", "PERKIN_ELMER_ENVISION"),
    ("allotropy__kaleido__*", "REVVITY_KALEIDO"),
    ("allotropy__gen5__*", "AGILENT_GEN5"),
    ("MTPHandler__BioTek_Epoch2.xlsx", "AGILENT_GEN5"),
    ("allotropy__magellan__*", "TECAN_MAGELLAN"),
    ("MTPHandler__magellan.xlsx", "TECAN_MAGELLAN"),
    ("allotropy__skanit__*", "THERMO_SKANIT"),
    ("MTPHandler__Multiskan Sky.xlsx", "THERMO_SKANIT"),
)

PEER_TIMER = r"""
import json, statistics, sys, time, warnings
warnings.filterwarnings("ignore")
start = time.perf_counter()
from allotropy.to_allotrope import allotrope_from_file
from allotropy.parser_factory import Vendor
imported = time.perf_counter() - start
repeat = int(sys.argv[2])
out = {"import_s": imported, "files": {}}
for path, vendor in json.loads(sys.argv[1]):
    try:
        allotrope_from_file(path, Vendor[vendor])  # warm-up (lazy imports, caches)
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            allotrope_from_file(path, Vendor[vendor])
            times.append(time.perf_counter() - t)
        out["files"][path] = {"median_s": statistics.median(times)}
    except Exception as exc:
        out["files"][path] = {"error": "%s: %s" % (type(exc).__name__, str(exc)[:100])}
print(json.dumps(out))
"""


def allotropy_vendor(name: str) -> str | None:
    return next((v for pattern, v in ALLOTROPY_VENDORS if fnmatch.fnmatch(name, pattern)), None)


def peers_python() -> Path:
    return Path(os.environ.get("PLATEWATCH_PEERS_PYTHON", ROOT / ".venv-peers" / "bin" / "python"))


def time_platewatch(path: Path, repeat: int) -> dict[str, Any]:
    try:
        export = read_any(path)  # warm-up: module imports, openpyxl on first xlsx
    except FormatError as exc:
        return {"error": str(exc).split(": ", 1)[-1][:60]}
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        read_any(path)
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "format": getattr(export, "format", "?")}


def time_allotropy(files: list[tuple[str, str]], repeat: int) -> dict[str, Any]:
    python = peers_python()
    if not files:
        return {"import_s": None, "files": {}}
    if not python.exists():
        return {"import_s": None, "files": {}, "missing": str(python)}
    out = subprocess.run(
        [str(python), "-c", PEER_TIMER, json.dumps(files), str(repeat)],
        capture_output=True,
        text=True,
        timeout=3600,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    if out.returncode != 0:
        return {"import_s": None, "files": {}, "missing": out.stderr[-300:]}
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15, help="timed runs per file (median)")
    parser.add_argument("--only", default="*", help="file-name pattern")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    names = sorted(
        p.name
        for p in CORPUS.iterdir()
        if p.is_file() and p.name != "SOURCES.md" and fnmatch.fnmatch(p.name, args.only)
    )
    ours = {n: time_platewatch(CORPUS / n, args.repeat) for n in names}
    exports = [n for n in names if "median_s" in ours[n]]
    asked = [(str(CORPUS / n), v) for n in exports if (v := allotropy_vendor(n)) is not None]
    peer = time_allotropy(asked, args.repeat)
    rows = []
    for n in exports:
        theirs = peer["files"].get(str(CORPUS / n))
        row: dict[str, Any] = {
            "file": n,
            "format": ours[n]["format"],
            "platewatch_ms": ours[n]["median_s"] * 1e3,
            "allotropy_ms": None,
            "ratio": None,
            "note": "",
        }
        if theirs is None:
            row["note"] = "no allotropy parser" if allotropy_vendor(n) is None else "peer missing"
        elif "error" in theirs:
            row["note"] = "allotropy cannot read it: " + theirs["error"][:70]
        else:
            row["allotropy_ms"] = theirs["median_s"] * 1e3
            row["ratio"] = row["allotropy_ms"] / row["platewatch_ms"]
        rows.append(row)
    ratios = [r["ratio"] for r in rows if r["ratio"] is not None]
    summary = {
        "repeat": args.repeat,
        "allotropy_import_s": peer.get("import_s"),
        "median_ratio": statistics.median(ratios) if ratios else None,
        "files_compared": len(ratios),
        "not_exports": {n: ours[n]["error"] for n in names if "error" in ours[n]},
    }
    if args.json:
        print(json.dumps({"rows": rows, **summary}, indent=1))
        return 0
    _print_table(rows, summary, peer)
    return 0


def _print_table(rows: list[dict[str, Any]], summary: dict[str, Any], peer: dict[str, Any]) -> None:
    print(f"{'file':<62} {'format':<13} {'platewatch':>11} {'allotropy':>11} {'ratio':>8}")
    for r in rows:
        theirs = f"{r['allotropy_ms']:9.2f}ms" if r["allotropy_ms"] is not None else f"{'-':>11}"
        ratio = f"{r['ratio']:7.1f}x" if r["ratio"] is not None else f"{'-':>8}"
        print(
            f"{r['file'][:62]:<62} {r['format']:<13} {r['platewatch_ms']:9.3f}ms {theirs} {ratio}  {r['note']}"
        )
    if "missing" in peer:
        print(f"\nallotropy not timed (peer environment: {peer['missing'][:120]})")
    if summary["allotropy_import_s"] is not None:
        print(
            f"\nallotropy import time (once per process, not in the ratios): {summary['allotropy_import_s']:.2f} s"
        )
    if summary["median_ratio"] is not None:
        print(
            f"median ratio allotropy/platewatch over {summary['files_compared']} files: "
            f"{summary['median_ratio']:.1f}x (goal >= 10x; median of {summary['repeat']} warm runs each)"
        )
    print(
        f"files not read as exports: {len(summary['not_exports'])} (layouts, definitions, readers pending)"
    )


if __name__ == "__main__":
    sys.exit(main())
