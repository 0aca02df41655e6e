"""Costs and compaction of any ``nn.Module``: residual adds, concatenation, batch-norm, grouped and
depthwise convolutions, adaptive pooling (docs/METHOD.md §5.5).

The built-in chain walker (:mod:`projlib.measure.structure`) handles ``nn.Sequential`` nets of
Flatten, Linear, Conv2d, ReLU, pooling, Dropout and BatchNorm; every other model comes here. The
coupling between layers is not walked by hand: Torch-Pruning's ``DependencyGraph`` traces the
model and gives, for each output channel (or unit) of each Conv/Linear, the *group* of every
parameter slice tied to it: the producing layers' rows (both branches of a residual add), the
batch-norms, the depthwise convolutions that pass it on, the consuming layers' columns (with
concatenation offsets and flatten expansion mapped). A channel is removed from the whole group
or not at all.

**Which channels go (correctness first, nothing folded).** Let the *producers* of a group be its
Conv/Linear layers whose output rows belong to it (depthwise convolutions excepted: they act per
channel) and its *consumers* the Conv/Linear layers whose input columns belong to it. A channel
is removed when

* every consumer reads it with all-zero weights (|w| <= tolerance): nothing downstream sees it
  (structured zeros of the ``columns`` grouping), or
* every producer's row is all zero, so the channel is a constant whatever the input (its bias,
  through batch-norm, activations, pooling, adds), **and** that constant is exactly 0 at every
  consumer's input (e.g. cut by a ReLU). A constant channel that is not 0 there is *kept*: its
  contribution is not folded (through padding it is not spatially uniform), so the outputs stay
  equal to float rounding and no fold is ever approximate.

The consumers' inputs are read on probe inputs (a zero and three seeded random samples, eval
mode). For channels reaching a consumer only through per-channel operations this is exact (the
channel is a constant); a channel multiplied by a data-dependent gate (squeeze-and-excitation)
is 0 for every input when it is a constant 0, which is what the probe sees unless the gate is
exactly 0 on every probe (not met in practice). As a last guard the compacted model is run on
the probes and must give the original's outputs (relative 1e-4), or ``compact`` raises.

Layers never shrunk: the layer producing the model's output, grouped convolutions that are not
depthwise, transposed convolutions. At least one channel of every group is kept (torch cannot
convolve or normalise 0 channels).

Costs: structured MACCs are thop's count of the compacted model (``maccs_dense``: of the
original), so ``cost_report(m).maccs_structured == thop_maccs(compact(m))`` by construction.
Complexity: one trace plus O(total weights); Torch-Pruning's tracing dominates (~0.1-1 s for a
torchvision ResNet-18).
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass

import torch
from torch import nn

# Layers whose weights mix channels (and are pruned in their rows and columns).
_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
PROBES = 4  # a zero sample and three seeded random ones
_RTOL = 1e-4


@dataclass
class GraphCompaction:
    """The compacted copy of a model; ``small``'s modules keep the original's names."""

    model: nn.Module
    small: nn.Module
    removed: int  # channels / units removed over all groups


def _depthwise(m: nn.Module) -> bool:
    return isinstance(m, _WEIGHTED[:3]) and m.groups > 1 and (
        m.groups == m.in_channels == m.out_channels)


def _shrinkable(m: nn.Module) -> bool:
    """Conv/Linear whose rows and columns Torch-Pruning prunes exactly as we mean."""
    if isinstance(m, nn.Linear):
        return True
    return (isinstance(m, _WEIGHTED[:3]) and not m.transposed
            and (m.groups == 1 or _depthwise(m)))


def check_shape(input_shape) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError):
        raise ValueError(f"input_shape must be a tuple of ints (got {input_shape!r})") from None
    if not shape or min(shape) <= 0:
        raise ValueError(f"input_shape must be a tuple of positive ints (got {input_shape!r})")
    return shape


def probe_batch(model: nn.Module, shape: tuple[int, ...]) -> torch.Tensor:
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    x = torch.randn((PROBES, *shape), generator=torch.Generator().manual_seed(0))
    x[0] = 0
    return x.to(device=device, dtype=dtype)


@torch.no_grad()
def _record(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, dict, list]:
    """Output of `model` on `x`, the input of every Conv/Linear and the modules, in call order,
    whose output is the model's output (or the last weight layer called)."""
    inputs: dict[nn.Module, torch.Tensor] = {}
    outputs: dict[nn.Module, object] = {}  # held, so no id is reused
    order: list[nn.Module] = []

    def hook(m, args, out):
        inputs[m] = args[0].detach()
        outputs[m] = out
        order.append(m)

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, _WEIGHTED)]
    try:
        y = model(x)
    except Exception as exc:  # noqa: BLE001 - user model: one clear error naming the shape
        raise ValueError(f"input_shape {tuple(x.shape[1:])} does not fit the model: "
                         f"{type(exc).__name__}: {exc}") from None
    finally:
        for h in handles:
            h.remove()
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"model must return one tensor (got {type(y).__name__})")
    last = [m for m in order if outputs[m] is y] + order[-1:]
    return y, inputs, last


def _zero_rows(w: torch.Tensor, idx: list[int], tol: float) -> torch.Tensor:
    return (w.detach()[idx].flatten(1).abs() <= tol).all(dim=1).cpu()


def _zero_cols(w: torch.Tensor, idx: list[int], tol: float) -> torch.Tensor:
    return (w.detach().transpose(0, 1)[idx].flatten(1).abs() <= tol).all(dim=1).cpu()


def _all_of(n: int, roots: list[int], ok: torch.Tensor) -> torch.Tensor:
    """Per root channel: are all its entries `ok` (several entries per root after a flatten)."""
    bad = torch.zeros(n, dtype=torch.long)
    bad.index_add_(0, torch.tensor(roots, dtype=torch.long), (~ok).long())
    return bad == 0


def _removable(dg, group, inputs: dict, tol: float) -> list[int] | None:
    """Root indices of `group` that can be removed exactly (None: leave the group alone)."""
    n = len(group[0].idxs)
    producers_zero = torch.ones(n, dtype=torch.bool)
    consumers_zero = torch.ones(n, dtype=torch.bool)
    value_zero = torch.ones(n, dtype=torch.bool)
    consumers = 0
    for dep, idxs in group:
        m = dep.target.module
        if not isinstance(m, nn.Module) or not idxs:
            continue
        if isinstance(m, _WEIGHTED) and not _shrinkable(m):
            return None
        if not isinstance(m, _WEIGHTED) or _depthwise(m):
            continue  # per-channel: BN, activations, depthwise conv pass the channel on
        plain = [int(getattr(i, "idx", i)) for i in idxs]  # _HybridIndex or, at the root, int
        roots = [int(getattr(i, "root_idx", i)) for i in idxs]
        if not all(0 <= r < n for r in roots):
            # after a concatenation Torch-Pruning 1.6 offsets root_idx like idx; the mapping
            # keeps order and length, so the position is the root channel
            if len(roots) != n:
                return None  # not understood: leave the group alone
            roots = list(range(n))
        if dg.is_out_channel_pruning_fn(dep.handler):
            producers_zero &= _all_of(n, roots, _zero_rows(m.weight, plain, tol))
        elif dg.is_in_channel_pruning_fn(dep.handler):
            consumers += 1
            consumers_zero &= _all_of(n, roots, _zero_cols(m.weight, plain, tol))
            x = inputs.get(m)
            if x is None:  # never called on the probes: nothing known, keep
                value_zero[:] = False
            else:
                # the channel dim: last for a Linear (any leading dims), 1 for a conv
                xc = x.movedim(-1, 0) if isinstance(m, nn.Linear) else x.transpose(0, 1)
                zero = (xc[plain].flatten(1) == 0).all(dim=1).cpu()
                value_zero &= _all_of(n, roots, zero)
    if consumers == 0:
        return None  # the channel leaves the traced layers: keep it
    removable = consumers_zero | (producers_zero & value_zero)
    if bool(removable.all()):
        removable[0] = False  # torch cannot convolve or normalise 0 channels
    return removable.nonzero().flatten().tolist()


@torch.no_grad()
def compact_graph(model: nn.Module, input_shape: tuple[int, ...],
                  tolerance: float = 0.0) -> GraphCompaction:
    """A copy of `model` with the removable channels of every dependency group cut out (see
    the module docstring); same outputs as `model` in eval mode, to float rounding."""
    import torch_pruning as tp  # noqa: PLC0415 - heavy; only models off the chain walker need it

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module (got {type(model).__name__})")
    shape = check_shape(input_shape)
    if not (isinstance(tolerance, (int, float)) and tolerance >= 0):
        raise ValueError(f"tolerance must be a number >= 0 (got {tolerance!r})")
    small = copy.deepcopy(model).eval()
    x = probe_batch(small, shape)
    y, inputs, last = _record(small, x)
    with torch.enable_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its notes on unwrapped parameters etc.
        try:
            dg = tp.DependencyGraph().build_dependency(small, example_inputs=x[:1],
                                                       verbose=False)
        except Exception as exc:  # noqa: BLE001 - a model Torch-Pruning cannot trace
            raise ValueError(f"model cannot be traced by Torch-Pruning's DependencyGraph: "
                             f"{type(exc).__name__}: {exc}") from None
    plans = []
    for group in dg.get_all_groups(ignored_layers=last, root_module_types=_WEIGHTED):
        idxs = _removable(dg, group, inputs, float(tolerance))
        if idxs:
            plans.append((group[0].dep.target.module, group[0].dep.handler, idxs))
    for module, handler, idxs in plans:
        dg.get_pruning_group(module, handler, idxs).prune()
    removed = sum(len(p[2]) for p in plans)
    if removed:
        got = small(x)
        scale = float(y.abs().max()) if y.numel() else 0.0
        if got.shape != y.shape or not torch.allclose(got, y, rtol=_RTOL,
                                                      atol=_RTOL * max(scale, 1e-6)):
            raise RuntimeError("compact: the compacted model's outputs differ from the "
                               "original's: an operation couples channels in a way the "
                               "dependency graph does not model")
    small.train(model.training)
    return GraphCompaction(model, small, removed)
