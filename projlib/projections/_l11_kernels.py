"""Numba CPU kernels for the bi-level l1,1 operator's per-group thresholds (``project_l11``).

Contract.  In: x, a C-contiguous float32 or float64 array of finite entries (rows (G, m) or
columns (A, G) of a matrix); u, v float64 per group, v_g = sum |x_g| (the group's l1 norm)
and u = P_B1(radius)(v) (0 <= u_g <= v_g).  Out: tau_g >= 0 with
phi_g(tau_g) = sum_i max(|x_gi| - tau_g, 0) = u_g, exact to float64 rounding (the same value
the sort-based reference, ``_torch_ops.project_l11``, computes up to the order of its float64
sums), and the output x_g - clip(x_g, -t_g, t_g) with t_g = tau_g rounded up to x's dtype
(the feasible side; u_g = 0 gives zeros), as ``grouped._apply`` / ``_cast`` do.  Groups of
at least 2**24 entries go to ``_l1_kernels.l1_tau`` (counts would not be exact in
float32).

Complexity.  Observed O(numel): per surviving group 2-4 vectorised passes over its entries
in its own dtype and one float64 pass, O(1) scalar work per pass; worst case
O(numel * _MAX_PASSES), then the float64 Michelot iteration (each step one pass).

Method.  Since u_g = v_g - theta with one common theta, every surviving group has the
proven lower bound theta / m, and the groups already solved predict the next one's tau
(``_predict``).  Per group, two phases:

1. *bracket* (cheap vectorised passes in the input's own precision): the first pass evaluates
   phi at two guesses around the prediction (without one, at theta / m and 2 theta / m), the
   lower bound being 0 (phi(0) = v exactly; Newton from it with slope m lands on theta / m);
   each later pass at two points, a Newton step from the lower bound (and from the upper
   bound's tangent, also a lower bound since phi is convex) and a point a fraction of the
   mean gap above it, capped by the secant (an upper bound), until no entry is left between
   the bounds (usually 1-2 passes more).  Every point is rounded to y's dtype first
   (``_rep``), so the counts, which are exact in any dtype, belong to exactly that point.
   A point whose phi equals u_g within the rounding of the phase's sums (``_near``: Newton
   landed on tau) ends phase 1 at once;
2. *exact* (one float64 pass, ``_finish``): with the bracket closed (no entry in (low, high])
   the active set is {|y| > low}: its float64 sum S decides exactly that phi(low) >= u_g >=
   phi(high) and gives tau = (S - u_g) / count.  After a ``_near`` point, or should phase 1's
   rounding have misplaced a bound, ``_exact_tau``: sum and counts around the bracket widened
   by a slack, then Michelot's Newton iteration in float64 from a verified lower bound (exact
   at termination), or, should even that fail, ``_l1_kernels.l1_tau``.  Phase 1's rounding therefore
   never reaches tau.

``l11_rows_apply`` solves rows in cache and writes each output row right away (groups = rows);
``l11_cols_apply`` solves all the columns of a matrix together with per-column state (no
transpose: every pass reads the matrix row by row) and writes the output at the end;
``rows_taus`` returns thresholds only (other layouts, after ``gather_groups``).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from projlib.projections._l1_kernels import _FM, l1_tau

_MAX_PASSES = 40
_GAP_FRACTION = 0.25  # see _candidates
_ROWS = 8  # rows summed in registers by the column kernels
_CHUNK = 64  # rows summed per column in x's dtype before the float64 sums (a multiple of _ROWS)


# Rounding between float64 and the input's dtype (y.dtype.type: float32 or float64).

@njit(cache=True, nogil=True)
def _rep(t, y):  # pragma: no cover - compiled
    """t rounded to y's dtype, as float64: the threshold the comparisons really use, so the
    bracket's points are exactly the values whose counts were taken."""
    return np.float64(y.dtype.type(t))


@njit(cache=True, nogil=True)
def _cast_up(t, y):  # pragma: no cover - compiled
    """t in y's dtype, rounded up."""
    c = y.dtype.type(t)
    if c < t:
        c = np.nextafter(c, y.dtype.type(np.inf))
    return c


@njit(cache=True, nogil=True)
def _cast_down(t, y):  # pragma: no cover - compiled
    """t in y's dtype, rounded down: |y| > result exactly when |y| > t."""
    c = y.dtype.type(t)
    if c > t:
        c = np.nextafter(c, y.dtype.type(-np.inf))
    return c


# One group (a contiguous row).

@njit(cache=True, nogil=True)
def _update(r, low, s_lo, c_lo, high, s_hi, c_hi, p, sp, cp):  # pragma: no cover - compiled
    """Narrow the bracket (low, high) with the point p (sum sp, count cp of |y| > p)."""
    if p > low and p < high:
        if sp - cp * p >= r:
            return p, sp, cp, high, s_hi, c_hi
        return low, s_lo, c_lo, p, sp, cp
    return low, s_lo, c_lo, high, s_hi, c_hi


@njit(cache=True, nogil=True)
def _candidates(r, low, s_lo, c_lo, high, s_hi, c_hi):  # pragma: no cover - compiled
    """Next two evaluation points: Newton from both bounds (lower bounds), secant (upper)."""
    a = (s_lo - r) / c_lo
    phi_lo = s_lo - c_lo * low
    phi_hi = s_hi - c_hi * high
    if c_hi > 0.0:
        a = max(a, high - (r - phi_hi) / c_hi)
    den = phi_lo - phi_hi
    b = high
    if high == np.inf:  # no upper bound yet: try twice the Newton step
        b = a + (a - low)
    else:
        if den > 0.0:
            b = low + (phi_lo - r) * (high - low) / den
        # Newton from below lands just under tau (by sum (tau - y_j) / c_lo over the entries
        # y_j between low and tau): a point a fraction of the mean gap above it usually lies
        # in the same gap as tau, so the next pass closes the bracket (fewer passes than the
        # secant alone)
        b = min(b, a + _GAP_FRACTION * (high - low) / max(c_lo - c_hi, 1.0))
    a = min(max(a, low), high)
    b = min(max(b, a), high)
    return a, b


@njit(cache=True, nogil=True, fastmath=True)
def _eval2(y, ta, tb):  # pragma: no cover - compiled
    """Sums and counts of |y| above ta and above tb (y's dtype), accumulated in y's dtype."""
    zero = y.dtype.type(0.0)
    one = y.dtype.type(1.0)
    sa = zero
    ca = zero
    sb = zero
    cb = zero
    for j in range(y.shape[0]):
        yj = abs(y[j])
        ma = one if yj > ta else zero
        mb = one if yj > tb else zero
        sa += yj * ma
        ca += ma
        sb += yj * mb
        cb += mb
    return np.float64(sa), np.float64(ca), np.float64(sb), np.float64(cb)


@njit(cache=True, nogil=True, fastmath=True)
def _exact_stats(y, lo, hi):  # pragma: no cover - compiled
    """float64 sum and count of |y| > lo, and count of |y| > hi; lo, hi in y's dtype, rounded
    down from the float64 thresholds (``_cast_down``: the comparisons stay exact).  Counts
    are exact in y's dtype (len(y) < 2**24); only the sum is accumulated in float64."""
    zero = y.dtype.type(0.0)
    one = y.dtype.type(1.0)
    s = 0.0
    c = zero
    ch = zero
    for j in range(y.shape[0]):
        yj = abs(y[j])
        m = one if yj > lo else zero
        s += np.float64(yj * m)
        c += m
        ch += one if yj > hi else zero
    return s, np.float64(c), np.float64(ch)


@njit(cache=True, nogil=True)
def _exact_tau(y, r, v, low, s_lo, c_lo, high, tol):  # pragma: no cover - compiled
    """Phase 2: (exact tau, its active count) from the approximate bracket (low, high)."""
    d = tol * 2.0 * s_lo / c_lo  # s_lo / c_lo >= low: a scale for the threshold
    p_lo = max(low - d, 0.0)
    p_hi = high + d
    s, c, ch = _exact_stats(y, _cast_down(p_lo, y), _cast_down(p_hi, y))
    if c > 0.0 and s - c * p_lo >= r:
        t = (s - r) / c
        if c == ch and t <= p_hi:  # no entry in (p_lo, p_hi]: the active set is known
            return t, c
        inf = y.dtype.type(np.inf)
        for _ in range(200):  # Michelot from the verified lower bound t (increasing)
            s, c2, _ch = _exact_stats(y, _cast_down(t, y), inf)
            if c2 == 0.0:
                break
            nt = (s - r) / c2
            if not (nt > t):
                return t, c2
            t = nt
            c = c2
    return l1_tau(y, r)[1], c


@njit(cache=True, nogil=True, fastmath=True)
def _sum_above(y, lo):  # pragma: no cover - compiled
    """float64 sum of |y| > lo (lo in y's dtype)."""
    zero = y.dtype.type(0.0)
    one = y.dtype.type(1.0)
    s = 0.0
    for j in range(y.shape[0]):
        yj = abs(y[j])
        s += np.float64(yj * (one if yj > lo else zero))
    return s


@njit(cache=True, nogil=True)
def _finish(y, r, v, low, s_lo, c_lo, high, c_hi, tol):  # pragma: no cover - compiled
    """Phase 2: (exact tau, its active count) from phase 1's bracket (low, high).

    When phase 1 closed the bracket (c_lo == c_hi: no entry in (low, high]; counts are exact
    in any dtype, only the sums were rounded) the active set is {|y| > low}: one float64
    sum S over it decides everything exactly, phi(low) = S - c low >= r >= S - c high =
    phi(high), and tau = (S - r) / c.  Otherwise, or should rounding in phase 1 have
    misplaced a bound, ``_exact_tau`` (slack around the bracket, Michelot in float64).
    """
    if c_lo == c_hi and c_lo > 0.0:
        lo = y.dtype.type(low)  # low is representable in y's dtype (``_rep``)
        s = _sum_above(y, lo)
        if s - c_lo * low >= r:
            t = (s - r) / c_lo  # Newton from the (verified) lower bound low
            if low < high and s - c_lo * high <= r:
                return min(max(t, low), high), c_lo
            # low == high: phase 1 stalled on tau = low up to its rounding; exact when no
            # value of y's dtype lies in (low, t] (then no entry does)
            if low == high and t >= low and t < np.nextafter(lo, y.dtype.type(np.inf)):
                return t, c_lo
    return _exact_tau(y, r, v, low, s_lo, c_lo, high, tol)


@njit(cache=True, nogil=True)
def _near(r, p, sp, cp, tol):  # pragma: no cover - compiled
    """phi(p) = r within the rounding of phase 1's sums (relative ``tol``): p is tau up to
    that rounding, so its side cannot be trusted, and it needs no narrowing either."""
    return abs(sp - cp * p - r) <= tol * sp


@njit(cache=True, nogil=True)
def _bracket(y, r, low, s_lo, c_lo, high, s_hi, c_hi, tol):  # pragma: no cover - compiled
    """Phase 1 from a bracket: passes of _eval2 until no entry is left inside, or until a
    point lands on tau up to the sums' rounding (returned as ``near`` >= 0, else -1)."""
    for _ in range(_MAX_PASSES):
        if c_lo == c_hi:
            break
        a, b = _candidates(r, low, s_lo, c_lo, high, s_hi, c_hi)
        if not (a > low):  # Newton from low stalls: phi(low) = r up to rounding, tau = low
            high, s_hi, c_hi = low, s_lo, c_lo
            break
        if not (a < high):  # tau >= a >= high up to rounding: tau = high
            low, s_lo, c_lo = high, s_hi, c_hi
            break
        a = np.float64(_cast_down(a, y))  # Newton from below: rounded down stays below
        b = _rep(b, y)
        if not (a > low and a < high):  # rounding to y's dtype closed the bracket
            break
        sa, ca, sb, cb = _eval2(y, y.dtype.type(a), y.dtype.type(b))
        if _near(r, a, sa, ca, tol):
            return low, s_lo, c_lo, high, s_hi, c_hi, a, sa, ca
        if _near(r, b, sb, cb, tol):
            return low, s_lo, c_lo, high, s_hi, c_hi, b, sb, cb
        low, s_lo, c_lo, high, s_hi, c_hi = _update(r, low, s_lo, c_lo, high, s_hi, c_hi,
                                                     a, sa, ca)
        low, s_lo, c_lo, high, s_hi, c_hi = _update(r, low, s_lo, c_lo, high, s_hi, c_hi,
                                                     b, sb, cb)
    return low, s_lo, c_lo, high, s_hi, c_hi, -1.0, 0.0, 0.0


@njit(cache=True, nogil=True)
def _first_points(low, pred, err):  # pragma: no cover - compiled
    """The first pass's two guesses around the predicted tau (or low itself and 2 low)."""
    if pred > 0.0:
        return max(pred - err, low), pred + err
    return low, 2.0 * low


@njit(cache=True, nogil=True)
def _row_tau(y, r, v, pred, err, tol):  # pragma: no cover - compiled
    """(tau, active count): the l1-ball threshold of |y| at radius r (0 < r < v = sum |y|),
    y contiguous.  ``pred`` +- ``err``: the predicted tau (``_predict``; pred <= 0: none).
    2-4 passes of ``_eval2`` and one float64 pass, O(len(y)) each."""
    m = y.shape[0]
    if not (v > r) or not (r > 0.0) or m >= 1 << 24:
        return l1_tau(y, r)[1], 1.0
    low = max((v - r) / m, 0.0)  # proven: sum min(|y|, tau) = v - r <= m tau
    if m == 1:  # exact
        return low, 1.0
    p1, p2 = _first_points(low, pred, err)
    p1 = np.float64(_cast_down(p1, y))  # theta / m stays a proven lower bound
    p2 = _rep(p2, y)
    s1, c1, s2, c2 = _eval2(y, y.dtype.type(p1), y.dtype.type(p2))
    # theta / m is not evaluated on its own: the bound 0 stands for it (phi(0) = v exactly;
    # slope m >= the count above 0, so Newton from it lands on theta / m, a lower bound)
    low, s_lo, c_lo = 0.0, v, np.float64(m)
    high, s_hi, c_hi = np.inf, 0.0, 0.0  # (a max |y| pass would not vectorise)
    for p, sp, cp in ((p1, s1, c1), (p2, s2, c2)):
        if _near(r, p, sp, cp, tol):  # tau = p up to phase 1's rounding: one exact pass
            return _exact_tau(y, r, v, p, sp, cp, p, tol)  # around it
        low, s_lo, c_lo, high, s_hi, c_hi = _update(r, low, s_lo, c_lo, high, s_hi, c_hi,
                                                     p, sp, cp)
    low, s_lo, c_lo, high, s_hi, c_hi, near, s_n, c_n = _bracket(y, r, low, s_lo, c_lo,
                                                                  high, s_hi, c_hi, tol)
    if near >= 0.0:  # tau = near up to phase 1's rounding: one exact pass around it
        return _exact_tau(y, r, v, near, s_n, c_n, near, tol)
    return _finish(y, r, v, low, s_lo, c_lo, high, c_hi, tol)


# Prediction from the groups solved so far: u_g = v_g - theta with one theta, and similar
# groups have similar phi, so the solved group h with the nearest u_h predicts
# tau_g ~ tau_h - (u_g - u_h) / count_h (phi's slope at tau_h is -count_h).  The guesses are
# pred +- err, err a running mean of the prediction errors.  Guesses only cost time.
_HIST = 32


@njit(cache=True, nogil=True)
def _predict(hist, n, r):  # pragma: no cover - compiled
    """Predicted tau at radius r from hist[0..2, :n] = (u, tau, count) of solved groups."""
    best = -1
    dist = np.inf
    for h in range(min(n, _HIST)):
        d = abs(hist[0, h] - r)
        if d < dist:
            dist = d
            best = h
    if best < 0 or not (hist[2, best] > 0.0):
        return -1.0
    return hist[1, best] - (r - hist[0, best]) / hist[2, best]


@njit(cache=True, nogil=True)
def _record(hist, n, r, tau, c):  # pragma: no cover - compiled
    """Store (r, tau, c) in slot n % _HIST."""
    h = n % _HIST
    hist[0, h] = r
    hist[1, h] = tau
    hist[2, h] = c


@njit(cache=True, nogil=True, fastmath=_FM)
def _soft_row(x, t, out):  # pragma: no cover - compiled
    for j in range(x.shape[0]):
        xv = x[j]
        out[j] = xv - min(max(xv, -t), t)


@njit(cache=True, nogil=True)
def rows_taus(rows, idx, radii, sums, tol):  # pragma: no cover - compiled
    """float64 thresholds of the rows ``idx`` of ``rows`` (K, m) at ``radii`` (> 0), given
    their l1 norms ``sums`` (aligned with ``idx``); ``tol`` the phase-1 relative slack.
    Exact to float64 rounding; observed O(len(idx) * m)."""
    tau = np.empty(idx.shape[0], np.float64)
    hist = np.empty((3, _HIST), np.float64)
    err = 0.0
    for j in range(idx.shape[0]):
        pred = _predict(hist, j, radii[j]) if rows.shape[1] > 1 else -1.0
        t, c = _row_tau(rows[idx[j]], radii[j], sums[j], pred, err, tol)
        err = abs(t - pred) if j == 1 else 0.875 * err + 0.125 * abs(t - pred)
        _record(hist, j, radii[j], t, c)
        tau[j] = t
    return tau


@njit(cache=True, nogil=True)
def l11_rows_apply(x, u, v, tol, out):  # pragma: no cover - compiled
    """out[g] = soft(x[g], tau_g) for the rows of x (G, m), ``out`` (G, m) of x's dtype;
    u_g = 0 gives a zero row.  Each row is solved in cache and written at once: observed
    O(G m), 3-5 passes over each surviving row."""
    if x.shape[1] == 1:  # groups of one entry (a vector's entries): tau = v - u
        for g in range(x.shape[0]):
            xv = x[g, 0]
            if u[g] > 0.0:
                tau, _c = _row_tau(x[g], u[g], v[g], -1.0, 0.0, tol)
                t = _cast_up(tau, x)
                out[g, 0] = xv - min(max(xv, -t), t)
            else:
                out[g, 0] = xv - xv
        return
    hist = np.empty((3, _HIST), np.float64)
    err = 0.0
    n = 0
    for g in range(x.shape[0]):
        if u[g] > 0.0:
            pred = _predict(hist, n, u[g])
            tau, c = _row_tau(x[g], u[g], v[g], pred, err, tol)
            err = abs(tau - pred) if n == 1 else 0.875 * err + 0.125 * abs(tau - pred)
            _record(hist, n, u[g], tau, c)
            n += 1
            _soft_row(x[g], _cast_up(tau, x), out[g])
        else:
            out[g, :] = 0.0


# Matrix columns.  The column kernels read x (A, G) row by row across all columns, vectorised
# across them; _ROWS rows are summed in registers before the per-column accumulators (in L1)
# are updated, which keeps them from being load/store bound.  They index x[i, j] with an
# unsigned column index: with a signed one numba's negative-index wraparound select defeats
# LLVM's vectoriser (2-3x slower).


@njit(cache=True, nogil=True, fastmath=True)
def _cols_eval2(x, ta, tb, zero, one):  # pragma: no cover - compiled
    """_eval2 for every column of x (A, G): sums (float64, ``_CHUNK`` rows at a time in x's
    dtype) and counts (x's dtype, exact) of |x| above ta[j] and tb[j] (x's dtype).  One
    pass over x.  ``zero``, ``one``: 0 and 1 in x's dtype (arguments, not constants: as
    constants LLVM reassociates the sums differently, measured 2.07e-7 instead of under
    2e-7 relative error on Cauchy data, past what _COLS_SLACK assumes)."""
    A, G = x.shape
    sa = np.zeros(G, np.float64)
    ca = np.zeros(G, x.dtype)
    sb = np.zeros(G, np.float64)
    cb = np.zeros(G, x.dtype)
    pa = np.empty(G, x.dtype)
    pb = np.empty(G, x.dtype)
    AR = A - A % _ROWS
    for i0 in range(0, AR, _CHUNK):
        pa[:] = zero
        pb[:] = zero
        for i in range(i0, min(i0 + _CHUNK, AR), _ROWS):
            for j in range(G):
                c = np.uint64(j)
                t1 = ta[j]
                t2 = tb[j]
                s1 = zero
                k1 = zero
                s2 = zero
                k2 = zero
                for rr in range(_ROWS):
                    y = abs(x[np.uint64(i + rr), c])
                    m1 = one if y > t1 else zero
                    m2 = one if y > t2 else zero
                    s1 += y * m1
                    k1 += m1
                    s2 += y * m2
                    k2 += m2
                pa[j] += s1
                ca[j] += k1
                pb[j] += s2
                cb[j] += k2
        for j in range(G):
            sa[j] += np.float64(pa[j])
            sb[j] += np.float64(pb[j])
    for i in range(AR, A):
        for j in range(G):
            y = abs(x[i, np.uint64(j)])
            ma = one if y > ta[j] else zero
            mb = one if y > tb[j] else zero
            sa[j] += np.float64(y * ma)
            ca[j] += ma
            sb[j] += np.float64(y * mb)
            cb[j] += mb
    return sa, ca, sb, cb


@njit(cache=True, nogil=True, fastmath=True)
def _cols_exact_stats(x, lo, hi, zero, one):  # pragma: no cover - compiled
    """_exact_stats for every column of x (A, G): float64 sum and count of |x| > lo[j],
    count of |x| > hi[j].  lo, hi are x's dtype rounded down from the float64 thresholds
    (so |x| > lo[j] is exactly |x| > the float64 threshold); counts are exact in x's dtype
    (A < 2**24), only the sum needs float64.  One pass over x; ``zero``, ``one`` as for
    ``_cols_eval2``."""
    A, G = x.shape
    s = np.zeros(G, np.float64)
    c = np.zeros(G, x.dtype)
    ch = np.zeros(G, x.dtype)
    AR = A - A % _ROWS
    for i in range(0, AR, _ROWS):
        for j in range(G):
            col = np.uint64(j)
            t1 = lo[j]
            t2 = hi[j]
            a = 0.0
            k1 = zero
            k2 = zero
            for rr in range(_ROWS):
                y = abs(x[np.uint64(i + rr), col])
                m = one if y > t1 else zero
                a += np.float64(y * m)
                k1 += m
                k2 += one if y > t2 else zero
            s[j] += a
            c[j] += k1
            ch[j] += k2
    for i in range(AR, A):
        for j in range(G):
            yj = abs(x[i, np.uint64(j)])
            m = one if yj > lo[j] else zero
            s[j] += np.float64(yj * m)
            c[j] += m
            ch[j] += one if yj > hi[j] else zero
    return s, c, ch


@njit(cache=True, nogil=True, fastmath=_FM)
def _cols_soft(x, t, out):  # pragma: no cover - compiled
    """out = x - clip(x, -t_j, t_j) per column j, row-major over the full width."""
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            c = np.uint64(j)
            xv = x[i, c]
            out[i, c] = xv - min(max(xv, -t[j]), t[j])


# the column passes' sums are float64 over chunks of _CHUNK rows summed in x's dtype: their
# relative error is about 5x smaller than the rows kernel's in-row sums (measured: at most
# 1.8e-7 against 3.6e-6 for float32 sums over whole columns, normal, Cauchy and log-normal
# data, 1000-10000 rows), so phase 1's slack there is tol * _COLS_SLACK
_COLS_SLACK = 0.2
_STRAGGLERS = 32  # open columns left (of more than 4x as many) below which each is finished
# on its own copy: a pass over the whole matrix for a few columns costs more than the copies
_BOOT = 8  # columns solved alone first, to predict the others


@njit(cache=True, nogil=True)
def _cols_boot(x, u, v, tol, hist, tau):  # pragma: no cover - compiled
    """Solve the first _BOOT live columns alone, like rows, into ``tau`` and ``hist``, so
    that every column starts from predicted guesses; returns (entries in hist, mean error).
    They are copied out in one sweep over the rows: usually adjacent, they share a cache
    line in each row (one strided copy per column cost ~50 us on a 4096x4096 float32
    matrix out of cache)."""
    A, G = x.shape
    boot = np.empty(_BOOT, np.int64)
    n_boot = 0
    for g in range(G):
        if n_boot == _BOOT:
            break
        if u[g] > 0.0 and v[g] > u[g] and A < 1 << 24:
            boot[n_boot] = g
            n_boot += 1
    cols = np.empty((n_boot, A), x.dtype)
    for i in range(A):
        for b in range(n_boot):
            cols[b, i] = x[i, boot[b]]
    err = 0.0
    for b in range(n_boot):
        g = boot[b]
        pr = _predict(hist, b, u[g])
        t, c = _row_tau(cols[b], u[g], v[g], pr, err, tol)
        if pr > 0.0:
            err = abs(t - pr) if err == 0.0 else 0.875 * err + 0.125 * abs(t - pr)
        _record(hist, b, u[g], t, c)
        tau[g] = t
    return n_boot, err


@njit(cache=True, nogil=True)
def _cols_start(x, u, v, hist, n_hist, err, st, ta, tb, tau):  # pragma: no cover - compiled
    """Each column not yet solved and not removed gets the bracket (0, inf) in ``st`` (low,
    s_lo, c_lo, high, s_hi, c_hi; the bound 0 stands for theta / m, as in ``_row_tau``) and
    its first two points ta, tb around its predicted tau; ta = tb = inf for the others.
    Returns how many are open."""
    A, G = x.shape
    inf = x.dtype.type(np.inf)
    n_open = 0
    for g in range(G):
        ta[g] = inf
        tb[g] = inf
        if tau[g] < np.inf or not (u[g] > 0.0):
            continue
        if v[g] > u[g] and A < 1 << 24:
            low = max((v[g] - u[g]) / A, 0.0)
            p1, p2 = _first_points(low, _predict(hist, n_hist, u[g]), err)
            st[0, g], st[1, g], st[2, g] = 0.0, v[g], np.float64(A)
            st[3, g], st[4, g], st[5, g] = np.inf, 0.0, 0.0
            ta[g] = x.dtype.type(p1)
            tb[g] = x.dtype.type(p2)
            n_open += 1
        else:
            tau[g] = l1_tau(x[:, g], u[g])[1]
    return n_open


@njit(cache=True, nogil=True)
def _cols_step(u, sa, ca, sb, cb, st, ta, tb, tol):  # pragma: no cover - compiled
    """Narrow each open column's bracket with its two evaluated points (``_update``, as
    ``_bracket`` does for a row) and choose its next two (``_candidates``); a closed column
    (no entry left inside, or a point on tau up to the sums' rounding) gets ta = tb = inf.
    Returns how many are still open."""
    inf = ta.dtype.type(np.inf)
    n_open = 0
    for g in range(u.shape[0]):
        if ta[g] == inf:
            continue
        r = u[g]
        low, s_lo, c_lo = st[0, g], st[1, g], st[2, g]
        high, s_hi, c_hi = st[3, g], st[4, g], st[5, g]
        done = False
        for p, sp, cp in ((np.float64(ta[g]), sa[g], np.float64(ca[g])),
                          (np.float64(tb[g]), sb[g], np.float64(cb[g]))):
            if done:
                break
            if _near(r, p, sp, cp, tol):  # tau = p up to rounding: phase 2 checks around it
                low, s_lo, c_lo, high, s_hi, c_hi = p, sp, cp, p, sp, cp
                done = True
            else:
                low, s_lo, c_lo, high, s_hi, c_hi = _update(r, low, s_lo, c_lo, high, s_hi,
                                                             c_hi, p, sp, cp)
        done = done or c_lo == c_hi
        if not done:
            a, b = _candidates(r, low, s_lo, c_lo, high, s_hi, c_hi)
            if not (a > low):
                high, s_hi, c_hi = low, s_lo, c_lo
                done = True
            elif not (a < high):
                low, s_lo, c_lo = high, s_hi, c_hi
                done = True
            else:
                ta[g] = ta.dtype.type(a)
                tb[g] = ta.dtype.type(b)
                n_open += 1
        st[0, g], st[1, g], st[2, g] = low, s_lo, c_lo
        st[3, g], st[4, g], st[5, g] = high, s_hi, c_hi
        if done:
            ta[g] = inf
            tb[g] = inf
    return n_open


@njit(cache=True, nogil=True)
def _cols_alone(x, u, tol, st, ta, slack):  # pragma: no cover - compiled
    """Phase 1 of each still open column (ta < inf) on a contiguous copy, like a row
    (``_bracket``); its phase-2 slack becomes the rows' ``tol``."""
    A, G = x.shape
    buf = np.empty(A, x.dtype)
    for g in range(G):
        if ta[g] == np.inf:
            continue
        for i in range(A):
            buf[i] = x[i, g]
        low, s_lo, c_lo, high, s_hi, c_hi, near, s_n, c_n = _bracket(
            buf, u[g], st[0, g], st[1, g], st[2, g], st[3, g], st[4, g], st[5, g], tol)
        if near >= 0.0:  # tau = near up to rounding: the float64 check around it
            low, s_lo, c_lo, high, s_hi, c_hi = near, s_n, c_n, near, s_n, c_n
        st[0, g], st[1, g], st[2, g] = low, s_lo, c_lo
        st[3, g], st[4, g], st[5, g] = high, s_hi, c_hi
        slack[g] = tol


@njit(cache=True, nogil=True)
def _cols_exact(x, u, v, tol, st, slack, tau):  # pragma: no cover - compiled
    """Phase 2 of every column bracketed in ``st`` (u_g > 0, tau_g not yet known), in one
    float64 pass: the bracket widened by its slack; a closed one (no entry inside) gives
    tau = (S - u_g) / count exactly, checked against both bounds; otherwise (rare: phase 1's
    rounding misplaced a bound) ``_exact_tau`` on a contiguous copy of the column."""
    A, G = x.shape
    lo = np.empty(G, np.float64)
    hi = np.empty(G, np.float64)
    lo_x = np.empty(G, x.dtype)
    hi_x = np.empty(G, x.dtype)
    inf = x.dtype.type(np.inf)
    for g in range(G):
        lo_x[g] = inf
        hi_x[g] = inf
        if tau[g] == np.inf and u[g] > 0.0:
            d = slack[g] * 2.0 * st[1, g] / st[2, g]
            lo[g] = max(st[0, g] - d, 0.0)
            hi[g] = st[3, g] + d
            lo_x[g] = _cast_down(lo[g], x)
            hi_x[g] = _cast_down(hi[g], x)
    s, c, ch = _cols_exact_stats(x, lo_x, hi_x, x.dtype.type(0.0), x.dtype.type(1.0))
    buf = np.empty(A, x.dtype)
    for g in range(G):
        if lo_x[g] == inf:
            continue
        r = u[g]
        if c[g] == ch[g] and c[g] > 0.0 and s[g] - c[g] * lo[g] >= r:
            t = (s[g] - r) / np.float64(c[g])
            if t <= hi[g]:
                tau[g] = t
                continue
        for i in range(A):
            buf[i] = x[i, g]
        tau[g], _c = _exact_tau(buf, r, v[g], st[0, g], st[1, g], st[2, g], st[3, g], tol)


@njit(cache=True, nogil=True)
def l11_cols_apply(x, u, v, tol, out):  # pragma: no cover - compiled
    """out[:, g] = soft(x[:, g], tau_g) for the columns of x (A, G), ``out`` (A, G) of x's
    dtype; u_g = 0 gives zeros.  Observed O(A G): 2-4 passes over x (``_cols_eval2``), one
    float64 pass (``_cols_exact_stats``) and the output pass, plus a contiguous copy per
    column finished alone.

    The first _BOOT live columns are solved alone (``_cols_boot``) to predict the others'
    thresholds.  Then every pass reads x row by row, vectorised across the columns (sums in
    float64 over chunks of _CHUNK rows, so phase 1's slack is the tighter
    ``tol * _COLS_SLACK``) and updates each open column's bracket (``_cols_step``), until all
    are closed or only stragglers are left (``_cols_alone``).  Then one float64 pass makes
    every threshold exact (``_cols_exact``); the output is written at the end, row by row.
    """
    A, G = x.shape
    tau = np.full(G, np.inf)
    hist = np.empty((3, _HIST), np.float64)
    n_hist, err = _cols_boot(x, u, v, tol, hist, tau)
    st = np.empty((6, G), np.float64)  # low, s_lo, c_lo, high, s_hi, c_hi
    ta = np.empty(G, x.dtype)  # each open column's next two points (inf: not open)
    tb = np.empty(G, x.dtype)
    ctol = tol * _COLS_SLACK
    slack = np.full(G, ctol)  # phase 2's relative slack: ctol, tol once finished alone
    n_open = _cols_start(x, u, v, hist, n_hist, err, st, ta, tb, tau)
    zero, one = x.dtype.type(0.0), x.dtype.type(1.0)
    for _ in range(_MAX_PASSES):
        if n_open == 0:
            break
        sa, ca, sb, cb = _cols_eval2(x, ta, tb, zero, one)
        n_open = _cols_step(u, sa, ca, sb, cb, st, ta, tb, ctol)
        if 0 < n_open <= _STRAGGLERS and G > 4 * _STRAGGLERS:
            _cols_alone(x, u, tol, st, ta, slack)
            break
    _cols_exact(x, u, v, tol, st, slack, tau)
    t = np.empty(G, x.dtype)
    for g in range(G):
        t[g] = _cast_up(tau[g], x)  # inf (removed column) stays inf: zeros
    _cols_soft(x, t, out)
