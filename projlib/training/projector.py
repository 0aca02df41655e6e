"""`Projector`: the paper's projected step for any PyTorch model and any training loop.

Guyard & Barlaud's splitting method (docs/METHOD.md §3.2) is "gradient step on every parameter,
then projection of each constrained weight onto its ball". A `Projector` holds the second half:
which weights (fnmatch patterns over parameter names, or the paper's default, every weight
matrix / conv kernel but the first and the last), which operator (a `REGISTRY` name) and its
radius and grouping. Attached to a `torch.optim.Optimizer` it runs as a step post-hook, so an
existing loop gets the projected step from one line::

    proj = Projector(model, "l11", radius=30.0).attach(opt)   # opt.step() now projects
    ...
    masks = proj.masks()                                      # lottery masks, W != 0
    proj.remove()

The library's own procedures (`projlib.training.train`) use this same object.

- A step that `torch.amp.GradScaler` skips (inf/NaN gradients) never calls `optimizer.step()`,
  so nothing is projected either: the weights stay exactly as they were.
- `torch.compile(model)` keeps the same parameter objects, so the hook projects the weights the
  compiled forward reads. Either the module or its compiled wrapper may be given: names are
  those of the original module (no `_orig_mod.` prefix).
- On CUDA the operators never read a value back to the host (nuclear excepted), so a captured
  CUDA graph of a whole step (forward, backward, `opt.step()` with its projection) can replay it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from projlib.checks import check_bool
from projlib.projections import REGISTRY, constraint_names
from projlib.projections._validate import check_radius
from projlib.training.sparsity import nonzero_masks, select_layers, weight_names

#: How `radius` is read: a radius, or a fraction of each layer's norm.
RADIUS_MODES: tuple[str, ...] = ("absolute", "relative")


class Projector:
    """Projects the selected weights of `model` onto a constraint ball, after every step of the
    optimizers it is attached to (or when `project()` is called).

    model: the `nn.Module` (or its `torch.compile` wrapper) whose weights are constrained.
    constraint: a `projlib.REGISTRY` name ("l1", "l21", "l1inf", "nuclear", "l11",
        "l1inf_bilevel", or one added with `register`).
    radius: the ball's radius η, a finite number >= 0 (0 projects onto {0}); with
        `radius_mode="relative"` a fraction: each selected weight's radius is `radius` x its
        norm under the same constraint and grouping (`REGISTRY[constraint].norm`), so 0.05
        means the same tightness for every constraint and every layer.
    radius_mode: "absolute" (default) or "relative".
    norms_of: for "relative", the tensors whose norms set the radii (e.g. a saved initial
        `state_dict`); default: the weights as they are now. `.radii` holds each selected
        weight's absolute radius.
    layers: fnmatch pattern(s) over parameter names ("features.*.weight"); None (default) is the
        paper's choice: every weight with ndim >= 2 (Linear matrices, conv kernels) except the
        first and the last, unless `constrain_first` / `constrain_last`. When `layers` is given
        it is the exact selection and the two flags are not consulted. A pattern that matches no
        weight, or a selection that is empty, is a ValueError.
    groups: "columns" (default: column j = everything leaving input neuron / channel j) or
        "rows" (output neuron / filter), for the grouped constraints.

    Errors: TypeError / ValueError naming the argument, raised here, before any step.
    """

    def __init__(
        self,
        model: nn.Module,
        constraint: str,
        radius: float,
        *,
        radius_mode: str = "absolute",
        norms_of: Mapping[str, torch.Tensor] | None = None,
        layers: str | Iterable[str] | None = None,
        groups: str = "columns",
        constrain_first: bool = False,
        constrain_last: bool = False,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(constraint, str) or constraint not in REGISTRY:
            raise ValueError(
                f"constraint must be one of {', '.join(constraint_names())}; got {constraint!r}"
            )
        check_bool("constrain_first", constrain_first)
        check_bool("constrain_last", constrain_last)
        spec = REGISTRY[constraint]
        self.constraint = constraint
        self.radius = check_radius(radius)
        self.groups = spec.check_groups(groups)
        # A compiled module shares its parameters with the original; use the original's names.
        self.model: nn.Module = getattr(model, "_orig_mod", model)
        patterns = _patterns(layers)
        self.names: tuple[str, ...] = tuple(
            select_layers(self.model, patterns, constrain_first, constrain_last)
        )
        if not self.names:
            raise ValueError(
                "layers selects no weight to constrain (set layers, constrain_first or "
                f"constrain_last); weights are: {', '.join(weight_names(self.model)) or 'none'}"
            )
        params = dict(self.model.named_parameters())
        self._params = [params[n] for n in self.names]
        self.radius_mode = _radius_mode(radius_mode)
        if self.radius_mode == "absolute":
            radii = [self.radius] * len(self.names)
        else:
            norms_of = params if norms_of is None else norms_of
            missing = [n for n in self.names if n not in norms_of]
            if missing:
                raise ValueError(f"norms_of has no tensor for {', '.join(missing)}")
            radii = [self.radius * float(spec.norm(norms_of[n].detach(), self.groups))
                     for n in self.names]
        self.radii: dict[str, float] = dict(zip(self.names, radii, strict=True))
        # Resolved once, not per step; `groups` is passed only to a grouped operator.
        kwargs = {"groups": self.groups} if spec.grouped else {}
        self._fn: Callable[..., torch.Tensor] = functools.partial(spec.fn, **kwargs)
        self._handles: list[RemovableHandle] = []

    def __repr__(self) -> str:
        return (f"Projector({self.constraint!r}, radius={self.radius}, "
                f"radius_mode={self.radius_mode!r}, groups={self.groups!r}, "
                f"layers={list(self.names)}, attached={len(self._handles)})")

    def project(self) -> None:
        """Project every selected weight onto its ball now, in place (no autograd record)."""
        with torch.no_grad():
            for p, r in zip(self._params, self.radii.values(), strict=True):
                # the weight in its logical layout, whatever its memory format
                p.copy_(self._fn(p.detach().contiguous(), radius=r))

    def attach(self, optimizer: torch.optim.Optimizer) -> Projector:
        """Project after every `optimizer.step()` (a step post-hook); returns self.

        The optimizer must update every selected weight (else the projection would follow
        steps that never touch some of them, which is almost surely a wrong selection)."""
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
            )
        held = {id(p) for group in optimizer.param_groups for p in group["params"]}
        missing = [n for n, p in zip(self.names, self._params, strict=True) if id(p) not in held]
        if missing:
            raise ValueError(
                f"optimizer does not update the constrained weight(s) {', '.join(missing)}; "
                "build it from model.parameters() or choose other layers"
            )
        self._handles.append(optimizer.register_step_post_hook(self._after_step))
        return self

    def remove(self) -> None:
        """Detach from every optimizer it was attached to (the weights stay as they are)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def masks(self) -> dict[str, torch.Tensor]:
        """{name: W != 0} of each selected weight (bool, on the weight's device): the lottery
        masks of the current weights (call after a projection for the projected support)."""
        return nonzero_masks(self.model, list(self.names))

    def __enter__(self) -> Projector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def _after_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self.project()


def _radius_mode(mode: Any) -> str:
    if mode not in RADIUS_MODES:
        raise ValueError(f"radius_mode must be one of {', '.join(RADIUS_MODES)}; got {mode!r}")
    return mode


def _patterns(layers: str | Iterable[str] | None) -> tuple[str, ...] | None:
    if layers is None:
        return None
    if isinstance(layers, str):
        layers = (layers,)
    try:
        patterns = tuple(layers)
    except TypeError:
        raise TypeError(
            f"layers must be a pattern, a list of patterns or None, got {type(layers).__name__}"
        ) from None
    if not patterns or not all(isinstance(p, str) and p for p in patterns):
        raise ValueError(f"layers must hold at least one non-empty pattern (str), got {layers!r}")
    return patterns
