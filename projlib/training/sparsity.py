"""Which layers are constrained, per-layer sparsity, and the masks of the lottery procedures.

Groups follow docs/METHOD.md §1: for a weight of shape (out, in, ...) **column j** is W[:, j]
(Linear: the weights leaving input neuron j; Conv2d: the (out, kh, kw) slab of input channel j)
and **row i** is W[i] (output neuron / filter i). A group is removed when all its weights are 0.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class LayerSparsity:
    """Element and group sparsity of one weight tensor (biases and batch-norm are not counted)."""

    name: str
    shape: tuple[int, ...]
    numel: int
    nonzero: int
    fraction_zero: float
    columns_total: int
    columns_removed: int
    rows_total: int
    rows_removed: int
    constrained: bool


def weight_names(model: nn.Module) -> list[str]:
    """Names of the weight matrices / conv kernels (ndim >= 2) in model order."""
    return [n for n, p in model.named_parameters() if p.ndim >= 2]


def select_layers(
    model: nn.Module,
    patterns: tuple[str, ...] | None,
    constrain_first: bool,
    constrain_last: bool,
) -> list[str]:
    """Constrained parameter names, in model order.

    `patterns` None: the paper's default, every weight matrix but the first and the last unless
    the flags ask for them. Otherwise the weights whose name matches any fnmatch pattern; a
    pattern that matches no weight is an error (a typo would silently train a dense network).
    """
    names = weight_names(model)
    if patterns is None:
        chosen = [
            n for i, n in enumerate(names)
            if (i > 0 or constrain_first) and (i < len(names) - 1 or constrain_last)
        ]
        return chosen
    for pat in patterns:
        if not fnmatch.filter(names, pat):
            raise ValueError(
                f"layers pattern {pat!r} matches no weight; weights are: {', '.join(names)}"
            )
    return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]


def _group_counts(w: torch.Tensor) -> tuple[int, int, int, int]:
    nz = w != 0
    cols_alive = nz.transpose(0, 1).reshape(w.shape[1], -1).any(dim=1)
    rows_alive = nz.reshape(w.shape[0], -1).any(dim=1)
    return (
        w.shape[1], int((~cols_alive).sum()), w.shape[0], int((~rows_alive).sum()),
    )


def layer_sparsity(model: nn.Module, constrained: list[str]) -> list[LayerSparsity]:
    """LayerSparsity of every weight (ndim >= 2) of `model`, in model order. O(total params)."""
    params = dict(model.named_parameters())
    out = []
    for name in weight_names(model):
        w = params[name].detach()
        nonzero = int(torch.count_nonzero(w))
        cols, cols_rm, rows, rows_rm = _group_counts(w)
        out.append(
            LayerSparsity(
                name=name, shape=tuple(w.shape), numel=w.numel(), nonzero=nonzero,
                fraction_zero=1.0 - nonzero / w.numel(), columns_total=cols,
                columns_removed=cols_rm, rows_total=rows, rows_removed=rows_rm,
                constrained=name in constrained,
            )
        )
    return out


def nonzero_masks(model: nn.Module, names: list[str]) -> dict[str, torch.Tensor]:
    """Bool mask (W != 0) of each named parameter: the lottery mask after the projection."""
    params = dict(model.named_parameters())
    return {n: (params[n].detach() != 0) for n in names}


def magnitude_masks(
    model: nn.Module, fraction_zero: dict[str, float]
) -> dict[str, torch.Tensor]:
    """Per-layer largest-magnitude masks: layer L keeps round((1 - f_L) * numel) weights.

    Frankle & Carbin's lottery-ticket pruning at a prescribed per-layer sparsity, so a magnitude
    run is compared to a projected one at matched sparsity. Ties are broken by `topk`'s order.
    O(numel log k) per layer.
    """
    params = dict(model.named_parameters())
    masks = {}
    for name, frac in fraction_zero.items():
        if name not in params or params[name].ndim < 2:
            raise ValueError(
                f"layer_sparsity names {name!r}, which is not a weight of the model; weights "
                f"are: {', '.join(weight_names(model))}"
            )
        w = params[name].detach()
        keep = int(round((1.0 - frac) * w.numel()))
        flat = torch.zeros(w.numel(), dtype=torch.bool, device=w.device)
        if keep > 0:
            flat[torch.topk(w.abs().flatten(), keep, sorted=False).indices] = True
        masks[name] = flat.view_as(w)
    return masks


def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Zero the masked-out weights of `model` in place (mask True = keep).

    Checks every mask first (name, bool dtype, shape) so a bad mask changes nothing.
    """
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        if name not in params:
            raise ValueError(f"masks names {name!r}, which is not a parameter of the model")
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            raise TypeError(f"masks[{name!r}] must be a bool tensor")
        if mask.shape != params[name].shape:
            raise ValueError(
                f"masks[{name!r}] has shape {tuple(mask.shape)} but the parameter has "
                f"{tuple(params[name].shape)}"
            )
    with torch.no_grad():
        for name, mask in masks.items():
            params[name].mul_(mask.to(params[name].device))
