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
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from analysis.assay import analyze_plate
from config import load_config, load_reference_ic50
from config.loader import ReferenceIC50
from config.schema import Settings
from tests.plate_sim import (
    ACCEPTANCE_NOISE,
    DEFECT_CASES,
    LAYOUT_FAMILIES,
    NOISE_MODELS,
    Defects,
    outcome,
    simulate_plate,
)

CLEAN = "clean"
CHUNK = 25  # plates per task


@dataclass(frozen=True)
class Task:
    family: str
    noise: str
    case: str
    seeds: range


_CONTEXT: tuple[Settings, dict[str, ReferenceIC50]] | None = None


def _context() -> tuple[Settings, dict[str, ReferenceIC50]]:
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = (load_config(), load_reference_ic50())
    return _CONTEXT


def run(task: Task) -> tuple[Task, Counter[str], Counter[str], float]:
    """Outcomes of one chunk of plates, the flag codes of clean plates that warned, CPU s."""
    settings, refs = _context()
    layout = LAYOUT_FAMILIES[task.family]()
    defects, code = (Defects(), "") if task.case == CLEAN else DEFECT_CASES[task.case]
    outcomes: Counter[str] = Counter()
    culprits: Counter[str] = Counter()
    start = time.process_time()
    for seed in task.seeds:
        sim = simulate_plate(layout, seed, defects, noise=task.noise)
        result = analyze_plate([sim.read], layout, settings.qc, references=refs)
        if task.case == CLEAN:
            warned = result.verdict != "pass"
            outcomes["warned" if warned else "pass"] += 1
            if warned:
                culprits.update({f.code for f in result.flags if f.severity != "info"})
        else:
            outcomes[outcome(result.flags, result.verdict, code)] += 1
    return task, outcomes, culprits, time.process_time() - start


def _tasks(
    families: list[str], noises: list[str], clean: int, defect: int, base: int
) -> list[Task]:
    tasks: list[Task] = []
    for f_index, family in enumerate(families):
        for n_index, noise in enumerate(noises):
            for c_index, case in enumerate([CLEAN, *DEFECT_CASES]):
                count = clean if case == CLEAN else defect
                start = base + 100_000 * n_index + 10_000 * f_index + 1_000 * c_index
                for lo in range(0, count, CHUNK):
                    tasks.append(
                        Task(family, noise, case, range(start + lo, start + min(lo + CHUNK, count)))
                    )
    return tasks


def _cell(counts: Counter[str], case: str) -> str:
    total = sum(counts.values())
    if not total:
        return "-"
    if case == CLEAN:
        return f"{counts['warned'] / total:.3f}"
    flagged, untestable = counts["flagged"] / total, counts["untestable"] / total
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

    outcomes: dict[tuple[str, str, str], Counter[str]] = {}
    culprits: dict[tuple[str, str], Counter[str]] = {}
    cpu = 0.0
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for task, counts, codes, seconds in pool.map(run, tasks):
            outcomes.setdefault((task.family, task.noise, task.case), Counter()).update(counts)
            culprits.setdefault((task.family, task.noise), Counter()).update(codes)
            cpu += seconds
    wall = time.perf_counter() - start
    plates = sum(len(t.seeds) for t in tasks)

    cases = [CLEAN, *DEFECT_CASES]
    short = {
        CLEAN: "clean FA",
        **{c: c.split(" 15 %")[0].replace(" end to end", "") for c in DEFECT_CASES},
    }
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
            row += "".join(
                f"{_cell(outcomes.get((family, noise, c), Counter()), c):>15s}" for c in cases
            )
            print(row)
    print("\nflags behind the false alarms (plates per code):")
    for (family, noise), codes in culprits.items():
        if codes:
            shown = ", ".join(f"{code} {n}" for code, n in codes.most_common())
            print(f"  {family} / {noise}: {shown}")
    print(
        f"\n{plates} plates in {wall:.0f} s wall ({cpu / plates * 1000:.1f} ms of CPU per plate, "
        f"{args.workers} processes)"
    )


if __name__ == "__main__":
    main()
