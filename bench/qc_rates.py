"""QC detection rates on simulated plates, beyond what the tests assert.

Prints, over two disjoint seed ranges, how often each check fires: on clean plates (false
alarms), on 15 % end-to-end gradients along columns and rows with the shipped layout, and
on a row gradient with a row-block variant of it (each cell line in four adjacent rows),
which shows why the shipped layout interleaves the lines.

    python -m bench.qc_rates [--plates 200]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from analysis.assay import analyze_plate
from analysis.layout import Layout, load_layout
from config import load_config, load_reference_ic50
from tests.plate_sim import Defects, simulate_plate

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "config" / "layouts" / "mtt-96.toml"


def block_layout(folder: Path) -> Layout:
    text = (
        SHIPPED.read_text()
        .replace("[row.'A,C,...,G']", "[row.'A-D']")
        .replace("[row.'B,D,...,H']", "[row.'E-H']")
    )
    path = folder / "row_blocks.toml"
    path.write_text(text)
    return load_layout(path)


def rate(layout: Layout, defects: Defects, code: str | None, seeds: range) -> float:
    settings, refs = load_config(), load_reference_ic50()
    hits = 0
    for seed in seeds:
        result = analyze_plate(
            [simulate_plate(layout, seed, defects).read], layout, settings.qc, references=refs
        )
        if code is None:
            hits += result.verdict != "pass"
        else:
            hits += any(f.code == code for f in result.flags)
    return hits / len(seeds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plates", type=int, default=200)
    args = parser.parse_args()
    shipped = load_layout(SHIPPED)
    with tempfile.TemporaryDirectory() as tmp:
        blocks = block_layout(Path(tmp))
        cases = [
            ("clean plates: warn or worse", shipped, Defects(), None),
            (
                "column gradient 15 % end to end",
                shipped,
                Defects(gradient=0.15, gradient_axis="cols"),
                "plate_gradient",
            ),
            (
                "row gradient 15 % end to end",
                shipped,
                Defects(gradient=0.15, gradient_axis="rows"),
                "plate_gradient",
            ),
            (
                "row gradient 15 %, row-block layout",
                blocks,
                Defects(gradient=0.15, gradient_axis="rows"),
                "plate_gradient",
            ),
        ]
        ranges = (range(2000, 2000 + args.plates), range(5000, 5000 + args.plates))
        print(f"{args.plates} simulated plates per condition and seed range")
        for name, layout, defects, code in cases:
            rates = [rate(layout, defects, code, seeds) for seeds in ranges]
            print(
                f"  {name:40s} "
                + "   ".join(
                    f"seeds {r.start}+: {x:.3f}" for r, x in zip(ranges, rates, strict=True)
                )
            )


if __name__ == "__main__":
    main()
