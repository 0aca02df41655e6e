"""Projections onto the convex constraints of Guyard & Barlaud (ICPR 2020) and follow-ups.

>>> import torch
>>> from projlib.projections import project, REGISTRY
>>> W2 = project(torch.randn(300, 784), "l11", radius=5.0, groups="columns")

CPU tensors use numba kernels compiled on first use and cached on disk; call :func:`warmup`
once (e.g. at program start, or in a benchmark's setup) to pay that compile time up front.

A new constraint is one :class:`ProjectionSpec` (operator, norm, groupings, default radii,
report label and colour) passed to :func:`register`; see ``registry``.
"""

from __future__ import annotations

import torch

from projlib.checks import check_bool
from projlib.projections import _torch_ops
from projlib.projections.grouped import (
    project_l1inf,
    project_l1inf_bilevel,
    project_l11,
    project_l21,
)
from projlib.projections.l1 import project_l1, project_simplex
from projlib.projections.nuclear import project_nuclear
from projlib.projections.registry import (
    ANY_MODEL,
    REGISTRY,
    ProjectionSpec,
    constraint_names,
    project,
    register,
    unregister,
)


def set_cuda_check_finite(enabled: bool) -> bool:
    """Whether projections of CUDA tensors check that the input is finite; returns the
    previous setting.

    Off by default: the CUDA path then never synchronises with the host (it can be captured
    in a CUDA graph) and a NaN/inf input gives a NaN result. On: such an input raises
    ``ValueError`` as on the CPU, at the cost of one host synchronisation per call."""
    check_bool("enabled", enabled)
    previous = _torch_ops.CHECK_FINITE
    _torch_ops.CHECK_FINITE = enabled
    return previous


def warmup() -> None:
    """Compile (or load from the on-disk cache) every CPU kernel for float32 and float64.

    Takes a few seconds in a fresh install, tens of milliseconds afterwards.
    """
    gen = torch.Generator().manual_seed(0)
    for dtype in (torch.float32, torch.float64):
        shapes = ((7,), (5, 6), (3, 4, 2, 2), (1, 6))
        for shape in shapes:
            W = torch.randn(shape, generator=gen, dtype=dtype)
            for name in REGISTRY:
                for groups in REGISTRY[name].groupings:
                    project(W, name, 0.5, groups)
                    project(W, name, 1e6, groups)
        project_simplex(torch.randn(5, generator=gen, dtype=dtype), 1.0)
        # long enough for the l1 kernel's sampled-bracket path (n >= 4 * 8192)
        long = torch.randn(40_000, generator=gen, dtype=dtype)
        for radius in (1.0, 100.0, 3000.0):
            project(long, "l1", radius)


__all__ = [
    "ANY_MODEL",
    "REGISTRY",
    "ProjectionSpec",
    "constraint_names",
    "project",
    "project_l1",
    "project_l11",
    "project_l1inf",
    "project_l1inf_bilevel",
    "project_l21",
    "project_nuclear",
    "project_simplex",
    "register",
    "set_cuda_check_finite",
    "unregister",
    "warmup",
]
