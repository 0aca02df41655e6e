"""Shared helpers for the projection tests: constraint norms, group matrices, random weights."""

from __future__ import annotations

import math

import torch

from projlib.projections._validate import group_shape

SHAPES_1D = ((1,), (7,), (40,))
SHAPES_2D = ((1, 1), (5, 3), (3, 8), (12, 10), (1, 9), (9, 1))
SHAPES_4D = ((4, 3, 2, 2), (2, 5, 3, 1), (3, 2, 1, 1))
ALL_SHAPES = SHAPES_1D + SHAPES_2D + SHAPES_4D


def group_matrix(W: torch.Tensor, groups: str) -> torch.Tensor:
    """(G, m) matrix whose rows are the groups of ``W`` (PAPER_NOTES §1 convention)."""
    A, G, B = group_shape(tuple(W.shape), groups)
    return W.reshape(A, G, B).permute(1, 0, 2).reshape(G, A * B)


def mul_pow2(T: torch.Tensor, k: int) -> torch.Tensor:
    """``T * 2**k`` in T's dtype, in steps whose factors are normal numbers (exact unless the
    result leaves the normal range, where it rounds once or twice)."""
    step = math.frexp(torch.finfo(T.dtype).max)[1] - 2  # 2**step is a normal number
    while k:
        j = max(-step, min(step, k))
        T = T * math.ldexp(1.0, j)
        k -= j
    return T


def scale_exponent(T: torch.Tensor) -> int:
    """e with max|T| in [2**(e-1), 2**e) (0 for an all-zero or empty T)."""
    m = float(T.detach().abs().amax()) if T.numel() else 0.0
    return math.frexp(m)[1] if m > 0 else 0


def constraint_norm(W: torch.Tensor, name: str, groups: str = "columns") -> float:
    """The norm whose ball the operator ``name`` maps into (float64).

    Overflow/underflow safe: computed on ``W * 2**-e`` (max |entry| in [0.5, 1), exact) and
    scaled back, so tiny and huge entries give the true norm (inf only when it exceeds the
    float64 range).
    """
    W = W.detach().cpu().to(torch.float64)
    e = scale_exponent(W)
    try:
        return math.ldexp(_plain_norm(mul_pow2(W, -e), name, groups), e)
    except OverflowError:
        return math.inf


def _plain_norm(W: torch.Tensor, name: str, groups: str) -> float:
    if name in ("l1", "l11"):
        return float(W.abs().sum())
    if name == "nuclear":
        return float(torch.linalg.svdvals(W.reshape(W.shape[0], -1)).sum())
    M = group_matrix(W, groups)
    if name == "l21":
        return float(torch.linalg.vector_norm(M, dim=1).sum())
    if name in ("l1inf", "l1inf_bilevel"):
        return float(M.abs().amax(dim=1).sum())
    raise KeyError(name)


def make_weight(shape: tuple[int, ...], seed: int, kind: str, dtype: torch.dtype) -> torch.Tensor:
    """Random weight: 'normal', 'ties' (small integers: many equal magnitudes), 'sparse'
    (70 % zeros, so some groups are entirely zero) or 'scaled' (entries spanning 1e-3..1e3)."""
    gen = torch.Generator().manual_seed(seed)
    W = torch.randn(shape, generator=gen, dtype=torch.float64)
    if kind == "ties":
        W = torch.randint(-3, 4, shape, generator=gen).to(torch.float64)
    elif kind == "sparse":
        W = W * (torch.rand(shape, generator=gen, dtype=torch.float64) < 0.3)
    elif kind == "scaled":
        W = W * 10.0 ** (6.0 * torch.rand(shape, generator=gen, dtype=torch.float64) - 3.0)
    return W.to(dtype)


def tolerance(dtype: torch.dtype) -> float:
    """Relative tolerance of the result's norm and entries for ``dtype``."""
    return 1e-10 if dtype == torch.float64 else 2e-5


def groups_for(name: str) -> tuple[str, ...]:
    from projlib.projections import REGISTRY

    return ("columns", "rows") if REGISTRY[name].grouped else ("columns",)


def torch_path(W: torch.Tensor, name: str, radius: float, groups: str) -> torch.Tensor:
    """The pure-torch (GPU) implementation of ``name``, run on whatever device W is on."""
    from projlib.projections import _torch_ops

    if name == "l1":
        return _torch_ops.project_l1(W, radius)
    if name == "nuclear":
        return _torch_ops.project_nuclear(W.reshape(W.shape[0], -1), radius).reshape(W.shape)
    fn = getattr(_torch_ops, f"project_{name}")
    return fn(W.reshape(group_shape(tuple(W.shape), groups)), radius).reshape(W.shape)
