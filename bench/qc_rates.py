"""QC false-alarm and detection rates over layout families and noise models (issue 9).

For every layout family of ``tests/plate_sim.py`` (lines interleaved by row, in row blocks,
in column blocks, doses down the rows, 384 wells) and both noise models (Gaussian; heavy
tails + outlier wells + a drifting untreated level) it analyses simulated plates exactly as
the daemon would (``analyze_plate`` with the shipped settings) and prints:

* clean plates: the fraction that raise a warning or worse (target ≤ 2 %), with the flag
  codes responsible;
* every planted 15 % defect: the fraction in which its flag is raised as a warning or worse
  (target ≥ 95 %); where the layout makes the defect untestable (a row gradient with the
  lines in row blocks), the fraction carrying the info note that says so, marked ``n/t``.

The seeds (from ``--seed-base``, default 500000) are disjoint from those the thresholds
were tuned on (900000+) and from the test's (2000+). Both cores are used.

    python -m bench.qc_rates                       # 500 clean + 200 per defect, everything
    python -m bench.qc_rates --plates 60 --layouts interleaved,row_blocks --noise heavy
"""

from __future__ import annotations

import argparse
import os
import time

from tests.plate_sim import ACCEPTANCE_NOISE, DEFECT_CASES, LAYOUT_FAMILIES, NOISE_MODELS
from tests.qc_runs import CLEAN, Tally, Task, chunks, rates

# table headings, in the order of [CLEAN, *DEFECT_CASES]
COLUMNS = (
    "clean FA",
    "edge 15%",
    "col grad 15%",
    "row grad 15%",
    "blanks +15%",
    "2 dead",
    "2 saturated",
    "inactive drug",
)


def _tasks(
    families: list[str], noises: list[str], clean: int, defect: int, base: int
) -> list[Task]:
    tasks: list[Task] = []
    for f_index, family in enumerate(families):
        for n_index, noise in enumerate(noises):
            for c_index, case in enumerate([CLEAN, *DEFECT_CASES]):
                count = clean if case == CLEAN else defect
                start = base + 100_000 * n_index + 10_000 * f_index + 1_000 * c_index
                tasks += chunks(family, noise, case, start, count)
    return tasks


def _cell(tally: Tally | None, case: str) -> str:
    if tally is None or not tally.plates:
        return "-"
    if case == CLEAN:
        return f"{tally.rate('warned'):.3f}"
    flagged, untestable = tally.rate("flagged"), tally.rate("untestable")
    if untestable > flagged:
        return f"n/t {untestable:.2f}"
    return f"{flagged:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plates", type=int, default=500, help="clean plates per layout × noise")
    parser.add_argument(
        "--defect-plates",
        type=int,
        default=None,
        help="plates per defect (default min(200, plates))",
    )
    parser.add_argument("--layouts", default=",".join(LAYOUT_FAMILIES))
    parser.add_argument("--noise", default=",".join(ACCEPTANCE_NOISE), help="also: stress")
    parser.add_argument("--seed-base", type=int, default=500_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    families = [f for f in args.layouts.split(",") if f]
    noises = [n for n in args.noise.split(",") if n]
    unknown = [f for f in families if f not in LAYOUT_FAMILIES] + [
        n for n in noises if n not in NOISE_MODELS
    ]
    if unknown:
        parser.error(f"unknown layout family or noise model: {', '.join(unknown)}")
    defect = args.defect_plates if args.defect_plates is not None else min(200, args.plates)
    tasks = _tasks(families, noises, args.plates, defect, args.seed_base)

    start = time.perf_counter()
    tallies = rates(tasks, args.workers)
    wall = time.perf_counter() - start
    cpu = sum(t.cpu_seconds for t in tallies.values())
    plates = sum(t.plates for t in tallies.values())

    cases = [CLEAN, *DEFECT_CASES]
    short = dict(zip([CLEAN, *DEFECT_CASES], COLUMNS, strict=True))
    print(
        f"{args.plates} clean plates and {defect} per defect for each layout × noise model; "
        f"seeds from {args.seed_base}"
    )
    print("clean FA: fraction of clean plates with a warning or worse (target ≤ 0.02)")
    print("defects: fraction flagged as a warning or worse (target ≥ 0.95); n/t = untestable")
    print("on this layout, with the fraction carrying the info note that says so\n")
    header = f"{'layout':18s} {'noise':9s}" + "".join(f"{short[c][:14]:>15s}" for c in cases)
    print(header)
    print("-" * len(header))
    for family in families:
        for noise in noises:
            row = f"{family:18s} {noise:9s}"
            row += "".join(f"{_cell(tallies.get((family, noise, c)), c):>15s}" for c in cases)
            print(row)
    print("\nflags behind the false alarms (plates per code):")
    for (family, noise, case), tally in tallies.items():
        if case == CLEAN and tally.culprits:
            shown = ", ".join(f"{code} {n}" for code, n in tally.culprits.most_common())
            print(f"  {family} / {noise}: {shown}")
    print(
        f"\n{plates} plates in {wall:.0f} s wall ({cpu / plates * 1000:.1f} ms of CPU per plate, "
        f"{args.workers} processes)"
    )


if __name__ == "__main__":
    main()
