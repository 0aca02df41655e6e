"""The Triton search of the l1 threshold (the CUDA path of ``project_l1`` for float32), run by
Triton's interpreter on CPU tensors and checked against the numba kernel bit for bit; skipped
where Triton is not installed.  On a GPU ``test_torch_path_gpu.py`` runs the compiled kernels
through ``project`` (agreement with the CPU, no host synchronisation)."""

from __future__ import annotations

import os

import pytest
import torch

from projlib.projections import _torch_ops, _triton_l1, _triton_ops, l1, project

from .helpers import build_for_sm90, make_weight
from .test_extremes import MAGNITUDES, _quantum, extreme_weight

pytestmark = [
    pytest.mark.skipif(not _triton_ops.installed(),
                       reason="triton not installed (it ships with torch's CUDA wheels)"),
    pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") != "1",
                       reason="compiled Triton on this machine: test_torch_path_gpu.py checks it"),
]

S = _triton_l1  # the par slots: S._STATE, S._NBAND, ...


def _search(W: torch.Tensor, radius: float, **kw) -> tuple[torch.Tensor, dict]:
    info: dict = {}
    out = _triton_l1.project(W, radius, info=info, **kw)
    assert out is not None
    par = info["par"]
    return out, {"state": float(par[S._STATE]), "nband": float(par[S._NBAND]),
                 "t": float(par[S._T]), "lo": float(par[S._LO]), "hi": float(par[S._HI])}


def _cauchy(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.tan(torch.pi * (torch.rand(n, generator=g, dtype=torch.float64) - 0.5)).float()


# small blocks and band so that a few thousand entries take several programs and passes
SMALL = {"block": 1024, "cap": 64}


@pytest.mark.parametrize("kind", ["normal", "ties", "sparse", "scaled"])
@pytest.mark.parametrize("n", [1, 7, 3000])
def test_agrees_with_the_numba_kernel_bit_for_bit(kind, n, interpreter):
    W = make_weight((n,), n, kind, torch.float32)
    norm = float(W.abs().double().sum())
    for frac in (0.01, 0.3, 0.9):
        radius = frac * norm
        if radius == 0.0:
            continue
        got, how = _search(W, radius, **SMALL)
        assert torch.equal(got, project(W, "l1", radius)), (frac, how)
        assert how["state"] in (1.0, 3.0), how
        assert float(got.abs().double().sum()) <= radius * (1 + 1e-6)


@pytest.mark.parametrize("seed", range(3))
def test_heavy_tails_tiny_and_huge_scales(seed, interpreter):
    for W in (_cauchy(5000, seed), torch.randn(4000) * 1e-30, torch.randn(4000) * 1e30,
              torch.randn(2000, 3)):
        norm = float(W.abs().double().sum())
        for frac in (0.001, 0.5):
            got, how = _search(W, frac * norm, **SMALL)
            assert torch.equal(got, project(W, "l1", frac * norm)), (frac, how)


@pytest.mark.parametrize("kind", MAGNITUDES)
def test_extreme_magnitudes_need_no_rescaling(kind, interpreter):
    """Subnormal to float32's largest entries: sums in float64 hold them all, the first
    pass's points span the whole range; same result as the CPU path (which rescales)."""
    for shape in ((7,), (3000,)):
        W = extreme_weight(shape, torch.float32, kind)
        m = float(W.abs().amax())
        for radius in (0.5 * m, 0.3 * float(W.abs().double().sum())):
            got, how = _search(W, radius, **SMALL)
            ref = project(W, "l1", radius)
            err = float((got.double() - ref.double()).abs().amax())
            assert err <= 1e-6 * m + 4 * _quantum(torch.float32), (shape, radius, err, how)
            assert torch.equal(got, ref), (shape, radius, err, how)
            assert float(got.abs().double().sum()) <= radius * (1 + 1e-6)


def test_tau_on_a_value_many_entries_share(interpreter):
    """tau = 1 exactly, 600 entries equal to 1 (more than the band holds): the search ends on
    a bracket of two float32 values and solves it from the sums alone (state 3)."""
    W = torch.cat([torch.ones(600), torch.full((10,), 2.0), torch.zeros(7)])
    W = W * torch.where(torch.arange(W.numel()) % 3 == 0, -1.0, 1.0)
    for radius in (10.0, 9.0, 11.0, 10.0 + 2e-5):
        got, how = _search(W, radius, **SMALL)
        assert torch.equal(got, project(W, "l1", radius)), (radius, how)
    assert _search(W, 10.0, **SMALL)[1]["state"] == 3.0
    assert _search(W, 10.0, block=1024, cap=1024)[1]["state"] == 1.0  # room for the band
    # two values in the bracket: 1 and the next float32, both shared by many entries
    v = float(torch.nextafter(torch.tensor(1.0), torch.tensor(2.0)))
    W2 = torch.cat([torch.ones(500), torch.full((500,), v), torch.full((5,), 3.0)])
    for radius in (10.0, 10.0 + 500 * (v - 1.0) / 2):
        got, how = _search(W2, radius, **SMALL)
        assert torch.equal(got, project(W2, "l1", radius)), (radius, how)


def test_the_search_ends_within_its_passes(interpreter):
    """Few passes left: the result stays feasible (t = the bracket's upper bound); the
    default number is enough for a float32 ladder of 2**26 values."""
    W = make_weight((3000,), 5, "normal", torch.float32)
    radius = 0.3 * float(W.abs().double().sum())
    got, how = _search(W, radius, passes=0, block=1024, cap=2)
    assert how["state"] == 0.0 and how["t"] == how["hi"]
    assert float(got.abs().double().sum()) <= radius
    got, how = _search(W, radius, block=1024, cap=2)
    assert how["state"] in (1.0, 3.0) and torch.equal(got, project(W, "l1", radius))


def test_inside_the_ball_bit_for_bit_zero_radius_and_non_finite(interpreter):
    W = torch.randn(3001, generator=torch.Generator().manual_seed(1))
    W[::4] = -0.0
    norm = float(W.abs().double().sum())
    for radius in (norm * 1.0001, 1e300):
        got, how = _search(W, radius, **SMALL)
        assert how["state"] == 2.0
        assert torch.equal(got.view(torch.int32), W.view(torch.int32))
    assert torch.equal(_triton_l1.project(W, 0.0), torch.zeros_like(W))
    for bad in (float("nan"), float("inf")):
        V = W.clone()
        V[1234] = bad
        assert bool(torch.isnan(_search(V, 0.5 * norm, **SMALL)[0]).all())


def test_results_are_the_same_every_call(interpreter):
    W = _cauchy(6000, 7)
    radius = 0.2 * float(W.abs().double().sum())
    first = _search(W, radius, **SMALL)[0]
    assert all(torch.equal(first, _search(W, radius, **SMALL)[0]) for _ in range(2))


def test_which_tensors_take_the_search(interpreter, monkeypatch):
    calls = []
    real = _triton_l1.project
    monkeypatch.setattr(_triton_l1, "project",
                        lambda X, r, **kw: calls.append(X.dtype) or real(X, r, **kw))
    W = torch.randn(50, 4)
    radius = 0.5 * float(W.abs().sum())
    torch.testing.assert_close(l1._on_device(W, radius), project(W, "l1", radius))
    assert calls == [torch.float32]
    l1._on_device(W.double(), radius)  # float64: the torch path
    l1._on_device(W.t(), radius)  # not contiguous: the torch path
    monkeypatch.setattr(_triton_ops, "ENABLED", False)  # the default (GREENBENCH_TRITON unset)
    l1._on_device(W, radius)
    monkeypatch.setattr(_triton_ops, "ENABLED", True)
    monkeypatch.setattr(_torch_ops, "CHECK_FINITE", True)
    V = W.clone()
    V[1, 1] = float("nan")
    with pytest.raises(ValueError, match="W contains NaN"):
        l1._on_device(V, 1.0)
    assert calls == [torch.float32]
    monkeypatch.setattr(_triton_ops, "ON_CPU", False)
    assert not _triton_l1.eligible(W)  # CPU tensor, compiled mode


def test_a_kernel_that_fails_falls_back_once_with_a_warning(interpreter, monkeypatch):
    class Broken:
        def __getitem__(self, grid):
            raise RuntimeError("out of resources: shared memory")

    monkeypatch.setattr(_triton_l1, "_kernels", lambda: (Broken(),) * 5)
    W = make_weight((300,), 0, "normal", torch.float32)
    radius = 0.3 * float(W.abs().sum())
    with pytest.warns(RuntimeWarning,
                      match="Triton projection kernels failed to compile or to launch"):
        got = l1._on_device(W, radius)
    torch.testing.assert_close(got, project(W, "l1", radius))
    assert not _triton_l1.eligible(W)  # every Triton kernel is off from now on


_COMPILE = """
from projlib.projections import _triton_l1 as T

pass_, select, collect, finish, apply = T._kernels()  # compiled-mode JIT functions here
f32, f64, i32 = "*fp32", "*fp64", "*i32"
c = "constexpr"
cases = [
    (pass_, {"x_ptr": f32, "n": "i32", "pts_ptr": f32, "par_ptr": f64, "psum_ptr": f64,
             "pcnt_ptr": i32, "ptot_ptr": f64, "FIRST": c, "K": c, "BLOCK": c, "SUB": c},
     [{"FIRST": first, "K": T.K, "BLOCK": T.BLOCK, "SUB": T.SUB} for first in (True, False)]),
    (select, {"psum_ptr": f64, "pcnt_ptr": i32, "ptot_ptr": f64, "nprog": "i32",
              "pts_ptr": f32, "par_ptr": f64, "boff_ptr": i32, "FIRST": c, "K": c, "RB": c,
              "CAP": c, "MARGIN": c},
     [{"FIRST": first, "K": T.K, "RB": T.RB, "CAP": T.CAP, "MARGIN": T.MARGIN}
      for first in (True, False)]),
    (collect, {"x_ptr": f32, "n": "i32", "par_ptr": f64, "boff_ptr": i32, "band_ptr": f32,
               "pex_ptr": f64, "BLOCK": c, "SUB": c, "CAP": c},
     [{"BLOCK": T.BLOCK, "SUB": T.SUB, "CAP": T.CAP}]),
    (finish, {"band_ptr": f32, "pex_ptr": f64, "nprog": "i32", "par_ptr": f64, "CAP": c,
              "RB": c}, [{"CAP": T.CAP, "RB": T.RB}]),
    (apply, {"x_ptr": f32, "out_ptr": f32, "n": "i32", "par_ptr": f64, "ABLOCK": c},
     [{"ABLOCK": T.ABLOCK}]),
]
build(cases, 8)
"""


def test_kernels_compile_for_the_gpus_we_run_on(tmp_path):
    """Triton's compiler and ptxas build every kernel, at the sizes ``project`` launches, to
    a cubin for sm_90 (H100/H200), in a fresh process without the interpreter."""
    assert build_for_sm90(_COMPILE, tmp_path) == "built 7"
