"""Plates per second for endpoint 96-well MTT plates: parse + normalise + fit + QC.

Goal (issue #3): ≥ 50 plates/s, the report excluded. The plates are simulated Gen5 text
exports (tests/plate_sim.py), written to a temporary folder and read back from disk, so the
figure includes reading and parsing. Printed beside it in the same run: the parse step
alone, so the analysis cost can be read off.

    python -m bench.analyze [--plates 300]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from acquisition.formats import read_export
from analysis.assay import analyze_plate
from analysis.layout import load_layout
from config import load_config, load_reference_ic50
from tests.plate_sim import Defects, simulate_plate, to_gen5_text

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plates", type=int, default=300)
    args = parser.parse_args()
    settings = load_config()
    refs = load_reference_ic50()
    layout = load_layout(ROOT / "config" / "layouts" / "mtt-96.toml")
    defects = [Defects(), Defects(edge=0.2), Defects(saturated=2), Defects(dead_wells=2)]
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(args.plates):
            sim = simulate_plate(layout, i, defects[i % len(defects)])
            path = Path(tmp) / f"plate_{i:04d}.txt"
            path.write_text(to_gen5_text(sim.read), encoding="cp1252")
            paths.append(path)

        start = time.perf_counter()
        exports = [read_export(p) for p in paths]
        parse_s = time.perf_counter() - start

        start = time.perf_counter()
        verdicts: dict[str, int] = {}
        for p in paths:
            export = read_export(p)
            result = analyze_plate(export.plates[0].reads, layout, settings.qc, references=refs)
            verdicts[result.verdict] = verdicts.get(result.verdict, 0) + 1
        total_s = time.perf_counter() - start
    n = len(exports)
    print(f"plates: {n} endpoint 96-well Gen5 exports (mixed clean/defective), 1 process")
    print(
        f"parse only:              {n / parse_s:8.1f} plates/s  ({parse_s / n * 1000:.2f} ms/plate)"
    )
    print(
        f"parse + fit + QC:        {n / total_s:8.1f} plates/s  ({total_s / n * 1000:.2f} ms/plate)"
    )
    print(
        f"goal 50 plates/s:        {'met' if n / total_s >= 50 else 'NOT met'} ({n / total_s / 50:.2f}x)"
    )
    print(f"verdicts: {verdicts}")


if __name__ == "__main__":
    main()
