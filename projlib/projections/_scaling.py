"""Exact power-of-two rescaling for inputs whose norms leave the floating-point range.

Every operator starts with one float64 norm of its whole input (the sum of the group norms;
for the nuclear ball, the largest entry).  Computed plainly, that norm is wrong at the ends
of the range although every entry is finite: squares underflow to 0 for entries below about
1e-162 (float64; a group of such entries then looks empty and the input "inside" the ball),
overflow above about 1e154, and plain sums of entries near the dtype's max overflow (a float64
vector of 1e308 values).  Intermediate sums in the input's own dtype (the float32 phase of the
l11 kernels) overflow earlier still.

The fast path therefore only checks that this norm lies in ``SAFE[dtype]`` (one comparison on
a number it computes anyway) and raises :class:`OutOfRange` otherwise, before deciding
anything from it.  :func:`run_scaled` then reruns the operator on ``W * 2**-e``, where
``2**(e-1) <= max |W| < 2**e``: every constraint here is positively homogeneous, so
P_r(W) = 2**e P_{r 2**-e}(W 2**-e), and a power-of-two scaling is exact (no rounding) except
where it creates subnormals.  Scaling back down into the subnormal range rounds toward zero,
so the result never leaves the ball by that rounding.  Cost on the common path: nothing
measurable; on the fallback path one max-|W| pass and two scaled copies.

A NaN or inf entry also makes the norm non-finite, so it takes the same exit; the max-|W| pass
of the fallback then reports it (``check_finite_norm``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from projlib.projections._validate import check_finite_norm

# Range of the float64 norm in which the plain computation is trusted.  float64: squares of
# totals up to 2**400 stay finite, and entries whose squares underflow (< 2**-537) are below
# 2**-137 of a total >= 2**-400, far under the rounding.  float32 (sums partly accumulated in
# float32): totals up to 2**60 leave every float32 partial sum far from overflow, and results
# at 2**-60 of the total or more stay normal.
SAFE: dict[torch.dtype, tuple[float, float]] = {
    torch.float32: (2.0**-60, 2.0**60),
    torch.float64: (2.0**-400, 2.0**400),
}

# 2**k is a normal number of the dtype for |k| <= _STEP[dtype]
_STEP: dict[torch.dtype, int] = {torch.float32: 126, torch.float64: 1022}


class OutOfRange(ArithmeticError):
    """A fast path's norm left ``SAFE`` (or is NaN/inf): rerun on the rescaled input."""


def check_range(total: float, dtype: torch.dtype) -> None:
    """Raise :class:`OutOfRange` unless ``total`` lies in ``SAFE[dtype]`` (NaN does not)."""
    lo, hi = SAFE[dtype]
    if not lo <= total <= hi:
        raise OutOfRange


def mul_pow2(X: torch.Tensor, k: int) -> torch.Tensor:
    """``X * 2**k`` as a new tensor of X's dtype, by factors that are normal numbers.

    Exact when scaling up (unless it overflows); when scaling down the small step comes
    first, so only the last multiplication can create subnormals (one rounding).
    """
    step = _STEP[X.dtype]
    steps = [step] * (abs(k) // step)
    if abs(k) % step:
        steps.insert(0, abs(k) % step)
    sign = 1 if k >= 0 else -1
    Y = X.clone() if not steps else X
    for j in steps:
        Y = Y * math.ldexp(1.0, sign * j)
    return Y


def scale_back(P: torch.Tensor, e: int) -> torch.Tensor:
    """``P * 2**e``, rounded toward zero where it lands in the subnormal range (e < 0)."""
    Q = mul_pow2(P, e)
    if e < 0:
        over = mul_pow2(Q, -e).abs() > P.abs()  # scaling up is exact: |Q| > |P| 2**e exactly
        Q = torch.where(over, torch.nextafter(Q, torch.zeros_like(Q)), Q)
    return Q


def max_exponent(X: torch.Tensor, arg: str = "W") -> int | None:
    """e with 2**(e-1) <= max |X| < 2**e, None when X is all zeros (or empty); raises
    ValueError naming ``arg`` on NaN/inf."""
    if X.numel() == 0:
        return None
    m = float(X.abs().amax())  # amax propagates NaN
    check_finite_norm(m, arg)
    return None if m == 0.0 else math.frexp(m)[1]


Impl = Callable[..., "torch.Tensor | None"]


def rescaled(impl: Impl, X: torch.Tensor, radius: float, *args: object) -> torch.Tensor:
    """``impl`` run on X 2**-e with radius r 2**-e, its result scaled back by 2**e.

    ``impl(X, radius, *args)`` returns the projection, or None when X is inside the ball (then
    X itself is returned, as a copy: bit for bit, never a rounded rescaling of it).
    """
    e = max_exponent(X)
    if e is None:  # all zeros: inside every ball
        return X.clone()
    try:
        r = math.ldexp(radius, -e)
    except OverflowError:  # radius beyond 2**1024 times the largest entry: inside
        return X.clone()
    P = impl(mul_pow2(X, -e), r, *args)
    if P is None:
        return X.clone()
    return scale_back(P, e)


def run_scaled(impl: Impl, X: torch.Tensor, radius: float, *args: object) -> torch.Tensor:
    """``impl(X, radius, *args)`` (None meaning "inside": a copy of X), falling back to
    :func:`rescaled` when it raises :class:`OutOfRange`."""
    try:
        P = impl(X, radius, *args)
    except OutOfRange:
        return rescaled(impl, X, radius, *args)
    return X.clone() if P is None else P
