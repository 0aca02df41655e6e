"""Argument checking and the grouped view shared by every projection.

Every public operator funnels its arguments through :func:`check_tensor`, :func:`check_radius`
and :func:`check_groups`, so the error messages (which always name the offending argument)
are the same whichever constraint is asked for.

Grouped view: a weight is reshaped, without copying, into a 3-D array ``(A, G, B)`` where
group ``g`` is the slab ``X[:, g, :]``.  With the notation of docs/METHOD.md §1:

=============  =====================  ======================
W shape        groups="columns"       groups="rows"
=============  =====================  ======================
(n,)           (1, 1, n)  one group    (1, n, 1)  n groups
(out, in)      (out, in, 1)            (1, out, in)
(out,in,kh,kw) (out, in, kh*kw)        (1, out, in*kh*kw)
=============  =====================  ======================

A 1-D tensor is read as an ``(n, 1)`` column matrix: with ``groups="columns"`` it is one
group (so ``l11`` equals ``l1`` on it), with ``groups="rows"`` every entry is its own group.
"""

from __future__ import annotations

import math

import torch

from projlib.checks import OPERATOR_RADIUS

GROUPS_CHOICES: tuple[str, ...] = ("columns", "rows")
FLOAT_DTYPES: tuple[torch.dtype, ...] = (torch.float32, torch.float64)


def check_tensor(W: object, *, grouped: bool, arg: str = "W") -> torch.Tensor:
    """Check that ``W`` is a dense float32/float64 torch tensor with data (not on the "meta"
    device) and of an accepted rank.

    Finiteness is *not* checked here: the kernels get it for free from the norms they compute
    anyway (a NaN or inf entry makes the norm non-finite), see :func:`check_finite_norm`.
    """
    if not isinstance(W, torch.Tensor):
        raise TypeError(f"{arg} must be a torch.Tensor, got {type(W).__name__}")
    if W.layout != torch.strided:
        raise TypeError(f"{arg} must be a dense (strided) tensor, got layout {W.layout}")
    if W.device.type == "meta":
        raise ValueError(f"{arg} is a meta tensor: it has no data to project")
    if W.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{arg} must have dtype torch.float32 or torch.float64, got {W.dtype}")
    if W.is_complex():  # pragma: no cover - excluded by the dtype check, kept for clarity
        raise TypeError(f"{arg} must be real")
    if grouped and W.ndim not in (1, 2, 4):
        raise ValueError(
            f"{arg} must be 1-D, 2-D (out, in) or 4-D conv (out, in, kh, kw) for a grouped "
            f"constraint, got a {W.ndim}-D tensor of shape {tuple(W.shape)}"
        )
    return W


def check_radius(radius: object) -> float:
    """Return ``radius`` as a float after checking it is a finite real number >= 0
    (`projlib.checks.OPERATOR_RADIUS`; a one-element real tensor is read as its value)."""
    if isinstance(radius, torch.Tensor) and radius.numel() == 1 and not radius.is_complex():
        radius = radius.item()
    return OPERATOR_RADIUS.check("radius", radius)


def check_groups(groups: object) -> str:
    """Return ``groups`` after checking it is ``"columns"`` or ``"rows"``."""
    if not isinstance(groups, str) or groups not in GROUPS_CHOICES:
        raise ValueError(f"groups must be one of {GROUPS_CHOICES}, got {groups!r}")
    return groups


def check_finite_norm(norm: float, arg: str = "W") -> None:
    """Raise if a norm computed over ``arg`` came out NaN/inf (NaN or inf entries)."""
    if not math.isfinite(norm):
        raise ValueError(f"{arg} contains NaN or infinite entries")


def group_shape(shape: tuple[int, ...], groups: str) -> tuple[int, int, int]:
    """The ``(A, G, B)`` view of a weight of ``shape`` for ``groups`` (see module docstring)."""
    if len(shape) == 1:
        n = shape[0]
        # one group of n: laid out as (1, 1, n), the same grouping as (n, 1, 1) but contiguous
        return (1, 1, n) if groups == "columns" else (1, n, 1)
    rest = math.prod(shape[2:])  # 1 for a matrix, kh*kw for a conv weight
    out, inp = shape[0], shape[1]
    if groups == "columns":
        return (out, inp, rest)
    return (1, out, inp * rest)


def as_contiguous(W: torch.Tensor) -> torch.Tensor:
    """A detached, contiguous tensor with the same values; no copy when ``W`` already is one."""
    X = W.detach()
    if X.is_neg():  # a lazily negated view cannot be exposed to numpy
        X = X.resolve_neg()
    return X.contiguous()
