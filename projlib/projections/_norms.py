"""The gauge of each constraint's ball, for choosing radii and checking results.

``ProjectionSpec.norm(W, groups)`` is the norm whose ball of radius r the operator maps into
(for the bi-level operators, the norm they make <= r; docs/METHOD.md §2).  The functions here
compute it plainly, in float64 on the CPU, on a weight whose largest entry is in [0.5, 1);
:func:`safe_norm` brings any finite weight there by an exact power-of-two scaling and scales
the value back (every gauge is positively homogeneous), so tiny and huge entries give the true
norm: inf only when it exceeds the float64 range.  Costs one pass (one SVD for nuclear); it
is a reference computation, not a kernel.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from projlib.projections._scaling import mul_pow2
from projlib.projections._validate import group_shape

# plain gauge of a float64 CPU tensor with max |entry| in [0.5, 1) (or all zeros), for groups
PlainNorm = Callable[[torch.Tensor, str], float]


def group_matrix(W: torch.Tensor, groups: str) -> torch.Tensor:
    """(G, m) matrix whose rows are the groups of ``W`` (docs/METHOD.md §1 convention)."""
    A, G, B = group_shape(tuple(W.shape), groups)
    return W.reshape(A, G, B).permute(1, 0, 2).reshape(G, A * B)


def l1_norm(W: torch.Tensor, groups: str = "columns") -> float:
    """sum |w|: the l1 ball, and the bi-level l1,1 (its group l1 norms summed)."""
    return float(W.abs().sum())


def l21_norm(W: torch.Tensor, groups: str = "columns") -> float:
    """Sum over the groups of their l2 norms (group lasso)."""
    return float(torch.linalg.vector_norm(group_matrix(W, groups), dim=1).sum())


def l1inf_norm(W: torch.Tensor, groups: str = "columns") -> float:
    """Sum over the groups of their largest |entry| (l1,inf and bi-level l1,inf)."""
    M = group_matrix(W, groups)
    if M.numel() == 0:
        return 0.0
    return float(M.abs().amax(dim=1).sum())


def nuclear_norm(W: torch.Tensor, groups: str = "columns") -> float:
    """Sum of the singular values of the (out, rest) matrix view (a 1-D W is a column)."""
    return float(torch.linalg.svdvals(W.reshape(W.shape[0], -1)).sum())


def _exponent(W: torch.Tensor) -> int:
    """e with max |W| in [2**(e-1), 2**e); 0 for an all-zero, empty or non-finite W."""
    m = float(W.abs().amax()) if W.numel() else 0.0
    return math.frexp(m)[1] if 0 < m < math.inf else 0


def safe_norm(plain: PlainNorm, W: torch.Tensor, groups: str = "columns") -> float:
    """``plain`` of ``W`` (any device, float dtype) as a float64 number, overflow/underflow
    safe: computed on ``W * 2**-e`` (max |entry| in [0.5, 1), exact) and scaled back by 2**e.
    NaN entries give NaN, inf entries inf."""
    X = W.detach().cpu().to(torch.float64)
    e = _exponent(X)
    try:
        return math.ldexp(plain(mul_pow2(X, -e), groups), e)
    except OverflowError:
        return math.inf
