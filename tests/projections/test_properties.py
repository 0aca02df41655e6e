"""Property tests run over every constraint of the registry (a new entry is tested for free)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from projlib.projections import REGISTRY, constraint_names, project

from .helpers import ALL_SHAPES, constraint_norm, groups_for, make_weight, tolerance

NAMES = constraint_names()
EXACT = tuple(n for n in NAMES if REGISTRY[n].exact)
DTYPES = (torch.float64, torch.float32)
KINDS = ("normal", "ties", "sparse", "scaled")


@st.composite
def cases(draw, names=NAMES):
    name = draw(st.sampled_from(names))
    shape = draw(st.sampled_from(ALL_SHAPES))
    groups = draw(st.sampled_from(groups_for(name)))
    dtype = draw(st.sampled_from(DTYPES))
    W = make_weight(shape, draw(st.integers(0, 2**31 - 1)), draw(st.sampled_from(KINDS)), dtype)
    frac = draw(st.sampled_from((0.0, 0.01, 0.1, 0.5, 0.9, 0.999, 1.5)))
    radius = frac * constraint_norm(W, name, groups)
    return name, W, radius, groups


def test_registry_order_and_metadata():
    assert NAMES == ("l1", "l21", "l1inf", "nuclear", "l11", "l1inf_bilevel")
    for name, spec in REGISTRY.items():
        assert spec.name == name and callable(spec.fn) and spec.summary
    assert {n for n in NAMES if REGISTRY[n].exact} == {"l1", "l21", "l1inf", "nuclear"}
    assert {n for n in NAMES if REGISTRY[n].structured} == {"l21", "l1inf", "l11",
                                                            "l1inf_bilevel"}
    assert not REGISTRY["l1"].grouped and REGISTRY["l11"].grouped


@settings(max_examples=150, deadline=None)
@given(cases())
def test_feasible_and_on_boundary_when_outside(case):
    name, W, radius, groups = case
    P = project(W, name, radius, groups)
    tol = tolerance(W.dtype)
    norm_p = constraint_norm(P, name, groups)
    assert norm_p <= radius * (1 + tol) + 1e-300
    if constraint_norm(W, name, groups) > radius:
        assert norm_p == pytest.approx(radius, rel=max(tol, 1e-9), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(cases())
def test_shape_dtype_device_preserved_and_input_untouched(case):
    name, W, radius, groups = case
    before = W.clone()
    P = project(W, name, radius, groups)
    assert P.shape == W.shape and P.dtype == W.dtype and P.device == W.device
    assert torch.equal(W, before)
    assert P.data_ptr() != W.data_ptr()


@settings(max_examples=100, deadline=None)
@given(cases())
def test_fixed_points_inside_are_returned_bit_for_bit(case):
    name, W, _, groups = case
    radius = constraint_norm(W, name, groups) * 1.0001 + 1e-12
    assert torch.equal(project(W, name, radius, groups), W)


@settings(max_examples=100, deadline=None)
@given(cases())
def test_idempotent(case):
    name, W, radius, groups = case
    P = project(W, name, radius, groups)
    Q = project(P, name, radius, groups)
    scale = max(float(W.abs().max()), 1e-30)
    assert float((P - Q).abs().max()) <= 10 * tolerance(W.dtype) * scale


@settings(max_examples=60, deadline=None)
@given(cases(EXACT))
def test_variational_inequality(case):
    """<W - P(W), Z - P(W)> <= 0 for every Z in the set (Z = projections of random points)."""
    name, W, radius, groups = case
    W = W.to(torch.float64)
    P = project(W, name, radius, groups)
    gen = torch.Generator().manual_seed(1)
    for _ in range(5):
        Z = project(3 * torch.randn(W.shape, generator=gen, dtype=torch.float64), name, radius,
                    groups)
        inner = float(((W - P) * (Z - P)).sum())
        assert inner <= 1e-9 * (1 + float(W.norm()) ** 2)


@settings(max_examples=60, deadline=None)
@given(cases(EXACT), st.integers(0, 1000))
def test_non_expansive(case, seed):
    name, W, radius, groups = case
    W = W.to(torch.float64)
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(W.shape, generator=gen, dtype=torch.float64)
    V = W + noise * (float(W.abs().mean()) + 1e-3)
    d_in = float((W - V).norm())
    d_out = float((project(W, name, radius, groups) - project(V, name, radius, groups)).norm())
    assert d_out <= d_in * (1 + 1e-9) + 1e-12


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(6,), (4, 5), (3, 2, 2, 2)])
def test_radius_zero_gives_zeros(name, shape):
    W = torch.randn(shape, dtype=torch.float64)
    for groups in groups_for(name):
        P = project(W, name, 0.0, groups)
        assert torch.equal(P, torch.zeros_like(W))


@pytest.mark.parametrize("name", NAMES)
def test_empty_zero_and_noncontiguous_inputs(name):
    for groups in groups_for(name):
        Z = torch.zeros(4, 3)
        assert torch.equal(project(Z, name, 1.0, groups), Z)
        E = torch.zeros(0, 3)
        assert project(E, name, 1.0, groups).shape == (0, 3)
        W = torch.randn(6, 5, dtype=torch.float64)
        Wt = W.t()  # a non-contiguous view: the result must equal that of its contiguous copy
        assert torch.equal(project(Wt, name, 0.5, groups), project(Wt.contiguous(), name, 0.5,
                                                                 groups))


@pytest.mark.parametrize("name", NAMES)
def test_requires_grad_input_is_accepted_and_result_detached(name):
    W = torch.randn(5, 4, requires_grad=True)
    P = project(W, name, 0.3)
    assert not P.requires_grad and W.grad is None
