"""Which groups of a sequential network can be cut out: the plan shared by costs and compaction.

A *unit* of an activation is a channel of a (C, H, W) activation or a feature of a flat one.
Two passes over the ``nn.Sequential`` (docs/METHOD.md §5.1), both O(total weights):

1. **Forward, constants.** Output unit i of a Linear/Conv is *constant* when all its weights from
   non-constant inputs are zero (|w| <= tolerance): it emits b_i (+ contributions of constant
   inputs) whatever the data. Constancy passes through ReLU, pooling, dropout, batch-norm
   (eval mode) and flatten (channel c -> its h*w positions). The constant values are obtained by
   running the modules themselves, in eval mode, on a zero input: a constant unit depends only on
   constant units, so its value there is exact.
2. **Backward, kept units.** All network outputs are kept. Input unit j of a weight layer is
   *needed* when a kept output reads it with a nonzero weight; it is *kept* when needed and not a
   foldable constant. Elementwise layers and pooling keep what their output keeps; flatten keeps a
   channel when any of its positions is kept.

**Decision on dead units with a nonzero bias (documented choice).** A hidden unit whose weights
are all zero but whose bias is not is *not dead*: it emits a constant. It is cut out of the
network like a zero unit, and its constant contribution W[:, i] * c_i is folded into the next
weight layer's bias, so the outputs are unchanged. Structured costs therefore count it as
removed (they describe the compacted network exactly), and the per-layer report lists it
separately as ``outputs_folded`` next to ``outputs_zero`` (constant 0) and ``outputs_unused``
(nonzero unit nobody reads). Folding into a Conv2d is done only when the constant channel's
contribution is spatially uniform (no padding effects); otherwise the channel is kept.

Torch cannot pool or normalise 0 units, so a Conv2d always keeps at least one input and one
output channel (channel 0), and so does a Linear followed by BatchNorm, even when everything
could go: costs count that unit.

Semantics are those of inference: Dropout is the identity and BatchNorm uses running statistics.

**Training plans (``support``).** ``plan_model(..., support={module index: bool tensor})`` plans
for a network that is still trained with fixed masks: ``support[k]`` says which weights of
weight layer k may be nonzero (the rest stay 0), every weight of an unlisted weight layer may.
Units are then cut only where nothing reads them; nothing is folded (a unit with zero weights
still has a trainable bias), so the compacted network trains exactly like the masked one
(`projlib.training.compacted`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


class Select(nn.Module):
    """Keeps the units ``index`` along dim 1 (features or channels); inserted by ``compact``."""

    def __init__(self, index: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("index", index.to(torch.long).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.index_select(1, self.index)

    def extra_repr(self) -> str:
        return f"units={self.index.numel()}"


ELEMENTWISE = (nn.ReLU, nn.Dropout, nn.BatchNorm1d, nn.BatchNorm2d, nn.MaxPool2d, nn.AvgPool2d)
SUPPORTED = (nn.Flatten, nn.Linear, nn.Conv2d, *ELEMENTWISE, Select)


@dataclass
class ModulePlan:
    """What happens to module ``index`` in the compacted network (index tensors are on CPU)."""

    index: int
    module: nn.Module
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    emitted_in: torch.Tensor  # original input units present in the compacted activation
    kept_in: torch.Tensor  # weight layers: input units the compacted layer reads
    kept_out: torch.Tensor  # output units the compacted module produces (weight layers)
    fold: torch.Tensor | None  # weight layers: bias addition from removed constant inputs
    select: torch.Tensor | None  # positions (within emitted_in) to select before the module
    outputs_zero: int = 0
    outputs_folded: int = 0
    outputs_unused: int = 0


def is_chain(model: nn.Module) -> bool:
    """Is `model` one the chain walker plans (an `nn.Sequential` of the SUPPORTED modules,
    ungrouped convolutions, the default Flatten)? Every other model goes to
    `projlib.measure.graph` (Torch-Pruning's dependency graph)."""
    return isinstance(model, nn.Sequential) and all(
        isinstance(m, SUPPORTED)
        and not (isinstance(m, nn.Conv2d) and m.groups != 1)
        and not (isinstance(m, nn.Flatten) and (m.start_dim, m.end_dim) != (1, -1))
        for m in model)


def validate(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Check the model type and ``input_shape``; return ``input_shape`` as a tuple of ints."""
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be an nn.Sequential (got {type(model).__name__})")
    for k, m in enumerate(model):
        if not isinstance(m, SUPPORTED):
            names = ", ".join(t.__name__ for t in SUPPORTED)
            raise TypeError(f"model[{k}] is a {type(m).__name__}; supported modules: {names}")
        if isinstance(m, nn.Conv2d) and m.groups != 1:
            raise TypeError(f"model[{k}]: grouped Conv2d (groups={m.groups}) is not supported")
        if isinstance(m, nn.Flatten) and (m.start_dim, m.end_dim) != (1, -1):
            raise TypeError(f"model[{k}]: only Flatten(start_dim=1, end_dim=-1) is supported")
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError):
        raise ValueError(f"input_shape must be a tuple of ints (got {input_shape!r})") from None
    if len(shape) not in (1, 3) or min(shape) <= 0:
        raise ValueError(f"input_shape must be (features,) or (C, H, W) of positive ints "
                         f"(got {input_shape!r})")
    return shape


def _nonzero_map(m: nn.Module, tolerance: float,
                 support: torch.Tensor | None = None) -> torch.Tensor:
    """(out, in) bool: does output unit i read input unit j with a weight above tolerance
    (with `support`: a weight that may be nonzero)."""
    nz = m.weight.detach().abs() > tolerance if support is None else support.to(torch.bool)
    return nz if nz.dim() == 2 else nz.flatten(2).any(dim=2)


def _reads(m: nn.Module, k: int, tolerance: float,
           support: dict[int, torch.Tensor] | None) -> torch.Tensor:
    """`_nonzero_map` of weight layer k, or of its training support (all True if unlisted)."""
    if support is None:
        return _nonzero_map(m, tolerance)
    return _nonzero_map(m, tolerance, support.get(k, torch.ones_like(m.weight, dtype=torch.bool)))


def _feeds_pool_or_norm(model: nn.Sequential, k: int) -> bool:
    """Does the output of model[k] reach a pooling or batch-norm before the next weight layer?"""
    if isinstance(model[k], nn.Conv2d):
        return True  # 4-D maps with 0 channels break pooling, BN and the next conv alike
    for m in list(model)[k + 1:]:
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            return False
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.MaxPool2d, nn.AvgPool2d)):
            return True
    return False


def _unit_positions(shape: tuple[int, ...]) -> int:
    return 1 if len(shape) == 1 else shape[1] * shape[2]


@torch.no_grad()
def _forward(model: nn.Sequential, shape: tuple[int, ...], tolerance: float,
             support: dict[int, torch.Tensor] | None = None):
    """Shapes, constant-unit masks and constant values at every point between modules."""
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    z = torch.zeros((1, *shape), device=device, dtype=dtype)
    shapes, consts, zs = [shape], [torch.zeros(shape[0], dtype=torch.bool)], [z[0]]
    for k, m in enumerate(model):
        const = consts[-1]
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            if isinstance(m, nn.Linear) and len(shapes[-1]) != 1:
                raise ValueError(f"input_shape {shape} gives model[{k}] (Linear) a "
                                 f"{shapes[-1]} input; a Flatten is needed before it")
            nz = _reads(m, k, tolerance, support).cpu()
            if nz.shape[1] != const.numel():
                raise ValueError(f"input_shape {shape} does not fit model[{k}]: it expects "
                                 f"{nz.shape[1]} input units, gets {const.numel()}")
            const = ~(nz & ~const).any(dim=1)
        elif isinstance(m, nn.Flatten) and len(shapes[-1]) == 3:
            const = const.repeat_interleave(_unit_positions(shapes[-1]))
        elif isinstance(m, Select):
            const = const[m.index.cpu()]
        try:
            z = m(z)
        except RuntimeError as exc:
            raise ValueError(f"input_shape {shape} does not fit model[{k}]: {exc}") from None
        shapes.append(tuple(z.shape[1:]))
        consts.append(const)
        zs.append(z[0])
    return shapes, consts, zs


def _conv_uniform(m: nn.Conv2d, z_in: torch.Tensor, j: int, kept_out: torch.Tensor) -> bool:
    """Is the contribution of constant input channel j to the kept outputs spatially uniform?"""
    if kept_out.numel() == 0:
        return True  # nothing reads it
    if m.padding_mode != "zeros" and m.padding != (0, 0):
        return False  # reflect/circular padding: not checked here, keep the channel (safe)
    x = torch.zeros_like(z_in)
    x[j] = z_in[j]
    w = m.weight.detach()[kept_out]
    y = nn.functional.conv2d(x[None], w, None, m.stride, m.padding, m.dilation)[0]
    flat = y.flatten(1)
    spread = (flat.max(dim=1).values - flat.min(dim=1).values).abs()
    scale = flat.abs().max().item() if flat.numel() else 0.0
    return bool((spread <= 1e-6 * max(scale, 1.0)).all())


@torch.no_grad()
def plan_model(model: nn.Sequential, input_shape: tuple[int, ...], tolerance: float = 0.0,
               support: dict[int, torch.Tensor] | None = None) -> list[ModulePlan]:
    """Build the removal plan; see the module docstring (`support`: a training plan, no
    folding). Raises on unsupported models."""
    shape = validate(model, input_shape)
    if not (isinstance(tolerance, (int, float)) and tolerance >= 0):
        raise ValueError(f"tolerance must be a number >= 0 (got {tolerance!r})")
    was_training = [m.training for m in model.modules()]
    model.eval()
    try:
        shapes, consts, zs = _forward(model, shape, tolerance, support)
    finally:
        for m, flag in zip(model.modules(), was_training, strict=True):
            m.training = flag
    n = len(model)
    kept: list[torch.Tensor] = [torch.empty(0)] * (n + 1)
    kept[n] = torch.ones(shapes[n][0], dtype=torch.bool)
    need: list[torch.Tensor] = [torch.empty(0)] * (n + 1)
    need[n] = kept[n].clone()
    folds: dict[int, torch.Tensor] = {}
    for k in range(n - 1, -1, -1):
        m, kept_out, const_in = model[k], kept[k + 1], consts[k]
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            if not kept_out.any() and _feeds_pool_or_norm(model, k):
                kept_out[0] = True  # torch cannot pool/normalise 0 units: keep one
            nz = _reads(m, k, tolerance, support).cpu()
            need[k] = nz[kept_out].any(dim=0)
            # a training plan folds nothing: a constant unit's bias still trains
            foldable = const_in.clone() if support is None else torch.zeros_like(const_in)
            out_idx = kept_out.nonzero().flatten().to(m.weight.device)
            if isinstance(m, nn.Conv2d):
                for j in foldable.nonzero().flatten().tolist():
                    foldable[j] = _conv_uniform(m, zs[k], j, out_idx)
            kept[k] = need[k] & ~foldable
            if isinstance(m, nn.Conv2d) and not kept[k].any():
                kept[k][0] = True  # idem: a conv reads at least one channel
            removed_const = (foldable & ~kept[k]).nonzero().flatten().to(m.weight.device)
            w = m.weight.detach()[out_idx][:, removed_const]
            if removed_const.numel() == 0 or out_idx.numel() == 0:
                folds[k] = torch.zeros(out_idx.numel(), device=w.device, dtype=w.dtype)
            elif isinstance(m, nn.Linear):
                folds[k] = w @ zs[k][removed_const]
            else:  # uniform contribution: read it at one output position
                x = zs[k][removed_const][None]
                y = nn.functional.conv2d(x, w, None, m.stride, m.padding, m.dilation)
                folds[k] = y[0, :, 0, 0]
        elif isinstance(m, nn.Flatten) and len(shapes[k]) == 3:
            kept[k] = kept_out.view(shapes[k][0], -1).any(dim=1)
            need[k] = need[k + 1].view(shapes[k][0], -1).any(dim=1)
        elif isinstance(m, Select):
            kept[k] = torch.zeros(shapes[k][0], dtype=torch.bool)
            kept[k][m.index.cpu()[kept_out]] = True
            need[k] = torch.zeros(shapes[k][0], dtype=torch.bool)
            need[k][m.index.cpu()[need[k + 1]]] = True
        else:
            kept[k], need[k] = kept_out.clone(), need[k + 1].clone()
    return _emit(model, shapes, consts, zs, kept, need, folds)


def _emit(model, shapes, consts, zs, kept, need, folds) -> list[ModulePlan]:
    """Forward again: which original units each compacted activation holds, and the selects."""
    emitted = torch.arange(shapes[0][0])
    plans = []
    for k, m in enumerate(model):
        kept_in = kept[k].nonzero().flatten()
        select = None
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            if not torch.equal(emitted, kept_in):
                position = {int(u): p for p, u in enumerate(emitted.tolist())}
                select = torch.tensor([position[int(u)] for u in kept_in], dtype=torch.long)
            kept_out = kept[k + 1].nonzero().flatten()
            plan = ModulePlan(k, m, shapes[k], shapes[k + 1], emitted, kept_in, kept_out,
                              folds[k], select)
            # categories of removed outputs, in priority order: zero, unused, folded
            removed = ~kept[k + 1]
            const_val = zs[k + 1].detach().flatten(1) if zs[k + 1].dim() > 1 else zs[k + 1][:, None]
            zero = removed & consts[k + 1] & ~(const_val != 0).any(dim=1).cpu()
            unused = removed & ~zero & ~need[k + 1]
            plan.outputs_zero = int(zero.sum())
            plan.outputs_unused = int(unused.sum())
            plan.outputs_folded = int((removed & ~zero & ~unused).sum())
            emitted = kept_out
        elif isinstance(m, nn.Flatten) and len(shapes[k]) == 3:
            hw = _unit_positions(shapes[k])
            out = (emitted[:, None] * hw + torch.arange(hw)[None]).flatten()
            plan = ModulePlan(k, m, shapes[k], shapes[k + 1], emitted, emitted, out, None, None)
            emitted = out
        elif isinstance(m, Select):
            src = m.index.cpu()
            present = torch.isin(src, emitted)
            position = {int(u): p for p, u in enumerate(emitted.tolist())}
            select = torch.tensor([position[int(u)] for u in src[present]], dtype=torch.long)
            out = present.nonzero().flatten()
            plan = ModulePlan(k, m, shapes[k], shapes[k + 1], emitted, emitted, out, None, select)
            emitted = out
        else:
            plan = ModulePlan(k, m, shapes[k], shapes[k + 1], emitted, emitted, emitted, None, None)
        plans.append(plan)
    if not torch.equal(emitted, torch.arange(shapes[-1][0])):
        raise AssertionError("internal error: compacted output units differ from the original")
    return plans
