"""Numba CPU kernels for the grouped constraints (l21, l11, l1inf, l1inf_bilevel).

Contract.  A weight is viewed as X (A, G, B), C-contiguous float32 or float64, with group
g = X[:, g, :] (see ``_validate.group_shape``); when B == 1 the callers pass the 2-D (A, G)
view instead so the inner loop runs over the contiguous group index and vectorises.  Group
statistics are accumulated in float64 (maxima on the bit patterns, exact; NaN and inf
propagate so the caller can reject them); ``group_apply_*`` write x's dtype with the
per-group parameter the caller has already rounded toward the feasible side.
``l1inf_newton_sorted`` gives the exact clip levels of the l1,inf projection (to float64
rounding); its sort-based reference is ``_torch_ops.project_l1inf``.

Complexity.  ``group_stats_*``, ``group_maxbits_*``, ``group_apply_*``, ``gather_groups``,
``transpose_abs``: one pass over X, O(A G B).  ``l1inf_newton_sorted``: O(G m) in all plus
O(G) per Newton step, on rows already sorted (m = A B).

Same conventions as ``_l1_kernels`` (lazy compilation cached on disk).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from projlib.projections._l1_kernels import _FM


@njit(cache=True, nogil=True, fastmath=_FM)
def group_stats_2d(x, kind):  # pragma: no cover - compiled
    """Per-column l1 norm (kind 0) or sum of squares (kind 1) of x (A, G)."""
    A, G = x.shape
    acc = np.zeros(G, np.float64)
    for a in range(A):
        if kind == 0:
            for g in range(G):
                acc[g] += abs(np.float64(x[a, g]))
        elif kind == 1:
            for g in range(G):
                xv = np.float64(x[a, g])
                acc[g] += xv * xv
    return acc


@njit(cache=True, nogil=True, fastmath=_FM)
def group_stats_3d(x, kind):  # pragma: no cover - compiled
    """Same as group_stats_2d for x (A, G, B), group g = x[:, g, :]."""
    A, G, B = x.shape
    acc = np.zeros(G, np.float64)
    for a in range(A):
        for g in range(G):
            s = 0.0
            if kind == 0:
                for b in range(B):
                    s += abs(np.float64(x[a, g, b]))
                acc[g] += s
            elif kind == 1:
                for b in range(B):
                    xv = np.float64(x[a, g, b])
                    s += xv * xv
                acc[g] += s
    return acc


# Group maxima of |x| on the unsigned-integer view: with the sign bit masked off, the bit
# patterns of non-negative floats order like their values and NaN patterns sit above +inf, so
# an integer max both vectorises and propagates NaN (a float max silently drops it).


@njit(cache=True, nogil=True)
def group_maxbits_2d(bits, mask):  # pragma: no cover - compiled
    """Per-column max of (bits & mask) over bits (A, G): the bit pattern of max |x|."""
    A, G = bits.shape
    acc = np.zeros(G, bits.dtype)
    for a in range(A):
        for g in range(G):
            acc[g] = max(acc[g], bits[a, g] & mask)
    return acc


@njit(cache=True, nogil=True)
def group_maxbits_3d(bits, mask):  # pragma: no cover - compiled
    """Same as group_maxbits_2d for bits (A, G, B), group g = bits[:, g, :]."""
    A, G, B = bits.shape
    acc = np.zeros(G, bits.dtype)
    for a in range(A):
        for g in range(G):
            m = acc[g]
            for b in range(B):
                m = max(m, bits[a, g, b] & mask)
            acc[g] = m
    return acc


@njit(cache=True, nogil=True, fastmath=_FM)
def group_apply_2d(x, t, op, out):  # pragma: no cover - compiled
    """out = soft(x, t_g) (op 0), clip(x, -t_g, t_g) (op 1) or x * t_g (op 2), x (A, G)."""
    A, G = x.shape
    for a in range(A):
        if op == 0:
            for g in range(G):
                xv = x[a, g]
                out[a, g] = xv - min(max(xv, -t[g]), t[g])
        elif op == 1:
            for g in range(G):
                out[a, g] = min(max(x[a, g], -t[g]), t[g])
        else:
            for g in range(G):
                out[a, g] = x[a, g] * t[g]


@njit(cache=True, nogil=True, fastmath=_FM)
def group_apply_3d(x, t, op, out):  # pragma: no cover - compiled
    """Same as group_apply_2d for x (A, G, B)."""
    A, G, B = x.shape
    for a in range(A):
        for g in range(G):
            tg = t[g]
            if op == 0:
                for b in range(B):
                    xv = x[a, g, b]
                    out[a, g, b] = xv - min(max(xv, -tg), tg)
            elif op == 1:
                for b in range(B):
                    out[a, g, b] = min(max(x[a, g, b], -tg), tg)
            else:
                for b in range(B):
                    out[a, g, b] = x[a, g, b] * tg


@njit(cache=True, nogil=True)
def gather_groups(x, which):  # pragma: no cover - compiled
    """Copy the groups listed in ``which`` of x (A, G, B) into contiguous rows (len(which), A*B).

    Reads x once in memory order; each group's row is written at stride A*B.
    """
    A, G, B = x.shape
    K = which.shape[0]
    slot = np.full(G, -1, np.int64)
    for k in range(K):
        slot[which[k]] = k
    rows = np.empty((K, A * B), x.dtype)
    for a in range(A):
        for g in range(G):
            k = slot[g]
            if k >= 0:
                for b in range(B):
                    rows[k, a * B + b] = x[a, g, b]
    return rows


@njit(cache=True, nogil=True)
def transpose_abs(x):  # pragma: no cover - compiled
    """|x|.T as a new C-contiguous array, x (A, G); 32 x 32 tiles keep both sides in cache."""
    A, G = x.shape
    out = np.empty((G, A), x.dtype)
    T = 32
    for i0 in range(0, A, T):
        i1 = min(A, i0 + T)
        for j0 in range(0, G, T):
            j1 = min(G, j0 + T)
            for j in range(j0, j1):
                for i in range(i0, i1):
                    out[j, i] = abs(x[i, j])
    return out


@njit(cache=True, nogil=True)
def l1inf_newton_sorted(rows, sums, radius, max_iter):  # pragma: no cover - compiled
    """Clip levels mu_g of the exact l1,inf projection from rows of |x| sorted ascending.

    mu_g(theta) solves sum_i max(y_gi - mu, 0) = theta (0 once sums[g] <= theta); the root of
    f(theta) = sum_g mu_g(theta) - radius is found by Newton from theta = 0.  f is convex,
    decreasing and piecewise linear, so the iterates increase monotonically and land exactly
    on the root once on its last linear piece (semismooth Newton, Chu et al. 2020).  Because
    theta only increases, each group's active count k_g only grows: one pointer per group
    walks down the sorted row, so all evaluations together cost O(G m) plus O(G) per step.
    Returns (mu, iterations).
    """
    G, m = rows.shape
    k = np.ones(G, np.int64)  # active entries: the k_g largest of row g
    s = np.empty(G, np.float64)  # their sum
    mu = np.empty(G, np.float64)
    alive = np.empty(G, np.bool_)
    for g in range(G):
        s[g] = rows[g, m - 1]
        mu[g] = s[g]
        alive[g] = sums[g] > 0.0
    theta = 0.0
    it = 0
    while it < max_iter:
        f = -radius
        slope = 0.0
        for g in range(G):
            if alive[g]:
                f += mu[g]
                slope += 1.0 / k[g]
        if slope == 0.0:
            break
        step = f / slope
        if step <= 1e-15 * max(theta, radius):
            break
        theta += step
        it += 1
        for g in range(G):
            if not alive[g]:
                continue
            if sums[g] <= theta:
                alive[g] = False
                mu[g] = 0.0
                continue
            kg = k[g]
            sg = s[g]
            # entry k+1 (next largest) is active iff y > (s_k - theta) / k
            while kg < m and rows[g, m - 1 - kg] * kg > sg - theta:
                sg += rows[g, m - 1 - kg]
                kg += 1
            k[g] = kg
            s[g] = sg
            mu[g] = max((sg - theta) / kg, 0.0)
    for g in range(G):
        if not alive[g]:
            mu[g] = 0.0
    return mu, it
