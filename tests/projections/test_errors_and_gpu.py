"""Bad input gets one clear error naming the argument; GPU variants (skipped without CUDA)."""

from __future__ import annotations

import pytest
import torch

from projlib import REGISTRY, project
from projlib.projections import constraint_names

from .helpers import constraint_norm, groups_for

NAMES = constraint_names()
GROUPED = tuple(n for n in NAMES if n != "l1")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("radius", [-1.0, float("nan"), float("inf"), -float("inf")])
def test_bad_radius_values(name, radius):
    with pytest.raises(ValueError, match="radius"):
        project(torch.randn(3, 3), name, radius)


@pytest.mark.parametrize("radius", ["1", None, True, 1 + 2j])
def test_bad_radius_types(radius):
    with pytest.raises(TypeError, match="radius"):
        project(torch.randn(3, 3), "l1", radius)


def test_radius_accepts_numpy_and_tensor_scalars():
    import numpy as np

    W = torch.randn(4, 4)
    assert torch.equal(project(W, "l11", np.float32(0.5)), project(W, "l11", 0.5))
    assert torch.equal(project(W, "l11", torch.tensor(0.5)), project(W, "l11", 0.5))
    assert torch.equal(project(W, "l1", 2), project(W, "l1", 2.0))


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="name must be one of") as info:
        project(torch.randn(3), "l0", 1.0)
    assert all(n in str(info.value) for n in NAMES)
    with pytest.raises(TypeError, match="name"):
        project(torch.randn(3), 3, 1.0)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_entries(name, bad):
    for dtype in (torch.float32, torch.float64):
        W = torch.randn(4, 5, dtype=dtype)
        W[2, 3] = bad
        with pytest.raises(ValueError, match="W contains NaN or infinite"):
            project(W, name, 1.0)
        # also when the radius is huge (the point would otherwise count as inside the ball)
        with pytest.raises(ValueError, match="W"):
            project(W, name, 1e30)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool, torch.float16,
                                   torch.complex64])
def test_non_float_dtypes(name, dtype):
    with pytest.raises(TypeError, match="W must have dtype"):
        project(torch.ones(3, 3, dtype=dtype), name, 1.0)


@pytest.mark.parametrize("name", NAMES)
def test_not_a_tensor(name):
    with pytest.raises(TypeError, match="W must be a torch.Tensor"):
        project([[1.0, 2.0]], name, 1.0)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(3, 4), (5,), (2, 3, 2, 2)])
def test_meta_tensors_are_rejected_naming_the_argument(name, shape):
    W = torch.empty(shape, device="meta")
    for groups in groups_for(name):
        with pytest.raises((TypeError, ValueError), match="W .*meta"):
            project(W, name, 1.0, groups)


def test_simplex_rejects_meta_tensors_naming_v():
    from projlib.projections import project_simplex

    with pytest.raises((TypeError, ValueError), match="v .*meta"):
        project_simplex(torch.empty(4, device="meta"), 1.0)


@pytest.mark.parametrize("name", NAMES)
def test_sparse_tensors_are_rejected_naming_the_argument(name):
    W = torch.eye(3).to_sparse()
    with pytest.raises(TypeError, match="W must be a dense"):
        project(W, name, 1.0)


@pytest.mark.parametrize("name", GROUPED)
@pytest.mark.parametrize("shape", [(2, 3, 4), (2, 2, 2, 2, 2), ()])
def test_grouped_constraints_reject_other_ranks(name, shape):
    with pytest.raises(ValueError, match="W must be 1-D, 2-D"):
        project(torch.randn(shape), name, 1.0)


def test_l1_accepts_any_rank_but_rejects_groups():
    W = torch.randn(2, 3, 4)
    P = project(W, "l1", 1.0)
    assert P.shape == W.shape and float(P.abs().sum()) == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(ValueError, match="groups does not apply"):
        project(W, "l1", 1.0, groups="rows")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("groups", ["cols", "", None, 1])
def test_bad_groups(name, groups):
    with pytest.raises(ValueError, match="groups"):
        project(torch.randn(3, 3), name, 1.0, groups)


# ------------------------------------------------------------------------------------- GPU

_needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.gpu
@_needs_cuda
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(50,), (64, 48), (8, 6, 3, 3)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gpu_matches_cpu_and_stays_on_device(name, shape, dtype):
    gen = torch.Generator().manual_seed(0)
    W = torch.randn(shape, generator=gen, dtype=dtype)
    for groups in groups_for(name):
        for frac in (0.05, 0.5, 2.0):
            r = frac * constraint_norm(W, name, groups)
            Wg = W.cuda()
            before = Wg.clone()
            Pg = project(Wg, name, r, groups)
            assert Pg.device == Wg.device and Pg.dtype == dtype and Pg.shape == W.shape
            assert torch.equal(Wg, before)
            Pc = project(W, name, r, groups)
            tol = 1e-9 if dtype == torch.float64 else 1e-4
            scale = float(W.abs().max())
            assert float((Pg.cpu().double() - Pc.double()).abs().max()) <= tol * scale
            if frac > 1:
                assert torch.equal(Pg, Wg)


@pytest.mark.gpu
@_needs_cuda
def test_gpu_errors_and_spec_metadata(monkeypatch):
    from projlib.projections import _torch_ops

    W = torch.randn(4, 4, device="cuda")
    W[0, 0] = float("nan")
    # Sync-free by default: a NaN input gives a NaN result (no host read to raise from) ...
    for name in REGISTRY:
        if name != "nuclear":  # nuclear checks before its SVD (LAPACK can hang on NaN)
            assert torch.isnan(project(W, name, 1.0)).any(), name
    # ... and the error, at the cost of one sync after the work is queued, on request.
    monkeypatch.setattr(_torch_ops, "CHECK_FINITE", True)
    for name in REGISTRY:
        with pytest.raises(ValueError, match="W contains NaN"):
            project(W, name, 1.0)
