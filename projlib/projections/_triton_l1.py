"""Triton kernels for the l1 ball on CUDA (``project_l1`` of a float32 tensor): no sort, no
host synchronisation, a few passes over the data.

The threshold tau solves phi(tau) = sum_i max(|x_i| - tau, 0) = r; phi is convex,
decreasing and piecewise linear.  The torch path (``_torch_ops.project_l1``) sorts rows of
4096 entries and searches them (25-93 torch ops, ~8.5 passes over a 4096x4096 weight); here:

1. ``_pass`` (one program per :data:`BLOCK` entries): for :data:`K` points t_k, the float64
   sum and the count of |x_i| > t_k over the program's entries.  The first pass takes the
   points 0, 2**-126, 2**-118, ..., 2**106 and the largest float32, and the total sum of |x|
   (NaN or inf there: an all-NaN result, as the torch path);
2. ``_select`` (one program): the programs' sums, phi at every point, the new bracket
   (lo, hi): lo the last point where phi >= r and hi the first where phi < r, both beyond
   the float64 sums' error bound (:data:`MARGIN`), so the bracket holds tau for certain.
   The next pass's points split it geometrically (hi > 4 lo) or evenly, rounded to float32,
   with lo and hi themselves first and last (their per-program counts are needed below).
   The search is done once the bracket holds at most :data:`CAP` entries, or at most two
   float32 values (the float64 error bound is far below a float32 step, so it gets there
   even when tau is a value shared by many entries); each pass after that returns at once
   (:data:`PASSES` passes are launched, always: deciding to stop on the host would need a
   sync).  From 2**26 float32 values (one first-pass bracket) a 31-way split reaches two
   values in about 5 passes; typical data needs 1-3;
3. ``_collect`` (one program per BLOCK entries): the float64 sums of |x| above lo and above
   hi, the count of entries equal to hi, and the entries of (lo, hi] (the band) written to a
   buffer at offsets from the programs' counts (an exclusive prefix sum over the programs: a
   deterministic order);
4. ``_finish`` (one program): the band sorted descending, tau by the Held et al. (1974)
   formula over the entries above hi plus the band's top entries, all in float64 (exact up
   to float64 rounding, like the CPU kernel); a bracket of two float32 values v < hi needs
   no band (phi is linear on [lo, v] and on [v, hi], known from the sums and the count at
   hi); tau rounded up to float32 (should the search not have ended within PASSES, t = hi:
   feasible, a few float32 steps above tau at most);
5. ``_apply``: ``x - clip(x, -t, t)`` (exact +0.0 where |x| <= t), the input bit for bit
   when it is inside the ball, NaN everywhere when its norm is not finite.

Everything the passes decide stays on the device (a float64 ``par`` buffer): no ``.item()``,
no data-dependent launch.  Each pass adds K float64 values per entry: cheap next to the
memory traffic on GPUs with fast float64 (H100/H200: half the float32 rate), compute bound on
those without (most consumer cards: 1/64), where the torch path may be faster.  Used for
float32 CUDA tensors (and CPU tensors under ``_triton_ops.ON_CPU``, how the interpreter tests
run it) when ``_triton_ops.available()`` (opt-in: ``GREENBENCH_TRITON=1``); a compile or
launch failure turns every Triton kernel off with one warning and the torch path takes over.
"""

from __future__ import annotations

import functools

import torch

from projlib.projections import _triton_ops

triton = None
tl = None

#: Points evaluated by each pass.
K = 32
#: Entries per program of the passes and of the collection.
BLOCK = 8192
#: Entries per step inside a program (a SUB x K tile of float64 sums).
SUB = 128
#: Search passes after the first (each returns at once when the search is done).
PASSES = 8
#: Most band entries ``_finish`` sorts (one program's bitonic sort).
CAP = 1024
#: Partial results per step of the single-program reductions.
RB = 128
#: Entries per program of ``_apply``.
ABLOCK = 4096
#: Bound on the relative error of a pass's float64 sums (64 terms a lane, then at most
#: 2**18 programs in chunks of RB: < 3e-13).
MARGIN = 1e-11
#: Largest tensor taken (offsets and counts are int32 per program, exact float64 in total).
MAX_N = (1 << 31) - BLOCK

# slots of the float64 ``par`` buffer (the kernels index it by these numbers; the tests read
# the state, bracket and result slots by these names)
_R, _TOTAL, _LO, _HI, _CLO, _CHI, _STATE, _NBAND, _T = range(9)
_NPAR = 16
# _STATE: 0 searching, 1 band collected, 2 inside the ball or not finite (the output is the
# input or NaN), 3 a bracket of two float32 values with more than CAP entries (no band)


def eligible(X: torch.Tensor) -> bool:
    """Whether :func:`project` takes ``X`` (float32, contiguous, on CUDA or interpreted)."""
    return (X.dtype == torch.float32 and X.is_contiguous() and 0 < X.numel() <= MAX_N
            and _triton_ops.eligible_device(X) and _triton_ops.available())


# --------------------------------------------------------------------------------- kernels


def _points_py(k, lo, hi, FIRST: tl.constexpr, K: tl.constexpr):  # pragma: no cover
    """The K points of a pass, float32, ascending: the first pass's fixed ladder, or lo,
    K - 2 points splitting (lo, hi), hi (lo and hi are float32 values: kept exactly)."""
    if FIRST:  # 0, 2**(-126 + 8 (k - 1)) for k = 1 .. K - 2 (up to 2**106), the largest float32
        t = ((k - 1) * 8 + 1 << 23).to(tl.float32, bitcast=True)
        t = tl.where(k == 0, 0.0, tl.where(k == K - 1, 3.4028234663852886e38, t))
    else:
        t = _split(k, lo, hi, K).to(tl.float32)
    return t


def _pass(x_ptr, n, pts_ptr, par_ptr, psum_ptr, pcnt_ptr, ptot_ptr, FIRST: tl.constexpr,
          K: tl.constexpr, BLOCK: tl.constexpr, SUB: tl.constexpr):  # pragma: no cover
    """Sums and counts of |x| above each point over this program's BLOCK entries."""
    if tl.load(par_ptr + 6) == 0.0:  # searching
        pid = tl.program_id(0).to(tl.int64)
        k = tl.arange(0, K)
        if FIRST:
            t = _points(k, 0.0, 0.0, True, K)
        else:
            t = tl.load(pts_ptr + k)
        acc_s = tl.zeros([SUB, K], dtype=tl.float64)
        acc_c = tl.zeros([SUB, K], dtype=tl.int32)
        tot = tl.zeros([SUB], dtype=tl.float64)
        for s in range(0, BLOCK, SUB):
            i = pid * BLOCK + s + tl.arange(0, SUB)
            y = tl.abs(tl.load(x_ptr + i, mask=i < n, other=0.0))
            above = y[:, None] > t[None, :]
            acc_s += tl.where(above, y[:, None].to(tl.float64), 0.0)
            acc_c += above.to(tl.int32)
            if FIRST:
                tot += y.to(tl.float64)  # NaN and inf stay (compares drop them)
        tl.store(psum_ptr + pid * K + k, tl.sum(acc_s, axis=0))
        tl.store(pcnt_ptr + pid * K + k, tl.sum(acc_c, axis=0))
        if FIRST:
            tl.store(ptot_ptr + pid, tl.sum(tot, axis=0))


def _select(psum_ptr, pcnt_ptr, ptot_ptr, nprog, pts_ptr, par_ptr, boff_ptr,
            FIRST: tl.constexpr, K: tl.constexpr, RB: tl.constexpr, CAP: tl.constexpr,
            MARGIN: tl.constexpr):  # pragma: no cover - GPU/interpreter
    """Reduce a pass: the new bracket, and either the next points or the band's offsets."""
    state = tl.load(par_ptr + 6)
    if state == 0.0:
        k = tl.arange(0, K)
        S = _colsum(psum_ptr, nprog, K, RB)
        C = _colsum(pcnt_ptr, nprog, K, RB)  # counts < 2**31: exact in float64
        r = tl.load(par_ptr)
        if FIRST:
            pts = _points(k, 0.0, 0.0, True, K)
        else:
            pts = tl.load(pts_ptr + k)
        phi = S - C * pts.to(tl.float64)
        err = MARGIN * S
        jlo = tl.max(tl.where(phi - r > err, k, 0), axis=0)  # phi(lo) >= r for certain
        jhi = tl.min(tl.where(r - phi > err, k, K - 1), axis=0)  # phi(hi) < r for certain
        lo = tl.sum(tl.where(k == jlo, pts, 0.0), axis=0)
        hi = tl.sum(tl.where(k == jhi, pts, 0.0), axis=0)
        clo = tl.sum(tl.where(k == jlo, C, 0.0), axis=0)
        chi = tl.sum(tl.where(k == jhi, C, 0.0), axis=0)
        nband = clo - chi
        two_values = hi.to(tl.int32, bitcast=True) <= lo.to(tl.int32, bitcast=True) + 2
        done = (nband <= CAP) | two_values
        new_state = tl.where(done, tl.where(nband <= CAP, 1.0, 3.0), 0.0)
        if FIRST:
            total = tl.sum(_colsum(ptot_ptr, nprog, 1, RB), axis=0)
            tl.store(par_ptr + 1, total)
            bad = (total != total) | (total == float("inf"))
            new_state = tl.where((total <= r) | bad, 2.0, new_state)
        tl.store(par_ptr + 2, lo.to(tl.float64))
        tl.store(par_ptr + 3, hi.to(tl.float64))
        tl.store(par_ptr + 4, clo)
        tl.store(par_ptr + 5, chi)
        tl.store(par_ptr + 7, nband)
        tl.store(par_ptr + 6, new_state)
        if new_state == 0.0:
            tl.store(pts_ptr + k, _points(k, lo.to(tl.float64), hi.to(tl.float64), False, K))
        if new_state == 1.0:  # each program's band offset: exclusive prefix sum of counts
            carry = jlo * 0  # (int32)
            for p0 in range(0, nprog, RB):
                p = p0 + tl.arange(0, RB)
                m = p < nprog
                a = (tl.load(pcnt_ptr + p * K + jlo, mask=m, other=0)
                     - tl.load(pcnt_ptr + p * K + jhi, mask=m, other=0))
                tl.store(boff_ptr + p, carry + tl.cumsum(a, axis=0) - a, mask=m)
                carry += tl.sum(a, axis=0)


def _collect(x_ptr, n, par_ptr, boff_ptr, band_ptr, pex_ptr, BLOCK: tl.constexpr,
             SUB: tl.constexpr, CAP: tl.constexpr):  # pragma: no cover - GPU/interpreter
    """float64 sums above lo and above hi, the count equal to hi; the band's entries at this
    program's offset."""
    state = tl.load(par_ptr + 6)
    if (state == 1.0) | (state == 3.0):
        pid = tl.program_id(0).to(tl.int64)
        lo = tl.load(par_ptr + 2).to(tl.float32)  # float32 values: exact
        hi = tl.load(par_ptr + 3).to(tl.float32)
        keep = (state == 1.0).to(tl.int32)  # 3: no band to collect
        off = tl.load(boff_ptr + pid) * keep
        s_lo = tl.zeros([SUB], dtype=tl.float64)
        s_hi = tl.zeros([SUB], dtype=tl.float64)
        n_hi = tl.zeros([SUB], dtype=tl.int32)
        for s in range(0, BLOCK, SUB):
            i = pid * BLOCK + s + tl.arange(0, SUB)
            y = tl.abs(tl.load(x_ptr + i, mask=i < n, other=0.0))
            y64 = y.to(tl.float64)
            a_lo = y > lo
            a_hi = y > hi
            s_lo += tl.where(a_lo, y64, 0.0)
            s_hi += tl.where(a_hi, y64, 0.0)
            n_hi += (y == hi).to(tl.int32)
            inb = (a_lo & (y <= hi)).to(tl.int32) * keep
            pos = off + tl.cumsum(inb, axis=0) - 1
            tl.store(band_ptr + pos, y, mask=(inb > 0) & (pos < CAP))
            off += tl.sum(inb, axis=0)
        tl.store(pex_ptr + 4 * pid, tl.sum(s_lo, axis=0))
        tl.store(pex_ptr + 4 * pid + 1, tl.sum(s_hi, axis=0))
        tl.store(pex_ptr + 4 * pid + 2, tl.sum(n_hi, axis=0).to(tl.float64))
        tl.store(pex_ptr + 4 * pid + 3, 0.0)


def _finish(band_ptr, pex_ptr, nprog, par_ptr, CAP: tl.constexpr,
            RB: tl.constexpr):  # pragma: no cover - GPU/interpreter
    """tau exactly (float64) from the sums and the sorted band; t = tau rounded up."""
    state = tl.load(par_ptr + 6)
    if (state == 1.0) | (state == 3.0):
        c = tl.arange(0, 4)
        sums = _colsum(pex_ptr, nprog, 4, RB)  # (S above lo, S above hi, count == hi, 0)
        s_lo = tl.sum(tl.where(c == 0, sums, 0.0), axis=0)
        s_hi = tl.sum(tl.where(c == 1, sums, 0.0), axis=0)
        n_hi = tl.sum(tl.where(c == 2, sums, 0.0), axis=0)
        r = tl.load(par_ptr)
        lo = tl.load(par_ptr + 2)
        hi = tl.load(par_ptr + 3)
        clo = tl.load(par_ptr + 4)
        chi = tl.load(par_ptr + 5)
        nb = tl.where(state == 1.0, tl.load(par_ptr + 7), 0.0)
        j = tl.arange(0, CAP)
        z = tl.load(band_ptr + j, mask=j < nb, other=0.0)
        z = tl.sort(z, descending=True).to(tl.float64)
        # with the c_hi entries above hi always active, j + 1 band entries active give
        # tau_j = (S_hi + z_1 + ... + z_{j+1} - r) / (c_hi + j + 1); Held: the last j whose
        # own entry stays above tau_j
        tj = (s_hi + tl.cumsum(z, axis=0) - r) / (chi + (j + 1).to(tl.float64))
        rho = tl.sum(((j < nb) & (z > tj)).to(tl.int32), axis=0)
        tau = tl.where(rho > 0, tl.sum(tl.where(j == rho - 1, tj, 0.0), axis=0),
                       (s_hi - r) / tl.maximum(chi, 1.0))
        # two values v < hi in the bracket (lo, hi]: phi(t) = S_lo - c_lo t on [lo, v] and
        # (S_hi + n_hi hi) - (c_hi + n_hi) t on [v, hi]
        v = (lo.to(tl.float32).to(tl.int32, bitcast=True) + 1).to(tl.float32, bitcast=True)
        t_up = (s_hi + n_hi * hi - r) / tl.maximum(chi + n_hi, 1.0)
        t_two = tl.where(t_up >= v.to(tl.float64), t_up, (s_lo - r) / tl.maximum(clo, 1.0))
        tau = tl.where(state == 3.0, t_two, tau)
        tau = tl.minimum(tl.maximum(tau, lo), hi)  # holds already, up to float64 rounding
        tl.store(par_ptr + 8, _to_f32(tau, True).to(tl.float64))
    if state == 0.0:  # the search did not end (see the module docstring): the upper bound
        tl.store(par_ptr + 8, tl.load(par_ptr + 3))


def _apply(x_ptr, out_ptr, n, par_ptr, ABLOCK: tl.constexpr):  # pragma: no cover - GPU/interp.
    """soft threshold at t; the input itself inside the ball; NaN when not finite."""
    pid = tl.program_id(0).to(tl.int64)
    i = pid * ABLOCK + tl.arange(0, ABLOCK)
    x = tl.load(x_ptr + i, mask=i < n, other=0.0)
    state = tl.load(par_ptr + 6)
    total = tl.load(par_ptr + 1)
    t = tl.load(par_ptr + 8).to(tl.float32)
    y = x - tl.minimum(tl.maximum(x, -t), t)
    y = tl.where(state == 2.0, x, y)
    y = tl.where(total < float("inf"), y, float("nan"))
    tl.store(out_ptr + i, y, mask=i < n)


_points = _split = _colsum = _to_f32 = None  # the helpers the kernels call (``_kernels``)


@functools.cache
def _kernels():
    """The jitted kernels (built on first use, so that ``TRITON_INTERPRET`` set by then is
    honoured), helpers first."""
    global triton, tl, _points, _split, _colsum, _to_f32
    h = _triton_ops.helpers()
    triton, tl = _triton_ops.triton, _triton_ops.tl
    _split, _colsum, _to_f32 = h["_split"], h["_colsum"], h["_to_f32"]
    _points = triton.jit(_points_py)
    return tuple(triton.jit(f) for f in (_pass, _select, _collect, _finish, _apply))


def _reset() -> None:
    _kernels.cache_clear()


def project(X: torch.Tensor, radius: float, *, block: int = BLOCK, cap: int = CAP,
            passes: int = PASSES, info: dict | None = None) -> torch.Tensor | None:
    """The l1 projection of an eligible tensor (:func:`eligible`), or None when the kernels
    failed to compile or to launch (the caller then takes the torch path).  ``block``,
    ``cap``, ``passes``: smaller values let the tests reach several programs, a full band
    and the pass limit on small inputs; ``info`` (a dict) receives the device buffer
    ``par`` (slots ``_R`` ... ``_T``: how the search ended)."""
    if radius == 0.0:
        return torch.zeros_like(X)
    pass_, select, collect, finish, apply = _kernels()
    n = X.numel()
    x = X.reshape(-1)
    dev = X.device
    block = max(SUB, min(block, triton.next_power_of_2(n)))
    nprog = triton.cdiv(n, block)
    par = torch.zeros(_NPAR, dtype=torch.float64, device=dev)
    par[_R].fill_(radius)  # (a Python float would reach a kernel as float32)
    pts = torch.empty(K, dtype=torch.float32, device=dev)
    psum = torch.empty((nprog, K), dtype=torch.float64, device=dev)
    pcnt = torch.empty((nprog, K), dtype=torch.int32, device=dev)
    ptot = torch.empty(nprog, dtype=torch.float64, device=dev)
    boff = torch.empty(nprog, dtype=torch.int32, device=dev)
    band = torch.empty(cap, dtype=torch.float32, device=dev)
    pex = torch.empty(4 * nprog, dtype=torch.float64, device=dev)
    out = torch.empty_like(X)
    if info is not None:
        info["par"] = par
    grid = (nprog,)
    common = {"K": K, "BLOCK": block, "SUB": SUB, "num_warps": 8}
    choose = {"K": K, "RB": RB, "CAP": cap, "MARGIN": MARGIN, "num_warps": 4}
    try:
        for first in [True] + [False] * passes:
            pass_[grid](x, n, pts, par, psum, pcnt, ptot, FIRST=first, **common)
            select[(1,)](psum, pcnt, ptot, nprog, pts, par, boff, FIRST=first, **choose)
        collect[grid](x, n, par, boff, band, pex, BLOCK=block, SUB=SUB, CAP=cap, num_warps=8)
        finish[(1,)](band, pex, nprog, par, CAP=cap, RB=RB, num_warps=8)
        apply[(triton.cdiv(n, ABLOCK),)](x, out.reshape(-1), n, par, ABLOCK=ABLOCK,
                                         num_warps=8)
    except Exception as exc:  # compile or launch failure: fall back, say so once
        _triton_ops.disable(exc)
        return None
    return out
