"""The pure-torch (GPU) path, run on CPU tensors, against the numba CPU path.

Every registry constraint, both code paths of the threshold searches (one sort for small
inputs; the chunked, pivot-narrowed search that large tensors take on a GPU, forced here on
small inputs by shrinking its knobs), inputs built to stress them (ties, geometric
magnitudes, a few distinct values), the inside-the-ball identity bit for bit (signed zeros
included), and the feasibility of the float32 nuclear ball in precise (GPU) mode.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from projlib.projections import REGISTRY, _torch_ops, constraint_names, project

from .helpers import ALL_SHAPES, constraint_norm, groups_for, make_weight, tolerance, torch_path

NAMES = constraint_names()
SHAPES = ALL_SHAPES + ((33, 17), (2, 3, 3, 3), (64,), (1, 40), (40, 1))
KNOBS = {
    "default": {},
    "chunked": {"FULL_SORT_MAX": 0, "CHUNK": 16, "PIVOTS": 4},
    "chunked_wide": {"FULL_SORT_MAX": 0, "CHUNK": 64, "PIVOTS": 1024},
}


def gpu_path(W: torch.Tensor, name: str, radius: float, groups: str) -> torch.Tensor:
    """What a CUDA tensor gets (the nuclear ball in precise mode), on W's device."""
    if name == "nuclear":
        M = W.reshape(W.shape[0], -1)
        return _torch_ops.project_nuclear(M, radius, precise=True).reshape(W.shape)
    return torch_path(W, name, radius, groups)


def reference(W: torch.Tensor, name: str, radius: float, groups: str) -> torch.Tensor:
    if name == "nuclear":  # the float64 projection of the same (float32) entries
        return project(W.to(torch.float64), name, radius, groups)
    return project(W, name, radius, groups)


def agreement_tol(dtype: torch.dtype) -> float:
    """Relative to max|W|: float32 results differ from the numba ones by at most a rounding."""
    return 1e-6 if dtype == torch.float32 else 1e-12


def adversarial(kind: str, shape: tuple[int, ...], seed: int, dtype: torch.dtype):
    gen = torch.Generator().manual_seed(seed)
    n = math.prod(shape)
    if kind == "geometric":  # one breakpoint per linear piece: worst case for Newton
        W = 1e3 * 2.0 ** -torch.arange(n, dtype=torch.float64)
        W = W[torch.randperm(n, generator=gen)]
    elif kind == "equal":
        W = torch.full((n,), 0.7, dtype=torch.float64)
    elif kind == "few":
        W = torch.randint(-2, 3, (n,), generator=gen).to(torch.float64)
    elif kind == "spike":
        W = 1e-3 * torch.randn(n, generator=gen, dtype=torch.float64)
        W[n // 3] = 1e3
    elif kind == "sorted":
        W = torch.sort(torch.randn(n, generator=gen, dtype=torch.float64).abs()).values
    else:
        W = make_weight((n,), seed, kind, torch.float64)
    sign = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0).to(torch.float64)
    return (W * sign).reshape(shape).to(dtype)


@pytest.fixture(params=list(KNOBS))
def knobs(request, monkeypatch):
    for attr, value in KNOBS[request.param].items():
        monkeypatch.setattr(_torch_ops, attr, value)
    return request.param


def _check_agreement(W, name, radius, groups):
    got = gpu_path(W, name, radius, groups)
    assert got.shape == W.shape and got.dtype == W.dtype
    ref = reference(W, name, radius, groups)
    scale = max(float(W.abs().max()), 1e-300)
    err = float((got.to(torch.float64) - ref.to(torch.float64)).abs().max()) / scale
    assert err <= agreement_tol(W.dtype), (name, groups, radius, err)
    norm = constraint_norm(got, name, groups)
    assert norm <= radius * (1 + tolerance(W.dtype)) + 1e-300, (norm, radius)


@settings(max_examples=120, deadline=None)
@given(st.sampled_from(NAMES), st.sampled_from(SHAPES), st.integers(0, 2**31 - 1),
       st.sampled_from(("normal", "ties", "sparse", "scaled")),
       st.sampled_from((torch.float32, torch.float64)),
       st.sampled_from((0.001, 0.05, 0.3, 0.8, 0.999)), st.sampled_from(list(KNOBS)),
       st.sampled_from(("columns", "rows")))
def test_agrees_with_the_numba_path_over_the_registry(name, shape, seed, kind, dtype, frac,
                                                      knob, groups):
    groups = groups if groups in groups_for(name) else "columns"
    W = make_weight(shape, seed, kind, dtype)
    radius = frac * constraint_norm(W, name, groups)
    if radius == 0.0:
        return
    saved = {a: getattr(_torch_ops, a) for a in KNOBS[knob]}
    try:
        for attr, value in KNOBS[knob].items():
            setattr(_torch_ops, attr, value)
        _check_agreement(W, name, radius, groups)
    finally:
        for attr, value in saved.items():
            setattr(_torch_ops, attr, value)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", ["geometric", "equal", "few", "spike", "sorted", "sparse"])
@pytest.mark.parametrize("name", ["l1", "l21", "l11", "l1inf_bilevel", "l1inf"])
def test_adversarial_inputs_through_every_search(name, kind, dtype, knobs):
    for shape in ((150,), (23, 19), (4, 3, 5, 2)):
        W = adversarial(kind, shape, 11, dtype)
        for groups in groups_for(name):
            norm = constraint_norm(W, name, groups)
            for frac in (1e-4, 0.02, 0.4, 0.97):
                _check_agreement(W, name, frac * norm, groups)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", NAMES)
def test_inside_the_ball_bit_for_bit_with_signed_zeros(name, dtype, knobs):
    gen = torch.Generator().manual_seed(2)
    for shape in ((30,), (9, 7), (3, 4, 2, 2), (1, 6), (6, 1)):
        W = torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype)
        W.view(-1)[::4] = -0.0
        W.view(-1)[1::7] = 0.0
        bits = torch.int32 if dtype == torch.float32 else torch.int64
        for groups in groups_for(name):
            norm = constraint_norm(W, name, groups)
            for radius in (norm * 1.0001, norm * 10, 1e300):
                P = gpu_path(W, name, radius, groups)
                assert torch.equal(P.view(bits), W.view(bits)), (shape, groups, radius)


@pytest.mark.parametrize("name", ["l1", "l21", "l11", "l1inf_bilevel", "l1inf"])
def test_chunked_search_with_the_default_chunk_and_pivots(name, monkeypatch):
    """Only the crossover lowered (2**16 keys): rows of CHUNK keys, PIVOTS pivots."""
    monkeypatch.setattr(_torch_ops, "FULL_SORT_MAX", 1 << 16)
    gen = torch.Generator().manual_seed(5)
    vec = torch.randn((1 << 16) + 5, generator=gen)
    mat = torch.randn(131, 512, generator=gen, dtype=torch.float64)
    cases = [(vec, "rows"), (mat, "columns"), (mat, "rows")]
    for W, groups in cases:
        groups = groups if groups in groups_for(name) else "columns"
        for frac in (0.01, 0.5):
            _check_agreement(W, name, frac * constraint_norm(W, name, groups), groups)


@pytest.mark.parametrize("shape", [(64, 48), (40, 120), (200, 30), (1, 50), (50, 1)])
@pytest.mark.parametrize("frac", [0.003, 0.05, 0.3, 0.9])
def test_nuclear_float32_precise_mode_is_feasible(shape, frac):
    """Checked with a float64 SVD of the float32 result: the GPU's float32 SVD used to leave
    results 1e-4 (relative) outside the ball."""
    gen = torch.Generator().manual_seed(shape[0])
    W = torch.randn(shape, generator=gen)
    if shape == (64, 48):  # nearly rank one: the float32 rounding of the result matters most
        W = torch.outer(torch.randn(64, generator=gen), torch.randn(48, generator=gen)) + 1e-3 * W
    radius = frac * constraint_norm(W, "nuclear")
    P = _torch_ops.project_nuclear(W, radius, precise=True)
    assert P.dtype == torch.float32
    got = float(torch.linalg.svdvals(P.to(torch.float64)).sum())
    assert got <= radius * (1 + 1e-9), got / radius - 1
    assert got >= radius * (1 - 1e-5)  # and still on the boundary
    ref = project(W.to(torch.float64), "nuclear", radius)
    assert float((P.to(torch.float64) - ref).abs().max()) <= 1e-6 * float(W.abs().max())


def test_nuclear_precise_mode_rejects_nan_and_keeps_zero_radius():
    W = torch.randn(5, 4)
    assert torch.equal(_torch_ops.project_nuclear(W, 0.0, precise=True), torch.zeros_like(W))
    W[1, 2] = float("nan")
    with pytest.raises(ValueError, match="W contains NaN"):
        _torch_ops.project_nuclear(W, 1.0, precise=True)


def test_registry_is_covered():
    """A new registry entry must be added to the sync-free list or to the nuclear case."""
    assert set(NAMES) == {"l1", "l21", "l11", "l1inf_bilevel", "l1inf", "nuclear"}
    assert all(REGISTRY[n].fn for n in NAMES)
