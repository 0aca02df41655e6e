"""Property tests run over every constraint of the registry (a new entry is tested for free)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from projlib.projections import REGISTRY, constraint_names, project

from .helpers import (
    check_feasible_and_on_boundary,
    check_fixed_point_inside,
    check_idempotent,
    check_radius_zero_gives_zeros,
    check_shape_dtype_device_and_input,
    group_matrix,
    groups_for,
    projection_cases,
)

NAMES = constraint_names()
EXACT = tuple(n for n in NAMES if REGISTRY[n].exact)


def cases(names=NAMES):
    return projection_cases(names)


def test_registry_order_and_flags_match_behaviour():
    """The documented order (docs/ARCHITECTURE.md, the CLI help); each spec's flags checked
    against what its operator does rather than restated: `structured` -> a tight ball removes
    whole groups (in every grouping it takes) but not all; `grouped` -> "rows" and "columns"
    give different results. (`exact` is checked by the variational inequality below.)"""
    assert NAMES == ("l1", "l21", "l1inf", "nuclear", "l11", "l1inf_bilevel")
    W = torch.randn(8, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for name, spec in REGISTRY.items():
        assert spec.name == name and callable(spec.fn) and spec.summary
        results = {}
        for groups in spec.groupings:
            P = results[groups] = project(W, name, 0.1 * spec.norm(W, groups), groups)
            dead = group_matrix(P, groups).abs().amax(dim=1) == 0
            if spec.structured:
                assert bool(dead.any()) and not bool(dead.all()), (name, groups)
        if spec.grouped:
            assert not torch.equal(results["columns"], results["rows"]), name


def test_every_spec_has_a_norm_radii_label_and_a_distinct_colour():
    W = torch.randn(6, 5, dtype=torch.float64)
    for name, spec in REGISTRY.items():
        assert spec.label and spec.colour.startswith("#") and len(spec.colour) == 7
        radii = spec.radii_for("mlp")
        assert radii and all(r > 0 for r in radii) and spec.radii_for("convnet")
        for groups in groups_for(name):
            assert spec.norm(W, groups) > 0
    assert len({spec.colour for spec in REGISTRY.values()}) == len(REGISTRY)


@settings(max_examples=150, deadline=None)
@given(cases())
def test_feasible_and_on_boundary_when_outside(case):
    check_feasible_and_on_boundary(*case)


@settings(max_examples=100, deadline=None)
@given(cases())
def test_shape_dtype_device_preserved_and_input_untouched(case):
    check_shape_dtype_device_and_input(*case)


@settings(max_examples=100, deadline=None)
@given(cases())
def test_fixed_points_inside_are_returned_bit_for_bit(case):
    name, W, _, groups = case
    check_fixed_point_inside(name, W, groups)


@settings(max_examples=100, deadline=None)
@given(cases())
def test_idempotent(case):
    check_idempotent(*case)


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
    check_radius_zero_gives_zeros(name, shape)


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
