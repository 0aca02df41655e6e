"""Shared helpers for the projection tests: constraint norms, group matrices, random weights."""

from __future__ import annotations

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


def constraint_norm(W: torch.Tensor, name: str, groups: str = "columns") -> float:
    """The norm whose ball the operator ``name`` maps into (float64)."""
    W = W.detach().to(torch.float64).cpu()
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
