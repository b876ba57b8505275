"""Start-up of the command line: whole-process wall time of `parse` and `analyze`, one plate.

Each command runs N times as a fresh process (the way a user or a script runs it); the
median and the spread are printed against the goals of issue #7 (parse ≤ 0.3 s, analyze ≤
0.7 s on the project's 2-core machine), with the same interpreter doing nothing
(`python -c pass`) and importing numpy as the floor in the same run.

    python -m bench.cli [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLATE = ROOT / "examples" / "mtt_plate_clean.txt"
LAYOUT = ROOT / "config" / "layouts" / "mtt-96.toml"

COMMANDS: list[tuple[str, list[str], float | None]] = [
    ("python -c pass (floor)", [sys.executable, "-c", "pass"], None),
    ("python -c 'import numpy' (floor)", [sys.executable, "-c", "import numpy"], None),
    (
        "platewatch parse PLATE",
        [sys.executable, str(ROOT / "service.py"), "parse", str(PLATE)],
        0.3,
    ),
    (
        "platewatch parse PLATE --json",
        [sys.executable, str(ROOT / "service.py"), "parse", str(PLATE), "--json"],
        0.3,
    ),
    (
        "platewatch analyze PLATE --layout mtt-96.toml",
        [sys.executable, str(ROOT / "service.py"), "analyze", str(PLATE), "--layout", str(LAYOUT)],
        0.7,
    ),
    (
        "platewatch analyze PLATE --layout mtt-96.toml --json",
        [
            sys.executable,
            str(ROOT / "service.py"),
            "analyze",
            str(PLATE),
            "--layout",
            str(LAYOUT),
            "--json",
        ],
        0.7,
    ),
]


def wall(command: list[str]) -> float:
    start = time.perf_counter()
    out = subprocess.run(command, capture_output=True, cwd=ROOT)
    elapsed = time.perf_counter() - start
    if out.returncode not in (0, 1):
        raise SystemExit(
            f"{' '.join(command)} failed ({out.returncode}): {out.stderr.decode()[-500:]}"
        )
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    print(f"{'command':<55} {'median':>8} {'min':>7} {'max':>7}  goal")
    for name, command, goal in COMMANDS:
        wall(command)  # warm the page cache and the bytecode
        times = [wall(command) for _ in range(args.runs)]
        median = statistics.median(times)
        verdict = "" if goal is None else ("met" if median <= goal else "MISSED") + f" (≤ {goal} s)"
        print(f"{name:<55} {median:>7.3f}s {min(times):>6.3f}s {max(times):>6.3f}s  {verdict}")


if __name__ == "__main__":
    main()
