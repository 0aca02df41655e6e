"""Pure-torch kernels: the path taken for tensors that are not on the CPU (CUDA).

They are also each constraint's reference path: sort-based, the formulas of
docs/METHOD.md §2 as written (one sort + cumsum + ``searchsorted`` per threshold, an SVD for
the nuclear ball), O(n log n), exact to float64 rounding.  They run on CPU tensors too, which
is how the tests cross-check them against the numba kernels used there
(``tests/projections/helpers.torch_path``).

GPU design: no host synchronisation, few passes over the data, static shapes.

Host synchronisations per call: **none** for ``l1``, ``l21``, ``l11``, ``l1inf_bilevel`` and
``l1inf`` (the nuclear ball keeps one, see :func:`project_nuclear`).  Nothing reads a device
value on the host (no ``.item()``, ``float()``, ``bool()``, Python ``if`` on a tensor, 0-dim
tensor used as an index, ``nonzero``/boolean masking); every decision is a device-side select:

* inside the ball: the scaling and clipping operators (l21, l1inf_bilevel, l1inf) turn their
  per-group parameter into the identity (scale exactly 1, clip level +inf), which gives W
  back bit for bit without an extra pass; the soft-thresholding ones (l1, l11) compute the
  projection and return ``torch.where(inside, W, P)`` (signed zeros included);
* thresholds come from searches whose shapes are fixed by the input's shape, never from a
  loop whose stopping test is read on the host (see "Threshold searches" below);
* extreme magnitudes (``_scaling`` on the CPU path): float32 input needs no rescaling here,
  because every sum, norm and threshold is computed in float64, whose range holds the
  square of any float32 and the sum of 2**31 of them; maxima are exact in any dtype.
  float64 input is always rescaled on the device by the power of two 2**k, k = -e with
  2**(e-1) <= max|W| < 2**e (one max reduction, one multiplication pass): exact (no
  rounding) except for entries that fall below the normal range, and bit-neutral on
  ordinary inputs, since every operation here commutes with a power-of-two scaling.  The
  per-group parameters are scaled back and rounded toward the feasible side
  (:func:`_param`); the data itself is never scaled back.  This replaces the old range test
  and its host-side retry (``_scaling.run_scaled``), which needed a sync on every call;
* NaN/inf entries: raising needs a sync.  By default the result is all NaN (the per-group
  parameters are set to NaN when the total norm is not finite).  Set :data:`CHECK_FINITE`
  to True to get the CPU path's ``ValueError`` instead, at the cost of one sync per call,
  placed after all the work has been queued.

Threshold searches.  The l1 threshold of a vector ``a >= 0`` solves
``sum_i max(a_i - tau, 0) = r``; sort ``a`` descending (Z), ``cs = cumsum(Z)`` (float64) and
``c_k = cs_k - k Z_k`` (non-decreasing): ``rho = #{k : c_k < r}`` and
``tau = (cs_rho - r) / rho`` (Held et al. 1974).  One sort, a cumsum and one
``searchsorted``: no iteration.  Per-group thresholds (l11) use the same formula row-wise
(a segmented sort of the groups).

Above :data:`FULL_SORT_MAX` entries a global sort is avoided (it costs many passes): the
vector is cut into rows of :data:`CHUNK` entries, each sorted on its own (one pass, in
shared memory on a GPU), and the threshold is found by a two-stage search of static shape
over these sorted rows (:func:`_search`): a regular sample of every row (one key in ``s``,
``s ~ sqrt(CHUNK)``) is sorted, :data:`PIVOTS` pivots are taken from it and the piecewise
linear function ``f(theta)`` is evaluated at all of them at once (``searchsorted`` of the
pivots in every row); between the two pivots that bracket the root, every row holds at most
``s`` more keys than it has samples there ("regular sampling", Shi & Schaeffer 1992), so
the keys inside the bracket fit in a buffer of ``s (g + P)`` slots (P rows, ``g`` samples
per pivot), gathered, sorted, and scanned exactly; a last evaluation at the start of the
linear piece found gives the exact root.  Exact l1,inf uses the same search on the
breakpoints of ``theta -> sum_g mu_g(theta)`` (the groups' sorted ``c`` rows, Quattoni et
al. 2009): no Newton iteration, exact for every input.

Cost, float32, counted in passes (one read + one write of the n entries) and torch ops
(~ kernel launches; they dominate at 1000 x 1000 on a GPU, where each costs a few us of
host time), one-sort / chunked search:

==============  =========================================  ===========
operator        passes (4096 x 4096, estimated)            torch ops
==============  =========================================  ===========
l1              ~8.5 (abs, row sort, f64 cumsum, soft, select)  25 / 93
l21             ~1.5 (~3.5 if the f64 norm copies W)        33
l1inf_bilevel   ~1.5 (max reduction, clip)                  31
l11             ~11 (transposed abs, row sort, cumsum, c,   49
                soft threshold, select)
l1inf           ~13 (transposed abs, row sort, cumsum, c,   79 / 110
                monotone breakpoints, cs / k table, clip)
==============  =========================================  ===========

float64 input adds the scaling (~2 passes, ~20 small ops).  ``benchmarks/gpu_projections.py``
times all of this on a GPU against the targets and compares both searches.
"""

from __future__ import annotations

import math

import torch

from projlib.projections._scaling import rescaled
from projlib.projections._validate import check_finite_norm

#: Raise ``ValueError`` on NaN/inf entries (one host sync per call) instead of returning NaN.
CHECK_FINITE = False
#: Up to this many keys a threshold search sorts everything at once (fewer kernel launches);
#: above it, the chunked two-stage search (fewer passes over memory).
FULL_SORT_MAX = 1 << 20
#: Row length of the chunked search (a power of two; <= 4096 keeps each row sort in one
#: thread block on CUDA).
CHUNK = 4096
#: Number of pivots of the first stage of the chunked search.
PIVOTS = 1024

_F64 = torch.float64
_INF = float("inf")
_NAN = float("nan")


# ------------------------------------------------------------------------------ scaling


class _Scale:
    """Device-side power-of-two scaling of a float64 input: W * f with f = 2**k exactly."""

    def __init__(self, top: torch.Tensor) -> None:
        e = torch.frexp(top).exponent.to(torch.int64)  # 2**(e-1) <= max|W| < 2**e
        # k = -e brings the max into [0.5, 1); capped at 2**1023 for all-subnormal inputs
        # (max then in [2**-51, 1): still far from both ends of the range)
        self.k = (-e).clamp(-1100, 1023)
        f1, f2 = _pow2_pair(self.k)
        self.f = f1 * f2  # 2**k for k in [-1100, 1023]: exact, subnormal below -1022
        self.back = _pow2_pair(-self.k)  # 2**-k as two exact normal factors

    def scale_back(self, p: torch.Tensor, up: bool) -> torch.Tensor:
        """p * 2**-k, rounded toward +inf (up) or toward 0 where it lands below the normal
        range (p >= 0; the multiplication is exact everywhere else)."""
        q = p * self.back[0] * self.back[1]
        check = q * self.f  # scaling back up is exact
        if up:
            return torch.where(check < p, torch.nextafter(q, _full(_INF, q)), q)
        return torch.where(check > p, torch.nextafter(q, _full(0.0, q)), q)


def _pow2_pair(k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(2**h, 2**(k-h)), h = floor(k / 2): two exact normal float64 powers of two whose
    product is 2**k, for |k| <= 2044 (built from their bit patterns)."""
    h = torch.div(k, 2, rounding_mode="floor")
    return _pow2(h), _pow2(k - h)


def _pow2(k: torch.Tensor) -> torch.Tensor:
    return ((k + 1023) << 52).view(_F64)


_CONSTS: dict[tuple, torch.Tensor] = {}


def _full(value: float, like: torch.Tensor) -> torch.Tensor:
    """A 0-dim constant on ``like``'s device and dtype, created once and only ever read
    (saves a fill launch per use)."""
    key = (value, like.dtype, like.device)
    c = _CONSTS.get(key)
    if c is None:
        c = _CONSTS[key] = torch.full((), value, dtype=like.dtype, device=like.device)
    return c


def _prepare(X: torch.Tensor, radius: float) -> tuple[torch.Tensor, torch.Tensor, _Scale | None]:
    """(Xs, r, scale): the input at its working scale, the radius there as a float64 (1,)
    tensor, and the scaling (None for float32: Xs is X itself)."""
    if X.dtype != _F64:
        return X, torch.full((1,), radius, dtype=_F64, device=X.device), None
    sc = _Scale(torch.linalg.vector_norm(X, ord=_INF))
    return X * sc.f, (radius * sc.f).reshape(1), sc


def _param(p: torch.Tensor, sc: _Scale | None, dtype: torch.dtype, up: bool) -> torch.Tensor:
    """float64 per-group parameters at the working scale -> at the input's scale, in its
    dtype, rounded toward the feasible side: up for thresholds, down for clip levels and
    scales (p >= 0, +inf and NaN allowed)."""
    if sc is not None:
        p = sc.scale_back(p, up)
    if p.dtype == dtype:
        return p
    q = p.to(dtype)
    if up:
        return torch.where(q < p, torch.nextafter(q, _full(_INF, q)), q)
    return torch.where(q > p, torch.nextafter(q, _full(-_INF, q)), q)


def _finite_or_nan(p: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
    """p where the total norm (>= 0) is finite, NaN otherwise (NaN/inf entries: all-NaN
    result)."""
    return torch.where(total < _INF, p, _NAN)


def _check(total: torch.Tensor, arg: str = "W") -> None:
    if CHECK_FINITE:  # the one optional host sync, after all the work is queued
        check_finite_norm(float(total), arg)


# --------------------------------------------------------------------- threshold searches


def _rows_desc(Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows of Y (G, m) sorted descending (Z, Y's dtype), cs = cumsum(Z) and
    c_k = cs_k - k Z_k (both float64; c_1 = 0 and c is non-decreasing along each row up to
    rounding: among ties it can dip by a few ulps)."""
    Z = torch.sort(Y, dim=1, descending=True).values
    cs = torch.cumsum(Z, dim=1, dtype=_F64)
    k = torch.arange(1, Z.shape[1] + 1, dtype=_F64, device=Y.device)
    return Z, cs, torch.addcmul(cs, Z, k, value=-1.0)


def _row_taus(cs: torch.Tensor, c: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """tau_g with sum_i max(Y_gi - tau_g, 0) = radii_g (float64 (G,)) from :func:`_rows_desc`.

    Rows already inside their radius get tau_g <= 0, radius 0 gives the row maximum (which
    zeroes the row when used as a soft threshold).  Any real Y (simplex) works.
    """
    rho = torch.searchsorted(c, radii.reshape(-1, 1)).clamp_(min=1)  # #{k : c_k < r_g}
    return ((cs.gather(1, rho - 1) - radii.reshape(-1, 1)) / rho).reshape(-1)


def _l1_theta(Y: torch.Tensor, r: torch.Tensor, nonneg: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(tau, total) for the l1 ball of radius r ((1,) float64) and the vector |Y| (any shape).

    total = sum |Y| (float64, (1,)); tau (1,) solves sum max(|Y| - tau, 0) = r when
    total > r (tau <= 0 otherwise).  ``nonneg``: Y >= 0 already (no abs pass).
    """
    n = Y.numel()
    flat = Y.reshape(-1)
    if n <= FULL_SORT_MAX:
        _, cs, c = _rows_desc((flat if nonneg else flat.abs()).reshape(1, n))
        return _row_taus(cs, c, r), cs[:, -1]
    # chunked: rows of CHUNK keys sorted ascending, padded with zeros (never above tau)
    L = CHUNK
    P = -(-n // L)
    buf = torch.empty(P * L, dtype=Y.dtype, device=Y.device)
    if nonneg:
        buf[:n].copy_(flat)
    else:
        torch.abs(flat, out=buf[:n])
    if P * L > n:
        buf[n:].zero_()
    keys = torch.sort(buf.view(P, L), dim=1).values
    csz = torch.zeros((P, L + 1), dtype=_F64, device=Y.device)
    torch.cumsum(keys, dim=1, dtype=_F64, out=csz[:, 1:])
    total = csz[:, L].sum().reshape(1)

    # f(t) = sum_{a > t} a - t #{a > t} - r = A - t B - r with pos_p = #{keys_p <= t}
    def coef(pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        A = total - csz.gather(1, pos).sum(0)
        return A, (P * L - pos.sum(0)).to(_F64)

    def delta(flat: torch.Tensor, key: torch.Tensor):  # crossing a key removes it
        return -key.to(_F64), None

    return _search(keys, r, coef, delta, pivots=True)[0], total


def _search(keys: torch.Tensor, r: torch.Tensor, coef, delta,
            pivots: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Root theta >= 0 of f(theta) = A(theta) - theta B(theta) - r, static shapes, no sync.

    f is continuous, non-increasing and linear between the breakpoints ``keys`` (P, L),
    non-negative, each row sorted ascending.  ``coef(pos)``, pos (P, K) = #{keys_p <= t_k},
    returns A(t_k), B(t_k) (K,); ``delta(flat, key)`` the jumps (dA, dB) of A and B when
    theta crosses the keys at flat indices ``flat`` (values ``key``; dB None: -1 each).
    Assumes f(0) > 0 (outside the ball); otherwise returns some theta <= (A(0) - r) / B(0),
    which the callers discard.

    ``pivots``: first narrow [0, inf) with the regular-sample pivots (module docstring), so
    that at most s (g + P) keys remain; otherwise every key is a candidate.

    Returns theta (1,) and pos (P, 1) = #{keys_p <= theta} (the same on the whole piece).
    """
    P, L = keys.shape
    dev = keys.device
    zero = _full(0.0, keys).reshape(1)
    if pivots:
        s = _stride(L)
        sample = torch.sort(keys[:, s - 1 :: s].reshape(-1)).values  # P L / s keys
        # K pivots, g samples apart: the bracket then holds <= s (g + P) keys; K beyond a
        # few L / s barely shrinks that (s P dominates) but costs P K queries
        g = -(-sample.numel() // min(PIVOTS, 4 * (L // s)))
        piv = torch.cat((zero, sample[g - 1 :: g]))  # sentinel 0, then K pivots
        K = piv.numel() - 1
        q = piv.expand(P, K + 1).contiguous()
        pos = torch.searchsorted(keys, q, right=True)  # #{keys <= pivot}
        pos_lt = torch.searchsorted(keys, q)  # #{keys < pivot}
        A, B = coef(pos)
        f = torch.addcmul(A - r, piv, B, value=-1.0)
        j = (f[1:] >= 0).sum().reshape(1)  # f non-increasing: root in [piv_j, piv_j+1)
        lo = piv.gather(0, j)
        A_lo, B_lo = A.gather(0, j), B.gather(0, j)
        pos_lo = pos.gather(1, j.expand(P, 1)).reshape(P)
        pos_hi = pos_lt.gather(1, (j + 1).clamp_(max=K).expand(P, 1)).reshape(P)
        pos_hi = torch.where(j < K, pos_hi, L)
        # the keys strictly inside the bracket, row by row, packed into a static buffer
        w = pos_hi - pos_lo
        incl = torch.cumsum(w, 0)
        slots = s * (g + P)
        t = torch.arange(slots, device=dev)
        row = torch.searchsorted(incl, t, right=True)
        valid = row < P
        row = row.clamp_(max=P - 1)
        flat = row * L + ((pos_lo - incl + w).gather(0, row) + t).clamp_(0, L - 1)
        cand = torch.where(valid, keys.reshape(-1).take(flat), _INF)
    else:
        lo = zero
        A_lo, B_lo = coef(torch.searchsorted(keys, zero.expand(P, 1).contiguous(), right=True))
        key = keys.reshape(-1)
        cand = torch.where(key > 0, key, _INF)  # rows sorted: the keys <= 0 are a prefix
        flat = None
    cand, perm = torch.sort(cand)
    dA, dB = delta(perm if flat is None else flat.gather(0, perm), cand)
    # A, B just after each candidate, f there; the last candidate with f >= 0 starts the
    # linear piece that holds the root (f(cand) exact up to rounding: a neighbouring piece
    # chosen by a rounding error still gives the root to that rounding)
    fa = A_lo + torch.cumsum(dA, 0)
    if dB is None:
        fb = B_lo - torch.arange(1, cand.numel() + 1, dtype=_F64, device=dev)
    else:
        fb = B_lo + torch.cumsum(dB, 0)
    fv = torch.where(cand < _INF, torch.addcmul(fa - r, cand, fb, value=-1.0), -1.0)
    J = (fv >= 0).sum().reshape(1)
    start = torch.where(J > 0, cand.gather(0, (J - 1).clamp_(min=0)), lo)
    # exact: A and B recomputed from the sorted rows at the start of that piece
    pos = torch.searchsorted(keys, start.expand(P, 1).contiguous(), right=True)
    A_f, B_f = coef(pos)
    return (A_f - r) / B_f, pos


def _stride(L: int) -> int:
    """Sample stride: a power of two near sqrt(L) dividing L (L is padded to a multiple)."""
    return 1 << max(0, round(math.log2(max(L, 1)) / 2))


# -------------------------------------------------------------------------- operators


def project_l1(X: torch.Tensor, radius: float) -> torch.Tensor:
    """Euclidean projection of ``X`` (any shape, read as one vector) onto the l1 ball."""
    if radius == 0.0:
        return torch.zeros_like(X)
    Xs, r, sc = _prepare(X, radius)
    tau, total = _l1_theta(Xs, r, nonneg=False)
    t = _param(_finite_or_nan(tau, total), sc, X.dtype, up=True).reshape(())
    out = torch.where((total <= r).reshape(()), X, _soft(X, t))
    _check(total)
    return out


def _soft(X: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``sign(x) max(|x| - t, 0)`` as ``x - clip(x, -t, t)``: exact +0.0 where |x| <= t."""
    return X - torch.clamp(X, min=-t, max=t)


def project_simplex(v: torch.Tensor, radius: float) -> torch.Tensor:
    """Projection of ``v`` (read as one vector) onto {x >= 0, sum x = radius}."""
    r = torch.full((1,), radius, dtype=_F64, device=v.device)
    _, cs, c = _rows_desc(v.reshape(1, -1))
    tau = _row_taus(cs, c, r)
    return torch.clamp(v.to(_F64) - tau, min=0.0).to(v.dtype)


def _group_rows(X3: torch.Tensor) -> torch.Tensor:
    """|X3| as contiguous rows (G, A*B), one per group (one pass, transposing if needed)."""
    A, G, B = X3.shape
    if A == 1:
        return X3[0].abs()
    out = torch.empty((G, A, B), dtype=X3.dtype, device=X3.device)
    torch.abs(X3.permute(1, 0, 2), out=out)
    return out.view(G, A * B)


def _outer(norms: torch.Tensor, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(theta, total) of u = P_B1(r)(norms) = max(norms - theta, 0), norms >= 0 float64:
    theta is exactly 0 when sum(norms) <= r, NaN when that sum is not finite."""
    theta, total = _l1_theta(norms, r, nonneg=True)
    theta = torch.where(total <= r, 0.0, theta)
    return _finite_or_nan(theta, total), total


def project_l21(X3: torch.Tensor, radius: float) -> torch.Tensor:
    """Group-lasso ball: groups rescaled by u_g / ||X_g||_2 with u = P_B1(radius)(norms)."""
    if radius == 0.0:
        return torch.zeros_like(X3)
    Xs, r, sc = _prepare(X3, radius)
    norms = torch.linalg.vector_norm(Xs, ord=2, dim=(0, 2), dtype=_F64)
    theta, total = _outer(norms, r)
    # inside: theta = 0 and the scale is norms / norms = 1 exactly
    scale = torch.where(norms > 0, (norms - theta).clamp_(min=0.0) / norms, 0.0)
    scale = _param(_finite_or_nan(scale, total), None, X3.dtype, up=False)
    out = X3 * scale.reshape(1, -1, 1)
    _check(total)
    return out


def project_l1inf_bilevel(X3: torch.Tensor, radius: float) -> torch.Tensor:
    """Bi-level l1,inf: clip every group at u_g with u = P_B1(radius)(group maxima)."""
    if radius == 0.0:
        return torch.zeros_like(X3)
    Xs, r, sc = _prepare(X3, radius)
    maxima = torch.linalg.vector_norm(Xs, ord=_INF, dim=(0, 2)).to(_F64)  # exact
    theta, total = _outer(maxima, r)
    u = torch.where(total <= r, _INF, (maxima - theta).clamp_(min=0.0))  # inside: identity
    u = _param(u, sc, X3.dtype, up=False).reshape(1, -1, 1)
    out = torch.clamp(X3, min=-u, max=u)
    _check(total)
    return out


def project_l11(X3: torch.Tensor, radius: float) -> torch.Tensor:
    """Bi-level l1,1: u = P_B1(radius)(group l1 norms), then group g onto the l1 ball of u_g."""
    if radius == 0.0:
        return torch.zeros_like(X3)
    Xs, r, sc = _prepare(X3, radius)
    G = X3.shape[1]
    if G == 1:  # one group: the l1 ball of radius min(||X||_1, radius)
        tau, total = _l1_theta(Xs, r, nonneg=False)
    else:
        _, cs, c = _rows_desc(_group_rows(Xs))
        theta, total = _outer(cs[:, -1].contiguous(), r)  # group l1 norms, exact sums
        u = (cs[:, -1] - theta).clamp_(min=0.0)
        # u_g = 0 removes the group: an infinite threshold zeroes it exactly, whatever the
        # rounding of its c row among ties
        tau = torch.where(u > 0, _row_taus(cs, c, u).clamp_(min=0.0), _INF)
    t = _param(_finite_or_nan(tau, total), sc, X3.dtype, up=True).reshape(1, -1, 1)
    out = torch.where((total <= r).reshape(()), X3, _soft(X3, t))
    _check(total)
    return out


def project_l1inf(X3: torch.Tensor, radius: float) -> torch.Tensor:
    """Exact Euclidean projection onto {sum_g max_i |X_ig| <= radius}.

    Optimality (Quattoni et al. 2009): group g is clipped at mu_g(theta), the l1 threshold of
    |X_g| at radius theta (0 once theta >= ||X_g||_1), and theta solves
    f(theta) = sum_g mu_g(theta) - radius = 0.  f is continuous, decreasing and linear
    between breakpoints: with Z_g sorted descending, cs its cumsum and c_k = cs_k - k Z_k,
    element k of group g becomes clipped at theta = c_k (k >= 2) and the group vanishes at
    theta = cs_m.  Between breakpoints mu_g = (cs_k - theta) / k, so f = A - theta B - radius
    with A = sum cs_k / k, B = sum 1 / k over the live groups.  The root is found by
    :func:`_search` over these sorted breakpoint rows (static shapes, exact, no sync):
    O(n log m) for the row sorts plus O(n) for the search.
    """
    if radius == 0.0:
        return torch.zeros_like(X3)
    Xs, r, sc = _prepare(X3, radius)
    A, G, B = X3.shape
    if G == 1 or A * B == 1:
        return _l1inf_degenerate(X3, Xs, r, sc)
    _, cs, c = _rows_desc(_group_rows(Xs))
    maxima = cs[:, 0]  # exact (NaN sorts first)
    total = maxima.sum().reshape(1)
    G, m = cs.shape
    pivots = G * m > FULL_SORT_MAX
    L = -(-m // _stride(m)) * _stride(m) if pivots else m
    # breakpoints of group g: c_2..c_m, then the group total (where it vanishes), padded
    # with copies of the total (crossed with it, zero jumps).  Rounding can leave c a few
    # ulps non-monotone among ties; the running max restores the sorted rows the search
    # needs (a rounding-level change; c_k <= cs_k <= cs_m keeps the totals last)
    keys = torch.empty((G, L), dtype=_F64, device=X3.device)
    torch.cummax(c[:, 1:], dim=1, out=(keys[:, : m - 1],
                                       torch.empty((G, m - 1), dtype=torch.int64,
                                                   device=X3.device)))
    keys[:, m - 1 :] = cs[:, m - 1 :]
    # with pos breakpoints crossed, group g contributes a = cs_k / k and b = 1 / k (k = pos+1)
    # to A and B while pos < m, nothing once it has vanished: tables indexed by pos
    k = torch.arange(1, m + 1, dtype=_F64, device=X3.device)
    aK = torch.zeros((G, L + 1), dtype=_F64, device=X3.device)
    torch.div(cs, k, out=aK[:, :m])
    bT = torch.zeros(L + 2, dtype=_F64, device=X3.device)
    torch.reciprocal(k, out=bT[:m])
    dbT = bT.diff()  # jump of b when breakpoint idx is crossed
    aflat = aK.view(-1)

    def coef(pos):
        return aK.gather(1, pos).sum(0), bT.take(pos).sum(0)

    def delta(flat, key):  # key (g, i) moves group g from pos i to i + 1
        g = torch.div(flat, L, rounding_mode="floor")
        i0 = flat + g  # g (L + 1) + i
        return aflat.take(i0 + 1) - aflat.take(i0), dbT.take(flat - g * L)

    theta, pos = _search(keys, r, coef, delta, pivots)
    mu = torch.addcmul(aK.gather(1, pos).reshape(G), bT.take(pos).reshape(G), theta,
                       value=-1.0).clamp_(min=0.0)
    mu = torch.where(total <= r, _INF, mu)  # inside: no clipping (signed zeros kept)
    u = _param(_finite_or_nan(mu, total), sc, X3.dtype, up=False).reshape(1, -1, 1)
    out = torch.clamp(X3, min=-u, max=u)
    _check(total)
    return out


def _l1inf_degenerate(X3, Xs, r, sc) -> torch.Tensor:
    """One group: the l-inf ball, clip at min(max|X|, r).  Groups of one entry: the l1 ball
    (clipping x_g at (|x_g| - theta)_+ is soft thresholding)."""
    if X3.shape[1] == 1:
        maxima = torch.linalg.vector_norm(Xs, ord=_INF).to(_F64).reshape(1)
        total = maxima
        mu = r
    else:
        maxima = Xs.reshape(-1).abs().to(_F64)
        theta, total = _l1_theta(maxima, r, nonneg=True)
        mu = (maxima - theta).clamp_(min=0.0)
    mu = torch.where(total <= r, _INF, mu)  # inside: no clipping (signed zeros kept)
    u = _param(_finite_or_nan(mu, total), sc, X3.dtype, up=False).reshape(1, -1, 1)
    out = torch.clamp(X3, min=-u, max=u)
    _check(total)
    return out


# ------------------------------------------------------------------------------- nuclear

# Largest entry for which the nuclear ball runs its SVD unscaled: the SVD's own sums of squares
# (Frobenius and column norms, rotations) then stay far inside the range on every backend.
_NUCLEAR_SAFE = {torch.float32: (2.0**-30, 2.0**30), torch.float64: (2.0**-300, 2.0**300)}
_UNIT_ROUNDOFF = {torch.float32: 2.0**-24, torch.float64: 2.0**-53}


def project_nuclear(M: torch.Tensor, radius: float, precise: bool | None = None) -> torch.Tensor:
    """Nuclear-ball projection of a matrix: one thin SVD, singular values onto the l1 ball.

    Raises ValueError on NaN/inf entries (checked before the SVD: LAPACK may hang on them):
    that check is this operator's one host sync (``torch.linalg.svd`` synchronises anyway).

    ``precise`` (default: True off the CPU): SVD and reconstruction in float64, the result
    rounded to M's dtype, and for float32 the kept singular values shrunk by the factor
    1 - sqrt(min(m, n)) u ||s'||_2 / ||s'||_1 (u = 2**-24), which bounds the nuclear norm of
    that final rounding (||E||_* <= sqrt(rank) ||E||_F <= sqrt(rank) u ||P||_F): the result
    is feasible up to the float64 SVD's own error (~1e-15), at a relative cost of at most
    sqrt(min(m, n)) * 6e-8 in accuracy.  (float32 GPU SVDs, and TF32 matmuls when enabled,
    left results 1e-4 outside the ball.)  The inside-ball test is then a device-side select
    and the reconstruction uses every singular vector (no sync for the kept rank).  On the
    CPU (precise False) the float32 LAPACK SVD is accurate and kept as is.
    """
    if M.numel() == 0:
        return M.clone()
    if precise is None:
        precise = M.device.type != "cpu"
    top = float(M.abs().amax())  # the sync: amax propagates NaN
    check_finite_norm(top)
    lo, hi = _NUCLEAR_SAFE[M.dtype]
    safe = lo <= top <= hi or (precise and M.dtype != _F64)  # float64 holds any float32 SVD
    if not safe:  # SVD of the exactly rescaled matrix (and zeros: returned as is)
        return rescaled(_nuclear, M, radius, precise, False)
    P = _nuclear(M, radius, precise, precise)
    return M.clone() if P is None else P


def _nuclear(M: torch.Tensor, radius: float, precise: bool, lazy: bool) -> torch.Tensor | None:
    """The projection, or None when M is inside (only when not ``lazy``: a host test)."""
    work = _F64 if precise else M.dtype
    U, s, Vh = torch.linalg.svd(M.to(work), full_matrices=False)
    total = s.sum(dtype=_F64)
    if not lazy:
        tot = float(total)
        check_finite_norm(tot)
        if tot <= radius:
            return None
    if radius == 0.0:
        return torch.zeros_like(M)
    r = torch.full((1,), radius, dtype=_F64, device=M.device)
    _, cs, c = _rows_desc(s.to(_F64).reshape(1, -1))
    s2 = torch.clamp(s.to(_F64) - _row_taus(cs, c, r), min=0.0)
    # Each s_k - tau cancels when the radius is far below the nuclear norm (relative error
    # ~ u * s_k / radius: 1e-5 at radius = 1e-11 ||M||_*); sum(s2) = radius is then restored
    # by one exact-to-rounding rescale, so the result stays inside the ball.
    l1 = s2.sum()
    s2 = s2 * torch.where(l1 > radius, radius / torch.where(l1 > 0, l1, 1.0), 1.0)
    if not precise:
        s2 = s2.to(M.dtype)
        keep = int((s2 > 0).sum().item())
        return (U[:, :keep] * s2[:keep]) @ Vh[:keep]
    if M.dtype != _F64:
        u = _UNIT_ROUNDOFF[M.dtype] * math.sqrt(min(M.shape))
        l1 = s2.sum()
        s2 = s2 * (1.0 - u * torch.linalg.vector_norm(s2) / torch.where(l1 > 0, l1, 1.0))
    P = ((U * s2.to(work)) @ Vh).to(M.dtype)
    return torch.where(total <= radius, M, P) if lazy else P
