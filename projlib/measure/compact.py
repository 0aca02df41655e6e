"""``compact``: a physically smaller ``nn.Sequential`` with the removed groups cut out.

Follows the plan of :mod:`projlib.measure.structure`: each Linear/Conv2d keeps the rows/filters
of its kept outputs and the columns/channels of its kept inputs; constants of removed units are
folded into the next layer's bias (a bias is added when the original layer had none and the
fold is nonzero); BatchNorm keeps the statistics of the surviving channels; a ``Select`` is
inserted where a layer reads fewer units than its predecessor emits (network input, or single
flattened positions of a surviving channel). In eval mode the outputs equal the original's up
to float rounding; ``cost_report(compact(m)).maccs_dense == cost_report(m).maccs_structured``.
See docs/METHOD.md §5.4.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn
from torch.nn.utils import skip_init

from projlib.measure.graph import compact_graph
from projlib.measure.structure import ModulePlan, Select, is_chain, plan_model


def _linear(p: ModulePlan) -> nn.Module:
    m = p.module
    w = m.weight.detach()
    out_idx, in_idx = p.kept_out.to(w.device), p.kept_in.to(w.device)
    fold_nonzero = bool((p.fold != 0).any())
    has_bias = m.bias is not None or fold_nonzero
    kw = {"device": w.device, "dtype": w.dtype}
    # skip_init: every weight is overwritten below; a layer with nothing left has zero-size
    # weights, for which torch's init warns "no-op" even on the meta device: silence that one.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Initializing zero-element tensors")
        if isinstance(m, nn.Linear):
            new: nn.Module = skip_init(nn.Linear, in_idx.numel(), out_idx.numel(),
                                       bias=has_bias, **kw)
        else:
            new = skip_init(nn.Conv2d, in_idx.numel(), out_idx.numel(), m.kernel_size,
                            m.stride, m.padding, m.dilation, 1, has_bias, m.padding_mode, **kw)
    with torch.no_grad():
        new.weight.copy_(w[out_idx][:, in_idx])
        if has_bias:
            base = m.bias.detach()[out_idx] if m.bias is not None else torch.zeros_like(p.fold)
            new.bias.copy_(base + p.fold)
    return new


def _batchnorm(p: ModulePlan) -> nn.Module:
    m = p.module
    units = p.emitted_in
    kind = type(m)
    ref = m.weight if m.weight is not None else m.running_mean
    kw = {"device": ref.device if ref is not None else None,
          "dtype": ref.dtype if ref is not None else None}
    new = kind(units.numel(), m.eps, m.momentum, m.affine, m.track_running_stats, **kw)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            src = getattr(m, name)
            if src is not None:
                getattr(new, name).copy_(src.detach()[units.to(src.device)])
        if m.num_batches_tracked is not None:
            new.num_batches_tracked.copy_(m.num_batches_tracked)
    return new


def compact(model: nn.Module, input_shape: tuple[int, ...], tolerance: float = 0.0,
            support: dict[int, torch.Tensor] | None = None) -> nn.Module:
    """Return a new, smaller model computing the same function as ``model`` (eval mode).

    An ``nn.Sequential`` of the layers the chain walker plans gives an ``nn.Sequential`` (as
    below); any other ``nn.Module`` (residual adds, concatenation, grouped / depthwise
    convolutions, adaptive pooling ...) a pruned copy of itself, same class and module names,
    built with Torch-Pruning's dependency graph (`projlib.measure.graph`: only channels whose
    removal is exact are cut, nothing folded; ``support`` is not accepted there).

    ``tolerance`` > 0 treats |w| <= tolerance as zero, which changes outputs by at most the
    dropped weights' contribution. ``support`` ({module index: bool tensor of that weight's
    shape}, True = may be nonzero) plans for masked training instead: only units nothing reads
    are cut, nothing is folded (see `projlib.measure.structure`). The original model is not
    modified. O(total weights).
    """
    if not is_chain(model):
        if support is not None:
            raise ValueError("support (a training plan) needs an nn.Sequential the chain "
                             f"walker plans; got a {type(model).__name__}")
        return compact_graph(model, input_shape, tolerance).small
    plans = plan_model(model, input_shape, tolerance, support)
    layers: list[nn.Module] = []
    for p in plans:
        m = p.module
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            if p.select is not None:
                layers.append(Select(p.select.to(m.weight.device)))
            layers.append(_linear(p))
        elif isinstance(m, Select):
            if not torch.equal(p.select, torch.arange(p.emitted_in.numel())):
                layers.append(Select(p.select.to(m.index.device)))
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            layers.append(_batchnorm(p))
        else:
            layers.append(copy.deepcopy(m))
    out = nn.Sequential(*layers)
    out.train(model.training)
    return out
