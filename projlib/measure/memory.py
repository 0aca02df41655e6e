"""Storage sizes of weight tensors: dense, CSR and the entropy bound (docs/METHOD.md §5.3)."""

from __future__ import annotations

import math

import torch


def csr_bytes(matrix: torch.Tensor, index_bytes: int = 4, tolerance: float = 0.0) -> int:
    """Bytes of ``matrix`` (2-D) in CSR: nnz values + nnz column indices + (rows + 1) row pointers.

    Values keep the matrix's element size; indices and row pointers take ``index_bytes`` each
    (4 = int32, enough below 2^31 nonzeros; 8 = int64, what ``torch.sparse_csr`` uses by default).
    """
    if matrix.dim() != 2:
        raise ValueError(f"matrix must be 2-D (got {matrix.dim()}-D)")
    if index_bytes not in (4, 8):
        raise ValueError(f"index_bytes must be 4 or 8 (got {index_bytes!r})")
    nnz = int((matrix.detach().abs() > tolerance).sum())
    return nnz * (matrix.element_size() + index_bytes) + (matrix.shape[0] + 1) * index_bytes


def empirical_entropy_bits(values: torch.Tensor) -> float:
    """H = -sum_v p_v log2 p_v over the distinct values of ``values`` (exact float equality).

    O(n log n) (sort inside ``torch.unique``). 0 for an empty or constant tensor.
    """
    flat = values.detach().flatten()
    if flat.numel() == 0:
        return 0.0
    _, counts = torch.unique(flat, return_counts=True)
    p = counts.double() / flat.numel()
    return float(-(p * torch.log2(p)).sum())


def entropy_bytes(values: torch.Tensor, dtype: torch.dtype | None = None) -> int:
    """The authors' estimate ceil(H * numel / 8) bytes, H from :func:`empirical_entropy_bits`.

    ``dtype`` (e.g. ``torch.float16``) casts first, to price storage in a narrower format.
    """
    v = values.detach() if dtype is None else values.detach().to(dtype)
    return math.ceil(empirical_entropy_bits(v) * v.numel() / 8)
