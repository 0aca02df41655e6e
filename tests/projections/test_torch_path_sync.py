"""The pure-torch (GPU) path never reads a device value on the host.

On a GPU every such read (``.item()``, ``float(t)``, ``bool(t)`` / Python ``if`` on a tensor,
a 0-dim tensor used as an index, ``nonzero``, boolean masking, ``.cpu()``...) is a host
synchronisation that stalls the stream.  Here the path runs on CPU tensors under
:func:`no_host_sync`, which fails on every sync-equivalent: it records the aten ops that
synchronise on CUDA (all of the above end in ``aten._local_scalar_dense`` or one of
``SYNC_OPS``) and makes the Tensor methods that copy to the host raise.  The same operators
run under ``torch.cuda.set_sync_debug_mode("error")`` in ``test_torch_path_gpu.py``.
"""

from __future__ import annotations

import contextlib
import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from projlib.projections import _torch_ops, set_cuda_check_finite
from projlib.projections._validate import group_shape

from .helpers import constraint_norm, groups_for, torch_path

SYNC_FREE = ("l1", "l21", "l11", "l1inf_bilevel", "l1inf")

# aten ops that synchronise with the host on CUDA (they read a device value to size or
# decide something on the CPU)
SYNC_OPS = frozenset({
    "aten._local_scalar_dense.default",  # .item(), float(), int(), bool(), 0-dim index
    "aten.item.default",
    "aten.is_nonzero.default",
    "aten.equal.default",
    "aten.nonzero.default",
    "aten.masked_select.default",
    "aten.bincount.default",
    "aten._unique2.default",
    "aten.unique_dim.default",
    "aten.unique_consecutive.default",
    "aten.repeat_interleave.Tensor",
})
# Tensor methods that read device data on the host: the scalar conversions end in
# aten._local_scalar_dense (counted there), the copies do not dispatch a sync op on the CPU
SCALAR_METHODS = ("item", "__bool__", "__float__", "__int__", "__index__")
COPY_METHODS = ("tolist", "cpu", "numpy")


class HostSync(AssertionError):
    """A device value was read on the host."""


class _Recorder(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func)
        if name in SYNC_OPS:
            self.events.append(name)
        elif name.startswith(("aten.index.", "aten.index_put")) and any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool
            for i in (args[1] if len(args) > 1 and isinstance(args[1], (list, tuple)) else ())
        ):
            self.events.append(name + " (boolean mask)")
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def _hooked_methods(hook):
    """Call ``hook(method)`` before every host-reading Tensor method inside the block."""
    patched = {}

    def wrap(method):
        original = getattr(torch.Tensor, method)

        def wrapper(self, *args, **kwargs):
            hook(method)
            return original(self, *args, **kwargs)

        return wrapper

    for method in SCALAR_METHODS + COPY_METHODS:
        patched[method] = method in vars(torch.Tensor), getattr(torch.Tensor, method)
        setattr(torch.Tensor, method, wrap(method))
    try:
        yield
    finally:
        for method, (own, original) in patched.items():
            if own:
                setattr(torch.Tensor, method, original)
            else:
                delattr(torch.Tensor, method)


@contextlib.contextmanager
def count_host_syncs():
    """Yields the list of sync-equivalents seen inside the block, each read counted once."""
    rec = _Recorder()

    def hook(method):
        if method in COPY_METHODS:
            rec.events.append(f"Tensor.{method}")

    with _hooked_methods(hook), rec:
        yield rec.events


@contextlib.contextmanager
def no_host_sync():
    """Fails on the first host-reading method call, or after the block on any sync op."""

    def hook(method):
        raise HostSync(f"Tensor.{method} called on the device path")

    rec = _Recorder()
    with _hooked_methods(hook), rec:
        yield
    if rec.events:
        raise HostSync(f"host synchronisations: {rec.events}")


def _run(W, name, radius, groups):
    with no_host_sync():
        return torch_path(W, name, radius, groups)


@pytest.fixture(params=["default", "chunked"])
def search_mode(request, monkeypatch):
    """The default sizes, or tiny knobs that send every search through the chunked /
    pivot stage (the path large tensors take on a GPU)."""
    if request.param == "chunked":
        monkeypatch.setattr(_torch_ops, "FULL_SORT_MAX", 0)
        monkeypatch.setattr(_torch_ops, "CHUNK", 16)
        monkeypatch.setattr(_torch_ops, "PIVOTS", 4)
    return request.param


# ------------------------------------------------------------------ the detector itself


@pytest.mark.parametrize("snippet", [
    lambda t: t.sum().item(),
    lambda t: float(t.max()),
    lambda t: bool(t.sum() > 0),
    lambda t: 1 if t.amax() > 0 else 0,
    lambda t: t[t.argmax()],  # a 0-dim tensor used as an index
    lambda t: t[t > 0],  # boolean mask
    lambda t: torch.nonzero(t),
    lambda t: t.tolist(),
    lambda t: t.cpu(),
    lambda t: torch.bincount(t.long().abs()),
])
def test_the_detector_catches_host_reads(snippet):
    t = torch.arange(-3.0, 5.0)
    with pytest.raises(HostSync):
        with no_host_sync():
            snippet(t)


def test_the_detector_accepts_device_side_selects():
    t = torch.arange(-3.0, 5.0)
    with no_host_sync():
        j = (t > 0).sum().reshape(1)
        torch.where(t.sum() > 0, t, -t).gather(0, j)
        torch.searchsorted(torch.sort(t).values, t)


# ------------------------------------------------------------------ the operators


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(40,), (12, 10), (4, 3, 2, 2), (1, 9), (9, 1)])
@pytest.mark.parametrize("name", SYNC_FREE)
def test_no_host_sync_inside_outside_and_zero_radius(name, shape, dtype, search_mode):
    gen = torch.Generator().manual_seed(len(shape))
    W = torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype)
    for groups in groups_for(name):
        norm = constraint_norm(W, name, groups)
        for radius in (0.0, 0.01 * norm, 0.5 * norm, 2.0 * norm):
            P = _run(W, name, radius, groups)
            assert P.shape == W.shape and P.dtype == dtype
            if radius > norm:
                assert torch.equal(P, W)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", SYNC_FREE)
def test_no_host_sync_at_extreme_magnitudes(name, dtype):
    """float64 is rescaled on the device by a power of two: no host-side range test."""
    fi = torch.finfo(dtype)
    gen = torch.Generator().manual_seed(3)
    base = 0.5 + 0.5 * torch.rand(6, 5, generator=gen, dtype=torch.float64)
    for scale in (fi.max / 4, math.sqrt(fi.max) * 2.0**20, fi.tiny * 4, fi.tiny * 2.0**-6):
        W = (base * scale).to(dtype)
        for groups in groups_for(name):
            P = _run(W, name, 0.5 * float(W.abs().max()), groups)
            assert bool(torch.isfinite(P).all()) and not torch.equal(P, W)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", SYNC_FREE)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_entries_give_an_all_nan_result_without_a_sync(name, dtype, bad):
    W = torch.randn(5, 4, dtype=dtype)
    W[2, 1] = bad
    for groups in groups_for(name):
        for radius in (1.0, 1e30):  # also when the radius would hold the finite entries
            P = _run(W, name, radius, groups)
            assert bool(torch.isnan(P).all()), (groups, radius)


@pytest.mark.parametrize("name", SYNC_FREE)
def test_check_finite_raises_with_one_sync(name, monkeypatch):
    monkeypatch.setattr(_torch_ops, "CHECK_FINITE", True)
    W = torch.randn(5, 4)
    W[1, 1] = float("nan")
    with count_host_syncs() as events, pytest.raises(ValueError, match="W contains NaN"):
        torch_path(W, name, 1.0, "columns")
    assert len(events) == 1
    with count_host_syncs() as events:  # finite input: the same single check
        torch_path(torch.randn(5, 4), name, 1.0, "columns")
    assert len(events) == 1


def test_nuclear_keeps_one_explicit_sync_in_precise_mode():
    """The nuclear ball checks finiteness before its SVD (LAPACK may hang on NaN): that is
    its one host read besides the SVD's own; the inside test and the kept rank are
    device-side in precise (GPU) mode."""
    W = torch.randn(12, 10)
    norm = constraint_norm(W, "nuclear")
    for radius in (0.3 * norm, 2.0 * norm):
        with count_host_syncs() as events:
            P = _torch_ops.project_nuclear(W, radius, precise=True)
        assert events == ["aten._local_scalar_dense.default"], events
    assert torch.equal(P, W)


def test_the_shapes_above_include_one_group_and_groups_of_one_entry():
    """(9, 1) columns and (1, 9) rows are one group; (1, 9) columns, (9, 1) rows and a vector's
    rows are groups of one entry: both take special routes in the exact l1,inf."""
    assert group_shape((9, 1), "columns")[1] == 1 and group_shape((1, 9), "rows")[1] == 1
    for shape, groups in (((1, 9), "columns"), ((9, 1), "rows"), ((40,), "rows")):
        A, G, B = group_shape(shape, groups)
        assert A * B == 1 and G > 1


def test_public_switch_for_the_finite_check() -> None:
    assert set_cuda_check_finite(True) is False  # off by default
    try:
        assert _torch_ops.CHECK_FINITE is True
    finally:
        assert set_cuda_check_finite(False) is True
    with pytest.raises(TypeError, match="bool"):
        set_cuda_check_finite(1)  # type: ignore[arg-type]
