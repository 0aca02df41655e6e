"""Numba CPU kernels for l1-ball thresholds, on zero-copy numpy views of CPU tensors.

Contract.  In: a contiguous 1-D float32 or float64 array x (finite entries, or the kernels
return a non-finite sum for the caller to reject) and a radius r >= 0.  Out: the soft
threshold tau >= 0 with phi(tau) = sum_i max(|x_i| - tau, 0) = r whenever sum |x| > r > 0,
exact to float64 rounding (every guess below is verified; norms, sums and tau are
accumulated in float64 whatever x's dtype).  The sort-based reference is
``_torch_ops.project_l1`` (Held, Wolfe & Crowder 1974), which the tests compare against.

Complexity.  ``l1_tau``: observed O(n), one read pass plus work on a narrow band of entries
(usually a few % of n); worst case (every guess wrong) three read passes and O(n) on the
band.  ``soft_threshold``: one read/write pass.  ``condat_tau``, ``simplex_tau``: observed
O(n), worst case O(n^2) (Condat 2016).

All kernels are compiled lazily with ``cache=True``: the first call in a fresh install compiles
(about a second per kernel and dtype) and writes the machine code to ``__pycache__``; later
processes load it in milliseconds.  :func:`projlib.projections.warmup` triggers every
compilation up front (the benchmarks call it in ``setup``) so compile time never lands in a
timing.

Every kernel finds tau with phi(tau) = r (phi is convex, decreasing, piecewise linear):

* ``l1_tau`` (long vectors): bounds guessed on a strided sample, one vectorised read pass
  that also collects the narrow band of entries between them, Newton/Michelot on the band.
  Guesses are verified, so they only ever cost time.
* ``condat_tau``: L. Condat, "Fast projection onto the simplex and the l1 ball", Math.
  Program. 158, 2016; used for the simplex and for samples.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import trailing_zeros

# "reassoc" lets LLVM vectorise the reductions; no "nnan"/"ninf" so NaN and inf propagate to the
# norms, which is how non-finite entries are detected without an extra pass.
_FM = {"reassoc", "nsz", "contract"}


@njit(cache=True, nogil=True)
def condat_tau(x, radius, v, vt):  # pragma: no cover - compiled
    """Threshold tau >= 0 with sum(max(|x| - tau, 0)) = radius, and the count of |x| > tau.

    Precondition: sum|x| > radius > 0 (then tau > 0).  ``v`` and ``vt`` are float64 work
    buffers of at least len(x) entries.  Observed O(n), worst case O(n^2) (Condat 2016).
    """
    n = x.shape[0]
    y0 = abs(np.float64(x[0]))
    v[0] = y0
    nv = 1
    nvt = 0
    rho = y0 - radius
    for i in range(1, n):
        y = abs(np.float64(x[i]))
        if y > rho:
            rho += (y - rho) / (nv + 1)
            if rho > y - radius:
                v[nv] = y
                nv += 1
            else:
                # y alone already beats the current candidates: park them for the second step
                for j in range(nv):
                    vt[nvt + j] = v[j]
                nvt += nv
                v[0] = y
                nv = 1
                rho = y - radius
    for j in range(nvt):
        y = vt[j]
        if y > rho:
            v[nv] = y
            nv += 1
            rho += (y - rho) / nv
    changed = True
    while changed and nv > 1:
        changed = False
        j = 0
        while j < nv:
            y = v[j]
            if y <= rho:
                nv -= 1
                v[j] = v[nv]
                rho += (rho - y) / nv
                changed = True
            else:
                j += 1
    return max(rho, 0.0), nv


_CHUNK = 256  # entries per chunk of ``_filter_pass``; a chunk is re-read (from L1) only if it
# holds band entries


@njit(cache=True, nogil=True, fastmath=_FM)
def _filter_pass(x, low, high, cap):  # pragma: no cover - compiled
    """One read pass over x: (sum |x|, sum and count of |x| > high, count in (low, high],
    the band values |x_i| in (low, high] as float64, whether all of them fit in ``cap``).

    The sums and counts are vectorised over chunks of ``_CHUNK`` entries; a chunk that holds
    band entries (known from its counts) is re-read while still in L1 to collect them: 64
    comparisons at a time give a bit mask (a vectorised or-reduction), whose set bits are
    walked with a trailing-zero count, so the scalar work is proportional to the band, not
    to n.  Past ``cap`` band values collection stops (the counts stay exact); the caller
    then collects with ``_band_collect``.
    """
    n = x.shape[0]
    c = np.empty(cap + _CHUNK, np.float64)
    k = 0
    total = 0.0
    s_hi = 0.0
    n_hi = 0.0
    n_band = 0.0
    full = True
    nfull = n - n % _CHUNK
    for c0 in range(0, nfull, _CHUNK):
        base = np.uint64(c0)  # unsigned indices: no negative-index wraparound, so it vectorises
        t = 0.0
        sh = 0.0
        nh = 0.0
        nl = 0.0
        for i in range(_CHUNK):
            y = abs(np.float64(x[base + np.uint64(i)]))
            t += y
            mh = 1.0 if y > high else 0.0  # float masks: vectorise
            sh += y * mh
            nh += mh
            nl += 1.0 if y > low else 0.0
        total += t
        s_hi += sh
        n_hi += nh
        nb = nl - nh
        if nb > 0.0:
            n_band += nb
            if not full or k + nb > cap:
                full = False
                continue
            for q in range(_CHUNK // 64):
                b0 = base + np.uint64(64 * q)
                bits = np.uint64(0)
                for i in range(64):
                    y = abs(np.float64(x[b0 + np.uint64(i)]))
                    bits |= (np.uint64(y > low) - np.uint64(y > high)) << np.uint64(i)
                while bits != np.uint64(0):
                    c[k] = abs(np.float64(x[b0 + trailing_zeros(bits)]))
                    k += 1
                    bits &= bits - np.uint64(1)
    for i in range(nfull, n):
        y = abs(np.float64(x[i]))
        total += y
        if y > high:
            s_hi += y
            n_hi += 1.0
        elif y > low:
            n_band += 1.0
            if full and k < cap:
                c[k] = y
                k += 1
            else:
                full = False
    return total, s_hi, n_hi, n_band, c[:k], full


@njit(cache=True, nogil=True)
def _band_collect(x, low, high, n_band):  # pragma: no cover - compiled
    """The n_band values |x_i| in (low, high], as float64, in one pass: a branch-free store
    (c[k] always written, k advanced only for a band entry), since a mispredicted branch
    costs more than the store."""
    n = x.shape[0]
    c = np.empty(n_band + 1, np.float64)
    k = 0
    for i in range(n):
        y = abs(np.float64(x[i]))
        c[k] = y
        k += (y > low) & (y <= high)
    return c[:k]


@njit(cache=True, nogil=True, fastmath=_FM)
def _michelot(y, tau, s_fixed, n_fixed, radius):  # pragma: no cover - compiled
    """Newton on phi(t) = s_fixed - n_fixed t + sum_j max(y_j - t, 0) - radius from a lower
    bound tau (phi(tau) >= 0); this is Michelot's iteration t <- (S - radius) / K with S, K
    the sum/count of the entries above t.  It increases monotonically and stops exactly on
    the root once the active set stops changing (phi is piecewise linear).
    Returns (tau, count of y_j > tau).  Each step is one vectorised pass over y.
    """
    while True:
        s = s_fixed
        cnt = 0.0
        for j in range(y.shape[0]):
            mask = 1.0 if y[j] > tau else 0.0  # float mask: vectorises
            s += y[j] * mask
            cnt += mask
        if cnt + n_fixed == 0:
            return tau, int(cnt)
        new_tau = (s - radius) / (cnt + n_fixed)
        if not (new_tau > tau):
            return tau, int(cnt)
        tau = new_tau


@njit(cache=True, nogil=True, fastmath=_FM)
def _threshold_of(y, total, ymax, radius):  # pragma: no cover - compiled
    """(tau, active count) of y >= 0 (sum y = total > radius > 0, max y = ymax).

    Up to 8 Newton/Michelot steps from the proven lower bound max(ymax - r, (total - r) / n)
    (enough when many entries are active); if not converged, Condat's algorithm on the
    entries above the bound reached (few, since the bound has then climbed near the top).
    """
    n = y.shape[0]
    tau = max(ymax - radius, (total - radius) / n)
    for _ in range(8):
        s = 0.0
        cnt = 0
        for j in range(n):
            above = y[j] > tau
            s += y[j] if above else 0.0
            cnt += 1 if above else 0
        if cnt == 0:  # radius below the rounding of max y: tau = max y
            return tau, cnt
        new_tau = (s - radius) / cnt
        if not (new_tau > tau):
            return tau, cnt
        tau = new_tau
    m = 0
    for j in range(n):
        m += 1 if y[j] > tau else 0
    rest = np.empty(m, np.float64)
    m = 0
    for j in range(n):
        if y[j] > tau:
            rest[m] = y[j]
            m += 1
    v = np.empty(m, np.float64)
    vt = np.empty(m, np.float64)
    return condat_tau(rest, radius, v, vt)


_SAMPLE = 8192  # entries in the strided sample of ``_sample_bounds``


@njit(cache=True, nogil=True)
def _sample(x):  # pragma: no cover - compiled
    """(|x| at every (n // _SAMPLE)-th position as float64, their sum, their max)."""
    n = x.shape[0]
    stride = n // _SAMPLE
    ns = n // stride
    ys = np.empty(ns, np.float64)
    total = 0.0
    ymax = 0.0
    for j in range(ns):
        yj = abs(np.float64(x[j * stride + stride // 2]))
        ys[j] = yj
        total += yj
        ymax = max(ymax, yj)
    return ys, total, ymax


@njit(cache=True, nogil=True)
def _sample_bounds(x, radius):  # pragma: no cover - compiled
    """Guesses (low, high, band) bracketing the l1 threshold tau of x, from a strided sample;
    ``band`` estimates how many entries of x lie in (low, high] (-1: no guess made).

    The sample's threshold at the radius scaled to its size estimates tau; its relative noise
    is about 1 / sqrt(k) (k = the sample's active count), so the radius is inflated (deflated)
    by 1 + 4 / sqrt(k) + 16 / k for the low (high) guess (the 16 / k term because with few
    sample actives the sample's largest entries may well exceed tau).  With fewer than 64
    sample actives no high guess is made (+inf).  Wrong guesses cost time, never
    correctness: ``l1_tau`` verifies them (and falls back to proven bounds).  Michelot
    runs start from proven lower bounds: max|y| - r, (sum y - r) / n, and a Newton step
    from the right for the inflated radius.
    """
    n = x.shape[0]
    if n // _SAMPLE < 4:
        return -1.0, np.inf, -1.0
    ys, total, ymax = _sample(x)
    ns = ys.shape[0]
    rs = radius * ns / n
    if not (total > rs) or rs <= 0.0:
        return -1.0, np.inf, -1.0
    tau_s, k = _threshold_of(ys, total, ymax, rs)
    margin = 1.0 + 4.0 / np.sqrt(max(k, 1)) + 16.0 / max(k, 1)
    low = -1.0
    rl = rs * margin
    if total > rl:
        start = max(max(ymax - rl, (total - rl) / ns), tau_s - (rl - rs) / max(k, 1))
        low, _ = _michelot(ys, start, 0.0, 0, rl)
    high = np.inf
    if k >= 64:
        high, _ = _michelot(ys, tau_s, 0.0, 0, rs / margin)
    if low < 0.0:
        return low, high, -1.0
    inside = 0
    for j in range(ns):
        inside += 1 if (ys[j] > low) and (ys[j] <= high) else 0
    return low, high, (inside + 1.0) * (n / ns)


@njit(cache=True, nogil=True)
def l1_tau(x, radius):  # pragma: no cover - compiled
    """(sum|x|, tau): the l1-ball threshold of x at ``radius`` (tau meaningful if sum > radius).

    tau solves phi(tau) = sum_i max(|x_i| - tau, 0) = radius; phi is convex, decreasing and
    piecewise linear.
    1. guess low <= tau <= high from a strided sample (``_sample_bounds``);
    2. one read pass (``_filter_pass``): sum |x|, the sum/count of the |x| > high (surely
       active) and the band (low, high] itself (entries <= tau are never active, so
       dropping them is exact), collected from the chunks that hold band entries only;
    3. verify phi(low) >= radius >= phi(high); if a guess fails, redo 2 with the proven
       bounds low = max(max|x| - r, (sum|x| - r) / n), high = +inf (directly for a vector too
       short to sample); without a guessed band size the band is counted first and collected
       by ``_band_collect``;
    4. Newton/Michelot on the band from low (``_michelot``): exact at termination.
    Cost: one read pass over x plus work on the band only (usually a few % of x): observed
    O(n).
    """
    n = x.shape[0]
    low, high, band = _sample_bounds(x, radius)
    total = 0.0
    # attempt 0: the sample's guesses; 1: proven bounds (also the only attempt for vectors
    # too short to sample)
    for attempt in range(0 if low >= 0.0 else 1, 2):
        if attempt == 1:
            total = 0.0
            top = 0.0  # a float max does not vectorise; this path is rare (or n is small)
            for i in range(n):
                y = abs(np.float64(x[i]))
                total += y
                top = max(top, y)
            if not (total > radius) or radius <= 0.0 or not np.isfinite(total):
                return total, 0.0
            low, high, band = max(top - radius, (total - radius) / n), np.inf, -1.0
        # without an estimate of the band's size, count it first and collect it exactly
        cap = 0 if band < 0.0 else min(n, int(1.5 * band) + 4096)
        total, s_hi, n_hi, n_band, c, full = _filter_pass(x, low, high, cap)
        if not (total > radius) or radius <= 0.0 or not np.isfinite(total):
            return total, 0.0
        if not full:
            c = _band_collect(x, low, high, int(n_band))
        if attempt == 1:
            break
        phi_low = s_hi - n_hi * low
        for j in range(c.shape[0]):
            phi_low += c[j] - low
        if phi_low >= radius and (n_hi == 0 or s_hi - n_hi * high <= radius):
            break
    tau, _ = _michelot(c, low, s_hi, int(n_hi), radius)
    return total, max(tau, 0.0)


@njit(cache=True, nogil=True, fastmath=_FM)
def soft_threshold(x, t, out):  # pragma: no cover - compiled
    """out = x - clip(x, -t, t) = sign(x) max(|x| - t, 0); exact +0.0 where |x| <= t.  O(n)."""
    for i in range(x.shape[0]):
        xi = x[i]
        out[i] = xi - min(max(xi, -t), t)


@njit(cache=True, nogil=True)
def simplex_tau(x, radius):  # pragma: no cover - compiled
    """tau with sum(max(x - tau, 0)) = radius for any real x and radius > 0 (Condat 2016),
    exact to float64 rounding; observed O(n), worst case O(n^2), two float64 copies."""
    n = x.shape[0]
    lo = np.float64(x[0])
    for i in range(n):
        lo = min(lo, np.float64(x[i]))
    # shift so every entry is > 0 and their sum exceeds the radius: then the simplex threshold
    # of x is the l1-ball threshold of the shifted entries, shifted back
    shift = lo - radius / n - 1.0
    y = np.empty(n, np.float64)
    for i in range(n):
        y[i] = np.float64(x[i]) - shift
    v = np.empty(n, np.float64)
    vt = np.empty(n, np.float64)
    tau, _ = condat_tau(y, radius, v, vt)
    return tau + shift
