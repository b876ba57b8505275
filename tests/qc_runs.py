"""Rates of QC outcomes over simulated plates, on both cores (tests/test_qc.py, bench/qc_rates.py).

A ``Task`` is one chunk of seeds of one layout family × noise model × case (``clean`` or a
key of ``DEFECT_CASES``); ``rates`` runs many in a process pool and adds their outcomes up.
Every plate is analysed exactly as the daemon would: ``analyze_plate`` with the shipped
settings and reference table.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from analysis.assay import analyze_plate
from config import load_config, load_reference_ic50
from config.loader import ReferenceIC50
from config.schema import Settings
from tests.plate_sim import (
    DEFECT_CASES,
    LAYOUT_FAMILIES,
    LIMIT_CASES,
    Defects,
    outcome,
    simulate_plate,
)

CLEAN = "clean"
CHUNK = 25  # plates per task
CASES = DEFECT_CASES | LIMIT_CASES


@dataclass(frozen=True)
class Task:
    family: str
    noise: str
    case: str
    seeds: range


@dataclass
class Tally:
    """Outcomes of a set of plates: 'pass'/'warned' (clean) or flagged/untestable/missed."""

    outcomes: Counter[str]
    culprits: Counter[str]  # flag codes of the clean plates that warned
    cpu_seconds: float = 0.0

    @property
    def plates(self) -> int:
        return sum(self.outcomes.values())

    def rate(self, key: str) -> float:
        return self.outcomes[key] / self.plates if self.plates else float("nan")


_CONTEXT: tuple[Settings, dict[str, ReferenceIC50]] | None = None


def _context() -> tuple[Settings, dict[str, ReferenceIC50]]:
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = (load_config(), load_reference_ic50())
    return _CONTEXT


def run(task: Task) -> tuple[Task, Tally]:
    """Analyse one chunk of plates."""
    settings, refs = _context()
    layout = LAYOUT_FAMILIES[task.family]()
    defects, code = (Defects(), "") if task.case == CLEAN else CASES[task.case]
    tally = Tally(Counter(), Counter())
    start = time.process_time()
    for seed in task.seeds:
        sim = simulate_plate(layout, seed, defects, noise=task.noise)
        result = analyze_plate([sim.read], layout, settings.qc, references=refs)
        if task.case == CLEAN:
            warned = result.verdict != "pass"
            tally.outcomes["warned" if warned else "pass"] += 1
            if warned:
                tally.culprits.update({f.code for f in result.flags if f.severity != "info"})
        else:
            tally.outcomes[outcome(result.flags, result.verdict, code, defects)] += 1
    tally.cpu_seconds = time.process_time() - start
    return task, tally


def chunks(family: str, noise: str, case: str, first_seed: int, count: int) -> list[Task]:
    return [
        Task(family, noise, case, range(first_seed + lo, first_seed + min(lo + CHUNK, count)))
        for lo in range(0, count, CHUNK)
    ]


def rates(tasks: Iterable[Task], workers: int = 2) -> dict[tuple[str, str, str], Tally]:
    """Run the tasks in ``workers`` processes; tallies per (family, noise, case)."""
    out: dict[tuple[str, str, str], Tally] = {}
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for task, tally in pool.map(run, list(tasks)):
            total = out.setdefault(
                (task.family, task.noise, task.case), Tally(Counter(), Counter())
            )
            total.outcomes.update(tally.outcomes)
            total.culprits.update(tally.culprits)
            total.cpu_seconds += tally.cpu_seconds
    return out
