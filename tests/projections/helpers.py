"""Shared helpers for the projection tests: constraint norms, group matrices, random weights,
and the property checks run over every constraint of the registry (also by the test of a
constraint registered from outside the package, tests/test_toy_constraint.py)."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
import torch
from hypothesis import strategies as st

from projlib.projections import _norms
from projlib.projections._validate import group_shape

SHAPES_1D = ((1,), (7,), (40,))
SHAPES_2D = ((1, 1), (5, 3), (3, 8), (12, 10), (1, 9), (9, 1))
SHAPES_4D = ((4, 3, 2, 2), (2, 5, 3, 1), (3, 2, 1, 1))
ALL_SHAPES = SHAPES_1D + SHAPES_2D + SHAPES_4D
DTYPES = (torch.float64, torch.float32)
KINDS = ("normal", "ties", "sparse", "scaled")
FRACTIONS = (0.0, 0.01, 0.1, 0.5, 0.9, 0.999, 1.5)


def group_matrix(W: torch.Tensor, groups: str) -> torch.Tensor:
    """(G, m) matrix whose rows are the groups of ``W`` (the convention of docs/METHOD.md §1)."""
    return _norms.group_matrix(W, groups)


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
    """The norm whose ball the operator ``name`` maps into (float64): ``REGISTRY[name].norm``.

    Overflow/underflow safe: computed on ``W * 2**-e`` (max |entry| in [0.5, 1), exact) and
    scaled back, so tiny and huge entries give the true norm (inf only when it exceeds the
    float64 range).
    """
    from projlib.projections import REGISTRY

    return REGISTRY[name].norm(W, groups)


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
    """The groupings ``name`` accepts (``spec.groupings``)."""
    from projlib.projections import REGISTRY

    return REGISTRY[name].groupings


def torch_path(W: torch.Tensor, name: str, radius: float, groups: str) -> torch.Tensor:
    """The pure-torch (GPU) implementation of ``name``, run on whatever device W is on."""
    from projlib.projections import _torch_ops

    if name == "l1":
        return _torch_ops.project_l1(W, radius)
    if name == "nuclear":
        return _torch_ops.project_nuclear(W.reshape(W.shape[0], -1), radius).reshape(W.shape)
    fn = getattr(_torch_ops, f"project_{name}")
    return fn(W.reshape(group_shape(tuple(W.shape), groups)), radius).reshape(W.shape)


# ------------------------------------------------------- property checks of any constraint


@st.composite
def projection_cases(draw, names: tuple[str, ...]):
    """(name, W, radius, groups): a registered constraint, a random weight of any accepted
    shape, dtype and kind, one of its groupings, and a radius at a fraction of its norm."""
    name = draw(st.sampled_from(names))
    shape = draw(st.sampled_from(ALL_SHAPES))
    groups = draw(st.sampled_from(groups_for(name)))
    dtype = draw(st.sampled_from(DTYPES))
    W = make_weight(shape, draw(st.integers(0, 2**31 - 1)), draw(st.sampled_from(KINDS)), dtype)
    radius = draw(st.sampled_from(FRACTIONS)) * constraint_norm(W, name, groups)
    return name, W, radius, groups


def check_feasible_and_on_boundary(name: str, W: torch.Tensor, radius: float,
                                   groups: str) -> None:
    """The result is in the ball, and on its boundary when W was outside."""
    from projlib.projections import project

    P = project(W, name, radius, groups)
    tol = tolerance(W.dtype)
    norm_p = constraint_norm(P, name, groups)
    assert norm_p <= radius * (1 + tol) + 1e-300
    if constraint_norm(W, name, groups) > radius:
        assert norm_p == pytest.approx(radius, rel=max(tol, 1e-9), abs=1e-12)


def check_shape_dtype_device_and_input(name: str, W: torch.Tensor, radius: float,
                                       groups: str) -> None:
    """A new tensor of W's shape, dtype and device; W untouched."""
    from projlib.projections import project

    before = W.clone()
    P = project(W, name, radius, groups)
    assert P.shape == W.shape and P.dtype == W.dtype and P.device == W.device
    assert torch.equal(W, before)
    assert P.data_ptr() != W.data_ptr()


def check_fixed_point_inside(name: str, W: torch.Tensor, groups: str) -> None:
    """A point inside the ball comes back bit for bit."""
    from projlib.projections import project

    radius = constraint_norm(W, name, groups) * 1.0001 + 1e-12
    assert torch.equal(project(W, name, radius, groups), W)


def check_idempotent(name: str, W: torch.Tensor, radius: float, groups: str) -> None:
    """Projecting the projection changes nothing (up to rounding)."""
    from projlib.projections import project

    P = project(W, name, radius, groups)
    Q = project(P, name, radius, groups)
    scale = max(float(W.abs().max()), 1e-30)
    assert float((P - Q).abs().max()) <= 10 * tolerance(W.dtype) * scale


def check_radius_zero_gives_zeros(name: str, shape: tuple[int, ...]) -> None:
    from projlib.projections import project

    W = torch.randn(shape, dtype=torch.float64)
    for groups in groups_for(name):
        assert torch.equal(project(W, name, 0.0, groups), torch.zeros_like(W))


# ---------------------------------------------------------------- Triton kernels, compiled

_BUILD = """
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource


def build(cases, num_warps):
    built = 0
    for fn, sig, variants in cases:
        for consts in variants:
            warps = num_warps(consts) if callable(num_warps) else num_warps
            k = triton.compile(ASTSource(fn, sig, constexprs=consts),
                               target=GPUTarget("cuda", 90, 32), options={"num_warps": warps})
            assert len(k.asm["cubin"]) > 0
            built += 1
    print("built", built)
"""


def build_for_sm90(script: str, tmp_path) -> str:
    """Run ``script`` after a ``build(cases, num_warps)`` helper (Triton's compiler and ptxas,
    each (kernel, signature, constexpr variants) to a cubin for sm_90, H100/H200; num_warps
    an int or a function of the constexprs) in a fresh
    process without the interpreter and an empty kernel cache; returns what it printed."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path)  # really compile, no cache hit
    done = subprocess.run([sys.executable, "-c", _BUILD + script], env=env,
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()
