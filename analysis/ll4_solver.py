"""Least squares for many LL.4 curves at once: stacked, padded, vectorised numpy.

Every curve is its own problem (its own damping, its own stopping); stacking only lets
numpy do the arithmetic of hundreds of curves in one call, so a curve's fit does not depend
on what else is in the batch. Rows are padded to the longest curve with weight 0.

* :func:`grid_starts` — variable projection over a ``(b, log e)`` grid (``c, d`` solved
  exactly), the best few grid points per curve; :func:`bounded_grid_starts` the same inside
  the bounded refit's box, with steep slopes half-way between neighbouring doses;
* :func:`self_starts` — drc's LL.4 self-starter (plateaus just outside the data, then a
  logit regression on ln dose);
* :func:`least_squares` — Levenberg–Marquardt on ``(b, log e)`` with the plateaus ``c, d``
  projected out (solved exactly at every step), Moré's column scaling and MINPACK's
  stopping rules; with bounds it is a projected LM (a parameter on a bound whose gradient
  points outwards is held, steps are projected onto the box, the plateaus are solved
  within theirs) that stops, like scipy's trust-region-reflective solver, when no feasible
  direction descends;
* :func:`hessian` — the observed Hessian of the RSS, for drc's standard errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt
from scipy import special

from analysis.ll4 import ZERO_LOG, Array, Mask

Index = npt.NDArray[np.intp]

# Grid of slopes and of log-e offsets for the starting-point search. Negative slopes let
# rising curves be fitted too (plain tables); viability curves fall (b > 0).
B_GRID = np.array([-4.0, -1.5, -0.6, 0.4, 0.7, 1.0, 1.5, 2.2, 3.2, 5.0, 8.0])
LE_STEPS = 17
_STEEP = np.array([-20.0, -8.0, -3.0, 3.0, 8.0, 20.0])  # bounded grid slopes
_TINY = 1e-300


@dataclass(frozen=True)
class Stack:
    """Curves padded to one width: ``lx`` ln dose (ZERO_LOG at dose 0), ``w`` 1 or 0 (pad)."""

    lx: Array  # (K, m)
    y: Array  # (K, m), 0 in the padding
    w: Array  # (K, m)
    zero: Mask  # (K, m), dose 0 (never the padding)
    lo: Array  # (K,) smallest ln positive dose
    hi: Array  # (K,) largest ln positive dose

    @classmethod
    def of(cls, curves: Sequence[tuple[Array, Array]]) -> Stack:
        """From ``(ln dose, response)`` pairs, dose 0 already mapped to ZERO_LOG."""
        width = max(len(y) for _, y in curves)
        k = len(curves)
        lx, y, w = np.zeros((k, width)), np.zeros((k, width)), np.zeros((k, width))
        for i, (lxi, yi) in enumerate(curves):
            lx[i, : len(yi)], y[i, : len(yi)], w[i, : len(yi)] = lxi, yi, 1.0
        zero = (lx == ZERO_LOG) & (w > 0)
        pos = (w > 0) & ~zero
        lo = np.where(pos, lx, np.inf).min(axis=1)
        hi = np.where(pos, lx, -np.inf).max(axis=1)
        return cls(lx, y, w, zero, lo, hi)

    def __len__(self) -> int:
        return len(self.y)

    def take(self, rows: Index) -> Stack:
        return Stack(
            self.lx[rows], self.y[rows], self.w[rows], self.zero[rows], self.lo[rows], self.hi[rows]
        )

    def y_range(self) -> tuple[Array, Array]:
        valid = self.w > 0
        return np.where(valid, self.y, np.inf).min(axis=1), np.where(valid, self.y, -np.inf).max(
            axis=1
        )


def _dot(a: Array, b: Array) -> Array:
    return np.asarray(np.einsum("...m,...m->...", a, b), dtype=float)


def _total(a: Array) -> Array:
    return np.asarray(np.einsum("...m->...", a), dtype=float)  # faster than .sum(-1)


_GRID_ROWS = 128  # curves per grid evaluation (memory: rows × grid points × width floats)


def _logistic(b: Array, lx: Array, le: Array) -> Array:
    """1 / (1 + exp(b (ln x − ln e))); at ZERO_LOG exactly 1 (b > 0) or 0 (b < 0)."""
    with np.errstate(over="ignore"):
        return np.asarray(1.0 / (1.0 + np.exp(b * (lx - le))), dtype=float)


@dataclass(frozen=True)
class _Sums:
    """What the plateau solve needs of a curve besides g: w, y, Σw, Σwy, Σy²."""

    w: Array
    y: Array
    sw: Array
    swy: Array
    yy: Array

    @classmethod
    def of(cls, s: Stack, axis: bool = False) -> _Sums:
        """The curves' sums; ``axis`` adds a grid axis (shapes (K, 1, m) and (K, 1))."""
        w, y = s.w, s.y
        sums = cls(w, y, _total(w), _dot(w, y), _dot(y, y))
        if not axis:
            return sums
        return cls(w[:, None], y[:, None], sums.sw[:, None], sums.swy[:, None], sums.yy[:, None])

    def take(self, rows: Index) -> _Sums:
        return _Sums(self.w[rows], self.y[rows], self.sw[rows], self.swy[rows], self.yy[rows])


@dataclass(frozen=True)
class _Plateaus:
    """``c, d`` solved for a given g, which are free (not on a bound), and the RSS the
    normal equations give (exact in arithmetic; for ranking grid points)."""

    c: Array
    d: Array
    free_c: Mask
    free_d: Mask
    rss: Array
    solvable: Mask  # the unbounded normal equations are not singular


def _plateaus(
    g: Array, sums: _Sums, box: tuple[Array, Array] | None, rel_det: float = 1e-13
) -> _Plateaus:
    """Least-squares ``c, d`` of ``c (1 − g) + d g`` (within ``box`` when given): variable
    projection. With h = w − g (w is 0 or 1): Σh² = Σw − 2Σg + Σg², Σhg = Σg − Σg²."""
    gw = g * sums.w
    sg, sgg, sgy = _total(gw), _dot(gw, gw), _dot(gw, sums.y)
    s11, s12, s22 = sums.sw - 2 * sg + sgg, sg - sgg, sgg
    t1, t2 = sums.swy - sgy, sgy
    det = s11 * s22 - s12 * s12
    solvable = np.abs(det) > rel_det * np.maximum(s11 * s22, _TINY)
    safe = np.where(solvable, det, 1.0)
    level = sums.swy / np.maximum(sums.sw, 1.0)  # g constant over the data: the flat line
    c = np.where(solvable, (s22 * t1 - s12 * t2) / safe, level)
    d = np.where(solvable, (s11 * t2 - s12 * t1) / safe, level)

    if box is None:
        free = np.ones(c.shape, dtype=bool)
        return _Plateaus(c, d, free, free, sums.yy - c * t1 - d * t2, solvable)

    def objective(cc: Array, dd: Array) -> Array:
        return sums.yy + s11 * cc * cc + 2 * s12 * cc * dd + s22 * dd * dd - 2 * (t1 * cc + t2 * dd)

    lo, hi = box
    inside = (c > lo) & (c < hi) & (d > lo) & (d < hi)
    best = np.where(inside, objective(c, d), np.inf)
    if not inside.all():
        # A convex quadratic in a box: the optimum is inside, or on an edge with the other
        # plateau at its best there (clipped), which covers the corners too.
        for bound in (lo, hi):
            for cc, dd in (
                (bound, np.clip((t2 - s12 * bound) / np.maximum(s22, _TINY), lo, hi)),
                (np.clip((t1 - s12 * bound) / np.maximum(s11, _TINY), lo, hi), bound),
            ):
                val = objective(cc, dd)
                better = val < best
                best = np.where(better, val, best)
                c, d = np.where(better, cc, c), np.where(better, dd, d)
    return _Plateaus(c, d, (c > lo) & (c < hi), (d > lo) & (d < hi), best, solvable)


def _best_points(theta_b: Array, theta_l: Array, sol: _Plateaus, n_best: int) -> tuple[Array, Mask]:
    rss = np.where(np.isfinite(sol.rss), sol.rss, np.inf)
    order = np.argsort(rss, axis=1)[:, :n_best]

    def pick(a: Array) -> Array:
        return np.take_along_axis(np.broadcast_to(a, rss.shape), order, axis=1)

    starts = np.stack([pick(theta_b), pick(sol.c), pick(sol.d), pick(theta_l)], axis=2)
    return starts, np.isfinite(pick(rss))


def grid_starts(s: Stack, n_best: int) -> tuple[Array, Mask]:
    """The ``n_best`` grid points of lowest RSS per curve: ``(K, n_best, 4)`` and which exist."""
    if len(s) > _GRID_ROWS:
        parts = [
            grid_starts(s.take(np.arange(i, min(i + _GRID_ROWS, len(s)))), n_best)
            for i in range(0, len(s), _GRID_ROWS)
        ]
        return np.concatenate([a for a, _ in parts]), np.concatenate([b for _, b in parts])
    span = np.maximum(s.hi - s.lo, 1.0)
    le_grid = np.linspace(s.lo - 0.25 * span, s.hi + 0.25 * span, LE_STEPS, axis=1)  # (K, L)
    bb = np.repeat(B_GRID, LE_STEPS)[None, :]  # (1, G)
    ll = np.tile(le_grid, (1, len(B_GRID)))  # (K, G)
    g = _logistic(bb[:, :, None], s.lx[:, None, :], ll[:, :, None])
    with np.errstate(invalid="ignore", divide="ignore"):
        sol = _plateaus(g, _Sums.of(s, axis=True), None, rel_det=1e-12)
    sol = _Plateaus(
        sol.c, sol.d, sol.free_c, sol.free_d, np.where(sol.solvable, sol.rss, np.inf), sol.solvable
    )
    return _best_points(bb, ll, sol, n_best)


def bounded_grid_starts(s: Stack, lower: Array, upper: Array, n_best: int) -> Array:
    """The ``n_best`` points of lowest bounded RSS per curve on a grid of steep and moderate
    slopes × ln e at the grid steps and half-way between neighbouring doses (where a step
    that only one dose shows sits), the plateaus solved within their bounds: ``(K, n, 4)``."""
    if len(s) > _GRID_ROWS:
        return np.concatenate(
            [
                bounded_grid_starts(s.take(rows), lower[rows], upper[rows], n_best)
                for rows in (
                    np.arange(i, min(i + _GRID_ROWS, len(s))) for i in range(0, len(s), _GRID_ROWS)
                )
            ]
        )
    span = np.maximum(s.hi - s.lo, 1.0)
    regular = np.linspace(s.lo - 0.25 * span, s.hi + 0.25 * span, LE_STEPS, axis=1)
    levels = np.sort(np.where((s.w > 0) & ~s.zero, s.lx, np.nan), axis=1)  # NaN last
    mids = 0.5 * (levels[:, 1:] + levels[:, :-1])
    mids = np.where(np.isfinite(mids) & (levels[:, 1:] > levels[:, :-1]), mids, regular[:, :1])
    le_all = np.concatenate([regular, mids], axis=1)
    n_le = le_all.shape[1]
    theta_b = np.clip(np.repeat(_STEEP, n_le)[None, :], lower[:, 0:1], upper[:, 0:1])
    theta_l = np.clip(np.tile(le_all, (1, len(_STEEP))), lower[:, 3:4], upper[:, 3:4])
    g = _logistic(theta_b[:, :, None], s.lx[:, None, :], theta_l[:, :, None])
    with np.errstate(invalid="ignore", divide="ignore"):
        sol = _plateaus(g, _Sums.of(s, axis=True), (lower[:, 1:2], upper[:, 1:2]))
    return _best_points(theta_b, theta_l, sol, n_best)[0]


def self_starts(s: Stack) -> tuple[Array, Mask]:
    """drc's self-starter per curve: ``(K, 4)`` and whether it exists."""
    ymin, ymax = s.y_range()
    rng = ymax - ymin
    c0, d0 = ymin - 0.001 * rng, ymax + 0.001 * rng
    keep = (s.w > 0) & ~s.zero
    with np.errstate(divide="ignore", invalid="ignore"):
        logit = np.log((d0[:, None] - s.y) / (s.y - c0[:, None]))
    fin = keep & np.isfinite(logit)
    n = fin.sum(axis=1)
    nn = np.maximum(n, 1)
    xbar = _total(np.where(fin, s.lx, 0.0)) / nn
    lbar = _total(np.where(fin, logit, 0.0)) / nn
    dx = np.where(fin, s.lx - xbar[:, None], 0.0)
    sxx = _dot(dx, dx)
    sxl = _dot(dx, np.where(fin, logit - lbar[:, None], 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = sxl / sxx
        le = -(lbar - slope * xbar) / slope
    exists = (rng > 0) & (n >= 2) & (sxx > 0) & (slope != 0) & np.isfinite(le)
    starts = np.stack([slope, c0, d0, le], axis=1)
    return np.where(exists[:, None], starts, 0.0), exists


@dataclass
class _Problems:
    """The LM state of the problems still iterating: one row each, one array per field."""

    ids: Index
    own: Index  # the curve of each problem
    lx: Array  # (k, m)
    sums: _Sums
    span: Array
    lo_b: Array  # bounds of b and log e (±inf when unbounded)
    hi_b: Array
    lo_l: Array
    hi_l: Array
    esc_lo_b: Array  # leaving this box ends an unbounded problem (its optimum runs off)
    esc_hi_b: Array
    esc_lo_l: Array
    esc_hi_l: Array
    box_lo: Array  # bounds of the plateaus (±inf when unbounded)
    box_hi: Array
    b: Array
    le: Array
    f: Array
    c: Array
    d: Array
    free_c: Mask
    free_d: Mask
    a00: Array  # Gauss–Newton matrix of (b, log e)
    a01: Array
    a11: Array
    g0: Array  # gradient (Jᵀr) of (b, log e)
    g1: Array
    s0: Array  # damping scales
    s1: Array
    lam: Array
    nu: Array

    def take(self, rows: Index) -> _Problems:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        return _Problems(**{k: v.take(rows) if k == "sums" else v[rows] for k, v in out.items()})


@dataclass(frozen=True)
class _Trial:
    """The model at some ``(b, log e)``: g, u = ln x − ln e, plateaus, residuals, RSS."""

    g: Array
    u: Array
    c: Array
    d: Array
    free_c: Mask
    free_d: Mask
    r: Array
    rss: Array

    def take(self, rows: Index) -> _Trial:
        return _Trial(*(getattr(self, f.name)[rows] for f in fields(self)))


def _products(cols: tuple[Array, ...], pairs: tuple[tuple[int, int], ...]) -> list[Array]:
    """Row-wise dot products of pairs of (k, m) columns. A few rows (one curve): one
    batched matmul of the stacked columns; many rows: one einsum per pair, which is then
    faster than numpy's batched matmul of tiny matrices."""
    if len(cols[0]) <= 32:
        stacked = np.stack(cols, axis=1)
        gram = stacked @ stacked.transpose(0, 2, 1)
        return [gram[:, i, j] for i, j in pairs]
    return [_dot(cols[i], cols[j]) for i, j in pairs]


def _evaluate(p: _Problems, b: Array, le: Array, bounded: bool) -> _Trial:
    u = p.lx - le[:, None]
    g = _logistic(b[:, None], p.lx, le[:, None])
    sol = _plateaus(g, p.sums, (p.box_lo, p.box_hi) if bounded else None)
    r = (sol.c[:, None] + (sol.d - sol.c)[:, None] * g - p.sums.y) * p.sums.w
    return _Trial(g, u, sol.c, sol.d, sol.free_c, sol.free_d, r, _dot(r, r))  # RSS from r


def _adopt(
    p: _Problems, rows: Index | slice, b: Array, le: Array, t: _Trial, bounded: bool
) -> None:
    """Move problems ``rows`` to ``(b, log e)``, evaluated as ``t`` (those rows only).

    The Gauss–Newton matrix and gradient are Kaufman's variable-projection ones: the
    columns of b and log e minus what the free plateaus (columns h = w − g and g) absorb.
    The damping scales are Marquardt's (the current diagonal), kept from collapsing faster
    than by half a step when the free plateaus change."""
    w, sw, g = p.sums.w[rows], p.sums.sw[rows], t.g
    base = ((t.d - t.c)[:, None] * w) * (g * (g - 1.0))
    jb = base * t.u
    jl = base * -b[:, None]
    gw = g * w
    bb, bl, ll, sgg, gb, gl, sjb, sjl, sg, rb, rl = _products(
        (jb, jl, gw, w, t.r),
        ((0, 0), (0, 1), (1, 1), (2, 2), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2), (4, 0), (4, 1)),
    )
    m11, m12, m22 = sw - 2 * sg + sgg, sg - sgg, sgg
    hb, hl = sjb - gb, sjl - gl
    det = m11 * m22 - m12 * m12
    both = det > 1e-13 * m11 * m22
    if bounded:
        both &= t.free_c & t.free_d
    safe = np.where(both, det, 1.0)

    def absorbed(h1: Array, g1: Array, h2: Array, g2: Array) -> Array:
        two = (m22 * h1 * h2 - m12 * (h1 * g2 + g1 * h2) + m11 * g1 * g2) / safe
        if not bounded:
            return two * both
        only_c = h1 * h2 / np.maximum(m11, _TINY)
        only_d = g1 * g2 / np.maximum(m22, _TINY)
        one = np.where(t.free_c, only_c, np.where(t.free_d, only_d, 0.0))
        return np.where(both, two, one)

    a00 = np.maximum(bb - absorbed(hb, gb, hb, gb), 0.0)
    a11 = np.maximum(ll - absorbed(hl, gl, hl, gl), 0.0)
    p.a00[rows], p.a11[rows] = a00, a11
    p.a01[rows] = bl - absorbed(hb, gb, hl, gl)
    p.g0[rows], p.g1[rows] = rb, rl
    p.s0[rows] = np.maximum(np.maximum(a00, 1e-10 * bb + _TINY), 0.5 * p.s0[rows])
    p.s1[rows] = np.maximum(np.maximum(a11, 1e-10 * ll + _TINY), 0.5 * p.s1[rows])
    p.b[rows], p.le[rows], p.f[rows], p.c[rows], p.d[rows] = b, le, t.rss, t.c, t.d
    p.free_c[rows], p.free_d[rows] = t.free_c, t.free_d


def _solve(
    p: _Problems, held_b: Mask | None, held_l: Mask | None
) -> tuple[Array, Array, Array, Array]:
    """The damped Gauss–Newton step (held parameters fixed) in Jacobi-scaled form — b and
    log e are nearly collinear when the slope flattens, and unscaled Cramer's rule would
    cancel — and −gradient of the free parameters."""
    r0, r1 = np.sqrt(p.s0), np.sqrt(p.s1)
    q0, q1 = -p.g0 / r0, -p.g1 / r1
    m00, m11, m01 = p.a00 / p.s0 + p.lam, p.a11 / p.s1 + p.lam, p.a01 / (r0 * r1)
    if held_b is not None and held_l is not None:
        q0, q1 = np.where(held_b, 0.0, q0), np.where(held_l, 0.0, q1)
        m00, m11 = np.where(held_b, 1.0, m00), np.where(held_l, 1.0, m11)
        m01 = np.where(held_b | held_l, 0.0, m01)
    det = m00 * m11 - m01 * m01
    det = np.where(det > 0, det, _TINY)
    return (m11 * q0 - m01 * q1) / det / r0, (m00 * q1 - m01 * q0) / det / r1, q0 * r0, q1 * r1


def _lm_step(p: _Problems, bounded: bool) -> tuple[Array, Array, Array, Array]:
    """The next trial ``(b, log e)`` and −gradient of the free parameters.

    Bounded: a parameter on its bound is held when the gradient or the step would take it
    out (the other is then solved for again without it), and the trial is projected onto
    the box. Steps stay local: log e moves at most the tested dose span, b at most doubles
    (or moves by 2), so a start is polished in its own basin, not flung into another."""
    if bounded:
        at_lo_b, at_hi_b = p.b <= p.lo_b, p.b >= p.hi_b
        at_lo_l, at_hi_l = p.le <= p.lo_l, p.le >= p.hi_l
        held_b = (at_lo_b & (p.g0 > 0)) | (at_hi_b & (p.g0 < 0))
        held_l = (at_lo_l & (p.g1 > 0)) | (at_hi_l & (p.g1 < 0))
        sb, sl, q0, q1 = _solve(p, held_b, held_l)
        block_b = ~held_b & ((at_lo_b & (sb < 0)) | (at_hi_b & (sb > 0)))
        block_l = ~held_l & ((at_lo_l & (sl < 0)) | (at_hi_l & (sl > 0)))
        if block_b.any() or block_l.any():
            sb2, sl2, q02, q12 = _solve(p, held_b | block_b, held_l | block_l)
            again = block_b | block_l
            sb, sl = np.where(again, sb2, sb), np.where(again, sl2, sl)
            q0, q1 = np.where(again, q02, q0), np.where(again, q12, q1)
    else:
        sb, sl, q0, q1 = _solve(p, None, None)
    reach = np.minimum(
        np.maximum(2.0, np.abs(p.b)) / np.maximum(np.abs(sb), _TINY),
        p.span / np.maximum(np.abs(sl), _TINY),
    )
    shrink = np.minimum(1.0, reach)
    tb, tl = p.b + sb * shrink, p.le + sl * shrink
    if bounded:
        tb, tl = np.clip(tb, p.lo_b, p.hi_b), np.clip(tl, p.lo_l, p.hi_l)
    return tb, tl, q0, q1


def least_squares(
    s: Stack,
    p0: Array,
    lower: Array | None = None,
    upper: Array | None = None,
    *,
    escape: tuple[Array, Array] | None = None,
    owner: Index | None = None,
    xtol: float = 1e-10,
    ftol: float = 1e-12,
    gtol: float = 1e-8,
    max_trials: int = 400,
) -> tuple[Array, Array, Mask]:
    """Minimise each curve's RSS from the ``(b, log e)`` of ``p0`` (K, 4).

    Returns ``(p, rss, converged)`` with ``p`` = (b, c, d, log e). ``converged`` is False
    for a curve that used up ``max_trials`` steps (MINPACK's ``maxfev``) or whose start
    could not be evaluated. ``lower``/``upper`` (K, 4) bound the parameters. ``escape``
    (two (K, 4) arrays) ends an unbounded problem as soon as its ``(b, log e)`` leave that
    box: its optimum runs off, and only that fact matters (the caller refits it bounded).
    ``owner`` (K,) names the curve of each problem (several starts of one curve): a start
    that comes within 1e-6 (relative) of where another start of its curve converged ends
    there — from so close it can only converge to that same minimum.
    """
    k = len(s)
    bounded = lower is not None and upper is not None
    inf = np.full((k, 4), np.inf)
    lo = np.asarray(lower, dtype=float) if lower is not None else -inf
    hi = np.asarray(upper, dtype=float) if upper is not None else inf
    esc_lo, esc_hi = escape if escape is not None else (-inf, inf)
    start = np.asarray(p0, dtype=float)
    b0, le0 = start[:, 0], start[:, 3]
    if bounded:
        b0, le0 = np.clip(b0, lo[:, 0], hi[:, 0]), np.clip(le0, lo[:, 3], hi[:, 3])
    p_out, f_out = np.full((k, 4), np.nan), np.full(k, np.nan)
    ok_out = np.zeros(k, dtype=bool)
    zero = np.zeros(k)
    own = np.zeros(k, dtype=np.intp) if owner is None else np.asarray(owner, dtype=np.intp)
    n_own = int(own.max()) + 1 if k else 0
    ref = np.zeros(n_own, dtype=bool)  # the owner has a converged start: where
    ref_p, ref_f = np.zeros((n_own, 4)), np.zeros(n_own)
    with np.errstate(all="ignore"):
        p = _Problems(
            ids=np.arange(k), own=own, lx=s.lx, sums=_Sums.of(s), span=np.maximum(s.hi - s.lo, 1.0),
            lo_b=lo[:, 0], hi_b=hi[:, 0], lo_l=lo[:, 3], hi_l=hi[:, 3],
            esc_lo_b=esc_lo[:, 0], esc_hi_b=esc_hi[:, 0], esc_lo_l=esc_lo[:, 3],
            esc_hi_l=esc_hi[:, 3], box_lo=lo[:, 1], box_hi=hi[:, 1], b=b0.copy(),
            le=le0.copy(), f=zero.copy(), c=zero.copy(), d=zero.copy(),
            free_c=np.ones(k, bool), free_d=np.ones(k, bool), a00=zero.copy(),
            a01=zero.copy(), a11=zero.copy(), g0=zero.copy(), g1=zero.copy(),
            s0=zero.copy(), s1=zero.copy(), lam=np.full(k, 1e-3), nu=np.full(k, 2.0),
        )  # fmt: skip
        _adopt(p, slice(None), b0, le0, _evaluate(p, b0, le0, bounded), bounded)
        good = np.isfinite(p.f) & np.isfinite(p.a00 + p.a01 + p.a11) & np.isfinite(b0 + le0)
        p = p.take(np.flatnonzero(good))

        def finish(q: _Problems, rows: Index, converged: bool) -> None:
            p_out[q.ids[rows]] = np.stack([q.b[rows], q.c[rows], q.d[rows], q.le[rows]], 1)
            f_out[q.ids[rows]] = q.f[rows]
            ok_out[q.ids[rows]] = converged

        for _ in range(max_trials):
            if not len(p.ids):
                break
            tb, tl, q0, q1 = _lm_step(p, bounded)
            sb, sl = tb - p.b, tl - p.le
            t = _evaluate(p, tb, tl, bounded)
            pred = -(
                2.0 * (p.g0 * sb + p.g1 * sl)
                + p.a00 * sb * sb
                + 2.0 * p.a01 * sb * sl
                + p.a11 * sl * sl
            )
            actual = p.f - t.rss
            finite = np.isfinite(t.rss)
            ratio = np.where(pred > 0, actual / np.where(pred > 0, pred, 1.0), -np.inf)
            accept = finite & (ratio >= 1e-4)
            xnorm = p.s0 * p.b * p.b + p.s1 * p.le * p.le
            snorm = p.s0 * sb * sb + p.s1 * sl * sl
            done = (
                ((q0 == 0.0) & (q1 == 0.0))
                | (p.f == 0.0)
                | (finite & (np.abs(actual) <= ftol * p.f) & (pred <= ftol * p.f) & (ratio <= 2))
                | (snorm <= xtol * xtol * xnorm)
                | (p.lam > 1e30)
            )
            if bounded:
                # trust-region-reflective's gtol: the gradient scaled by the distance to
                # the bound it points at (Coleman–Li), as scipy's least_squares tests it.
                v0 = np.where(p.g0 < 0, p.hi_b - p.b, p.b - p.lo_b)
                v1 = np.where(p.g1 < 0, p.hi_l - p.le, p.le - p.lo_l)
                done |= np.maximum(np.abs(p.g0 * v0), np.abs(p.g1 * v1)) < gtol
            p.lam = np.where(
                accept, p.lam * np.maximum(1.0 / 3.0, 1.0 - (2.0 * ratio - 1.0) ** 3), p.lam * p.nu
            )
            p.nu = np.where(accept, 2.0, p.nu * 2.0)
            rows = np.flatnonzero(accept)
            escaped = np.zeros(len(p.ids), dtype=bool)
            if len(rows) == len(p.ids):  # all accepted: no copies
                _adopt(p, slice(None), tb, tl, t, bounded)
            elif len(rows):
                _adopt(p, rows, tb[rows], tl[rows], t.take(rows), bounded)
            if len(rows):
                if escape is not None:
                    off = (p.b < p.esc_lo_b) | (p.b > p.esc_hi_b)
                    escaped = accept & (off | (p.le < p.esc_lo_l) | (p.le > p.esc_hi_l))
            if owner is not None:
                conv = np.flatnonzero(done & ~escaped)
                if len(conv):
                    ref[p.own[conv]] = True
                    ref_p[p.own[conv]] = np.stack([p.b, p.c, p.d, p.le], 1)[conv]
                    ref_f[p.own[conv]] = p.f[conv]
                near = ~done & ~escaped & ref[p.own]
                if near.any():
                    there = ref_p[p.own]
                    near &= np.abs(p.b - there[:, 0]) <= 1e-3 * (1 + np.abs(there[:, 0]))
                    near &= np.abs(p.le - there[:, 3]) <= 1e-3 * (1 + np.abs(there[:, 3]))
                    dup = np.flatnonzero(near)
                    if len(dup):
                        p.b[dup], p.c[dup] = ref_p[p.own[dup], 0], ref_p[p.own[dup], 1]
                        p.d[dup], p.le[dup] = ref_p[p.own[dup], 2], ref_p[p.own[dup], 3]
                        p.f[dup] = ref_f[p.own[dup]]
                        done |= near
            done |= escaped
            if done.any():
                finish(p, np.flatnonzero(done), True)
                p = p.take(np.flatnonzero(~done))
        finish(p, np.arange(len(p.ids)), False)
    return p_out, f_out, ok_out


def hessian(s: Stack, p: Array) -> Array:
    """The observed Hessian of each curve's RSS in ``(b, c, d, log e)``: ``(K, 4, 4)``."""
    b, c, d = p[:, 0:1], p[:, 1:2], p[:, 2:3]
    u = s.lx - p[:, 3:4]
    g = special.expit(-b * u)
    r = (c + (d - c) * g - s.y) * s.w
    g1 = -g * (1.0 - g)
    g2 = -g1 * (1.0 - 2.0 * g)
    dc = d - c
    w = s.w
    jac = np.stack([dc * g1 * u * w, (1.0 - g) * w, g * w, -dc * g1 * b * w], axis=2)
    out = np.einsum("kmi,kmj->kij", jac, jac)
    s00 = _dot(r, dc * g2 * u * u)
    s01 = _dot(r, -g1 * u)
    s03 = _dot(r, -dc * (g2 * u * b + g1))
    s13 = _dot(r, g1 * b)
    s33 = _dot(r, dc * g2 * b * b)
    second = np.zeros_like(out)
    second[:, 0, 0] = s00
    second[:, 0, 1] = second[:, 1, 0] = s01
    second[:, 0, 2] = second[:, 2, 0] = -s01
    second[:, 0, 3] = second[:, 3, 0] = s03
    second[:, 1, 3] = second[:, 3, 1] = s13
    second[:, 2, 3] = second[:, 3, 2] = -s13
    second[:, 3, 3] = s33
    return np.asarray(2.0 * (out + second), dtype=float)
