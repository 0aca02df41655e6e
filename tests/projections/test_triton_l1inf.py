"""The Triton search of exact l1,inf (the CUDA path for float32 weights), run by Triton's
interpreter on CPU tensors and checked against the numba kernels bit for bit; skipped where
Triton is not installed.  On a GPU ``test_torch_path_gpu.py`` runs the compiled kernels
through ``project``.  Small shapes: the interpreter runs every program in Python."""

from __future__ import annotations

import os

import pytest
import torch

from projlib.projections import (
    _torch_ops,
    _triton_l1inf,
    _triton_ops,
    grouped,
    project,
)

from .helpers import build_for_sm90, constraint_norm, group_matrix, make_weight

pytestmark = [
    pytest.mark.skipif(not _triton_ops.installed(),
                       reason="triton not installed (it ships with torch's CUDA wheels)"),
    pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") != "1",
                       reason="compiled Triton on this machine: test_torch_path_gpu.py checks it"),
]

S = _triton_l1inf


def _search(W: torch.Tensor, radius: float, groups: str, **kw) -> tuple[torch.Tensor, dict]:
    X, r, shape3 = grouped._prepare(W, radius, groups)
    info: dict = {}
    out = _triton_l1inf.project(X.reshape(shape3), r, info=info, **kw)
    assert out is not None
    par = info["par"]
    return out.reshape(W.shape), {"state": float(par[S._STATE]), "n_in": float(par[S._NIN]),
                                  "theta": float(par[S._THETA]), "hi": float(par[S._HI])}


@pytest.mark.parametrize(("shape", "kind"), [((7, 9), "normal"), ((12, 10), "ties"),
                                             ((9, 8), "sparse"), ((8, 6), "scaled"),
                                             ((2, 3, 2, 2), "normal"), ((13, 1), "ties")])
def test_agrees_with_the_numba_kernels_bit_for_bit(shape, kind, interpreter):
    W = make_weight(shape, 4, kind, torch.float32)
    for groups in ("columns", "rows"):
        X, _, shape3 = grouped._prepare(W, 1.0, groups)
        if shape3[1] < 2:  # one group: not eligible (the torch path's degenerate case)
            assert not _triton_ops.eligible(X.reshape(shape3))
            continue
        norm = constraint_norm(W, "l1inf", groups)
        for frac in (0.02, 0.3, 0.9):
            got, how = _search(W, frac * norm, groups)
            assert torch.equal(got, project(W, "l1inf", frac * norm, groups)), (groups, frac, how)
            assert how["state"] == 1.0
            assert constraint_norm(got, "l1inf", groups) <= frac * norm * (1 + 1e-6)


def _theta(W: torch.Tensor, radius: float, groups: str) -> float:
    """The exact theta (float64, by brute force): F is linear between the sorted breakpoints
    of all groups, so the root lies on the piece where F changes sign."""
    Z = torch.sort(group_matrix(W, groups).abs().double(), dim=1, descending=True).values
    cs = torch.cumsum(Z, 1)
    k = torch.arange(1, Z.shape[1] + 1, dtype=torch.float64)
    keys = torch.cat([(cs - k * Z)[:, 1:].reshape(-1), cs[:, -1]]).unique()

    def F(t: float) -> float:  # sum_g mu_g(t): mu_g is the l1 threshold of group g at t
        pos = ((cs - k * Z)[:, 1:] <= t).sum(1)  # breakpoints crossed
        live = (cs[:, -1] > t)
        c = cs.gather(1, pos.reshape(-1, 1)).reshape(-1)
        return float(torch.where(live, (c - t) / (pos + 1), 0.0).sum())

    pts = torch.cat([torch.zeros(1, dtype=torch.float64), keys])
    vals = [F(float(t)) for t in pts]
    j = max(i for i, v in enumerate(vals) if v >= radius)
    a, b = float(pts[j]), float(pts[j + 1])
    return a + (vals[j] - radius) * (b - a) / (vals[j] - vals[j + 1])


@pytest.mark.parametrize("seed", range(6))
def test_theta_is_exact_where_the_last_pass_took_the_breakpoints(seed, interpreter):
    """Small groups: after the first pass the bracket holds a few breakpoints, which become
    the next pass's points; theta then lies on one linear piece and equals the brute-force
    root to float64 rounding."""
    W = make_weight((7, 9), seed, "normal", torch.float32)
    for frac in (0.02, 0.3, 0.9):
        radius = frac * constraint_norm(W, "l1inf", "columns")
        got, how = _search(W, radius, "columns")
        want = _theta(W, radius, "columns")
        assert how["theta"] == pytest.approx(want, rel=1e-12), (frac, how)


def test_many_groups_share_their_breakpoints(interpreter):
    """Identical groups: every breakpoint appears once per group, so no bracket holds only a
    few; the search narrows to the breakpoints' own range (all equal: one value) and ends.
    The clip levels land on float32 values here (1.5 at radius 24), so float64 rounding on
    either side decides the last float32 step: one step apart from the CPU at most, and
    feasible."""
    col = torch.tensor([3.0, 2.0, 2.0, 1.0, 0.5, 0.0])
    W = col.repeat(16, 1).t().contiguous()  # 16 identical columns
    norm = constraint_norm(W, "l1inf", "columns")
    for frac in (0.1, 0.5, 0.75):
        got, how = _search(W, frac * norm, "columns")
        ref = project(W, "l1inf", frac * norm, "columns")
        torch.testing.assert_close(got, ref, rtol=2**-23, atol=0.0)
        assert constraint_norm(got, "l1inf", "columns") <= frac * norm
        assert how["state"] == 1.0


def test_the_search_ends_within_its_passes(interpreter):
    """One pass, which leaves breakpoints in the bracket: the clip levels of the bracket's
    upper end (feasible, not exact)."""
    W = make_weight((10, 8), 2, "normal", torch.float32)
    radius = 0.3 * constraint_norm(W, "l1inf", "columns")
    got, how = _search(W, radius, "columns", passes=1)
    assert how["state"] == 0.0 and how["theta"] == how["hi"]
    assert constraint_norm(got, "l1inf", "columns") <= radius
    assert not torch.equal(got, project(W, "l1inf", radius, "columns"))


def test_inside_the_ball_bit_for_bit_zero_radius_and_non_finite(interpreter):
    W = torch.randn(9, 7, generator=torch.Generator().manual_seed(1))
    W.view(-1)[::4] = -0.0
    norm = constraint_norm(W, "l1inf", "columns")
    for radius in (norm * 1.0001, 1e300):
        got, how = _search(W, radius, "columns")
        assert how["state"] == 2.0
        assert torch.equal(got.view(torch.int32), W.view(torch.int32))
    X, _, shape3 = grouped._prepare(W, 1.0, "columns")
    assert torch.equal(_triton_l1inf.project(X.reshape(shape3), 0.0),
                       torch.zeros(shape3))
    for bad in (float("nan"), float("inf")):
        V = W.clone()
        V[3, 2] = bad
        assert bool(torch.isnan(_search(V, 0.5 * norm, "columns")[0]).all())


def test_which_tensors_take_the_search(interpreter, monkeypatch):
    calls = []
    real = _triton_l1inf.project
    monkeypatch.setattr(_triton_l1inf, "project",
                        lambda X3, r, **kw: calls.append(X3.shape) or real(X3, r, **kw))
    W = make_weight((8, 6), 0, "normal", torch.float32)
    radius = 0.4 * constraint_norm(W, "l1inf", "columns")
    X, r, shape3 = grouped._prepare(W, radius, "columns")
    got = grouped._l1inf_on_device(X.reshape(shape3), r).reshape(W.shape)
    assert torch.equal(got, project(W, "l1inf", radius, "columns"))
    assert calls == [shape3]
    grouped._l1inf_on_device(X.reshape(shape3).double(), r)  # float64: the torch path
    grouped._l1inf_on_device(X.reshape(8, 1, 6), r)  # one group: the torch path
    monkeypatch.setattr(_torch_ops, "CHECK_FINITE", True)
    V = X.reshape(shape3).clone()
    V[0, 1, 0] = float("nan")
    with pytest.raises(ValueError, match="W contains NaN"):
        grouped._l1inf_on_device(V, r)
    assert calls == [shape3]


def test_a_kernel_that_fails_falls_back_once_with_a_warning(interpreter, monkeypatch):
    class Broken:
        def __getitem__(self, grid):
            raise RuntimeError("out of resources: shared memory")

    monkeypatch.setattr(_triton_l1inf, "_kernels", lambda: (Broken(),) * 5)
    W = make_weight((8, 6), 0, "normal", torch.float32)
    radius = 0.3 * constraint_norm(W, "l1inf", "columns")
    X, r, shape3 = grouped._prepare(W, radius, "columns")
    with pytest.warns(RuntimeWarning,
                      match="Triton projection kernels failed to compile or to launch"):
        got = grouped._l1inf_on_device(X.reshape(shape3), r).reshape(W.shape)
    torch.testing.assert_close(got, project(W, "l1inf", radius, "columns"))
    assert not _triton_ops.available()


_COMPILE = """
from projlib.projections import _triton_l1inf as T

prep, pass_, select, finish, apply = T._kernels()  # compiled-mode JIT functions here
f32, f64, i32, c = "*fp32", "*fp64", "*i32", "constexpr"
cases = []
for block in (16, 1024):
    cases += [
        (prep, {"x_ptr": f32, "keys_ptr": f64, "cs_ptr": f64, "gs_ptr": f64, "G": "i32",
                "B": "i32", "m": "i32", "BLOCK": c}, [{"BLOCK": block}]),
        (pass_, {"keys_ptr": f64, "cs_ptr": f64, "pts_ptr": f64, "par_ptr": f64,
                 "mu_ptr": f64, "pos_ptr": i32, "m": "i32", "BLOCK": c, "K": c, "LOG": c},
         [{"BLOCK": block, "K": T.K, "LOG": block.bit_length()}]),
        (select, {"gs_ptr": f64, "mu_ptr": f64, "pos_ptr": i32, "keys_ptr": f64, "G": "i32",
                  "pts_ptr": f64, "par_ptr": f64, "FIRST": c, "BLOCK": c, "K": c, "RB": c,
                  "MARGIN": c},
         [{"FIRST": first, "BLOCK": block, "K": T.K, "RB": T.RB, "MARGIN": T.MARGIN}
          for first in (True, False)]),
        (finish, {"pos_ptr": i32, "cs_ptr": f64, "par_ptr": f64, "u_ptr": f32,
                  "G": "i32", "m": "i32", "BLOCK": c, "K": c, "RB": c},
         [{"BLOCK": block, "K": T.K, "RB": T.RB}]),
        (apply, {"x_ptr": f32, "out_ptr": f32, "u_ptr": f32, "par_ptr": f64, "G": "i32",
                 "B": "i32", "m": "i32", "BLOCK": c}, [{"BLOCK": block}]),
    ]
build(cases, 4)
"""


def test_kernels_compile_for_the_gpus_we_run_on(tmp_path):
    """Triton's compiler and ptxas build every kernel (groups of 16 and 1024 entries) to a
    cubin for sm_90 (H100/H200), in a fresh process without the interpreter."""
    assert build_for_sm90(_COMPILE, tmp_path) == "built 12"
