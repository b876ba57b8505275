"""LL.4 fits per second on 10,000 simulated curves, against a plain curve_fit loop.

platewatch's fit_ll4 does more per curve than the peer: a grid + drc self-starter
multi-start, Levenberg–Marquardt polish, the observed-Hessian SEs, the delta CI, the F-test
against a flat line and the response call. The peer is the loop people write by hand:
``scipy.optimize.curve_fit`` of the same model from one rough start (covariance only).
Both run on the same curves in the same run; accuracy is printed beside speed.
Goal (issue #3): ≥ 1,000 fits/s with SEs and F-test on 2 cores.

    python -m bench.fit [--curves 10000] [--workers 2]
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

from analysis.doseresponse import fit_ll4, ll4

DOSES = np.repeat(np.r_[0.0, 10.0 ** np.arange(-3, 1.01, 0.5)], 3)  # 10 levels x 3 wells


def make_curves(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    e = 10 ** rng.uniform(-2.5, 0.5, n)
    b = rng.uniform(0.7, 3.0, n)
    c = rng.uniform(0, 30, n)
    ys = np.stack([ll4(DOSES, b[i], c[i], 100.0, e[i]) for i in range(n)])
    ys *= 1 + rng.normal(0, 0.06, ys.shape)
    return ys, e


def _ll4_for_curve_fit(x: np.ndarray, b: float, c: float, d: float, e: float) -> np.ndarray:
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        return np.asarray(c + (d - c) / (1 + np.exp(b * (np.log(x) - np.log(abs(e) + 1e-300)))))


def run_platewatch(ys: np.ndarray) -> list[float]:
    return [fit_ll4(DOSES, y, control=100.0).e for y in ys]


def run_curve_fit(ys: np.ndarray) -> list[float]:
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        for y in ys:
            try:
                p, _ = curve_fit(
                    _ll4_for_curve_fit,
                    DOSES,
                    y,
                    p0=[1.0, float(y.min()), float(y.max()), 0.1],
                    maxfev=2000,
                )
                out.append(abs(float(p[3])))
            except RuntimeError:
                out.append(math.nan)
    return out


def timed(fn, chunks: list[np.ndarray], workers: int) -> tuple[float, list[float]]:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    if workers == 1:
        results = [fn(chunk) for chunk in chunks]
    else:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(fn, chunks))
    return time.perf_counter() - start, [v for part in results for v in part]


def accuracy(estimates: list[float], truth: np.ndarray) -> str:
    est = np.asarray(estimates)
    ok = np.isfinite(est) & (est > 0)
    err = np.abs(np.log(est[ok] / truth[ok]))
    return f"failed {int((~ok).sum())}, median |log(e/e_true)| {np.median(err):.3f}, >2-fold off {int((err > math.log(2)).sum())}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curves", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    ys, truth = make_curves(args.curves)
    print(f"{args.curves} simulated LL.4 curves, {DOSES.size} wells each (10 doses x 3, 6 % noise)")
    rows = []
    for workers in sorted({1, args.workers}):
        chunks = np.array_split(ys, max(workers * 8, 1))
        t_pw, e_pw = timed(run_platewatch, chunks, workers)
        t_cf, e_cf = timed(run_curve_fit, chunks, workers)
        rows.append((workers, t_pw, t_cf))
        print(f"[{workers} process(es)]")
        print(
            f"  platewatch fit_ll4 (SEs, CI, F-test): {args.curves / t_pw:8.0f} fits/s  {accuracy(e_pw, truth)}"
        )
        print(
            f"  scipy curve_fit loop (peer):          {args.curves / t_cf:8.0f} fits/s  {accuracy(e_cf, truth)}"
        )
        print(f"  ratio platewatch / curve_fit:         {t_cf / t_pw:8.2f}x")
    best = max(args.curves / t for _, t, _ in rows)
    print(
        f"goal 1,000 fits/s on 2 cores: {'met' if best >= 1000 else 'NOT met'} ({best:.0f} fits/s)"
    )


if __name__ == "__main__":
    main()
