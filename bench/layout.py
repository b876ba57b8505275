"""Start-up cost of a layout and of a one-plate ``platewatch analyze`` (issue #7: ≤ 0.7 s).

Each figure is measured twice in the same run, interleaved: with the layout read by
``analysis.wellmap_format`` (no wellmap, pandas or matplotlib import) and with that reader
switched off (``wellmap.load``, the behaviour before it), so the ratio stands even on a busy
machine. Fresh interpreters each time (the cost is start-up); medians of ``--runs``. Then
the import-time breakdown of one ``analyze`` (``python -X importtime``): what is left.

    python -m bench.layout [--runs 5]
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYOUT = "config/layouts/mtt-96.toml"
PLATE = "examples/mtt_plate_clean.txt"
GOAL_S = 0.7

_WITHOUT_READER = (
    "import analysis.layout as layout\n"
    "from analysis.wellmap_format import NeedsWellmap\n"
    "def _off(source):\n"
    "    raise NeedsWellmap('benchmark: reader off')\n"
    "layout._wellmap_records_fast = _off\n"
)
_LOAD = f"from analysis.layout import load_layout\nload_layout({LAYOUT!r})\n"
_ANALYZE = (
    "import sys\nfrom service import main\n"
    f"sys.argv = ['platewatch', 'analyze', {PLATE!r}, '--layout', {LAYOUT!r}]\n"
    "try:\n    main()\nexcept SystemExit as done:\n    assert not done.code, done.code\n"
)


def wall(code: str, *flags: str) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *flags, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"benchmark run failed:\n{done.stderr}")
    return took, done.stderr


def compare(name: str, code: str, runs: int) -> None:
    fast, slow = [], []
    for _ in range(runs):  # interleaved, so load swings hit both alike
        fast.append(wall(code)[0])
        slow.append(wall(_WITHOUT_READER + code)[0])
    f, s = statistics.median(fast), statistics.median(slow)
    print(f"{name:34} {f:6.3f} s   via wellmap.load {s:6.3f} s   ratio {s / f:5.2f}x")


def import_breakdown(code: str, share: float = 0.04) -> None:
    """The imports that cost more than ``share`` of the total, nested as Python reports them."""
    _, stderr = wall(code, "-X", "importtime")
    rows = []
    for line in stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if match:
            rows.append((int(match[2]) / 1e6, (len(match[3]) - 1) // 2, match[4]))
    heavy = sorted({name.split(".")[0] for *_, name in rows} & {"pandas", "matplotlib", "wellmap"})
    total = sum(seconds for seconds, depth, _ in rows if depth == 0)
    print(f"  imports, total {total:.3f} s; pandas/matplotlib/wellmap imported: {heavy or 'none'}")
    for seconds, depth, name in reversed(rows):  # importtime lists children before parents
        if seconds >= share * total and depth <= 5:
            print(f"  {seconds:7.3f} s  {'  ' * depth}{name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"medians of {args.runs} fresh interpreters ({sys.executable})")
    bare = statistics.median(wall("pass")[0] for _ in range(args.runs))
    print(f"{'python -c pass':34} {bare:6.3f} s")
    compare("load_layout(mtt-96.toml)", _LOAD, args.runs)
    compare("platewatch analyze (1 plate)", _ANALYZE, args.runs)
    analyze = statistics.median(wall(_ANALYZE)[0] for _ in range(args.runs))
    print(
        f"goal {GOAL_S} s for one plate: {'met' if analyze <= GOAL_S else 'NOT met'} "
        f"({analyze:.3f} s, again)"
    )
    print("import time of one analyze, largest first (module, then what it pulled in):")
    import_breakdown(_ANALYZE)


if __name__ == "__main__":
    main()
