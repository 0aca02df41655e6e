"""Entries at the ends of the floating-point range, for every constraint of the registry.

Norms computed naively underflow (squares of entries below ~sqrt(smallest normal)) or overflow
(squares above ~sqrt(max), or plain sums of entries near the max) although every entry is
finite.  Whatever the magnitude, the result must be finite, feasible, a true projection (the
same as the projection of the exactly rescaled input, scaled back), and a point inside the
ball must come back bit for bit.  Both code paths are checked: ``project`` (numba kernels on
the CPU) and the pure-torch kernels used for GPU tensors, here run on the CPU.
"""

from __future__ import annotations

import decimal
import math
import zlib
from decimal import Decimal

import pytest
import torch

from projlib.projections import REGISTRY, project

from .helpers import (
    constraint_norm,
    group_matrix,
    groups_for,
    mul_pow2,
    scale_exponent,
    tolerance,
    torch_path,
)

CASES = tuple((name, groups) for name in REGISTRY for groups in groups_for(name))
DTYPES = (torch.float32, torch.float64)
SHAPES = ((7,), (6, 5), (4, 3, 2, 2))
PATHS = ("project", "torch")


def _magnitude(kind: str, dtype: torch.dtype) -> float:
    fi = torch.finfo(dtype)
    return {
        "sqrt_tiny": math.sqrt(fi.tiny) * 2.0**-20,  # normal, squares underflow to 0
        "tiny": fi.tiny * 4.0,  # near the smallest normal
        "subnormal": fi.tiny * 2.0**-6,  # below it
        "sqrt_huge": math.sqrt(fi.max) * 2.0**20,  # squares overflow
        "huge_quarter": fi.max / 4.0,
        "huge": fi.max,  # sums overflow
    }[kind]


MAGNITUDES = ("sqrt_tiny", "tiny", "subnormal", "sqrt_huge", "huge_quarter", "huge")


def _quantum(dtype: torch.dtype) -> float:
    """The smallest subnormal: the absolute resolution of results in the subnormal range."""
    fi = torch.finfo(dtype)
    return fi.tiny * fi.eps


def extreme_weight(shape: tuple[int, ...], dtype: torch.dtype, kind: str) -> torch.Tensor:
    """Entries of magnitude in [0.5, 1) * the kind's magnitude, random signs, some zeros."""
    gen = torch.Generator().manual_seed(zlib.crc32(repr((shape, kind)).encode()))
    u = 0.5 + 0.5 * torch.rand(shape, generator=gen, dtype=torch.float64)
    sign = torch.where(torch.rand(shape, generator=gen) < 0.5, -1.0, 1.0).to(torch.float64)
    W = sign * u * _magnitude(kind, dtype)
    if W.numel() > 7:
        W.view(-1)[::5] = 0.0
    W = W.to(dtype)
    assert bool(torch.isfinite(W).all()) and bool((W != 0).any())
    return W


def _run(path: str, W: torch.Tensor, name: str, radius: float, groups: str) -> torch.Tensor:
    if path == "project":
        return project(W, name, radius, groups)
    return torch_path(W, name, radius, groups)


def _reference(W: torch.Tensor, name: str, radius: float, groups: str) -> torch.Tensor:
    """Projection of the exactly rescaled float64 input (max |entry| in [0.5, 1)), scaled
    back: every constraint is positively homogeneous, P_r(W) = s P_{r/s}(W / s)."""
    e = scale_exponent(W)
    Wn = mul_pow2(W.to(torch.float64), -e)
    return mul_pow2(project(Wn, name, math.ldexp(radius, -e), groups), e)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", MAGNITUDES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("name", "groups"), CASES)
def test_outside_the_ball_is_projected(name, groups, dtype, kind, shape, path):
    W = extreme_weight(shape, dtype, kind)
    m = float(W.abs().amax())
    norm = constraint_norm(W, name, groups)
    assert norm >= m  # every constraint norm bounds the largest entry
    radii = [0.5 * m]  # always below the norm, even when the norm itself overflows float64
    if math.isfinite(norm):
        radii.append(0.3 * norm)
    tol = tolerance(dtype)
    slack = 2 * W.numel() * _quantum(dtype)
    for radius in radii:
        P = _run(path, W, name, radius, groups)
        assert P.shape == W.shape and P.dtype == W.dtype and P.device == W.device
        assert bool(torch.isfinite(P).all()), f"non-finite result at radius {radius}"
        assert not torch.equal(P, W), f"returned unchanged although outside at {radius}"
        got = constraint_norm(P, name, groups)
        assert got <= radius * (1 + tol) + slack, (got, radius)
        ref = _reference(W, name, radius, groups)
        err = float((P.to(torch.float64) - ref).abs().amax())
        assert err <= tol * m + 4 * _quantum(dtype), (err, m)
    assert torch.equal(_run(path, W, name, 0.0, groups), torch.zeros_like(W))


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("kind", MAGNITUDES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("name", "groups"), CASES)
def test_inside_the_ball_is_returned_bit_for_bit(name, groups, dtype, kind, path):
    for shape in SHAPES:
        W = extreme_weight(shape, dtype, kind)
        norm = constraint_norm(W, name, groups)
        if not norm * 1.001 < torch.finfo(torch.float64).max:
            continue  # no finite radius holds a norm beyond the float64 range
        for radius in (norm * 1.001, 1e300 if norm < 1e300 else norm * 1.001):
            assert torch.equal(_run(path, W, name, radius, groups), W), (shape, radius)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_mixed_magnitudes_keep_the_large_entries_right(name):
    """Huge and ordinary entries side by side (float64: squares of the huge ones overflow)."""
    gen = torch.Generator().manual_seed(7)
    W = torch.randn(8, 6, generator=gen, dtype=torch.float64)
    W[::3, 1] *= 1e200
    W[1, ::2] *= 1e-200
    for groups in groups_for(name):
        radius = 0.2 * constraint_norm(W, name, groups)
        P = project(W, name, radius, groups)
        assert bool(torch.isfinite(P).all())
        assert constraint_norm(P, name, groups) <= radius * (1 + 1e-10)
        ref = _reference(W, name, radius, groups)
        assert float((P - ref).abs().amax()) <= 1e-10 * float(W.abs().amax())


def _decimal_norm(W: torch.Tensor, name: str, groups: str) -> float:
    """The norm in 60-digit decimal arithmetic (no overflow, no underflow), as a float."""
    with decimal.localcontext() as ctx:
        ctx.prec = 60
        if name in ("l1", "l11"):
            value = sum(abs(Decimal(float(x))) for x in W.flatten().tolist())
        elif name == "nuclear":  # its Frobenius norm, a lower bound
            value = sum(Decimal(float(x)) ** 2 for x in W.flatten().tolist()).sqrt()
        else:
            rows = group_matrix(W, groups).tolist()
            if name == "l21":
                value = sum(sum(Decimal(x) ** 2 for x in row).sqrt() for row in rows)
            else:
                value = sum(max(abs(Decimal(x)) for x in row) for row in rows)
        return float(value)


@pytest.mark.parametrize("kind", MAGNITUDES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("name", "groups"), CASES)
def test_constraint_norm_helper_is_scale_safe(name, groups, dtype, kind):
    """The test helper itself matches exact decimal arithmetic at every magnitude."""
    W = extreme_weight((6, 5), dtype, kind)
    got = constraint_norm(W, name, groups)
    want = _decimal_norm(W.to(torch.float64), name, groups)
    assert want > 0.0
    if name == "nuclear":  # Frobenius <= nuclear <= sqrt(rank) Frobenius
        assert want * (1 - 1e-12) <= got <= want * math.sqrt(5) * (1 + 1e-12) or (
            got == want == math.inf)
    elif want == math.inf:
        assert got == math.inf
    else:
        assert got == pytest.approx(want, rel=1e-12, abs=30 * _quantum(torch.float64))


_needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.gpu
@_needs_cuda
@pytest.mark.parametrize("kind", MAGNITUDES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("name", "groups"), CASES)
def test_gpu_extremes_match_the_cpu(name, groups, dtype, kind):
    """The CUDA path (pure torch, its own SVD) on the same extreme inputs."""
    tol = 1e-9 if dtype == torch.float64 else 1e-4
    for shape in SHAPES:
        W = extreme_weight(shape, dtype, kind)
        Wg = W.cuda()
        m = float(W.abs().amax())
        radius = 0.5 * m
        P = project(Wg, name, radius, groups)
        assert P.device == Wg.device and P.dtype == dtype
        assert bool(torch.isfinite(P).all()) and not torch.equal(P, Wg)
        got = constraint_norm(P, name, groups)
        assert got <= radius * (1 + tolerance(dtype)) + 2 * W.numel() * _quantum(dtype)
        ref = project(W, name, radius, groups)
        err = float((P.cpu().to(torch.float64) - ref.to(torch.float64)).abs().amax())
        assert err <= tol * m + 4 * _quantum(dtype), (shape, err, m)
        norm = constraint_norm(W, name, groups)
        if norm * 1.001 < torch.finfo(torch.float64).max:
            assert torch.equal(project(Wg, name, norm * 1.001, groups), Wg)
