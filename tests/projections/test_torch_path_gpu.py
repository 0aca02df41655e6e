"""The CUDA path on a real device (skipped without one): no host synchronisation under
``torch.cuda.set_sync_debug_mode("error")``, agreement with the CPU at sizes that take the
chunked searches, NaN policy, and the nuclear ball's feasibility in float32."""

from __future__ import annotations

import pytest
import torch

from projlib.projections import _torch_ops, project

from .helpers import constraint_norm, groups_for

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]

SYNC_FREE = ("l1", "l21", "l11", "l1inf_bilevel", "l1inf")
# small (one global sort), and large enough for the chunked / pivot searches
SHAPES = ((50,), (64, 48), (8, 6, 3, 3), (1000, 1000), (_torch_ops.FULL_SORT_MAX + 7,))


def _weight(shape, dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen, dtype=dtype)


@pytest.fixture
def sync_errors():
    previous = torch.cuda.get_sync_debug_mode()
    yield lambda: torch.cuda.set_sync_debug_mode("error")
    torch.cuda.set_sync_debug_mode(previous)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", SYNC_FREE)
def test_no_host_sync_on_cuda(name, shape, dtype, sync_errors):
    W = _weight(shape, dtype)
    for groups in groups_for(name):
        norm = constraint_norm(W, name, groups)
        Wg = W.cuda()
        project(Wg, name, 0.3 * norm, groups)  # warm-up: allocator, cached constants
        torch.cuda.synchronize()
        outs = []
        sync_errors()
        try:
            for radius in (0.0, 0.01 * norm, 0.3 * norm, 2.0 * norm):
                outs.append((radius, project(Wg, name, radius, groups)))
        finally:
            torch.cuda.set_sync_debug_mode("default")
        for radius, P in outs:
            ref = project(W, name, radius, groups)
            tol = 1e-6 if dtype == torch.float32 else 1e-12
            err = float((P.cpu().double() - ref.double()).abs().max())
            assert err <= tol * float(W.abs().max()), (groups, radius, err)
            if radius > norm:
                assert torch.equal(P, Wg)


@pytest.mark.parametrize("name", SYNC_FREE)
def test_cuda_nan_policy(name, monkeypatch):
    W = _weight((6, 5), torch.float32).cuda()
    W[2, 3] = float("nan")
    assert bool(torch.isnan(project(W, name, 1.0)).all())
    monkeypatch.setattr(_torch_ops, "CHECK_FINITE", True)
    with pytest.raises(ValueError, match="W contains NaN"):
        project(W, name, 1.0)


@pytest.mark.parametrize("shape", [(300, 200), (1000, 1000), (64, 48)])
@pytest.mark.parametrize("frac", [0.003, 0.3])
def test_cuda_nuclear_float32_is_feasible(shape, frac):
    W = _weight(shape, torch.float32, seed=shape[0])
    if shape == (64, 48):  # nearly rank one
        W = torch.outer(W[:, 0], W[0]) + 1e-3 * W
    radius = frac * constraint_norm(W, "nuclear")
    P = project(W.cuda(), "nuclear", radius)
    assert P.dtype == torch.float32 and P.is_cuda
    got = float(torch.linalg.svdvals(P.cpu().double()).sum())
    assert got <= radius * (1 + 1e-6), got / radius - 1
    ref = project(W.double(), "nuclear", radius)
    assert float((P.cpu().double() - ref).abs().max()) <= 1e-5 * float(W.abs().max())
