"""Bi-level structure, grouped-view conventions (incl. 4-D conv) and the two code paths."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from projlib.projections import REGISTRY, _torch_ops, constraint_names, project, warmup

from .helpers import (
    ALL_SHAPES,
    constraint_norm,
    group_matrix,
    groups_for,
    make_weight,
    torch_path,
)

STRUCTURED = tuple(n for n in constraint_names() if REGISTRY[n].structured)


def _alive_groups(P: torch.Tensor, groups: str) -> set[int]:
    return set(torch.nonzero(group_matrix(P, groups).abs().amax(dim=1) > 0).flatten().tolist())


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(STRUCTURED), st.sampled_from(ALL_SHAPES), st.integers(0, 10_000),
       st.data(), st.sampled_from(("normal", "sparse", "ties")))
def test_fewer_surviving_groups_as_radius_shrinks(name, shape, seed, data, kind):
    groups = data.draw(st.sampled_from(groups_for(name)))
    W = make_weight(shape, seed, kind, torch.float64)
    full = constraint_norm(W, name, groups)
    previous = _alive_groups(W, groups)
    for frac in (0.9, 0.5, 0.2, 0.05, 0.01):
        alive = _alive_groups(project(W, name, frac * full, groups), groups)
        assert alive <= previous  # a removed group never comes back at a smaller radius
        previous = alive


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(("l11", "l1inf_bilevel")), st.sampled_from(ALL_SHAPES),
       st.integers(0, 10_000), st.sampled_from(("columns", "rows")),
       st.sampled_from((0.01, 0.1, 0.5)))
def test_bilevel_outer_level_is_l1_projection_of_group_norms(name, shape, seed, groups, frac):
    """Group g ends with norm u_g where u = P_B1(radius)(v), v the group norms; u_g = 0 zeroes g."""
    W = make_weight(shape, seed, "normal", torch.float64)
    radius = frac * constraint_norm(W, name, groups)
    P = project(W, name, radius, groups)
    M, Q = group_matrix(W, groups), group_matrix(P, groups)
    if name == "l11":
        v, got = M.abs().sum(dim=1), Q.abs().sum(dim=1)
    else:
        v, got = M.abs().amax(dim=1), Q.abs().amax(dim=1)
    u = _torch_ops.project_l1(v, radius)
    torch.testing.assert_close(got, u, rtol=1e-9, atol=1e-12)
    assert torch.equal(got == 0, u == 0)
    # within a group, l11 soft-thresholds (signs kept) and l1inf_bilevel clips
    assert bool(((Q == 0) | (torch.sign(Q) == torch.sign(M))).all())
    assert bool((Q.abs() <= M.abs() + 1e-12).all())


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 50), st.integers(0, 10_000), st.sampled_from((0.01, 0.3, 0.9)),
       st.sampled_from((torch.float32, torch.float64)))
def test_l11_on_a_single_group_equals_l1(n, seed, frac, dtype):
    W = make_weight((n,), seed, "normal", dtype)
    r = frac * float(W.abs().sum())
    # the outer level returns u = r up to one rounding, hence a tolerance rather than equality
    tol = {"rtol": 1e-12, "atol": 1e-12} if dtype == torch.float64 else {}
    torch.testing.assert_close(project(W, "l11", r), project(W, "l1", r), **tol)
    col = W.reshape(n, 1)  # one column = one group
    torch.testing.assert_close(project(col, "l11", r, "columns").reshape(n),
                               project(W, "l1", r), **tol)


@pytest.mark.parametrize("name", STRUCTURED)
def test_conv_groups_are_input_channels_or_filters(name):
    """columns: group j = W[:, j] (input channel j); rows: group i = W[i] (filter i)."""
    gen = torch.Generator().manual_seed(3)
    W = torch.randn(6, 4, 3, 3, generator=gen, dtype=torch.float64)
    r = 0.2 * constraint_norm(W, name, "columns")
    P = project(W, name, r, "columns")
    cols = W.permute(1, 0, 2, 3).reshape(4, -1).t()  # column j of this matrix = W[:, j] flat
    expected = project(cols, name, r, "columns").t().reshape(4, 6, 3, 3).permute(1, 0, 2, 3)
    torch.testing.assert_close(P, expected, rtol=1e-12, atol=1e-12)
    r = 0.2 * constraint_norm(W, name, "rows")
    P = project(W, name, r, "rows")
    expected = project(W.reshape(6, -1), name, r, "rows").reshape(W.shape)
    torch.testing.assert_close(P, expected, rtol=1e-12, atol=1e-12)


def test_nuclear_acts_on_the_out_by_rest_matrix_of_a_conv_weight():
    W = torch.randn(5, 3, 2, 2, dtype=torch.float64)
    s = torch.linalg.svdvals(W.reshape(5, -1))
    P = project(W, "nuclear", 0.5 * float(s.sum()))
    s2 = torch.linalg.svdvals(P.reshape(5, -1))
    assert float(s2.sum()) == pytest.approx(0.5 * float(s.sum()), rel=1e-9)



def test_nuclear_is_ungrouped_and_rejects_groups_like_l1():
    """Registered without groupings, so "rows" is refused like for l1 (it used to be
    accepted and ignored), by project, the registered operator and the norm alike."""
    W = torch.randn(5, 3, 2, 2, dtype=torch.float64)
    spec = REGISTRY["nuclear"]
    assert spec.groups == () and not spec.grouped
    for call in (lambda: project(W, "nuclear", 1.0, "rows"),
                 lambda: spec.fn(W, 1.0, "rows"),
                 lambda: spec.norm(W, "rows")):
        with pytest.raises(ValueError, match="groups does not apply"):
            call()
    assert torch.equal(spec.fn(W, 1.0, "columns"), project(W, "nuclear", 1.0))


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(constraint_names()), st.sampled_from(ALL_SHAPES), st.integers(0, 10_000),
       st.sampled_from((0.01, 0.2, 0.7, 1.2)), st.sampled_from(("normal", "ties", "sparse")),
       st.sampled_from((torch.float32, torch.float64)))
def test_numba_cpu_path_agrees_with_pure_torch_path(name, shape, seed, frac, kind, dtype):
    """The pure-torch path (used on GPUs) and the numba CPU path compute the same operator."""
    groups = groups_for(name)[seed % len(groups_for(name))]
    W = make_weight(shape, seed, kind, dtype)
    r = frac * constraint_norm(W, name, groups)
    got = project(W, name, r, groups)
    ref = torch_path(W, name, r, groups)
    tol = 1e-10 if dtype == torch.float64 else 2e-5
    scale = max(float(W.abs().max()), 1e-30)
    assert float((got.to(torch.float64) - ref.to(torch.float64)).abs().max()) <= tol * scale


def _compiled_signatures() -> dict[str, int]:
    from numba.core.registry import CPUDispatcher

    from projlib.projections import _group_kernels, _l1_kernels, _l11_kernels

    return {
        f"{m.__name__}.{n}": len(f.signatures)
        for m in (_l1_kernels, _l11_kernels, _group_kernels)
        for n, f in vars(m).items()
        if isinstance(f, CPUDispatcher)
    }


def test_warmup_compiles_every_kernel_the_projections_use():
    """After warmup(), projecting new shapes must not compile anything more (no JIT pause)."""
    warmup()
    before = _compiled_signatures()
    assert sum(before.values()) > 0
    gen = torch.Generator().manual_seed(1)
    for dtype in (torch.float32, torch.float64):
        for shape in ((50_001,), (40, 30), (6, 5, 3, 3)):
            W = torch.randn(shape, generator=gen, dtype=dtype)
            for name, spec in REGISTRY.items():
                for groups in spec.groups or ("columns",):
                    for radius in (0.3, 10.0):
                        project(W, name, radius, groups)
    assert _compiled_signatures() == before


def test_l1_large_vector_matches_sort_reference():
    """Exercise the blocked filter pass (length not a multiple of 4, several radii)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(100_003, generator=gen, dtype=torch.float64)
    for r in (0.5, 30.0, 3000.0, 60_000.0):
        torch.testing.assert_close(project(x, "l1", r), _torch_ops.project_l1(x, r),
                                   rtol=0, atol=1e-12)


@pytest.mark.parametrize("pattern", ["sorted", "periodic", "ties", "one_spike", "tiny_tail"])
def test_l1_sampling_guesses_never_change_the_result(pattern):
    """Inputs built to fool the strided-sample guesses of the CPU l1 kernel (the sample sees
    every (n // 8192)-th entry): the fallbacks must still return the exact threshold."""
    n = 1 << 17
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(n, generator=gen, dtype=torch.float64)
    if pattern == "sorted":
        x = torch.sort(x.abs(), descending=True).values
    elif pattern == "periodic":  # the sampled positions hold the large entries
        x = 0.01 * x
        x[n // 8192 // 2 :: n // 8192] = 5.0 + x[: 8192].abs()
    elif pattern == "ties":
        x = torch.randint(-2, 3, (n,), generator=gen).to(torch.float64)
    elif pattern == "one_spike":
        x[123] = 1e6
    else:  # large entries only off the sampled positions
        x = 0.01 * x
        x[1::64] = 3.0
    for r in (1e-3, 0.5, 20.0, 1e3, 0.3 * float(x.abs().sum()), 0.99 * float(x.abs().sum())):
        torch.testing.assert_close(project(x, "l1", r), _torch_ops.project_l1(x, r),
                                   rtol=0, atol=1e-9 * float(x.abs().max()))
