"""The Triton kernels of l11, l21 and l1inf_bilevel (the CUDA path for float32 weights), run
by Triton's interpreter on CPU tensors and checked against the numba kernels; skipped where
Triton is not installed (the CPU wheels of torch lack it).  On a GPU the same kernels are
compiled and checked by ``test_torch_path_gpu.py`` (agreement with the CPU, no host
synchronisation)."""

from __future__ import annotations

import os

import pytest
import torch

from projlib.projections import _torch_ops, _triton_ops, grouped, project

from .helpers import build_for_sm90, constraint_norm, groups_for, make_weight

pytestmark = [
    pytest.mark.skipif(not _triton_ops.installed(),
                       reason="triton not installed (it ships with torch's CUDA wheels)"),
    pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") != "1",
                       reason="compiled Triton on this machine: test_torch_path_gpu.py checks it"),
]

# small (the interpreter runs every program, and its bitonic sorts, in Python: ~0.5 s a call),
# every input kind on the 2-D matrix, one kind on each other layout
CASES = [((7, 9), kind) for kind in ("normal", "ties", "sparse", "scaled")] + [
    ((3, 14), "sparse"), ((1, 13), "normal"), ((13, 1), "ties"), ((3, 2, 2, 2), "scaled"),
    ((15,), "normal")]


NAMES = tuple(_triton_ops.KINDS)


def _device_path(W: torch.Tensor, name: str, radius: float, groups: str) -> torch.Tensor:
    """What ``project(W, name, radius, groups)`` runs for a CUDA tensor, on W's device."""
    X, r, shape3 = grouped._prepare(W, radius, groups)
    return grouped._on_device(name, X.reshape(shape3), r).reshape(W.shape)


def _grouped(W, groups):
    X, _, shape3 = grouped._prepare(W, 1.0, groups)
    return X.reshape(shape3)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("shape", "kind"), CASES)
def test_agrees_with_the_numba_kernels(shape, kind, name, interpreter):
    W = make_weight(shape, 3, kind, torch.float32)
    scale = max(float(W.abs().max()), 1e-30)
    for groups in groups_for(name):
        X3 = _grouped(W, groups)
        assert _triton_ops.eligible(X3) == (X3.shape[1] > 1)  # one group: the torch path
        if X3.shape[1] == 1:
            continue
        norm = constraint_norm(W, name, groups)
        for frac in (0.02, 0.6):
            radius = frac * norm
            got = _triton_ops.project(name, _grouped(W, groups), radius).reshape(W.shape)
            ref = project(W, name, radius, groups)
            err = float((got.double() - ref.double()).abs().max()) / scale
            assert err <= 1e-6, (groups, frac, err)
            assert constraint_norm(got, name, groups) <= radius * (1 + 2e-5)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(9, 7), (3, 2, 2, 2), (6, 1)])
def test_inside_the_ball_bit_for_bit_zero_radius_and_nan(shape, name, interpreter):
    W = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    W.view(-1)[::4] = -0.0
    for groups in groups_for(name):
        norm = constraint_norm(W, name, groups)
        for radius in (norm * 1.0001, 1e300):
            P = _device_path(W, name, radius, groups)
            assert torch.equal(P.view(torch.int32), W.view(torch.int32)), (groups, radius)
        assert torch.equal(_device_path(W, name, 0.0, groups), torch.zeros_like(W))
    V = W.clone()
    V.view(-1)[2] = float("nan")
    assert bool(torch.isnan(_device_path(V, name, 0.5, "columns")).all())


def test_which_tensors_take_the_kernels(interpreter, monkeypatch):
    W = torch.randn(20, 10)
    assert _triton_ops.eligible(_grouped(W, "columns"))
    assert not _triton_ops.eligible(_grouped(W.double(), "columns"))  # float64: torch path
    assert not _triton_ops.eligible(_grouped(torch.randn(_triton_ops.MAX_GROUP + 1, 2),
                                             "columns"))
    assert not _triton_ops.eligible(_grouped(torch.randn(2, _triton_ops.MAX_GROUPS + 1),
                                             "columns"))
    monkeypatch.setattr(_triton_ops, "ON_CPU", False)
    assert not _triton_ops.eligible(_grouped(W, "columns"))  # CPU tensor, compiled mode
    monkeypatch.setattr(_triton_ops, "ON_CPU", True)
    monkeypatch.setattr(_triton_ops, "ENABLED", False)  # the default (GREENBENCH_TRITON unset)
    assert not _triton_ops.eligible(_grouped(W, "columns"))


def test_check_finite_takes_the_torch_path(interpreter, monkeypatch):
    monkeypatch.setattr(_torch_ops, "CHECK_FINITE", True)
    W = torch.randn(6, 5)
    W[2, 3] = float("nan")
    for name in NAMES:
        with pytest.raises(ValueError, match="W contains NaN"):
            _device_path(W, name, 1.0, "columns")


def test_a_kernel_that_fails_to_compile_falls_back_once_with_a_warning(interpreter,
                                                                       monkeypatch):
    class Broken:
        def __getitem__(self, grid):
            raise RuntimeError("out of resources: shared memory")

    monkeypatch.setattr(_triton_ops, "_kernels", lambda: (Broken(), Broken(), Broken()))
    W = make_weight((12, 9), 0, "normal", torch.float32)
    radius = 0.3 * constraint_norm(W, "l21", "columns")
    ref = project(W, "l21", radius, "columns")
    with pytest.warns(RuntimeWarning,
                      match="Triton projection kernels failed to compile or to launch"):
        got = _device_path(W, "l21", radius, "columns")
    torch.testing.assert_close(got, ref)
    assert not _triton_ops.available()  # later calls go straight to the torch path
    torch.testing.assert_close(_device_path(W, "l21", radius, "columns"), ref)


_COMPILE = """
from projlib.projections import _triton_ops as T

assert T._load()
norms, outer, apply = T._kernels()  # compiled-mode JIT functions here (no interpreter)
ptr = {"x_ptr": "*fp32", "v_ptr": "*fp64", "G": "i32", "B": "i32", "m": "i32"}
sig_apply = {"x_ptr": "*fp32", "out_ptr": "*fp32", "v_ptr": "*fp64", "par_ptr": "*fp64",
             "G": "i32", "B": "i32", "m": "i32"}
cases = [(fn, {**sig, "KIND": "constexpr", "BLOCK": "constexpr"}, {"KIND": k, "BLOCK": b})
         for k in T.KINDS.values() for b in (16, 1024)
         for fn, sig in ((norms, ptr), (apply, sig_apply))]
cases += [(outer, {"v_ptr": "*fp64", "par_ptr": "*fp64", "G": "i32", "BLOCK": "constexpr"},
           {"BLOCK": b}) for b in (16, 1024)]
build([(fn, sig, [consts]) for fn, sig, consts in cases], lambda c: T._warps(c["BLOCK"]))
"""


def test_kernels_compile_for_the_gpus_we_run_on(tmp_path):
    """The compiled path without a GPU: Triton's compiler and its ptxas build every kernel
    (each kind; blocks of 16 and 1024 entries, the paper's layers) to a cubin for sm_90
    (H100/H200).  The largest blocks (4096 entries, 8192 groups) build too but take minutes
    on 2 cores, so they are not repeated here.  In a fresh process: under the interpreter
    Triton's own library functions are interpreted."""
    assert build_for_sm90(_COMPILE, tmp_path) == "built 14"


@pytest.mark.parametrize("value, enabled", [(None, False), ("0", False), ("1", True),
                                            ("yes", False)])
def test_the_kernels_are_opt_in(value, enabled):
    """Never timed on a GPU yet, so off unless GREENBENCH_TRITON=1; and the interpreter's
    switch (TRITON_INTERPRET) alone never sends a CPU tensor to them."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "GREENBENCH_TRITON"}
    if value is not None:
        env["GREENBENCH_TRITON"] = value
    env["TRITON_INTERPRET"] = "1"
    code = ("import torch; from projlib.projections import _triton_ops as t; "
            "print(t.ENABLED, t.eligible_device(torch.zeros(2)))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == [str(enabled), "False"]
