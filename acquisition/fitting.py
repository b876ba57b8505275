"""LL.4 fits of many curves on every core: ``platewatch fit`` on big tables, ``reprocess``.

The curves are cut into chunks; each chunk is one batched fit
(:func:`analysis.doseresponse.fit_ll4_many`) in a worker process (spawned: the parent may
run a progress thread), and the results come back in input order as the chunks finish, so
a caller can write them out as it goes and report progress. Few curves (or ``workers=1``)
are fitted in this process: starting workers costs about a second.

* :func:`iter_fits` / :func:`fit_curves` — the :class:`~analysis.doseresponse.LL4Fit` of
  every curve, in order;
* :func:`iter_lines` — the lines ``platewatch fit`` prints per curve (JSONL records with
  the curve's group, or the one-line summary), rendered in the workers too.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt

from analysis.doseresponse import LL4Fit, ResponseRules, fit_ll4_many
from analysis.model import jsonable

Array = npt.NDArray[np.float64]
Curve = tuple[npt.ArrayLike, npt.ArrayLike]
Progress = Callable[[int], None]  # called with the number of curves just finished
Render = Literal["fit", "json", "text"]
T = TypeVar("T")

CHUNK = 500  # curves per task: a second or so of work, progress every chunk
IN_PROCESS_BELOW = 2 * CHUNK  # fewer curves than this are not worth starting workers for


def usable_cpus() -> int:
    """The cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class _Task:
    """One chunk of curves and how to fit and render them (plain data: it crosses to a
    worker process)."""

    curves: list[tuple[Array, Array]]
    controls: list[float | None] | None
    labels: list[dict[str, Any]] | None
    rules: ResponseRules
    level: float
    render: Render


def _run_task(task: _Task) -> list[Any]:
    fits = fit_ll4_many(task.curves, controls=task.controls, rules=task.rules, level=task.level)
    if task.render == "fit":
        return fits
    labels = task.labels or [{} for _ in fits]
    if task.render == "json":
        return [json_line(label, fit) for label, fit in zip(labels, fits, strict=True)]
    return [text_line(label, fit) for label, fit in zip(labels, fits, strict=True)]


def json_line(group: dict[str, Any], fit: LL4Fit) -> str:
    """The JSONL record of one curve, as ``platewatch fit --json`` prints it."""
    record = jsonable({"group": group, **fit.to_dict()})
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def text_line(group: dict[str, Any], fit: LL4Fit) -> str:
    """One curve's summary line (``name: …``); the name is the group, or empty."""
    name = ", ".join(f"{k}={v}" for k, v in group.items())
    return f"{name}: {fit_summary(fit)}" if name else fit_summary(fit)


def fit_summary(result: LL4Fit) -> str:
    """The one-line human summary of a fit (``platewatch fit`` without ``--json``)."""
    if not result.converged:
        return f"no fit ({result.message or 'did not converge'}); no IC50"
    if result.response == "none":
        p = f"{result.no_effect_p:.3g}" if result.no_effect_p == result.no_effect_p else "n/a"
        return f"no dose response (flat; F-test p={p}), IC50 >{result.dose_max:.5g}"
    ci = f" [{result.ic50_ci[0]:.4g}, {result.ic50_ci[1]:.4g}]" if result.ic50_ci else ""
    q = result.ic50_qualifier if result.ic50_qualifier != "=" else ""
    slope = "at its bound" if result.slope_at_bound else f"{result.b:.4g}"
    return (
        f"IC50 {q}{result.ic50:.5g}{ci}  b={slope} c={result.c:.4g} d={result.d:.4g}  "
        f"response={result.response}  p={result.no_effect_p:.3g}"
    )


def _tasks(
    curves: Sequence[Curve],
    controls: Sequence[float | None] | None,
    labels: Sequence[dict[str, Any]] | None,
    rules: ResponseRules,
    level: float,
    render: Render,
    chunk: int,
) -> Iterator[_Task]:
    for start in range(0, len(curves), chunk):
        end = min(start + chunk, len(curves))
        yield _Task(
            [
                (np.asarray(d, dtype=float).ravel(), np.asarray(r, dtype=float).ravel())
                for d, r in curves[start:end]
            ],
            None if controls is None else list(controls[start:end]),
            None if labels is None else list(labels[start:end]),
            rules,
            level,
            render,
        )


def _results(
    tasks: Iterator[_Task], n: int, workers: int | None, progress: Progress | None, chunk: int
) -> Iterator[Any]:
    """Each task's results in order, fitted here or on ``workers`` processes."""
    workers = usable_cpus() if workers is None else max(1, workers)
    if workers == 1 or n < IN_PROCESS_BELOW:
        for task in tasks:
            out = _run_task(task)
            if progress is not None:
                progress(len(out))
            yield from out
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        # A bounded window of chunks in flight: memory stays flat on a huge table, and the
        # results stream out in order while the workers stay busy.
        window: list[Future[list[Any]]] = []
        pending = iter(tasks)
        for task in pending:
            window.append(pool.submit(_run_task, task))
            if len(window) >= 3 * workers:
                break
        while window:
            out = window.pop(0).result()
            nxt = next(pending, None)
            if nxt is not None:
                window.append(pool.submit(_run_task, nxt))
            if progress is not None:
                progress(len(out))
            yield from out


def iter_fits(
    curves: Sequence[Curve],
    *,
    rules: ResponseRules | None = None,
    level: float = 0.95,
    controls: Sequence[float | None] | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
    chunk: int = CHUNK,
) -> Iterator[LL4Fit]:
    """The LL.4 fit of every ``(dose, response)`` curve, in order, on ``workers`` processes
    (None: every usable core; 1: this process). ``progress(k)`` after every k curves."""
    tasks = _tasks(curves, controls, None, rules or ResponseRules(), level, "fit", chunk)
    yield from _results(tasks, len(curves), workers, progress, chunk)


def fit_curves(
    curves: Sequence[Curve],
    *,
    rules: ResponseRules | None = None,
    level: float = 0.95,
    controls: Sequence[float | None] | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> list[LL4Fit]:
    """:func:`iter_fits` as a list (what ``reprocess`` of an archive wants)."""
    return list(
        iter_fits(
            curves, rules=rules, level=level, controls=controls, workers=workers,
            progress=progress,
        )
    )  # fmt: skip


def iter_lines(
    curves: Sequence[Curve],
    labels: Sequence[dict[str, Any]],
    *,
    as_json: bool,
    rules: ResponseRules | None = None,
    level: float = 0.95,
    workers: int | None = None,
    progress: Progress | None = None,
    chunk: int = CHUNK,
) -> Iterator[str]:
    """``platewatch fit``'s line per curve (JSONL record or summary), in order."""
    render: Render = "json" if as_json else "text"
    tasks = _tasks(curves, None, labels, rules or ResponseRules(), level, render, chunk)
    yield from _results(tasks, len(curves), workers, progress, chunk)
