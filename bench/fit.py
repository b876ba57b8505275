"""LL.4 fits per second on screen-shaped curves (issue 14), against a plain curve_fit loop.

The curves are those of a real viability screen (bench/screen.py): about a third flat
(drift, outlier wells), partial kills, steps that only the top dose shows, steep, shallow
and rising curves and clean sigmoids; 8–16 doses, 1–4 replicates, missing wells, ratios
clipped at 0. platewatch does more per curve than the peer: grid + drc self-starter
multi-start, Levenberg–Marquardt, the bounded refit when the optimum runs off, drc's
observed-Hessian SEs, the fls and delta CIs, the F-test against a flat line and the response
call. The peer is the loop people write by hand: ``scipy.optimize.curve_fit`` of the same
model from one rough start (covariance only). Both run on the same curves in the same run;
the figures are wall-clock, so on a shared machine read the ratios. Printed: the share of
curves on each code path, fits/s per shape and overall on one process (platewatch batched
as ``platewatch fit`` runs it, and one curve at a time as a plate's fit does), both on two
processes, and accuracy against the simulated truth.

Goals (issue 14): overall ≥ 1.0× the loop on one core, no shape below 0.5×, ≥ 1,000 fits/s
on 2 cores; ``platewatch fit`` on a 100,000-curve table in < 2 minutes on 2 cores.

    python -m bench.fit [--curves 6000] [--seed 0] [--workers 2] [--legacy 0]
    python -m bench.fit --write-table PATH [--curves 100000]     # a table for platewatch fit
    python -m bench.fit --cli [--curves 100000] [--workers 2]    # time platewatch fit on one
    python -m bench.fit --write-regression tests/data/fit_regression.json
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from analysis.doseresponse import LL4Fit, fit_ll4, fit_ll4_many
from bench.screen import SHAPES, ScreenCurve, make_screen

ROOT = Path(__file__).resolve().parent.parent
Curves = Sequence[ScreenCurve]
_CHUNK = 1000  # curves per task on several processes (and per batch of the batched fitter)


def _ll4_for_curve_fit(x: np.ndarray, b: float, c: float, d: float, e: float) -> np.ndarray:
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        return np.asarray(c + (d - c) / (1 + np.exp(b * (np.log(x) - np.log(abs(e) + 1e-300)))))


def run_curve_fit(curves: Curves) -> list[float]:
    """The peer: one curve_fit per curve from a rough start; its |e| (NaN when it fails)."""
    from scipy.optimize import OptimizeWarning, curve_fit

    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        for c in curves:
            pos = c.dose[c.dose > 0]
            p0 = [1.0, float(c.response.min()), float(c.response.max()), float(np.median(pos))]
            try:
                p, _ = curve_fit(_ll4_for_curve_fit, c.dose, c.response, p0=p0, maxfev=2000)
                out.append(abs(float(p[3])))
            except (RuntimeError, TypeError, ValueError):  # no convergence, too few points
                out.append(math.nan)
    return out


def run_batched(curves: Curves) -> list[LL4Fit]:
    fits: list[LL4Fit] = []
    for i in range(0, len(curves), _CHUNK):
        part = curves[i : i + _CHUNK]
        fits += fit_ll4_many([(c.dose, c.response) for c in part])
    return fits


def run_one_by_one(curves: Curves) -> list[LL4Fit]:
    return [fit_ll4(c.dose, c.response) for c in curves]


def _e_of(fits: list[LL4Fit]) -> list[float]:
    return [f.e if f.converged else math.nan for f in fits]


def _batched_e(curves: Curves) -> list[float]:
    return _e_of(run_batched(curves))


T = TypeVar("T")


def timed(fn: Callable[[Curves], list[T]], curves: Curves) -> tuple[float, list[T]]:
    start = time.perf_counter()
    out = fn(curves)
    return time.perf_counter() - start, out


def timed_parallel(
    fn: Callable[[Curves], list[float]], curves: Curves, workers: int
) -> tuple[float, list[float]]:
    """Wall time of ``fn`` over chunks on ``workers`` processes, started (and warmed up)
    before the clock starts, as the workers of a long ``platewatch fit`` are."""
    size = _CHUNK // 2
    chunks = [curves[i : i + size] for i in range(0, len(curves), size)]
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(fn, [curves[:2]] * workers))
        start = time.perf_counter()
        parts = list(pool.map(fn, chunks))
        elapsed = time.perf_counter() - start
    return elapsed, [v for part in parts for v in part]


def _path(fit: LL4Fit) -> str:
    if not math.isfinite(fit.rss):
        return "not fitted"
    return "bounded" if fit.bounded else "unbounded"


def _accuracy(estimates: Sequence[float], curves: Curves) -> str:
    est = np.asarray(estimates, dtype=float)
    truth = np.array([c.truth[3] for c in curves])
    has = np.isfinite(truth)
    ok = has & np.isfinite(est) & (est > 0)
    err = np.abs(np.log(est[ok] / truth[ok]))
    if not len(err):
        return "no curve with a true IC50"
    return (
        f"no estimate {int((has & ~ok).sum())}/{int(has.sum())}, median |ln(e/e_true)| "
        f"{np.median(err):.3f}, >2-fold off {int((err > math.log(2)).sum())}"
    )


def _by_shape(curves: Curves) -> dict[str, list[ScreenCurve]]:
    groups: dict[str, list[ScreenCurve]] = {name: [] for name in SHAPES}
    for c in curves:
        groups[c.shape].append(c)
    return {k: v for k, v in groups.items() if v}


def _subset(groups: dict[str, list[ScreenCurve]], share: float, floor: int) -> list[ScreenCurve]:
    out: list[ScreenCurve] = []
    for items in groups.values():
        out += items[: max(floor, round(share * len(items)))]
    return out


def report_paths(curves: Curves, fits: list[LL4Fit], title: str) -> None:
    print(f"\ncode paths and calls, {title} (share of each shape's curves):")
    print(f"  {'shape':9s} {'n':>6s} {'unbounded':>10s} {'bounded':>8s} {'not fitted':>11s}"
          f" {'yes':>6s} {'partial':>8s} {'none':>6s}")  # fmt: skip
    groups: dict[str, list[LL4Fit]] = collections.defaultdict(list)
    for c, f in zip(curves, fits, strict=True):
        groups[c.shape].append(f)
    groups["overall"] = list(fits)
    for shape, items in groups.items():
        n = len(items)
        paths = collections.Counter(_path(f) for f in items)
        calls = collections.Counter(f.response for f in items)

        def pct(count: int, n: int = n) -> str:
            return f"{100 * count / n:5.1f}%"

        print(f"  {shape:9s} {n:6d} {pct(paths['unbounded']):>10s} {pct(paths['bounded']):>8s}"
              f" {pct(paths['not fitted']):>11s} {pct(calls['yes']):>6s}"
              f" {pct(calls['partial']):>8s} {pct(calls['none']):>6s}")  # fmt: skip
    print("  (a flat curve gets the same fit, SEs, CI and F-test as any other: most run off and")
    print("   are refitted bounded; 'none' is the F-test and effect rules' call)")


def benchmark(curves: Curves, workers: int, legacy: int) -> None:
    groups = _by_shape(curves)
    pw_fits = run_batched(curves)  # warm-up, and the code paths
    report_paths(curves, pw_fits, "platewatch")
    one_sub = _subset(groups, 0.1, 60)
    print("\nfits/s on one process (wall clock; the ratios are what to read on a shared machine):")
    print(f"  {'shape':9s} {'n':>6s} {'batched':>9s} {'one by one':>11s} {'curve_fit':>10s}"
          f" {'batched/cf':>11s} {'one/cf':>7s}")  # fmt: skip
    totals: dict[str, float] = collections.defaultdict(float)
    worst = math.inf
    for shape, items in groups.items():
        t_pw, _ = timed(run_batched, items)
        subset = [c for c in one_sub if c.shape == shape]
        t_one, _ = timed(run_one_by_one, subset)
        t_cf, _ = timed(run_curve_fit, items)
        rate_pw, rate_one, rate_cf = len(items) / t_pw, len(subset) / t_one, len(items) / t_cf
        worst = min(worst, rate_pw / rate_cf)
        totals["pw"] += t_pw
        totals["cf"] += t_cf
        totals["one"] += t_one
        totals["n_one"] += len(subset)
        print(f"  {shape:9s} {len(items):6d} {rate_pw:9.0f} {rate_one:11.0f} {rate_cf:10.0f}"
              f" {rate_pw / rate_cf:10.2f}x {rate_one / rate_cf:6.2f}x")  # fmt: skip
    t_mixed, mixed = timed(run_batched, curves)
    rate_mixed = len(curves) / t_mixed
    rate_cf = len(curves) / totals["cf"]
    rate_one = totals["n_one"] / totals["one"]
    print(f"  {'overall':9s} {len(curves):6d} {rate_mixed:9.0f} {rate_one:11.0f} {rate_cf:10.0f}"
          f" {rate_mixed / rate_cf:10.2f}x {rate_one / rate_cf:6.2f}x")  # fmt: skip
    print("  (overall batched: all shapes mixed in one run, as a real table; one by one: a")
    print(
        f"   stratified subset of {int(totals['n_one'])} curves, as a plate's fits are run today)"
    )

    print(f"\n{workers} processes (chunks of {_CHUNK // 2} curves):")
    t_pw2, _ = timed_parallel(_batched_e, curves, workers)
    t_cf2, e_cf2 = timed_parallel(run_curve_fit, curves, workers)
    rate_pw2, rate_cf2 = len(curves) / t_pw2, len(curves) / t_cf2
    print(f"  platewatch (SEs, CI, F-test, call): {rate_pw2:8.0f} fits/s")
    print(f"  scipy curve_fit loop (peer):        {rate_cf2:8.0f} fits/s")
    print(f"  ratio platewatch / curve_fit:       {rate_pw2 / rate_cf2:8.2f}x")
    print("\naccuracy against the simulated IC50 (curves with one; flat and step have none):")
    print(f"  platewatch: {_accuracy(_e_of(mixed), curves)}")
    print(f"  curve_fit:  {_accuracy(e_cf2, curves)}")
    if legacy:
        benchmark_legacy(_subset(groups, legacy / len(curves), 10))
    print("\ngoals (issue 14):")
    print(f"  overall >= 1.0x the loop on one process: {_met(rate_mixed / rate_cf >= 1.0)} "
          f"({rate_mixed / rate_cf:.2f}x)")  # fmt: skip
    print(f"  no shape below 0.5x the loop:            {_met(worst >= 0.5)} (lowest {worst:.2f}x)")
    print(f"  >= 1,000 fits/s on {workers} processes:          {_met(rate_pw2 >= 1000)} "
          f"({rate_pw2:.0f} fits/s)")  # fmt: skip


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def benchmark_legacy(curves: Curves) -> None:
    """The fitter before issue 14 (bench/legacy.py) beside the current one."""
    from bench import legacy

    fit_legacy = legacy.load()

    def run_legacy(items: Curves) -> list[Any]:
        out: list[Any] = []
        for c in items:
            try:
                out.append(fit_legacy.fit_ll4(c.dose, c.response))
            except OverflowError:  # the old fls CI's exp() overflowed on unpinned IC50s
                out.append(None)
        return out

    t_old, old = timed(run_legacy, curves)
    t_one, _ = timed(run_one_by_one, curves)
    t_new, _ = timed(run_batched, curves)
    t_cf, _ = timed(run_curve_fit, curves)
    n = len(curves)
    bounded = sum(1 for f in old if f is not None and f.bounded)
    crashed = sum(1 for f in old if f is None)
    print(f"\nbefore issue 14 (bench/legacy.py), the same {n} curves (stratified), one process:")
    print(f"  legacy fit_ll4, one by one:   {n / t_old:8.1f} fits/s ({n / t_old / (n / t_cf):.2f}x "
          f"the loop; {100 * bounded / n:.0f} % bounded refits, {crashed} crashed)")  # fmt: skip
    print(f"  fit_ll4 now, one by one:      {n / t_one:8.1f} fits/s ({t_old / t_one:.1f}x legacy)")
    print(f"  fit_ll4_many now, batched:    {n / t_new:8.1f} fits/s ({t_old / t_new:.1f}x legacy)")
    print(f"  scipy curve_fit loop:         {n / t_cf:8.1f} fits/s")


def write_table(path: Path, n: int, seed: int) -> int:
    """A ``curve_id,dose,response`` table of ``n`` screen-shaped curves; returns its rows."""
    rows = 0
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write("curve_id,dose,response\n")
        for c in make_screen(n, seed):
            name = f"c{c.index:06d}"
            fh.write(
                "".join(
                    f"{name},{d:.6g},{r:.5f}\n" for d, r in zip(c.dose, c.response, strict=True)
                )
            )
            rows += len(c.dose)
    return rows


def time_cli(n: int, seed: int, workers: int, table: Path | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if table is None or not table.exists():
            table = table or Path(tmp) / f"screen_{n}.csv"
            start = time.perf_counter()
            rows = write_table(table, n, seed)
            print(f"wrote {table} ({n} curves, {rows} rows) in {time.perf_counter() - start:.0f} s")
        command = [
            sys.executable, str(ROOT / "service.py"), "fit", str(table), "--dose", "dose",
            "--response", "response", "--group", "curve_id", "--json", "--workers", str(workers),
        ]  # fmt: skip
        out = Path(tmp) / "fit.jsonl"
        start = time.perf_counter()
        with out.open("wb") as sink:
            done = subprocess.run(command, stdout=sink, stderr=subprocess.PIPE, check=False)
        elapsed = time.perf_counter() - start
        lines = out.read_bytes().count(b"\n")
    print(f"platewatch fit --group curve_id --json --workers {workers}: exit {done.returncode}, "
          f"{lines} JSON lines in {elapsed:.1f} s ({lines / elapsed:.0f} curves/s)")  # fmt: skip
    if done.returncode:
        print(done.stderr.decode(errors="replace")[-2000:])
    print(f"goal: < 120 s for 100,000 curves on 2 cores: {_met(elapsed < 120 * n / 100_000)}")


def write_regression(path: Path, n: int, seed: int) -> None:
    """The calls of the fitter before issue 14 on ``n`` screen curves (tests/data)."""
    from bench import legacy

    fit_legacy = legacy.load()

    curves = make_screen(n, seed)
    code = {"yes": "y", "partial": "p", "none": "n"}
    calls, quals, bounded, converged = [], [], [], []
    ic50: list[float | None] = []
    rss: list[float | None] = []
    crashed = []
    for c in curves:
        try:
            f = fit_legacy.fit_ll4(c.dose, c.response)
        except OverflowError:
            crashed.append(c.index)
            calls.append("x")
            quals.append("x")
            bounded.append("x")
            converged.append("x")
            ic50.append(None)
            rss.append(None)
            continue
        calls.append(code[f.response])
        quals.append(f.ic50_qualifier)
        bounded.append("1" if f.bounded else "0")
        converged.append("1" if f.converged else "0")
        ic50.append(
            float(f"{f.ic50:.8g}") if f.ic50 is not None and math.isfinite(f.ic50) else None
        )
        rss.append(float(f"{f.rss:.12g}") if math.isfinite(f.rss) else None)
    record = {
        "about": "calls of the LL.4 fitter before issue 14 (bench/legacy.py, commit "
        "2b4e585) on bench.screen.make_screen(n, seed); written by python -m bench.fit "
        "--write-regression",
        "seed": seed,
        "n": n,
        "checksum": _checksum(curves),
        "response": "".join(calls),
        "qualifier": "".join(quals),
        "bounded": "".join(bounded),
        "converged": "".join(converged),
        "ic50": ic50,
        "rss": rss,
        "crashed": crashed,
    }
    path.write_text(json.dumps(record, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {path}: {n} curves, {len(crashed)} on which the old fitter crashed")


def _checksum(curves: Curves) -> float:
    """A fingerprint of the generated curves: the regression data belong to exactly these."""
    return float(f"{sum(float(c.response.sum()) + float(c.dose.sum()) for c in curves):.10g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--curves", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--legacy", type=int, default=0, help="also time the old fitter on ~N")
    parser.add_argument("--write-table", type=Path, help="write a table for platewatch fit")
    parser.add_argument("--cli", action="store_true", help="time platewatch fit on a table")
    parser.add_argument("--table", type=Path, help="with --cli: this table (made if missing)")
    parser.add_argument("--write-regression", type=Path, help="write the regression data")
    args = parser.parse_args()
    if args.write_regression:
        write_regression(args.write_regression, args.curves or 2400, 14)
        return
    if args.write_table:
        n = args.curves or 100_000
        print(f"wrote {write_table(args.write_table, n, args.seed)} rows of {n} curves")
        return
    if args.cli:
        time_cli(args.curves or 100_000, args.seed, args.workers, args.table)
        return
    n = args.curves or 6000
    curves = make_screen(n, args.seed)
    shares = ", ".join(f"{k} {100 * v:.0f} %" for k, v in SHAPES.items())
    print(f"{n} screen-shaped curves (seed {args.seed}): {shares}")
    print(
        "8-16 doses, 1-4 replicates, missing wells, 40 % with untreated wells, ratios clipped at 0"
    )
    benchmark(curves, args.workers, args.legacy)


if __name__ == "__main__":
    main()
