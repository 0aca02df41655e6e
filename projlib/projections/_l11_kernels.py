"""Numba CPU kernels for the bi-level l1,1 operator's per-group thresholds (``project_l11``).

Group g (m entries y) needs tau_g with phi(tau) = sum_i max(|y_i| - tau, 0) = u_g,
u = P_B1(radius)(v), v the groups' l1 norms.  Since u_g = v_g - theta with one common theta,
every surviving group has the proven lower bound theta / m, and the groups already solved
predict the next one's tau (``_predict``).

Per group, two phases:

1. *bracket* (cheap vectorised passes in the input's own precision, float32 sums for float32):
   the first pass evaluates phi at two guesses around the prediction (without one, at
   theta / m and 2 theta / m), the lower bound being 0 (phi(0) = v exactly; Newton from it
   with slope m lands on theta / m); each later pass at two points, a Newton step from the
   lower bound (and from the upper bound's tangent, also a lower bound since phi is convex)
   and a point a fraction of the mean gap above it, capped by the secant (an upper bound),
   until no entry is left between the bounds (usually 1-2 passes more).  Every point is
   rounded to y's dtype first (``_rep``), so the counts, which are exact in any dtype,
   belong to exactly that point.  A point whose
   phi equals u_g within the rounding of the float32 sums (``_near``: Newton landed on tau)
   ends phase 1 at once;
2. *exact* (one float64 pass, ``_finish``): with the bracket closed (no entry in (low, high])
   the active set is {|y| > low}: its float64 sum S decides exactly that phi(low) >= u_g >=
   phi(high) and gives tau = (S - u_g) / count.  After a ``_near`` point, or should phase 1's
   rounding have misplaced a bound, ``_exact_tau``: sum and counts around the bracket widened
   by a slack, then Michelot's Newton iteration in float64 from a verified lower bound (exact
   at termination), or, should even that fail, the previous solver ``bracket_tau``.  Phase
   1's rounding therefore never reaches tau.

``l11_rows_apply`` solves rows in cache and writes each output row right away (groups = rows);
``l11_cols_apply`` solves the columns of a matrix a block at a time with per-column state (no
transpose) and writes the output at the end; ``rows_taus`` returns thresholds only (other
layouts, after ``gather_groups``).  The output is x - clip(x, -t_g, t_g) with t_g = tau_g
rounded up to the input's dtype (the feasible side), as ``grouped._apply`` / ``_cast`` do.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from projlib.projections._l1_kernels import _FM, bracket_tau

_MAX_PASSES = 40
_GAP_FRACTION = 0.25  # see _candidates
# columns per block in l11_cols_apply: the whole width up to this (whole output lines per pass,
# the per-column state ~120 bytes a column stays in L2); 256-column blocks were 10-12 % slower
# on 4096x4096 (docs/BENCHMARKS.md)
_BLOCK = 1 << 14
_ROWS = 8  # rows summed in registers by the column kernels
_CHUNK = 64  # rows summed per column in x's dtype before the float64 sums (a multiple of _ROWS)


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
def _eval2(y, ta, tb, zero, one):  # pragma: no cover - compiled
    """Sums and counts of |y| above ta and above tb, accumulated in y's dtype."""
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
def _exact_stats(y, lo, hi, zero, one):  # pragma: no cover - compiled
    """float64 sum and count of |y| > lo, and count of |y| > hi; lo, hi in y's dtype, rounded
    down from the float64 thresholds (``_cast_down``: the comparisons stay exact).  Counts
    are exact in y's dtype (len(y) < 2**24); only the sum is accumulated in float64."""
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
def _exact_tau(y, r, v, low, s_lo, c_lo, high, tol, k):  # pragma: no cover - compiled
    """Phase 2: (exact tau, its active count) from the approximate bracket (low, high)."""
    d = tol * 2.0 * s_lo / c_lo  # s_lo / c_lo >= low: a scale for the threshold
    p_lo = max(low - d, 0.0)
    p_hi = high + d
    lo_n = _cast_down(p_lo, k)
    hi_n = _cast_down(p_hi, k)
    s, c, ch = _exact_stats(y, lo_n, hi_n, k[0], k[1])
    if c > 0.0 and s - c * p_lo >= r:
        t = (s - r) / c
        if c == ch and t <= p_hi:  # no entry in (p_lo, p_hi]: the active set is known
            return t, c
        for _ in range(200):  # Michelot from the verified lower bound t (increasing)
            s, c2, _ch = _exact_stats(y, _cast_down(t, k), k[4], k[0], k[1])
            if c2 == 0.0:
                break
            nt = (s - r) / c2
            if not (nt > t):
                return t, c2
            t = nt
            c = c2
    return bracket_tau(y, r, v), c


@njit(cache=True, nogil=True)
def _rep(t, k):  # pragma: no cover - compiled
    """t rounded to y's dtype (k's), as float64: the threshold the comparisons really use, so
    the bracket's points are exactly the values whose counts were taken."""
    k[2] = t
    return np.float64(k[2])


@njit(cache=True, nogil=True, fastmath=True)
def _sum_above(y, lo, zero, one):  # pragma: no cover - compiled
    """float64 sum of |y| > lo (lo in y's dtype)."""
    s = 0.0
    for j in range(y.shape[0]):
        yj = abs(y[j])
        s += np.float64(yj * (one if yj > lo else zero))
    return s


@njit(cache=True, nogil=True)
def _finish(y, r, v, low, s_lo, c_lo, high, c_hi, tol, k):  # pragma: no cover - compiled
    """Phase 2: (exact tau, its active count) from phase 1's bracket (low, high).

    When phase 1 closed the bracket (c_lo == c_hi: no entry in (low, high]; counts are exact
    in any dtype, only the sums were rounded) the active set is {|y| > low}: one float64
    sum S over it decides everything exactly, phi(low) = S - c low >= r >= S - c high =
    phi(high), and tau = (S - r) / c.  Otherwise, or should rounding in phase 1 have
    misplaced a bound, ``_exact_tau`` (slack around the bracket, Michelot in float64).
    """
    if c_lo == c_hi and c_lo > 0.0:
        k[2] = low  # low is representable in y's dtype (``_rep``)
        s = _sum_above(y, k[2], k[0], k[1])
        if s - c_lo * low >= r:
            t = (s - r) / c_lo  # Newton from the (verified) lower bound low
            if low < high and s - c_lo * high <= r:
                return min(max(t, low), high), c_lo
            # low == high: phase 1 stalled on tau = low up to its rounding; exact when no
            # value of y's dtype lies in (low, t] (then no entry does)
            if low == high and t >= low and t < np.nextafter(k[2], k[4]):
                return t, c_lo
    return _exact_tau(y, r, v, low, s_lo, c_lo, high, tol, k)


@njit(cache=True, nogil=True)
def _near(r, p, sp, cp, tol):  # pragma: no cover - compiled
    """phi(p) = r within the rounding of phase 1's sums (relative ``tol``): p is tau up to
    that rounding, so its side cannot be trusted, and it needs no narrowing either."""
    return abs(sp - cp * p - r) <= tol * sp


@njit(cache=True, nogil=True)
def _bracket(y, r, low, s_lo, c_lo, high, s_hi, c_hi, tol, k):  # pragma: no cover - compiled
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
        a = np.float64(_cast_down(a, k))  # Newton from below: rounded down stays below
        b = _rep(b, k)
        if not (a > low and a < high):  # rounding to y's dtype closed the bracket
            break
        k[2] = a
        k[3] = b
        sa, ca, sb, cb = _eval2(y, k[2], k[3], k[0], k[1])
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
def _row_tau(y, r, v, pred, err, tol, k):  # pragma: no cover - compiled
    """(tau, active count): the l1-ball threshold of |y| at radius r (0 < r < v = sum |y|).
    ``pred`` +- ``err``: the predicted tau (``_predict``; pred <= 0: none); ``k`` from
    ``_consts`` (constants and scratch in y's dtype)."""
    m = y.shape[0]
    if not (v > r) or not (r > 0.0) or m >= 1 << 24:
        return bracket_tau(y, r, v), 1.0
    low = max((v - r) / m, 0.0)  # proven: sum min(|y|, tau) = v - r <= m tau
    if m == 1:  # exact (and what bracket_tau returns)
        return low, 1.0
    p1, p2 = _first_points(low, pred, err)
    p1 = np.float64(_cast_down(p1, k))  # theta / m stays a proven lower bound
    p2 = _rep(p2, k)
    k[3] = p1
    k[5] = p2
    s1, c1, s2, c2 = _eval2(y, k[3], k[5], k[0], k[1])
    # theta / m is not evaluated on its own: the bound 0 stands for it (phi(0) = v exactly;
    # slope m >= the count above 0, so Newton from it lands on theta / m, a lower bound)
    low, s_lo, c_lo = 0.0, v, np.float64(m)
    high, s_hi, c_hi = np.inf, 0.0, 0.0  # (a max |y| pass would not vectorise)
    for p, sp, cp in ((p1, s1, c1), (p2, s2, c2)):
        if _near(r, p, sp, cp, tol):  # tau = p up to phase 1's rounding: one exact pass
            return _exact_tau(y, r, v, p, sp, cp, p, tol, k)  # around it
        low, s_lo, c_lo, high, s_hi, c_hi = _update(r, low, s_lo, c_lo, high, s_hi, c_hi,
                                                     p, sp, cp)
    low, s_lo, c_lo, high, s_hi, c_hi, near, s_n, c_n = _bracket(y, r, low, s_lo, c_lo,
                                                                  high, s_hi, c_hi, tol, k)
    if near >= 0.0:  # tau = near up to phase 1's rounding: one exact pass around it
        return _exact_tau(y, r, v, near, s_n, c_n, near, tol, k)
    return _finish(y, r, v, low, s_lo, c_lo, high, c_hi, tol, k)


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
def _cast_up(tau, k):  # pragma: no cover - compiled
    """tau in k's dtype, rounded up (k[4] = +inf in that dtype)."""
    k[2] = tau
    if k[2] < tau:
        k[2] = np.nextafter(k[2], k[4])
    return k[2]


@njit(cache=True, nogil=True)
def _cast_down(t, k):  # pragma: no cover - compiled
    """t in k's dtype, rounded down: |y| > result exactly when |y| > t (y in that dtype)."""
    k[2] = t
    if k[2] > t:
        k[2] = np.nextafter(k[2], -k[4])
    return k[2]


def _consts(dtype):
    return np.array([0.0, 1.0, 0.0, 0.0, np.inf, 0.0], dtype)


@njit(cache=True, nogil=True)
def rows_taus(rows, idx, radii, sums, tol, k):  # pragma: no cover - compiled
    """Thresholds of the rows ``idx`` of ``rows`` at ``radii``, given their l1 norms ``sums``
    (aligned with ``idx``); ``k`` from ``_consts``, ``tol`` the phase-1 relative slack."""
    tau = np.empty(idx.shape[0], np.float64)
    hist = np.empty((3, _HIST), np.float64)
    err = 0.0
    for j in range(idx.shape[0]):
        pred = _predict(hist, j, radii[j]) if rows.shape[1] > 1 else -1.0
        t, c = _row_tau(rows[idx[j]], radii[j], sums[j], pred, err, tol, k)
        err = abs(t - pred) if j == 1 else 0.875 * err + 0.125 * abs(t - pred)
        _record(hist, j, radii[j], t, c)
        tau[j] = t
    return tau


@njit(cache=True, nogil=True)
def _l11_rows_apply(x, u, v, tol, k, out):  # pragma: no cover - compiled
    """out[g] = soft(x[g], tau_g) for the rows of x (G, m); u_g = 0 gives a zero row."""
    if x.shape[1] == 1:  # groups of one entry (a vector's entries): tau = v - u
        for g in range(x.shape[0]):
            xv = x[g, 0]
            if u[g] > 0.0:
                tau, _c = _row_tau(x[g], u[g], v[g], -1.0, 0.0, tol, k)
                t = _cast_up(tau, k)
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
            tau, c = _row_tau(x[g], u[g], v[g], pred, err, tol, k)
            err = abs(tau - pred) if n == 1 else 0.875 * err + 0.125 * abs(tau - pred)
            _record(hist, n, u[g], tau, c)
            n += 1
            _soft_row(x[g], _cast_up(tau, k), out[g])
        else:
            out[g, :] = 0.0


# The column kernels index x[i, g0 + j] with an unsigned column index: with a signed one numba's
# negative-index wraparound select defeats LLVM's vectoriser (2-3x slower).


# The column kernels read x (A, G) row by row across a block of columns, vectorised across the
# block; _ROWS rows are summed in registers before the per-column accumulators (in L1) are
# updated, which keeps them from being load/store bound.


@njit(cache=True, nogil=True, fastmath=True)
def _cols_eval2(x, g0, nb, ta, tb, zero, one):  # pragma: no cover - compiled
    """_eval2 for the columns g0 .. g0 + nb of x (A, G): sums (float64, ``_CHUNK`` rows at a
    time in x's dtype) and counts (x's dtype, exact) above ta[j] and tb[j]."""
    g0u = np.uint64(g0)
    A = x.shape[0]
    sa = np.zeros(nb, np.float64)
    ca = np.zeros(nb, x.dtype)
    sb = np.zeros(nb, np.float64)
    cb = np.zeros(nb, x.dtype)
    pa = np.empty(nb, x.dtype)
    pb = np.empty(nb, x.dtype)
    AR = A - A % _ROWS
    for i0 in range(0, AR, _CHUNK):
        pa[:] = zero
        pb[:] = zero
        for i in range(i0, min(i0 + _CHUNK, AR), _ROWS):
            for j in range(nb):
                c = np.uint64(j) + g0u
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
        for j in range(nb):
            sa[j] += np.float64(pa[j])
            sb[j] += np.float64(pb[j])
    for i in range(AR, A):
        for j in range(nb):
            y = abs(x[i, np.uint64(j) + g0u])
            ma = one if y > ta[j] else zero
            mb = one if y > tb[j] else zero
            sa[j] += np.float64(y * ma)
            ca[j] += ma
            sb[j] += np.float64(y * mb)
            cb[j] += mb
    return sa, ca, sb, cb


@njit(cache=True, nogil=True, fastmath=True)
def _cols_exact_stats(x, g0, nb, lo, hi, zero, one, coll, off, vals):  # pragma: no cover
    """_exact_stats for the columns g0 .. g0 + nb of x (A, G): float64 sum and count above
    lo[j], count above hi[j].  lo, hi are x's dtype rounded down from the float64 thresholds
    (so |x| > lo[j] is exactly |x| > the float64 threshold); counts are exact in x's dtype
    (A < 2**24), only the sum needs float64.

    The columns ``coll[q]`` (block indices, increasing) also get their entries in
    (lo, hi] copied to ``vals[off[q]:off[q + 1]]`` (their band, ``_band_tau``); returns how
    many each had (more than its room: not all stored).  The band counts of every 8 rows
    are kept per column, so the scalar search visits only the rows that hold band entries.
    """
    g0u = np.uint64(g0)
    A = x.shape[0]
    s = np.zeros(nb, np.float64)
    c = np.zeros(nb, x.dtype)
    ch = np.zeros(nb, x.dtype)
    nq = coll.shape[0]
    got = np.zeros(nq, np.int64)
    inband = np.empty(nb, x.dtype)
    AR = A - A % _ROWS
    for i in range(0, AR, _ROWS):
        for j in range(nb):
            col = np.uint64(j) + g0u
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
            inband[j] = k1 - k2
        for q in range(nq):
            j = coll[q]
            if inband[j] > zero:
                got[q] = _collect(x, i, i + _ROWS, np.uint64(j) + g0u, lo[j], hi[j], vals,
                                  off[q], off[q + 1], got[q])
    for i in range(AR, A):
        for j in range(nb):
            yj = abs(x[i, np.uint64(j) + g0u])
            m = one if yj > lo[j] else zero
            s[j] += np.float64(yj * m)
            c[j] += m
            ch[j] += one if yj > hi[j] else zero
    if AR < A:
        for q in range(nq):
            j = coll[q]
            got[q] = _collect(x, AR, A, np.uint64(j) + g0u, lo[j], hi[j], vals, off[q],
                              off[q + 1], got[q])
    return s, c, ch, got


@njit(cache=True, nogil=True)
def _collect(x, i0, i1, col, lo, hi, vals, start, stop, n):  # pragma: no cover - compiled
    """Append |x[i, col]| in (lo, hi] for rows i0 .. i1 to vals[start + n:stop]; the new n
    (counting the entries that found no room)."""
    for i in range(i0, i1):
        y = abs(x[i, col])
        if y > lo and not (y > hi):
            if start + n < stop:
                vals[start + n] = y
            n += 1
    return n


@njit(cache=True, nogil=True)
def _band_tau(band, s, c, ch, r, lo, hi):  # pragma: no cover - compiled
    """(tau, active count) from phase 2's float64 sum s and count c of |y| > lo, the count
    ch of |y| > hi and the c - ch entries of (lo, hi] (``band``, any order); (-1, 0) when
    tau is not in [lo, hi] (a bound misplaced by phase 1's rounding).

    Michelot's iteration from below over the band: with every entry above lo active,
    t = (s - r) / c is a lower bound of tau, exact when no band entry is <= t; otherwise the
    smallest entry leaves the active set and t grows.  With an empty band this is the
    closed-bracket formula t = (s - r) / c.
    """
    if not (c > 0.0 and s - c * lo >= r):
        return -1.0, 0.0
    e = np.sort(band) if band.shape[0] > 1 else band
    for i in range(e.shape[0]):
        t = (s - r) / c
        if t <= e[i]:
            return t, c
        s -= np.float64(e[i])
        c -= 1.0
    if c > 0.0:
        t = (s - r) / c
        if t <= hi:
            return t, c
    return -1.0, 0.0


@njit(cache=True, nogil=True, fastmath=_FM)
def _cols_soft(x, g0, nb, t, out):  # pragma: no cover - compiled
    g0u = np.uint64(g0)
    for i in range(x.shape[0]):
        for j in range(nb):
            c = np.uint64(j) + g0u
            xv = x[i, c]
            out[i, c] = xv - min(max(xv, -t[j]), t[j])


# the column passes' sums are float64 over chunks of _CHUNK rows summed in x's dtype: their
# relative error is about 5x smaller than the rows kernel's in-row sums (measured: at most
# 1.8e-7 against 3.6e-6 for float32 sums over whole columns, normal, Cauchy and log-normal
# data, 1000-10000 rows), so phase 1's slack there is tol * _COLS_SLACK: fewer entries fall in
# phase 2's widened window, each of which costs a strided copy of its column
_COLS_SLACK = 0.2
# an open bracket holding at most _BAND entries ends the passes: phase 2's pass collects its
# entries (room for _BAND_SLACK more, caught by the slack) and _band_tau solves it exactly
_BAND = 256
_BAND_SLACK = 8
# ... unless another pass costs less: collecting an entry costs about as much as a two-point
# pass over 512 entries (measured 50-80 ns an entry against 0.15-0.25 ns an entry for the
# pass, 1000x1000 in cache and 4096x4096 out of cache)
_ENTRY_COST = 512
_STRAGGLERS = 32  # live columns left in a block below which each is finished on its own
_BOOT = 8  # columns solved alone first, to predict the others


@njit(cache=True, nogil=True)
def _l11_cols_apply(x, u, v, tol, k, out, block, entry_cost):  # pragma: no cover
    """out[:, g] = soft(x[:, g], tau_g) for the columns of x (A, G); u_g = 0 gives zeros.

    The first _BOOT live columns are copied out and solved like rows, so that every block
    starts from predicted guesses.  Then blocks of up to ``block`` columns (usually the whole
    width) are solved together: every pass reads the block row by row (vectorised across its
    columns; sums in float64 over chunks of _CHUNK rows, so phase 1's slack is the tighter
    ``tol * _COLS_SLACK``) and updates each column's bracket.  The passes stop when every
    open bracket holds at most _BAND entries and collecting them costs less than another pass
    (``entry_cost`` an entry, against one per entry of the block), or when at most
    _STRAGGLERS columns are left: those with longer brackets are copied out and finished like
    rows.  Then one float64 pass checks the block's columns (as ``_exact_tau``) and copies
    out the entries of the open brackets, which ``_band_tau`` finishes exactly.  The output
    is written at the end, row by row over the full width.
    """
    A, G = x.shape
    BL = max(min(block, G), 1)
    zero = k[0]
    one = k[1]
    st = np.empty((6, BL), np.float64)  # low, s_lo, c_lo, high, s_hi, c_hi
    ta = np.empty(BL, x.dtype)
    tb = np.empty(BL, x.dtype)
    fa = np.empty(BL, np.float64)
    fb = np.empty(BL, np.float64)
    lo2 = np.empty(BL, np.float64)
    hi2 = np.empty(BL, np.float64)
    tau = np.empty(BL, np.float64)
    cnt = np.empty(BL, np.float64)
    pred = np.empty(BL, np.float64)
    live = np.zeros(BL, np.bool_)
    slack = np.empty(BL, np.float64)  # phase 2's relative slack: ctol, tol once finished alone
    band = np.zeros(BL, np.int64)  # entries of an open bracket left to phase 2 (0: closed)
    coll = np.empty(BL, np.int64)
    off = np.zeros(BL + 1, np.int64)
    ctol = tol * _COLS_SLACK
    buf = np.empty(A, x.dtype)
    hist = np.empty((3, _HIST), np.float64)
    n_hist = 0
    err = 0.0
    t_all = np.empty(G, x.dtype)
    # bootstrap the predictions: the first _BOOT live columns are solved alone, like rows,
    # so that the first block starts from predicted guesses too.  They are copied out in one
    # sweep over the rows: usually adjacent, they share a cache line in each row (one strided
    # copy per column cost ~50 us each on a 4096x4096 float32 matrix out of cache)
    pre = np.full(G, np.inf)
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
    for b in range(n_boot):
        g = boot[b]
        pr = _predict(hist, n_hist, u[g])
        t, c = _row_tau(cols[b], u[g], v[g], pr, err, tol, k)
        if pr > 0.0:
            err = abs(t - pr) if err == 0.0 else 0.875 * err + 0.125 * abs(t - pr)
        _record(hist, n_hist, u[g], t, c)
        n_hist += 1
        pre[g] = t
    for g0 in range(0, G, BL):
        nb = min(BL, G - g0)
        n_live = 0
        for j in range(nb):
            g = g0 + j
            live[j] = False
            ta[j] = k[4]
            tb[j] = k[4]
            tau[j] = np.inf
            pred[j] = -1.0
            slack[j] = ctol
            band[j] = 0
            if pre[g] < np.inf:
                tau[j] = pre[g]
                cnt[j] = -1.0  # solved by the bootstrap, already in the history
            elif u[g] > 0.0 and v[g] > u[g] and A < 1 << 24:
                low = max((v[g] - u[g]) / A, 0.0)
                pred[j] = _predict(hist, n_hist, u[g])
                p1, p2 = _first_points(low, pred[j], err)
                p1 = _rep(p1, k)  # the points as y's dtype represents them
                p2 = _rep(p2, k)
                # the bound 0 stands for theta / m, as in _row_tau
                st[0, j], st[1, j], st[2, j] = 0.0, v[g], np.float64(A)
                st[3, j], st[4, j], st[5, j] = np.inf, 0.0, 0.0
                fa[j] = p1
                fb[j] = p2
                ta[j] = p1
                tb[j] = p2
                live[j] = True
                n_live += 1
            elif u[g] > 0.0:
                tau[j] = bracket_tau(x[:, g], u[g], v[g])
                cnt[j] = 1.0
        if n_live:
            e_sa, e_ca, e_sb, e_cb = _cols_eval2(x, g0, nb, ta, tb, zero, one)
        first = True
        for _ in range(_MAX_PASSES + 1):
            if n_live == 0:
                break
            if not first:
                n_long = 0  # open brackets too long (or unbounded) to be collected
                n_band = 0.0  # entries in the others
                for j in range(nb):
                    if live[j]:
                        if st[3, j] < np.inf and st[2, j] - st[5, j] <= _BAND:
                            n_band += st[2, j] - st[5, j]
                        else:
                            n_long += 1
                few = nb > 4 * _STRAGGLERS
                if ((few and n_live <= _STRAGGLERS) or ((n_long == 0 or (
                        few and n_long <= _STRAGGLERS)) and n_band * entry_cost <= A * nb)):
                    for j in range(nb):
                        if live[j] and st[3, j] < np.inf and st[2, j] - st[5, j] <= _BAND:
                            band[j] = int(st[2, j] - st[5, j])  # phase 2 collects them
                            live[j] = False
                    for j in range(nb):  # finish each on a contiguous copy, like a row
                        if live[j]:
                            for i in range(A):
                                buf[i] = x[i, g0 + j]
                            (st[0, j], st[1, j], st[2, j], st[3, j], st[4, j], st[5, j],
                             near, s_n, c_n) = _bracket(buf, u[g0 + j], st[0, j], st[1, j],
                                                        st[2, j], st[3, j], st[4, j], st[5, j],
                                                        tol, k)
                            slack[j] = tol  # its bounds came from in-row sums
                            if near >= 0.0:  # tau = near up to rounding: the float64 check
                                st[0, j], st[1, j], st[2, j] = near, s_n, c_n  # around it
                                st[3, j], st[4, j], st[5, j] = near, s_n, c_n
                            live[j] = False
                    break
                for j in range(nb):
                    ta[j] = fa[j]
                    tb[j] = fb[j]
                e_sa, e_ca, e_sb, e_cb = _cols_eval2(x, g0, nb, ta, tb, zero, one)
            n_live = 0
            for j in range(nb):
                if not live[j]:
                    continue
                r = u[g0 + j]
                low, s_lo, c_lo = st[0, j], st[1, j], st[2, j]
                high, s_hi, c_hi = st[3, j], st[4, j], st[5, j]
                done = False
                for p, sp, cp in ((fa[j], np.float64(e_sa[j]), np.float64(e_ca[j])),
                                  (fb[j], np.float64(e_sb[j]), np.float64(e_cb[j]))):
                    if done:
                        break
                    if _near(r, p, sp, cp, ctol):  # tau = p up to rounding: phase 2 checks
                        low, s_lo, c_lo, high, s_hi, c_hi = p, sp, cp, p, sp, cp
                        done = True
                    else:
                        low, s_lo, c_lo, high, s_hi, c_hi = _update(r, low, s_lo, c_lo,
                                                                     high, s_hi, c_hi, p,
                                                                     sp, cp)
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
                        fa[j] = _rep(a, k)
                        fb[j] = _rep(b, k)
                        n_live += 1
                st[0, j], st[1, j], st[2, j] = low, s_lo, c_lo
                st[3, j], st[4, j], st[5, j] = high, s_hi, c_hi
                if done:
                    live[j] = False
                    fa[j] = np.inf
                    fb[j] = np.inf
            first = False
        # phase 2, all solved columns of the block in one float64 pass
        n_chk = 0
        n_coll = 0
        for j in range(nb):
            lo2[j] = np.inf
            hi2[j] = np.inf
            ta[j] = k[4]
            tb[j] = k[4]
            if tau[j] == np.inf and u[g0 + j] > 0.0:
                d = slack[j] * 2.0 * st[1, j] / st[2, j]
                lo2[j] = max(st[0, j] - d, 0.0)
                hi2[j] = st[3, j] + d
                ta[j] = _cast_down(lo2[j], k)
                tb[j] = _cast_down(hi2[j], k)
                n_chk += 1
                if band[j] > 0:  # room for the open bracket's entries and a few in the slack
                    coll[n_coll] = j
                    off[n_coll + 1] = off[n_coll] + band[j] + _BAND_SLACK
                    n_coll += 1
        if n_chk:
            vals = np.empty(off[n_coll], x.dtype)
            xs, xc, xch, got = _cols_exact_stats(x, g0, nb, ta, tb, zero, one,
                                                 coll[:n_coll], off, vals)
            q = 0
            for j in range(nb):
                g = g0 + j
                if lo2[j] < np.inf:
                    r = u[g]
                    c, ch = np.float64(xc[j]), np.float64(xch[j])
                    t = -1.0
                    if q < n_coll and coll[q] == j:
                        n = got[q]
                        if n == c - ch and off[q] + n <= off[q + 1]:
                            t, c = _band_tau(vals[off[q]:off[q] + n], xs[j], c, ch, r,
                                             lo2[j], hi2[j])
                        q += 1
                    elif c == ch:
                        t, c = _band_tau(vals[:0], xs[j], c, ch, r, lo2[j], hi2[j])
                    if t >= 0.0:
                        tau[j] = t
                        cnt[j] = c
                    else:  # rare: the exact per-column solve on a contiguous copy
                        for i in range(A):
                            buf[i] = x[i, g]
                        tau[j], cnt[j] = _exact_tau(buf, r, v[g], st[0, j], st[1, j],
                                                    st[2, j], st[3, j], tol, k)
        for j in range(nb):
            if tau[j] < np.inf and cnt[j] < 0.0:
                t_all[g0 + j] = _cast_up(tau[j], k)
            elif tau[j] < np.inf:
                if pred[j] > 0.0:
                    e = abs(tau[j] - pred[j])
                    err = e if err == 0.0 else 0.875 * err + 0.125 * e
                _record(hist, n_hist, u[g0 + j], tau[j], cnt[j])
                n_hist += 1
                t_all[g0 + j] = _cast_up(tau[j], k)
            else:
                t_all[g0 + j] = k[4]
    # row-major over the full width: whole output lines written in order (writing each block
    # as it is solved costs ~40 % more: partial lines at the block edges, scattered writes)
    _cols_soft(x, 0, G, t_all, out)


def l11_rows_apply(x: np.ndarray, u: np.ndarray, v: np.ndarray, tol: float, k: np.ndarray,
                   out: np.ndarray) -> None:
    """out[g] = soft(x[g], tau_g) for the rows of x (G, m) (``_l11_rows_apply``); ``out`` is
    a fresh buffer."""
    _l11_rows_apply(x, u, v, tol, k, out)


def l11_cols_apply(x: np.ndarray, u: np.ndarray, v: np.ndarray, tol: float, k: np.ndarray,
                   out: np.ndarray, block: int = _BLOCK,
                   entry_cost: float = _ENTRY_COST) -> None:
    """out[:, g] = soft(x[:, g], tau_g) for the columns of x (A, G) (``_l11_cols_apply``),
    solved ``block`` columns at a time, open brackets collected once that costs less than
    another pass (``entry_cost``: 0 collects as soon as every open bracket is short, inf
    never)."""
    _l11_cols_apply(x, u, v, tol, k, out, block, float(entry_cost))
