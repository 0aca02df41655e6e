"""Euclidean projections onto the l1 ball and the simplex.

l1 ball  B1(r) = { x : sum_i |x_i| <= r }.  Outside it, P(w) = sign(w) max(|w| - tau, 0) with the
unique tau > 0 solving sum_i max(|w_i| - tau, 0) = r (Held, Wolfe & Crowder 1974; Duchi et al.
2008); inside it, P(w) = w.  On the CPU tau comes from Condat's algorithm (Math. Program. 2016),
observed O(n) with one fused read pass (norm + filter) and one read/write pass for the result;
on CUDA, float32, from Triton kernels that search it by passes over the data (``_triton_l1``:
no sort, no host synchronisation); otherwise from a sort, O(n log n), in pure torch.

Simplex  Delta(r) = { x : x >= 0, sum_i x_i = r }:  P(v) = max(v - tau, 0), sum = r.

See docs/METHOD.md §2.1 (rules common to every operator) and §2.2.
"""

from __future__ import annotations

import numpy as np
import torch

from projlib.projections import _l1_kernels, _torch_ops, _triton_l1, _triton_ops
from projlib.projections._scaling import check_range, run_scaled
from projlib.projections._validate import (
    as_contiguous,
    check_radius,
    check_tensor,
)


def cast_threshold(tau: float, dtype: np.dtype) -> np.floating:
    """``tau`` in ``dtype``, rounded up so the float32 result never leaves the ball by rounding."""
    t = dtype.type(tau)
    if float(t) < tau:
        t = np.nextafter(t, dtype.type(np.inf))
    return t


def new_output(X: torch.Tensor) -> torch.Tensor:
    """A fresh CPU tensor like the contiguous ``X``, allocated by numpy.

    numpy asks for transparent huge pages on its arrays of 4 MiB and more, torch's CPU
    allocator does not: a first write to an 80 MB torch buffer takes ~20,000 page faults,
    3-4x the write itself (docs/BENCHMARKS.md, "Output pages").  No effect below 4 MiB.
    """
    return torch.from_numpy(np.empty_like(X.numpy()))


def project_l1(W: torch.Tensor, radius: float) -> torch.Tensor:
    """Project ``W`` (any shape, read as one vector) onto the l1 ball of ``radius``.

    Formula: x = sign(w) max(|w| - tau, 0), tau from ``l1_tau`` (CPU, observed O(n)), the
    Triton search (float32 on CUDA, a few passes) or a sort (other devices, O(n log n)).
    Returns a new tensor; ``W`` comes back bit for bit when already inside the ball, zeros
    when ``radius`` is 0.
    """
    W = check_tensor(W, grouped=False)
    r = check_radius(radius)
    X = as_contiguous(W)
    if X.numel() == 0:
        return X.clone()
    if X.device.type != "cpu":
        return _on_device(X, r)
    return run_scaled(_l1_cpu, X, r)


def _on_device(X: torch.Tensor, r: float) -> torch.Tensor:
    """Non-CPU tensors: the Triton search where it applies (``_triton_l1.eligible``; not with
    ``CHECK_FINITE``, which needs the torch path's check), else the sort in pure torch."""
    return _triton_ops.run(_triton_l1.eligible(X), lambda: _triton_l1.project(X, r),
                           lambda: _torch_ops.project_l1(X, r))


def _l1_cpu(X: torch.Tensor, r: float) -> torch.Tensor | None:
    """None when inside; OutOfRange when sum|x| leaves ``_scaling.SAFE`` (rerun rescaled)."""
    x = X.numpy().reshape(-1)
    total, tau = _l1_kernels.l1_tau(x, r)
    check_range(total, X.dtype)
    if total <= r:
        return None
    out = new_output(X)
    if r == 0.0:
        return out.zero_()
    _l1_kernels.soft_threshold(x, cast_threshold(tau, x.dtype), out.numpy().reshape(-1))
    return out


def project_simplex(v: torch.Tensor, radius: float = 1.0) -> torch.Tensor:
    """Project ``v`` (any shape, read as one vector) onto {x >= 0, sum x = radius}.

    Formula: x = max(v - tau, 0) with sum x = radius (Condat 2016 on the CPU, observed O(n);
    a sort on other devices).  ``radius`` 0 gives zeros.  Same shape, dtype and device as ``v``.
    """
    v = check_tensor(v, grouped=False, arg="v")
    r = check_radius(radius)
    X = as_contiguous(v)
    if X.numel() == 0:
        return X.clone()
    if not bool(torch.isfinite(X).all()):
        raise ValueError("v contains NaN or infinite entries")
    if r == 0.0:
        return torch.zeros_like(X)
    if X.device.type != "cpu":
        return _torch_ops.project_simplex(X, r)
    x = X.numpy().reshape(-1)
    tau = _l1_kernels.simplex_tau(x, r)
    out = np.maximum(x.astype(np.float64) - tau, 0.0).astype(x.dtype)
    return torch.from_numpy(out).reshape(X.shape)
