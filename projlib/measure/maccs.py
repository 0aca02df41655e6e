"""``cost_report``: MACCs, parameter counts and bytes of a sequential network, per layer and total.

Per sample, for a Linear (in I, out O) and a Conv2d (I -> O channels, kernel kh x kw, output
Ho x Wo), with I', O' the units kept by :mod:`projlib.measure.structure`:

* ``maccs_dense``       I*O            | I*O*kh*kw*Ho*Wo   (what thop counts for these layers)
* ``maccs_structured``  I'*O'          | I'*O'*kh*kw*Ho*Wo (the compacted dense network)
* ``maccs_nonzero``     nnz(W[O',I'])  | nnz(W[O',I'])*Ho*Wo (what an ideal sparse kernel does)
* ``maccs_lowrank``     min(structured, r*(I'+O')) | min(structured, r*(I'*kh*kw+O')*Ho*Wo),
  r the numerical rank of the kept matrix (conv: reshaped to O' x I'*kh*kw), i.e. a factorised
  layer W = A B with A (O' x r), B (r x I'), when that is cheaper.
* ``params_lowrank`` / ``bytes_lowrank``: the parameters / storage with the same factorisation
  (r*(I'+O') weights instead of I'*O' where ``maccs_lowrank`` factorises the layer; biases and
  every other parameter as in the structured count).

Only Linear and Conv2d MACCs are counted: BatchNorm folds into the preceding layer at inference
and pooling/ReLU are comparisons. ``thop_maccs`` is thop's own total, which also counts
BatchNorm and AvgPool operations, so it equals ``maccs_dense`` only for nets without them.
Parameters are the learnable tensors (weights, biases, BatchNorm affine), not running stats.

Complexity: O(total weights) plus one SVD per weight layer for the rank.
See docs/METHOD.md §5.2 (MACCs) and §5.3 (parameters and bytes).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from projlib import schema
from projlib.measure.graph import compact_graph
from projlib.measure.memory import csr_bytes, entropy_bytes
from projlib.measure.structure import ModulePlan, Select, is_chain, plan_model

# CostReport's totals (summed over layers): the cost columns of the results row.
_TOTALS = schema.cost_columns()


@dataclass(frozen=True)
class LayerCost:
    """Costs of one parameterised module (Linear, Conv2d, BatchNorm)."""

    index: int
    kind: str
    in_units: int
    out_units: int
    in_kept: int
    out_kept: int
    outputs_zero: int  # removed outputs always 0 here (a BatchNorm after may shift: folded)
    outputs_unused: int  # removed outputs that no kept unit downstream reads
    outputs_folded: int  # removed outputs emitting a nonzero constant, folded downstream
    rank: int | None
    maccs_dense: int
    maccs_structured: int
    maccs_nonzero: int
    maccs_lowrank: int
    params_dense: int
    params_structured: int
    params_nonzero: int
    params_lowrank: int
    bytes_dense: int
    bytes_structured: int
    bytes_csr: int
    bytes_entropy: int
    bytes_lowrank: int


@dataclass(frozen=True)
class CostReport:
    """Totals over ``layers`` plus thop's dense count (``None`` if thop failed)."""

    layers: list[LayerCost] = field(default_factory=list)
    maccs_dense: int = 0
    maccs_structured: int = 0
    maccs_nonzero: int = 0
    maccs_lowrank: int = 0
    params_dense: int = 0
    params_structured: int = 0
    params_nonzero: int = 0
    params_lowrank: int = 0
    bytes_dense: int = 0
    bytes_structured: int = 0
    bytes_csr: int = 0
    bytes_entropy: int = 0
    bytes_lowrank: int = 0
    thop_maccs: int | None = None
    csr_index_bytes: int = 4
    tolerance: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def numerical_rank(matrix: torch.Tensor, rtol: float | None = None) -> int:
    """Number of singular values > rtol * s_max (default rtol = max(m, n) * eps, as numpy)."""
    if matrix.numel() == 0:
        return 0
    m = matrix.detach()
    if m.is_cuda:
        s = torch.linalg.svdvals(m.double()).cpu().numpy()
    else:  # numpy's LAPACK path avoids a multi-second first-call warm-up seen with torch on CPU
        s = np.linalg.svd(m.double().numpy(), compute_uv=False)
    if rtol is None:
        rtol = max(matrix.shape) * torch.finfo(matrix.dtype).eps
    return int((s > rtol * s[0]).sum())


def factorised_weights(rows: int, cols: int, rank: int | None) -> int:
    """Weights of a rows x cols matrix stored as A (rows x rank) B (rank x cols) when that is
    fewer than rows*cols, else rows*cols (rank None: not factorised)."""
    full = rows * cols
    return full if rank is None else min(full, rank * (rows + cols))


def _nnz(t: torch.Tensor | None, tolerance: float) -> int:
    return 0 if t is None else int((t.detach().abs() > tolerance).sum())


def _weight_layer(p: ModulePlan, tolerance: float, index_bytes: int, entropy_dtype,
                  rank_rtol: float | None) -> LayerCost:
    m = p.module
    w = m.weight.detach()
    out_idx, in_idx = p.kept_out.to(w.device), p.kept_in.to(w.device)
    w_sub = w[out_idx][:, in_idx]
    i_all, o_all, i_k, o_k = w.shape[1], w.shape[0], in_idx.numel(), out_idx.numel()
    positions, kernel = 1, 1
    if isinstance(m, nn.Conv2d):
        positions = p.out_shape[1] * p.out_shape[2]
        kernel = w.shape[2] * w.shape[3]
    matrix = w_sub.reshape(o_k, i_k * kernel)
    rank = numerical_rank(matrix, rank_rtol)
    structured = i_k * o_k * kernel * positions
    weights_lowrank = factorised_weights(o_k, i_k * kernel, rank)
    lowrank = weights_lowrank * positions
    bias = m.bias.detach() if m.bias is not None else None
    fold_nonzero = p.fold is not None and bool((p.fold != 0).any())
    new_bias = None
    if bias is not None or fold_nonzero:
        new_bias = (bias[out_idx] if bias is not None else 0) + p.fold
    has_bias = new_bias is not None
    elem = w.element_size()
    params_structured = matrix.numel() + (o_k if has_bias else 0)
    params_lowrank = weights_lowrank + (o_k if has_bias else 0)
    return LayerCost(
        index=p.index, kind=type(m).__name__, in_units=i_all, out_units=o_all, in_kept=i_k,
        out_kept=o_k, outputs_zero=p.outputs_zero, outputs_unused=p.outputs_unused,
        outputs_folded=p.outputs_folded, rank=rank,
        maccs_dense=i_all * o_all * kernel * positions, maccs_structured=structured,
        maccs_nonzero=_nnz(matrix, tolerance) * positions, maccs_lowrank=lowrank,
        params_dense=w.numel() + (bias.numel() if bias is not None else 0),
        params_structured=params_structured,
        params_nonzero=_nnz(matrix, tolerance) + _nnz(new_bias, tolerance),
        params_lowrank=params_lowrank,
        bytes_dense=(w.numel() + (bias.numel() if bias is not None else 0)) * elem,
        bytes_structured=params_structured * elem, bytes_lowrank=params_lowrank * elem,
        bytes_csr=csr_bytes(matrix, index_bytes, tolerance) + (o_k * elem if has_bias else 0),
        bytes_entropy=entropy_bytes(w, entropy_dtype)
        + (entropy_bytes(bias, entropy_dtype) if bias is not None else 0),
    )


def _norm_layer(p: ModulePlan, tolerance: float, entropy_dtype) -> LayerCost:
    m = p.module
    tensors = [t.detach() for t in (m.weight, m.bias) if t is not None]
    units, kept = p.in_shape[0], p.emitted_in.numel()
    dense = sum(t.numel() for t in tensors)
    elem = tensors[0].element_size() if tensors else 4
    sub = [t[p.emitted_in.to(t.device)] for t in tensors]
    structured = sum(t.numel() for t in sub)
    return LayerCost(
        index=p.index, kind=type(m).__name__, in_units=units, out_units=units, in_kept=kept,
        out_kept=kept, outputs_zero=0, outputs_unused=0, outputs_folded=0, rank=None,
        maccs_dense=0, maccs_structured=0, maccs_nonzero=0, maccs_lowrank=0,
        params_dense=dense, params_structured=structured,
        params_nonzero=sum(_nnz(t, tolerance) for t in sub), params_lowrank=structured,
        bytes_dense=dense * elem, bytes_structured=structured * elem,
        bytes_lowrank=structured * elem, bytes_csr=structured * elem,  # kept dense: tiny
        bytes_entropy=sum(entropy_bytes(t, entropy_dtype) for t in tensors),
    )


def thop_maccs(model: nn.Module, input_shape: tuple[int, ...]) -> int | None:
    """thop's MAC count for one sample, or None when thop fails on the model.

    We use the maintained ``ultralytics-thop`` fork (same ``thop`` import name, same API): the
    original ``thop`` (Lyken17/pytorch-OpCounter) has had no release since 2022, while the fork
    tracks current torch and has fixed counting rules (adaptive pooling, norm families) since.
    """
    try:
        import thop  # noqa: PLC0415 - heavy (it imports its own model zoo), needed only for the dense count

        probe = copy.deepcopy(model).eval()  # thop adds buffers/hooks: keep the caller's clean
        param = next(probe.parameters(), None)
        x = torch.zeros((1, *input_shape), device=param.device if param is not None else "cpu",
                        dtype=param.dtype if param is not None else torch.float32)
        custom = {Select: lambda m, inp, out: None}
        macs, _ = thop.profile(probe, inputs=(x,), custom_ops=custom, verbose=False)
        return int(round(float(macs)))
    except Exception:  # thop is a cross-check only; the report stays usable without it
        return None


def torch_flop_maccs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """MACCs from ``torch.utils.flop_counter.FlopCounterMode`` (flops / 2), one sample."""
    param = next(model.parameters(), None)
    x = torch.zeros((1, *input_shape), device=param.device if param is not None else "cpu",
                    dtype=param.dtype if param is not None else torch.float32)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() // 2


def cost_report(model: nn.Module, input_shape: tuple[int, ...], *, tolerance: float = 0.0,
                csr_index_bytes: int = 4, entropy_dtype: torch.dtype | None = None,
                rank_rtol: float | None = None) -> CostReport:
    """MACCs, parameters and bytes of ``model`` for one sample of shape ``input_shape``.

    ``tolerance``: weights with |w| <= tolerance count as zero (default: exact zeros only).
    ``csr_index_bytes``: 4 (int32) or 8 (int64) per CSR index. ``entropy_dtype``: cast before
    the entropy estimate (None: as stored). See the module docstring for the formulas.
    """
    if csr_index_bytes not in (4, 8):
        raise ValueError(f"csr_index_bytes must be 4 or 8 (got {csr_index_bytes!r})")
    if not is_chain(model):
        return _graph_report(model, input_shape, tolerance, csr_index_bytes, entropy_dtype,
                             rank_rtol)
    plans = plan_model(model, input_shape, tolerance)
    layers = []
    for p in plans:
        if isinstance(p.module, (nn.Linear, nn.Conv2d)):
            layers.append(_weight_layer(p, tolerance, csr_index_bytes, entropy_dtype, rank_rtol))
        elif isinstance(p.module, (nn.BatchNorm1d, nn.BatchNorm2d)) and p.module.affine:
            layers.append(_norm_layer(p, tolerance, entropy_dtype))
    totals = {k: sum(getattr(layer, k) for layer in layers) for k in _TOTALS}
    return CostReport(layers=layers, thop_maccs=thop_maccs(model, tuple(input_shape)),
                      csr_index_bytes=csr_index_bytes, tolerance=float(tolerance), **totals)


_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


@torch.no_grad()
def _positions(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, int]:
    """Output positions per sample (Ho*Wo, 1 for a flat Linear) of every Conv/Linear called."""
    names = {m: n for n, m in model.named_modules()}
    found: dict[str, int] = {}

    def hook(m, args, out):
        units = m.out_channels if isinstance(m, nn.modules.conv._ConvNd) else m.out_features
        found[names[m]] = out[0].numel() // units

    hooks = [m.register_forward_hook(hook) for m in model.modules()
             if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear))]
    try:
        param = next(model.parameters(), None)
        model(torch.zeros((1, *input_shape), device=param.device if param is not None else "cpu",
                          dtype=param.dtype if param is not None else torch.float32))
    finally:
        for h in hooks:
            h.remove()
    return found


def _graph_layer(index: int, full: nn.Module, small: nn.Module, positions: int,
                 tolerance: float, index_bytes: int, entropy_dtype,
                 rank_rtol: float | None) -> LayerCost:
    """Costs of one Conv/Linear of a graph model (`small`: its compacted copy)."""
    w, ws = full.weight.detach(), small.weight.detach()
    groups = getattr(full, "groups", 1)
    matrix = ws.reshape(ws.shape[0], -1)
    structured = ws.numel() * positions  # every weight is used once per output position
    rank = numerical_rank(matrix, rank_rtol) if groups == 1 else None
    weights_lowrank = factorised_weights(matrix.shape[0], matrix.shape[1], rank)
    lowrank = weights_lowrank * positions
    bias, sbias = full.bias, small.bias
    n_bias = bias.numel() if bias is not None else 0
    s_bias = sbias.numel() if sbias is not None else 0
    elem = w.element_size()
    in_units = w.shape[1] * groups
    removed = w.shape[0] - ws.shape[0]
    return LayerCost(
        index=index, kind=type(full).__name__, in_units=in_units, out_units=w.shape[0],
        in_kept=ws.shape[1] * getattr(small, "groups", 1), out_kept=ws.shape[0],
        outputs_zero=removed, outputs_unused=0, outputs_folded=0, rank=rank,
        maccs_dense=w.numel() * positions, maccs_structured=structured,
        maccs_nonzero=_nnz(ws, tolerance) * positions, maccs_lowrank=lowrank,
        params_dense=w.numel() + n_bias, params_structured=ws.numel() + s_bias,
        params_nonzero=_nnz(ws, tolerance) + _nnz(sbias, tolerance),
        params_lowrank=weights_lowrank + s_bias,
        bytes_dense=(w.numel() + n_bias) * elem, bytes_structured=(ws.numel() + s_bias) * elem,
        bytes_lowrank=(weights_lowrank + s_bias) * elem,
        bytes_csr=csr_bytes(matrix, index_bytes, tolerance) + s_bias * elem,
        bytes_entropy=entropy_bytes(w, entropy_dtype)
        + (entropy_bytes(bias, entropy_dtype) if bias is not None else 0),
    )


def _graph_norm(index: int, full: nn.Module, small: nn.Module, tolerance: float,
                entropy_dtype) -> LayerCost:
    tensors = [t.detach() for t in (full.weight, full.bias)]
    sub = [t.detach() for t in (small.weight, small.bias)]
    dense, structured = sum(t.numel() for t in tensors), sum(t.numel() for t in sub)
    elem = tensors[0].element_size()
    return LayerCost(
        index=index, kind=type(full).__name__, in_units=full.num_features,
        out_units=full.num_features, in_kept=small.num_features, out_kept=small.num_features,
        outputs_zero=0, outputs_unused=0, outputs_folded=0, rank=None, maccs_dense=0,
        maccs_structured=0, maccs_nonzero=0, maccs_lowrank=0, params_dense=dense,
        params_structured=structured, params_nonzero=sum(_nnz(t, tolerance) for t in sub),
        params_lowrank=structured, bytes_dense=dense * elem, bytes_structured=structured * elem,
        bytes_lowrank=structured * elem, bytes_csr=structured * elem,
        bytes_entropy=sum(entropy_bytes(t, entropy_dtype) for t in tensors),
    )


def _graph_report(model: nn.Module, input_shape, tolerance: float, index_bytes: int,
                  entropy_dtype, rank_rtol: float | None) -> CostReport:
    """`cost_report` of a model off the chain walker (`projlib.measure.graph`): dense and
    structured MACCs are thop's counts of the model and of its `compact()` copy (BatchNorm and
    pooling operations included, as thop counts them); nonzero and low-rank MACCs replace the
    Conv/Linear part of the structured count by the layers' nonzero / low-rank counts.
    Parameters not in a Conv, Linear or BatchNorm count as dense in every column."""
    plan = compact_graph(model, input_shape, tolerance)
    shape = tuple(int(s) for s in input_shape)
    small_modules = dict(plan.small.named_modules())
    positions = _positions(plan.small, shape)
    layers, covered = [], set()
    for index, (name, m) in enumerate(model.named_modules()):
        if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)) and name in positions:
            layers.append(_graph_layer(index, m, small_modules[name], positions[name],
                                       tolerance, index_bytes, entropy_dtype, rank_rtol))
        elif isinstance(m, _NORMS) and m.affine:
            layers.append(_graph_norm(index, m, small_modules[name], tolerance, entropy_dtype))
        else:
            continue
        covered.update(id(p) for p in m.parameters(recurse=False))
    totals = {k: sum(getattr(layer, k) for layer in layers) for k in _TOTALS}
    rest = [p.detach() for p in model.parameters() if id(p) not in covered]
    n_rest = sum(p.numel() for p in rest)
    elem = rest[0].element_size() if rest else 4
    for k in ("params_dense", "params_structured", "params_lowrank"):
        totals[k] += n_rest
    totals["params_nonzero"] += sum(_nnz(p, tolerance) for p in rest)
    for k in ("bytes_dense", "bytes_structured", "bytes_csr", "bytes_lowrank"):
        totals[k] += n_rest * elem
    totals["bytes_entropy"] += sum(entropy_bytes(p, entropy_dtype) for p in rest)
    dense, structured = thop_maccs(model, shape), thop_maccs(plan.small, shape)
    if dense is not None and structured is not None:
        other = structured - totals["maccs_structured"]  # BN, pooling ... as thop counts them
        totals["maccs_dense"], totals["maccs_structured"] = dense, structured
        totals["maccs_nonzero"] += other
        totals["maccs_lowrank"] += other
    return CostReport(layers=layers, thop_maccs=dense, csr_index_bytes=index_bytes,
                      tolerance=float(tolerance), **totals)
