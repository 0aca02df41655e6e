"""Masked retraining on the compacted network (docs/METHOD.md §3.3, issue 21).

The masked phase of `lottery` and `magnitude` holds the masked weights at exactly 0. A unit none
of whose outgoing weights may be nonzero (a removed column of the next layer, or a removed input
channel) then gets an exactly zero gradient: its row (weights and bias) never changes, with SGD
momentum or Adam alike, since every optimizer state of a zero-gradient weight stays 0. Cutting
those rows, columns and channels out (`projlib.measure.compact` with the masks as its training
``support``: nothing is folded, a zero row keeps its trainable bias) gives a smaller network
whose steps are the masked network's steps, to float rounding (smaller matrix products sum in
another order). The mask is still applied inside what remains, and `write_back` puts the
trained weights back into the full-size network, so everything downstream sees the full shape.

Only for networks whose training-mode forward does not depend on the width of what is cut:
Dropout draws a random mask of the layer's width and BatchNorm updates the running statistics
of every channel, so a network with either is retrained full-size (`compactable`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from projlib.measure.compact import compact
from projlib.measure.structure import is_chain, plan_model

# Modules whose training-mode behaviour depends on the number of units they see.
_WIDTH_DEPENDENT = (nn.Dropout, nn.BatchNorm1d, nn.BatchNorm2d)


@dataclass
class _Link:
    """Weight layer `full` of the original network and its compacted copy `small`."""

    full: nn.Module
    small: nn.Module
    rows: torch.Tensor  # kept output units (on the weights' device)
    cols: torch.Tensor  # kept input units


@dataclass
class CompactedNet:
    """A compacted copy of a masked `nn.Sequential` and how to put its weights back.

    model: the smaller network (training mode as the original). masks: its parameter names ->
    the masks cut to its shapes (layers whose cut mask is all True are left out).
    """

    model: nn.Sequential
    masks: dict[str, torch.Tensor]
    links: list[_Link]

    @torch.no_grad()
    def write_back(self) -> None:
        """Copy the compacted weights and biases into their places in the full network."""
        for link in self.links:
            w = link.full.weight
            block = w.index_select(0, link.rows)
            block.index_copy_(1, link.cols, link.small.weight.to(block.dtype))
            w.index_copy_(0, link.rows, block)
            if link.full.bias is not None:
                link.full.bias.index_copy_(0, link.rows, link.small.bias)


def compactable(model: nn.Module) -> bool:
    """Can `model` be retrained compacted with steps identical to the masked full-size ones?"""
    return is_chain(model) and not any(  # the chain walker plans the training support
        isinstance(m, _WIDTH_DEPENDENT) for m in model.modules())


def compacted_net(model: nn.Sequential, masks: dict[str, torch.Tensor],
                  input_shape: tuple[int, ...]) -> CompactedNet:
    """The compacted copy of `model` (masked weights already 0) for training under `masks`
    ({"<index>.weight": bool tensor, True = trainable}). O(total weights)."""
    if not compactable(model):
        raise ValueError("model has Dropout or BatchNorm: its masked retrain cannot be compacted")
    support = {}
    for name, mask in masks.items():
        index, _, kind = name.partition(".")
        if kind != "weight" or not index.isdigit():
            raise ValueError(f"masks names {name!r}, not the weight of a top-level layer")
        support[int(index)] = mask
    plans = plan_model(model, input_shape, support=support)
    small = compact(model, input_shape, support=support)
    weighted = [p for p in plans if isinstance(p.module, (nn.Linear, nn.Conv2d))]
    small_layers = [(i, m) for i, m in enumerate(small) if isinstance(m, (nn.Linear, nn.Conv2d))]
    links, small_masks = [], {}
    for plan, (j, layer) in zip(weighted, small_layers, strict=True):
        device = plan.module.weight.device
        rows, cols = plan.kept_out.to(device), plan.kept_in.to(device)
        links.append(_Link(plan.module, layer, rows, cols))
        mask = masks.get(f"{plan.index}.weight")
        if mask is not None:
            cut = mask.to(device).index_select(0, rows).index_select(1, cols)
            if not bool(cut.all()):
                small_masks[f"{j}.weight"] = cut
    fmt = _memory_format(model)
    if fmt is not None:
        small.to(memory_format=fmt)
    return CompactedNet(small, small_masks, links)


def _memory_format(model: nn.Module) -> torch.memory_format | None:
    """channels_last when the model's conv weights are stored so (the fast CPU layout)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            w = m.weight
            if not w.is_contiguous() and w.is_contiguous(memory_format=torch.channels_last):
                return torch.channels_last
            return None
    return None
