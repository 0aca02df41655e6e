"""Triton kernels for the exact l1,inf ball on CUDA (``project_l1inf`` of a float32 weight):
a search of theta by passes over the groups' breakpoints, no host synchronisation.

Group g is clipped at mu_g(theta), the l1 threshold of |X_g| at radius theta, and theta
solves F(theta) = sum_g mu_g(theta) = r (Quattoni et al. 2009; ``_torch_ops.project_l1inf``
states the algebra).  With Z_g sorted descending, cs its cumsum and c_k = cs_k - k Z_k,
theta crosses the breakpoints c_2 .. c_m and then cs_m (where the group vanishes); with pos
of them crossed, mu_g = (cs_{pos+1} - theta) / (pos + 1), and F is linear between
breakpoints.  The torch path (79-110 torch ops, ~13 passes over a 4096x4096 weight) sorts all
breakpoints in rows and searches them; here:

1. ``_prep`` (one program per group, as the l11 kernel): the group sorted, cs and its
   breakpoints (a running max: rounding can leave c a few ulps non-monotone among ties) in
   float64, the group's maximum and total;
2. ``_select`` with FIRST (one program): the norm sum_g max_g (inside the ball: the input
   comes back; not finite: NaN) and the first K points, from 0 to the largest group total;
3. ``_pass`` (one program per group): for each of the K points, the breakpoints crossed
   (a binary search) and mu_g, in float64;
4. ``_select`` (one program): F at every point, the bracket (lo, hi) beyond the float64
   sums' error bound, the breakpoints inside it and their smallest and largest value; the
   next points are those breakpoints themselves when they are at most K - 2 (or all equal),
   which ends the search (no breakpoint is left between two adjacent points), otherwise
   lo, the smallest, K - 4 splits, the largest, hi.  :data:`PASSES` passes are launched,
   each returning at once when the search is done (no host decision);
5. ``_finish`` (one program): on the linear piece [lo, hi], theta = (A - r) / B with
   A = sum cs_{pos+1} / (pos + 1) and B = sum 1 / (pos + 1) over the live groups (exact up to
   float64 rounding, as the torch path), and each group's clip level mu_g rounded down to
   float32 (the feasible side);
6. ``_apply`` (one program per group): clip at mu_g; the input bit for bit inside the ball.

Eligible as the bi-level kernels (``_triton_ops.eligible``: float32, groups of at most 4096
entries, 2 to 8192 groups); memory: 16 bytes of breakpoints and sums per entry.
"""

from __future__ import annotations

import functools

import torch

from projlib.projections import _triton_ops

triton = None
tl = None

#: Points evaluated by each pass.
K = 32
#: Search passes (each returns at once when the search is done).
PASSES = 10
#: Groups per step of the single-program reductions.
RB = 128
#: Bound on the relative error of F's float64 sums (<= 8192 groups).
MARGIN = 1e-11

# slots of the float64 ``par`` buffer (the kernels index it by these numbers; the tests read
# the state, bracket and result slots by these names)
_R, _TOTAL, _LO, _HI, _JLO, _STATE, _BANDROUND, _THETA, _NIN, _JHI = range(10)
_NPAR = 16
# _STATE: 0 searching, 1 done (theta from the piece at lo), 2 inside the ball or not finite


def _max_py(a, b):  # pragma: no cover - GPU/interpreter
    return tl.maximum(a, b)


def _prep(x_ptr, keys_ptr, cs_ptr, gs_ptr, G, B, m, BLOCK: tl.constexpr):  # pragma: no cover
    """Group g: cs and the breakpoints (float64, BLOCK apart); its maximum and total (NaN
    when the group holds a NaN)."""
    g = tl.program_id(0)
    i = tl.arange(0, BLOCK)
    offs = (i // B) * (G * B) + g * B + i % B
    y = tl.abs(tl.load(x_ptr + offs, mask=i < m, other=0.0))
    nan = tl.sum((y != y).to(tl.int32), axis=0) > 0
    z = tl.sort(y, descending=True).to(tl.float64)
    cs = tl.cumsum(z, axis=0)
    c = tl.associative_scan(cs - (i + 1).to(tl.float64) * z, 0, _max)
    row = g.to(tl.int64) * BLOCK
    tl.store(cs_ptr + row + i, cs, mask=i < m)
    tl.store(keys_ptr + row + i - 1, c, mask=(i >= 1) & (i < m))  # c_2 .. c_m
    total = tl.sum(tl.where(i == m - 1, cs, 0.0), axis=0)
    tl.store(keys_ptr + row + m - 1, total)  # where the group vanishes
    top = tl.sum(tl.where(i == 0, z, 0.0), axis=0)
    tl.store(gs_ptr + 2 * g, tl.where(nan, float("nan"), top))
    tl.store(gs_ptr + 2 * g + 1, tl.where(nan, float("nan"), total))


def _pass(keys_ptr, cs_ptr, pts_ptr, par_ptr, mu_ptr, pos_ptr, m, BLOCK: tl.constexpr,
          K: tl.constexpr, LOG: tl.constexpr):  # pragma: no cover - GPU/interpreter
    """Group g at each point: pos (breakpoints <= t, binary search) and mu_g(t)."""
    if tl.load(par_ptr + 5) == 0.0:
        g = tl.program_id(0)
        row = g.to(tl.int64) * BLOCK
        k = tl.arange(0, K)
        t = tl.sort(tl.load(pts_ptr + k))
        lo = tl.zeros([K], dtype=tl.int32)
        hi = lo + m
        for _ in range(LOG):
            live = lo < hi
            mid = (lo + hi) // 2
            key = tl.load(keys_ptr + row + mid, mask=live, other=0.0)
            lo = tl.where(live & (key <= t), mid + 1, lo)
            hi = tl.where(live & (key > t), mid, hi)
        c = tl.load(cs_ptr + row + lo, mask=lo < m, other=0.0)
        mu = tl.where(lo < m, tl.maximum((c - t) / (lo + 1).to(tl.float64), 0.0), 0.0)
        tl.store(mu_ptr + g * K + k, mu)
        tl.store(pos_ptr + g * K + k, lo)


def _select(gs_ptr, mu_ptr, pos_ptr, keys_ptr, G, pts_ptr, par_ptr, FIRST: tl.constexpr,
            BLOCK: tl.constexpr, K: tl.constexpr, RB: tl.constexpr,
            MARGIN: tl.constexpr):  # pragma: no cover - GPU/interpreter
    """The first points (FIRST), or a pass reduced: the new bracket and the next points."""
    if tl.load(par_ptr + 5) == 0.0:
        k = tl.arange(0, K)
        r = tl.load(par_ptr)
        if FIRST:
            c2 = tl.arange(0, 2)
            top = tl.zeros([2], dtype=tl.float64)  # (sum of maxima, largest total)
            for g0 in range(0, G, RB):
                gg = g0 + tl.arange(0, RB)
                v = tl.load(gs_ptr + 2 * gg[:, None] + c2[None, :], mask=(gg < G)[:, None],
                            other=0.0)
                top = tl.where(c2 == 0, top + tl.sum(v, axis=0), tl.maximum(top, tl.max(v, 0)))
            total = tl.sum(tl.where(c2 == 0, top, 0.0), axis=0)
            vmax = tl.sum(tl.where(c2 == 1, top, 0.0), axis=0)
            tl.store(par_ptr + 1, total)
            bad = (total != total) | (total == float("inf"))
            tl.store(par_ptr + 5, tl.where((total <= r) | bad, 2.0, 0.0))
            tl.store(pts_ptr + k, _split(k, 0.0 * vmax, vmax, K))
        else:
            t = tl.sort(tl.load(pts_ptr + k))
            S = _colsum(mu_ptr, G, K, RB)
            N = _colsum(pos_ptr, G, K, RB)  # breakpoints <= each point
            F = S - r
            err = MARGIN * S
            jlo = tl.max(tl.where(F > err, k, 0), axis=0)  # F(lo) > 0 for certain
            jhi = tl.min(tl.where(-F > err, k, K - 1), axis=0)  # F(hi) < 0 for certain
            lo = tl.sum(tl.where(k == jlo, t, 0.0), axis=0)
            hi = tl.sum(tl.where(k == jhi, t, 0.0), axis=0)
            n_in = (tl.sum(tl.where(k == jhi, N, 0.0), axis=0)
                    - tl.sum(tl.where(k == jlo, N, 0.0), axis=0))  # breakpoints in (lo, hi]
            tl.store(par_ptr + 2, lo)
            tl.store(par_ptr + 3, hi)
            tl.store(par_ptr + 4, jlo.to(tl.float64))
            tl.store(par_ptr + 9, jhi.to(tl.float64))
            tl.store(par_ptr + 8, n_in)
            done = tl.where((n_in == 0.0) | (tl.load(par_ptr + 6) != 0.0), 1.0, 0.0)
            tl.store(par_ptr + 5, done)
            if done == 0.0:
                # the breakpoints in (lo, hi]: group g's are keys[pos_lo .. pos_hi - 1]
                small = n_in <= K - 2
                kmin = hi
                kmax = lo
                carry = jlo * 0
                for g0 in range(0, G, RB):
                    gg = g0 + tl.arange(0, RB)
                    ok = gg < G
                    p_lo = tl.load(pos_ptr + gg * K + jlo, mask=ok, other=0)
                    w = tl.load(pos_ptr + gg * K + jhi, mask=ok, other=0) - p_lo
                    row = gg.to(tl.int64) * BLOCK
                    first = tl.load(keys_ptr + row + p_lo, mask=w > 0, other=float("inf"))
                    last = tl.load(keys_ptr + row + p_lo + w - 1, mask=w > 0,
                                   other=float("-inf"))
                    kmin = tl.minimum(kmin, tl.min(first, axis=0))
                    kmax = tl.maximum(kmax, tl.max(last, axis=0))
                    if small:  # copy them into slots 1 .. n_in of the points
                        off = carry + tl.cumsum(w, axis=0) - w
                        for j in range(K - 2):
                            sel = w > j
                            key = tl.load(keys_ptr + row + p_lo + j, mask=sel, other=0.0)
                            tl.store(pts_ptr + 1 + off + j, key, mask=sel)
                    carry += tl.sum(w, axis=0)
                band = small | (kmin == kmax)
                tl.store(par_ptr + 6, tl.where(band, 1.0, 0.0))
                if small:  # slot 0 lo, then the breakpoints, then hi
                    tl.store(pts_ptr + k, tl.where(k == 0, lo, hi),
                             mask=(k == 0) | (k > n_in))
                else:  # lo, kmin, splits of (kmin, kmax), kmax, hi
                    inner = _split(k - 1, kmin, kmax, K - 2)
                    tl.store(pts_ptr + k, tl.where(k == 0, lo, tl.where(k == K - 1, hi, inner)))


def _piece_py(pos_ptr, cs_ptr, g0, G, j, m, BLOCK: tl.constexpr, K: tl.constexpr,
              RB: tl.constexpr):  # pragma: no cover - GPU/interpreter
    """Groups g0 .. g0 + RB on the linear piece of point j: (cs_{pos+1}, 1 / (pos + 1)),
    both 0 for a vanished group (mu_g = (cs_{pos+1} - theta) / (pos + 1)), and the groups."""
    gg = g0 + tl.arange(0, RB)
    ok = gg < G
    p = tl.minimum(tl.maximum(tl.load(pos_ptr + gg * K + j, mask=ok, other=m), 0), m)
    live = ok & (p < m)
    c = tl.load(cs_ptr + gg.to(tl.int64) * BLOCK + p, mask=live, other=0.0)
    return c, tl.where(live, 1.0 / (p + 1).to(tl.float64), 0.0), gg


def _finish(pos_ptr, cs_ptr, par_ptr, u_ptr, G, m, BLOCK: tl.constexpr,
            K: tl.constexpr, RB: tl.constexpr):  # pragma: no cover - GPU/interpreter
    """theta on the linear piece at lo, then every group's clip level (float32, down).
    Should the search not have ended within the passes: theta = hi (feasible, not exact)."""
    state = tl.load(par_ptr + 5)
    if state != 2.0:
        r = tl.load(par_ptr)
        jlo = tl.where(state == 1.0, tl.load(par_ptr + 4), tl.load(par_ptr + 9)).to(tl.int32)
        A = tl.zeros([RB], dtype=tl.float64)
        Bs = tl.zeros([RB], dtype=tl.float64)
        for g0 in range(0, G, RB):
            c, inv, _ = _piece(pos_ptr, cs_ptr, g0, G, jlo, m, BLOCK, K, RB)
            A += c * inv
            Bs += inv
        theta = (tl.sum(A, axis=0) - r) / tl.sum(Bs, axis=0)
        theta = tl.minimum(tl.maximum(theta, tl.load(par_ptr + 2)), tl.load(par_ptr + 3))
        theta = tl.where(state == 1.0, theta, tl.load(par_ptr + 3))
        tl.store(par_ptr + 7, theta)
        for g0 in range(0, G, RB):
            c, inv, gg = _piece(pos_ptr, cs_ptr, g0, G, jlo, m, BLOCK, K, RB)
            tl.store(u_ptr + gg, _to_f32(tl.maximum((c - theta) * inv, 0.0), False), mask=gg < G)


def _apply(x_ptr, out_ptr, u_ptr, par_ptr, G, B, m,
           BLOCK: tl.constexpr):  # pragma: no cover - GPU/interpreter
    """Group g clipped at u_g; the input inside the ball; NaN when the norm is not finite."""
    g = tl.program_id(0)
    i = tl.arange(0, BLOCK)
    offs = (i // B) * (G * B) + g * B + i % B
    x = tl.load(x_ptr + offs, mask=i < m, other=0.0)
    state = tl.load(par_ptr + 5)
    total = tl.load(par_ptr + 1)
    u = tl.load(u_ptr + g)
    y = tl.where(state == 2.0, x, tl.minimum(tl.maximum(x, -u), u))
    y = tl.where(total < float("inf"), y, float("nan"))
    tl.store(out_ptr + offs, y, mask=i < m)


_split = _max = _piece = _colsum = _to_f32 = None  # the helpers the kernels call (_kernels)


@functools.cache
def _kernels():
    """The jitted kernels (built on first use, honouring ``TRITON_INTERPRET`` set by then)."""
    global triton, tl, _split, _max, _piece, _colsum, _to_f32
    h = _triton_ops.helpers()
    triton, tl = _triton_ops.triton, _triton_ops.tl
    _split, _colsum, _to_f32 = h["_split"], h["_colsum"], h["_to_f32"]
    _max, _piece = triton.jit(_max_py), triton.jit(_piece_py)
    return tuple(triton.jit(f) for f in (_prep, _pass, _select, _finish, _apply))


def _reset() -> None:
    _kernels.cache_clear()


def project(X3: torch.Tensor, radius: float, *, passes: int = PASSES,
            info: dict | None = None) -> torch.Tensor | None:
    """The exact l1,inf projection of an eligible (A, G, B) tensor
    (``_triton_ops.eligible``), or None when a kernel failed to compile or to launch (the
    caller then takes the torch path).  ``passes`` (at least 1: the last pass's breakpoint
    counts are what ``_finish`` reads), ``info`` (receives the device buffer ``par``): for
    the tests."""
    if radius == 0.0:
        return torch.zeros_like(X3)
    prep, pass_, select, finish, apply = _kernels()
    A, G, B = X3.shape
    m = A * B
    block = max(triton.next_power_of_2(m), 16)
    dev = X3.device
    par = torch.zeros(_NPAR, dtype=torch.float64, device=dev)
    par[_R].fill_(radius)  # (a Python float would reach a kernel as float32)
    keys = torch.empty((G, block), dtype=torch.float64, device=dev)
    cs = torch.empty((G, block), dtype=torch.float64, device=dev)
    gs = torch.empty(2 * G, dtype=torch.float64, device=dev)
    pts = torch.empty(K, dtype=torch.float64, device=dev)
    mu = torch.empty((G, K), dtype=torch.float64, device=dev)
    pos = torch.empty((G, K), dtype=torch.int32, device=dev)
    u = torch.empty(G, dtype=torch.float32, device=dev)
    out = torch.empty_like(X3)
    if info is not None:
        info["par"] = par
    warps = _triton_ops._warps(block)
    search = {"BLOCK": block, "K": K, "RB": RB}
    try:
        prep[(G,)](X3, keys, cs, gs, G, B, m, BLOCK=block, num_warps=warps)
        select[(1,)](gs, mu, pos, keys, G, pts, par, FIRST=True, MARGIN=MARGIN, **search)
        for _ in range(max(passes, 1)):
            pass_[(G,)](keys, cs, pts, par, mu, pos, m, BLOCK=block, K=K,
                        LOG=block.bit_length(), num_warps=1)
            select[(1,)](gs, mu, pos, keys, G, pts, par, FIRST=False, MARGIN=MARGIN, **search)
        finish[(1,)](pos, cs, par, u, G, m, num_warps=4, **search)
        apply[(G,)](X3, out, u, par, G, B, m, BLOCK=block, num_warps=warps)
    except Exception as exc:  # compile or launch failure: fall back, say so once
        _triton_ops.disable(exc)
        return None
    return out
