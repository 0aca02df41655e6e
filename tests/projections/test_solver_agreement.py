"""Exact projections agree with a convex solver (cvxpy + Clarabel) on small random instances."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from projlib.projections import REGISTRY, constraint_names, project, project_simplex

from .helpers import constraint_norm, group_matrix, groups_for, make_weight

cp = pytest.importorskip("cvxpy")

EXACT = tuple(n for n in constraint_names() if REGISTRY[n].exact)
SMALL_SHAPES = ((9,), (5, 4), (3, 6), (3, 2, 2, 2))
_TIGHT = {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12, "tol_ktratio": 1e-10,
          "max_iter": 400}


def _solve(Y: np.ndarray, name: str, radius: float) -> np.ndarray:
    """argmin ||X - Y||^2 s.t. norm(X) <= radius, rows of Y = groups (matrix for nuclear)."""
    X = cp.Variable(Y.shape)
    if name == "l1":
        cons = [cp.sum(cp.abs(X)) <= radius]
    elif name == "l21":
        cons = [cp.sum(cp.norm(X, 2, axis=1)) <= radius]
    elif name == "l1inf":
        cons = [cp.sum(cp.max(cp.abs(X), axis=1)) <= radius]
    else:
        cons = [cp.normNuc(X) <= radius]
    prob = cp.Problem(cp.Minimize(cp.sum_squares(X - Y)), cons)
    if name == "nuclear":
        prob.solve(solver="SCS", eps=1e-11, max_iters=200_000)
    else:
        prob.solve(solver="CLARABEL", **_TIGHT)
    return np.asarray(X.value)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(EXACT), st.sampled_from(SMALL_SHAPES), st.integers(0, 10_000),
       st.sampled_from((0.05, 0.3, 0.8)), st.sampled_from(("columns", "rows")),
       st.sampled_from(("normal", "ties", "sparse")))
def test_exact_projection_matches_cvxpy(name, shape, seed, frac, groups, kind):
    groups = groups if groups in groups_for(name) else "columns"
    W = make_weight(shape, seed, kind, torch.float64)
    radius = frac * constraint_norm(W, name, groups)
    if radius == 0.0:
        return
    P = project(W, name, radius, groups)
    if name == "nuclear":
        Y, got = W.reshape(shape[0], -1), P.reshape(shape[0], -1)
    elif name == "l1":
        Y, got = W.reshape(1, -1), P.reshape(1, -1)
    else:
        Y, got = group_matrix(W, groups), group_matrix(P, groups)
    ref = _solve(Y.numpy(), name, radius)
    err = np.linalg.norm(got.numpy() - ref) / max(np.linalg.norm(Y.numpy()), 1e-12)
    # SCS (the only SDP solver installed) reaches ~1e-6 on the nuclear ball; 1e-6 elsewhere
    assert err <= (3e-6 if name == "nuclear" else 1e-6), err


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 30), st.integers(0, 10_000), st.sampled_from((0.0, 0.5, 1.0, 7.0)))
def test_simplex_projection_matches_cvxpy(n, seed, radius):
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(n, generator=gen, dtype=torch.float64) * 2
    x = project_simplex(v, radius)
    assert float(x.min()) >= 0.0
    assert float(x.sum()) == pytest.approx(radius, abs=1e-10)
    if radius > 0:
        X = cp.Variable(n)
        cp.Problem(cp.Minimize(cp.sum_squares(X - v.numpy())), [X >= 0, cp.sum(X) == radius]
                   ).solve(solver="CLARABEL", **_TIGHT)
        assert np.abs(x.numpy() - X.value).max() <= 1e-6 * max(1.0, float(v.abs().max()))


def test_simplex_float32_shape_and_errors():
    v = torch.randn(3, 4)
    x = project_simplex(v, 2.0)
    assert x.shape == v.shape and x.dtype == torch.float32
    assert float(x.sum()) == pytest.approx(2.0, rel=1e-5)
    with pytest.raises(ValueError, match="radius"):
        project_simplex(v, -1.0)
    with pytest.raises(ValueError, match="v contains NaN"):
        project_simplex(torch.tensor([1.0, float("nan")]), 1.0)
    with pytest.raises(TypeError, match="v must"):
        project_simplex([1.0, 2.0], 1.0)
