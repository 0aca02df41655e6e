"""Grouped constraints: group lasso l21, the bi-level l1,1 and l1,inf operators, exact l1,inf.

A weight is viewed as X (A, G, B), group g = X[:, g, :] (columns or rows, docs/METHOD.md §1; see
``_validate.group_shape``).  Every operator first computes one norm per group (one read pass),
returns ``W`` unchanged when the constraint already holds, and otherwise writes the result in
one read/write pass with a per-group parameter.  CPU tensors go through the numba kernels on
their zero-copy numpy view; other devices through the Triton kernels of ``_triton_ops`` (l21,
l11, l1inf_bilevel on float32 weights with groups of at most 4096 entries, where Triton is
installed) and ``_triton_l1inf`` (exact l1inf, same rules) or the pure-torch kernels of
``_torch_ops``.
The CPU paths below return None for "inside the ball" and raise ``OutOfRange`` when that first
norm leaves the range where it can be trusted; ``_scaling.run_scaled`` then reruns them on the
exactly rescaled input (extreme magnitudes only, see ``_scaling``).  Formulas, exactness and
references of each operator: docs/METHOD.md §2.3-§2.7.
"""

from __future__ import annotations

import numpy as np
import torch

from projlib.projections import (
    _group_kernels,
    _l1_kernels,
    _l11_kernels,
    _torch_ops,
    _triton_l1inf,
    _triton_ops,
)
from projlib.projections._scaling import check_range, run_scaled
from projlib.projections._validate import (
    as_contiguous,
    check_groups,
    check_radius,
    check_tensor,
    group_shape,
)
from projlib.projections.l1 import new_output

_L1, _SQ, _MAX = 0, 1, 2  # group_stats kinds
_SOFT, _CLIP, _SCALE = 0, 1, 2  # group_apply ops
# relative slack of the l11 kernels' phase-1 bracket (sums in the input's dtype)
_L11_TOL = {np.dtype(np.float32): 1e-6, np.dtype(np.float64): 1e-12}


def _prepare(W: object, radius: object, groups: object) -> tuple[torch.Tensor, float, tuple]:
    W = check_tensor(W, grouped=True)
    r = check_radius(radius)
    g = check_groups(groups)
    X = as_contiguous(W)
    return X, r, group_shape(tuple(X.shape), g)


_BITS = {np.dtype(np.float32): (np.uint32, np.uint32(0x7FFFFFFF)),
         np.dtype(np.float64): (np.uint64, np.uint64(0x7FFFFFFFFFFFFFFF))}


def _stats(x3: np.ndarray, kind: int) -> np.ndarray:
    """Per-group l1 norm, sum of squares or max |x| (float64, NaN/inf propagate)."""
    A, G, B = x3.shape
    if kind == _MAX:
        utype, mask = _BITS[x3.dtype]
        bits = x3.view(utype)
        if B == 1:
            top = _group_kernels.group_maxbits_2d(bits.reshape(A, G), mask)
        else:
            top = _group_kernels.group_maxbits_3d(bits, mask)
        return top.view(x3.dtype).astype(np.float64)
    if B == 1:  # inner loop over the contiguous group index vectorises
        return _group_kernels.group_stats_2d(x3.reshape(A, G), kind)
    return _group_kernels.group_stats_3d(x3, kind)


def _apply(x3: np.ndarray, t: np.ndarray, op: int, X: torch.Tensor) -> torch.Tensor:
    out = new_output(X)
    o3 = out.numpy().reshape(x3.shape)
    A, G, B = x3.shape
    if B == 1:
        _group_kernels.group_apply_2d(x3.reshape(A, G), t, op, o3.reshape(A, G))
    else:
        _group_kernels.group_apply_3d(x3, t, op, o3)
    return out


def _cast(values: np.ndarray, dtype: np.dtype, up: bool) -> np.ndarray:
    """float64 parameters in ``dtype``, rounded toward the feasible side (up or down)."""
    t = values.astype(dtype)
    wrong = (t.astype(np.float64) < values) if up else (t.astype(np.float64) > values)
    if wrong.any():
        t[wrong] = np.nextafter(t[wrong], dtype.type(np.inf if up else -np.inf))
    return t


def _outer(norms: np.ndarray, radius: float, dtype: torch.dtype) -> np.ndarray | None:
    """u = P_B1(radius)(norms) for a non-negative vector, None when already inside.

    Raises OutOfRange when sum(norms) is outside ``SAFE[dtype]`` (dtype: the input's).
    """
    total, tau = _l1_kernels.l1_tau(norms, radius)
    check_range(total, dtype)
    if total <= radius:
        return None
    if radius == 0.0:
        return np.zeros_like(norms)
    return np.maximum(norms - tau, 0.0)


def project_l21(W: torch.Tensor, radius: float, groups: str = "columns") -> torch.Tensor:
    """Exact projection onto the group-lasso ball {sum_g ||W_g||_2 <= radius}.

    Formula: n_g = ||W_g||_2, u = P_B1(radius)(n), W_g <- W_g u_g / n_g (0 when n_g = 0).
    O(numel) on the CPU (two passes), plus O(G) for the outer l1 projection.
    """
    X, r, shape3 = _prepare(W, radius, groups)
    if X.numel() == 0:
        return X.clone()
    if X.device.type != "cpu":
        return _on_device("l21", X.reshape(shape3), r).reshape(X.shape)
    return run_scaled(_l21_cpu, X, r, shape3)


def _l21_cpu(X: torch.Tensor, r: float, shape3: tuple) -> torch.Tensor | None:
    x3 = X.numpy().reshape(shape3)
    norms = np.sqrt(_stats(x3, _SQ))  # squares: out of range -> OutOfRange -> rescaled
    u = _outer(norms, r, X.dtype)
    if u is None:
        return None
    scale = np.divide(u, norms, out=np.zeros_like(u), where=norms > 0)
    return _apply(x3, _cast(scale, x3.dtype, up=False), _SCALE, X)


def project_l1inf_bilevel(W: torch.Tensor, radius: float, groups: str = "columns") -> torch.Tensor:
    """Bi-level l1,inf operator (feasible, not the Euclidean projection).

    Formula: v_g = max_i |W_ig|, u = P_B1(radius)(v), W_ig <- sign(W_ig) min(|W_ig|, u_g).
    O(numel) (two passes) plus O(G).
    """
    X, r, shape3 = _prepare(W, radius, groups)
    if X.numel() == 0:
        return X.clone()
    if X.device.type != "cpu":
        return _on_device("l1inf_bilevel", X.reshape(shape3), r).reshape(X.shape)
    return run_scaled(_l1inf_bilevel_cpu, X, r, shape3)


def _l1inf_bilevel_cpu(X: torch.Tensor, r: float, shape3: tuple) -> torch.Tensor | None:
    x3 = X.numpy().reshape(shape3)
    u = _outer(_stats(x3, _MAX), r, X.dtype)
    if u is None:
        return None
    return _apply(x3, _cast(u, x3.dtype, up=False), _CLIP, X)


def project_l11(W: torch.Tensor, radius: float, groups: str = "columns") -> torch.Tensor:
    """The paper's bi-level l1,1 operator (feasible and structured, not Euclidean).

    Formula: v_g = ||W_g||_1, u = P_B1(radius)(v), then W_g <- P_B1(u_g)(W_g), i.e. a soft
    threshold tau_g per group; u_g = 0 removes the whole group.  ``_l11_kernels``: about
    2-3 cheap passes per surviving group (guesses predicted from the groups already solved,
    since u_g = v_g - theta with one theta) and one float64 pass that makes tau_g exact; rows
    are solved in cache and written at once, matrix columns all together, row by row (no
    transpose).  Observed O(numel).
    Reference: Guyard & Barlaud, ICPR 2020 (HAL hal-02556382).
    """
    X, r, shape3 = _prepare(W, radius, groups)
    if X.numel() == 0:
        return X.clone()
    if X.device.type != "cpu":
        return _on_device("l11", X.reshape(shape3), r).reshape(X.shape)
    return run_scaled(_l11_cpu, X, r, shape3)


def _on_device(name: str, X3: torch.Tensor, r: float) -> torch.Tensor:
    """Non-CPU tensors: the Triton kernels where they apply (``_triton_ops.eligible``; not
    with ``CHECK_FINITE``, which needs the torch path's check), else the pure-torch path."""
    return _triton_ops.run(_triton_ops.eligible(X3), lambda: _triton_ops.project(name, X3, r),
                           lambda: getattr(_torch_ops, f"project_{name}")(X3, r))


def _l11_cpu(X: torch.Tensor, r: float, shape3: tuple) -> torch.Tensor | None:
    x3 = X.numpy().reshape(shape3)
    norms = _stats(x3, _L1)
    u = _outer(norms, r, X.dtype)
    if u is None:
        return None
    A, G, B = x3.shape
    tol = _L11_TOL[x3.dtype]
    if A == 1:  # groups are contiguous rows: solved in cache, written right away
        out = new_output(X)
        _l11_kernels.l11_rows_apply(x3.reshape(G, B), u, norms, tol, out.numpy().reshape(G, B))
        return out
    if B == 1:  # matrix columns: solved together row by row, no transpose
        out = new_output(X)
        _l11_kernels.l11_cols_apply(x3.reshape(A, G), u, norms, tol, out.numpy().reshape(A, G))
        return out
    tau = np.full(u.shape, np.inf)
    which = np.flatnonzero(u > 0)
    if which.size:
        rows = _group_kernels.gather_groups(x3, which)
        tau[which] = _l11_kernels.rows_taus(rows, np.arange(which.size), u[which],
                                            norms[which], tol)
    return _apply(x3, _cast(tau, x3.dtype, up=True), _SOFT, X)


def project_l1inf(W: torch.Tensor, radius: float, groups: str = "columns") -> torch.Tensor:
    """Exact Euclidean projection onto the l1,inf ball {sum_g max_i |W_ig| <= radius}.

    Formula (Quattoni et al. 2009): W_ig <- sign(W_ig) min(|W_ig|, mu_g), where mu_g(theta) is
    the l1-ball threshold of |W_g| at radius theta and theta solves sum_g mu_g(theta) = radius.
    Found by semismooth Newton on theta (Chu et al. 2020) over the groups' sorted magnitudes:
    O(numel log m) for the sort (m = group size), then O(numel) for all Newton steps together;
    exact at termination because the function is piecewise linear.
    """
    X, r, shape3 = _prepare(W, radius, groups)
    if X.numel() == 0:
        return X.clone()
    if X.device.type != "cpu":
        return _l1inf_on_device(X.reshape(shape3), r).reshape(X.shape)
    return run_scaled(_l1inf_cpu, X, r, shape3)


def _l1inf_on_device(X3: torch.Tensor, r: float) -> torch.Tensor:
    """Non-CPU tensors: the Triton search where it applies (the bi-level kernels' rules,
    ``_triton_ops.eligible``; not with ``CHECK_FINITE``), else the pure-torch path."""
    return _triton_ops.run(_triton_ops.eligible(X3), lambda: _triton_l1inf.project(X3, r),
                           lambda: _torch_ops.project_l1inf(X3, r))


def _l1inf_cpu(X: torch.Tensor, r: float, shape3: tuple) -> torch.Tensor | None:
    x3 = X.numpy().reshape(shape3)
    maxima = _stats(x3, _MAX)
    with np.errstate(over="ignore"):  # an overflow is caught just below
        total = float(maxima.sum())
    check_range(total, X.dtype)
    if total <= r:
        return None
    if r == 0.0:
        return torch.zeros_like(X)
    sums = _stats(x3, _L1)
    which = np.flatnonzero(sums > 0)
    A, G, B = x3.shape
    if B == 1 and which.size == G:  # plain columns of a matrix: a tiled transpose
        rows = _group_kernels.transpose_abs(x3.reshape(A, G))
    else:
        rows = _group_kernels.gather_groups(x3, which)
        np.abs(rows, out=rows)  # one extra pass, negligible next to the sort below
    rows.sort(axis=1)  # numpy's vectorised sort; the Newton phase after it is O(numel)
    mu = np.zeros(maxima.shape)
    mu[which], _ = _group_kernels.l1inf_newton_sorted(rows, sums[which], r, 1000)
    return _apply(x3, _cast(mu, x3.dtype, up=False), _CLIP, X)
