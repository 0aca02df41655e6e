"""Triton kernels for the bi-level operators on CUDA: l11, l21, l1inf_bilevel in four launches.

The pure-torch path (``_torch_ops``) costs 30-50 torch ops per call (its module docstring
counts them), and on a GPU each op is a kernel launch (a few microseconds of host time in
eager mode, one graph node in a captured training step): at the sizes of a network layer the
launches, not the data, set the time.  Here each operator is one fill and three kernels:

0. a fill: (theta, total, radius) in one float64 buffer (a Python float would reach a kernel
   as float32);
1. ``_norms``: one program per group, the group's norm v_g in float64 (l1 for l11, l2 for
   l21, max |x| for l1inf_bilevel: exact);
2. ``_outer``: one program, theta of u = P_B1(radius)(v) = max(v - theta, 0) by one sort of
   v, a float64 cumsum and the Held et al. (1974) formula (``_torch_ops._row_taus``), plus
   the total norm (inside the ball: theta = 0 and the input is returned bit for bit; total not
   finite: NaN everywhere, as the torch path);
3. ``_apply``: one program per group: l11 sorts the group's |entries| descending, takes a
   float64 cumsum and tau_g by the same formula at radius u_g (u_g = 0: +inf, the group is
   zeroed) and soft-thresholds at tau_g rounded up to float32; l21 scales by u_g / v_g and
   l1inf_bilevel clips at u_g, both rounded down (the feasible side, as ``_torch_ops._param``).

The arithmetic is the torch path's (sorts, float64 sums, one formula, no iteration), so both
agree to a float32 rounding; no host synchronisation (every decision a device-side select).
Used for float32 CUDA tensors whose groups hold at most ``MAX_GROUP`` entries and that have
between 2 and ``MAX_GROUPS`` groups, when Triton imports and :data:`ENABLED` is true
(opt-in: ``GREENBENCH_TRITON=1``; off by default until ``benchmarks/gpu_check.sh`` has shown
the kernels correct and faster on a real GPU); anything else, or a kernel that fails to
compile (reported once as a warning), takes the sync-free torch path.  CPU tensors take the
kernels only when :data:`ON_CPU` is set, which makes sense only under Triton's interpreter
(the tests set both, to check the kernels against the numba kernels).
``_triton_l1`` (l1) and ``_triton_l1inf`` (exact l1inf) share this module's switches.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import warnings

import torch

from projlib.projections import _torch_ops

# Imported on first use (``_load``): Triton takes ~1 s to import, and it ships with torch's
# CUDA wheels only.  The kernels below read ``tl`` from this module's globals.
triton = None
tl = None

#: Use the Triton kernels for eligible CUDA tensors: opt-in with ``GREENBENCH_TRITON=1`` (they
#: have not yet been timed on a GPU; the torch path is the CUDA default).
ENABLED = os.environ.get("GREENBENCH_TRITON", "0") == "1"
#: Also run the kernels on CPU tensors.  Only for Triton's interpreter (``TRITON_INTERPRET=1``
#: chosen before Triton is imported): how the tests check the kernels without a GPU.
ON_CPU = False
#: Largest group (entries) one program sorts in registers.
MAX_GROUP = 4096
#: Most groups the single ``_outer`` program sorts.
MAX_GROUPS = 8192

_failed: list[str] = []  # the compile error that turned the kernels off, reported once


def installed() -> bool:
    """Whether Triton can be imported (without importing it)."""
    return importlib.util.find_spec("triton") is not None


@functools.cache
def _load() -> bool:
    global triton, tl
    if not installed():
        return False
    triton = importlib.import_module("triton")
    tl = importlib.import_module("triton.language")
    return True


def available() -> bool:
    """Enabled, Triton imports, and the kernels have not failed (to compile or to launch)
    in this process."""
    return ENABLED and not _failed and _load()


def eligible_device(X: torch.Tensor) -> bool:
    """On CUDA, or on the CPU where :data:`ON_CPU` asks for it (the interpreter tests)."""
    return X.is_cuda or ON_CPU


def eligible(X3: torch.Tensor) -> bool:
    """Whether :func:`project` takes this (A, G, B) tensor (see the module docstring)."""
    A, G, B = X3.shape
    return (available() and X3.dtype == torch.float32 and X3.is_contiguous()
            and eligible_device(X3) and 1 < G <= MAX_GROUPS and 1 <= A * B <= MAX_GROUP)


def run(eligible: bool, triton_call, torch_call):
    """``triton_call()`` for an eligible tensor, unless ``_torch_ops.CHECK_FINITE`` (its check
    needs a sync the kernels avoid) or it returned None (a kernel failed); else
    ``torch_call()``: the choice every operator with Triton kernels makes on a device."""
    if eligible and not _torch_ops.CHECK_FINITE:
        out = triton_call()
        if out is not None:
            return out
    return torch_call()


def disable(exc: Exception) -> None:
    """A kernel failed to compile or to launch: every Triton kernel is off from now on in
    this process (the torch path takes over), said once as a warning."""
    _failed.append(f"{type(exc).__name__}: {exc}")
    warnings.warn("greenbench: the Triton projection kernels failed to compile or to launch, "
                  f"using the torch path from now on ({_failed[0][:200]})", RuntimeWarning,
                  stacklevel=4)


# --------------------------------------------------------------------------------- kernels
# Group g, entry i (0 <= i < m = A*B) of a contiguous (A, G, B) tensor sits at
# (i // B) * G * B + g * B + i % B: rows (A = 1) are contiguous, columns (B = 1) strided.
# KIND (a compile-time constant) picks the operator.

KINDS = {"l11": 0, "l21": 1, "l1inf_bilevel": 2}


def _norms(x_ptr, v_ptr, G, B, m, KIND: tl.constexpr,
           BLOCK: tl.constexpr):  # pragma: no cover - GPU/interpreter
    """v_g in float64: l1 norm (l11), l2 norm (l21) or max |x| (l1inf_bilevel, exact)."""
    g = tl.program_id(0)
    i = tl.arange(0, BLOCK)
    offs = (i // B) * (G * B) + g * B + i % B
    y = tl.abs(tl.load(x_ptr + offs, mask=i < m, other=0.0)).to(tl.float64)
    if KIND == 0:
        v = tl.sum(y, axis=0)
    elif KIND == 1:
        v = tl.sqrt(tl.sum(y * y, axis=0))
    else:  # (a max need not propagate NaN: counted apart)
        v = tl.where(tl.sum((y != y).to(tl.int32), axis=0) > 0, float("nan"), tl.max(y, axis=0))
    tl.store(v_ptr + g, v)


def _outer(v_ptr, par_ptr, G, BLOCK: tl.constexpr):  # pragma: no cover - GPU/interpreter
    """(theta, total) of u = P_B1(radius)(v) into par[0:2]; par[2] = radius."""
    radius = tl.load(par_ptr + 2)
    k = tl.arange(0, BLOCK)
    v = tl.load(v_ptr + k, mask=k < G, other=0.0)
    total = tl.sum(v, axis=0)  # unsorted: a NaN is not left to the sort's NaN order
    theta = _held(tl.sort(v, descending=True), k, radius)
    theta = tl.where(total <= radius, 0.0, theta)
    theta = tl.where(total < float("inf"), theta, float("nan"))
    tl.store(par_ptr, theta)
    tl.store(par_ptr + 1, total)


def _held_py(z, k, r):  # pragma: no cover - GPU/interpreter
    """The l1-ball threshold at radius r of the float64 values z sorted descending (k their
    positions 0..BLOCK-1, padding zeros last): with cs = cumsum(z), c_k = cs_k - (k+1) z_k and
    rho = max(#{c_k < r}, 1), tau = (cs_rho - r) / rho (Held et al. 1974; as
    ``_torch_ops._row_taus``)."""
    cs = tl.cumsum(z, axis=0)
    c = cs - (k + 1).to(tl.float64) * z
    rho = tl.maximum(tl.sum((c < r).to(tl.int32), axis=0), 1)
    return (tl.sum(tl.where(k == rho - 1, cs, 0.0), axis=0) - r) / rho.to(tl.float64)


def _to_f32_py(p, up: tl.constexpr):  # pragma: no cover - GPU/interpreter
    """float64 p >= 0 (inf, NaN allowed) in float32, rounded up or down (the feasible side)."""
    q = p.to(tl.float32)
    bits = q.to(tl.int32, bitcast=True)
    if up:
        q = tl.where(q.to(tl.float64) < p, (bits + 1).to(tl.float32, bitcast=True), q)
    else:
        q = tl.where(q.to(tl.float64) > p, (bits - 1).to(tl.float32, bitcast=True), q)
    return q


def _apply(x_ptr, out_ptr, v_ptr, par_ptr, G, B, m, KIND: tl.constexpr,
           BLOCK: tl.constexpr):  # pragma: no cover - GPU/interpreter
    """Group g's output: soft threshold at tau_g (l11), scaling by u_g / v_g (l21) or
    clipping at u_g (l1inf_bilevel); the input itself when inside the ball, NaN when the
    total norm is not finite."""
    g = tl.program_id(0)
    i = tl.arange(0, BLOCK)
    offs = (i // B) * (G * B) + g * B + i % B
    x = tl.load(x_ptr + offs, mask=i < m, other=0.0)
    theta = tl.load(par_ptr)
    total = tl.load(par_ptr + 1)
    radius = tl.load(par_ptr + 2)
    v = tl.load(v_ptr + g)
    u = tl.maximum(v - theta, 0.0)  # NaN theta: NaN u
    if KIND == 0:
        tau = _held(tl.sort(tl.abs(x), descending=True).to(tl.float64), i, u)
        tau = tl.where(u > 0.0, tl.maximum(tau, 0.0), float("inf"))
        t = _to_f32(tl.where(theta == theta, tau, float("nan")), True)
        y = x - tl.minimum(tl.maximum(x, -t), t)
    elif KIND == 1:  # inside: theta = 0, the scale is v / v = 1 exactly
        scale = tl.where(v > 0.0, u / tl.where(v > 0.0, v, 1.0), 0.0)
        scale = _to_f32(tl.where(theta == theta, scale, float("nan")), False)
        y = x * scale
        t = scale
    else:
        t = _to_f32(tl.where(theta == theta, u, float("nan")), False)
        y = tl.minimum(tl.maximum(x, -t), t)
    y = tl.where(t == t, y, float("nan"))  # (min/max need not propagate NaN)
    tl.store(out_ptr + offs, tl.where(total <= radius, x, y), mask=i < m)


def _colsum_py(ptr, nprog, W: tl.constexpr, RB: tl.constexpr):  # pragma: no cover
    """Column sums (float64, a fixed order) of the (nprog, W) buffer at ptr, RB rows a step."""
    c = tl.arange(0, W)
    acc = tl.zeros([W], dtype=tl.float64)
    for p0 in range(0, nprog, RB):
        p = p0 + tl.arange(0, RB)
        acc += tl.sum(tl.load(ptr + p[:, None] * W + c[None, :], mask=(p < nprog)[:, None],
                              other=0).to(tl.float64), axis=0)
    return acc


def _split_py(k, lo, hi, K: tl.constexpr):  # pragma: no cover - GPU/interpreter
    """K float64 points from lo to hi (both included, k = 0 .. K - 1): geometric when
    hi > 4 lo (from hi * 2**-30 when lo = 0), else even."""
    f = k.to(tl.float64) / (K - 1)
    a = tl.maximum(lo, hi * 9.313225746154785e-10)
    t = tl.where(hi > 4.0 * lo, a * tl.exp(f * tl.log(hi / a)), lo + (hi - lo) * f)
    return tl.where(k == 0, lo, tl.where(k == K - 1, hi, t))


@functools.cache
def helpers() -> dict:
    """The device helpers the Triton modules share, jitted once (after :func:`_load`, so that
    ``TRITON_INTERPRET`` set by then is honoured).  A kernel calls a helper through a global
    of its own module: each module assigns these to its globals before jitting its kernels."""
    _load()
    return {"_held": triton.jit(_held_py), "_to_f32": triton.jit(_to_f32_py),
            "_colsum": triton.jit(_colsum_py), "_split": triton.jit(_split_py)}


# the names the kernels call, resolved when they compile (``helpers``)
_held = _to_f32 = None


@functools.cache
def _kernels():
    """The jitted kernels (built on first use), helpers first."""
    global _held, _to_f32
    h = helpers()
    _held, _to_f32 = h["_held"], h["_to_f32"]
    return triton.jit(_norms), triton.jit(_outer), triton.jit(_apply)


def _reset() -> None:
    """Forget the built kernels and any compile failure (tests switch the interpreter)."""
    helpers.cache_clear()
    _kernels.cache_clear()
    _failed.clear()


def _warps(block: int) -> int:
    return 8 if block >= 2048 else 4


def project(name: str, X3: torch.Tensor, radius: float) -> torch.Tensor | None:
    """``name`` (l11, l21 or l1inf_bilevel) on an eligible (A, G, B) tensor
    (:func:`eligible`), or None when the kernels failed to compile or to launch (the caller
    then takes the torch path)."""
    A, G, B = X3.shape
    m = A * B
    if radius == 0.0:
        return torch.zeros_like(X3)
    kind = KINDS[name]
    norms, outer, apply = _kernels()
    block = max(triton.next_power_of_2(m), 16)  # (a one-entry sort does not build)
    gblock = max(triton.next_power_of_2(G), 16)
    v = torch.empty(G, dtype=torch.float64, device=X3.device)
    # (theta, total, radius): a Python float would reach the kernels as float32
    par = torch.full((3,), radius, dtype=torch.float64, device=X3.device)
    out = torch.empty_like(X3)
    try:
        norms[(G,)](X3, v, G, B, m, KIND=kind, BLOCK=block, num_warps=_warps(block))
        outer[(1,)](v, par, G, BLOCK=gblock, num_warps=_warps(gblock))
        apply[(G,)](X3, out, v, par, G, B, m, KIND=kind, BLOCK=block,
                    num_warps=_warps(block))
    except Exception as exc:  # compile or launch failure: fall back, say so once
        disable(exc)
        return None
    return out
