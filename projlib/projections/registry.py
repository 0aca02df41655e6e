"""The registry of constraints: one entry per name, iterated by the CLI, the tests and asv.

``REGISTRY[name]`` is a :class:`ProjectionSpec`; ``spec.fn(W, radius, groups)`` has the same
contract as :func:`project`.  Adding a constraint here gives it the property tests and the
benchmarks automatically.  The operators, their formulas and references: docs/METHOD.md §2.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType

import torch

from projlib.projections._validate import check_groups
from projlib.projections.grouped import (
    project_l1inf,
    project_l1inf_bilevel,
    project_l11,
    project_l21,
)
from projlib.projections.l1 import project_l1
from projlib.projections.nuclear import project_nuclear

ProjectionFn = Callable[[torch.Tensor, float, str], torch.Tensor]


@dataclass(frozen=True)
class ProjectionSpec:
    """Metadata of one constraint.

    exact: ``fn`` is the Euclidean projection onto the set (else a feasible, non-Euclidean map).
    structured: it can zero whole groups (columns/rows/channels), which removes neurons.
    grouped: the result depends on ``groups``.
    """

    name: str
    fn: ProjectionFn
    exact: bool
    structured: bool
    grouped: bool
    summary: str


def _l1_entry(W: torch.Tensor, radius: float, groups: str = "columns") -> torch.Tensor:
    check_groups(groups)
    if groups != "columns":
        raise ValueError(
            f"groups does not apply to the 'l1' constraint (it treats W as one vector); "
            f"leave it at its default, got {groups!r}"
        )
    return project_l1(W, radius)


_SPECS = (
    ProjectionSpec("l1", _l1_entry, exact=True, structured=False, grouped=False,
                   summary="l1 ball of vec(W); Condat 2016 threshold, unstructured sparsity"),
    ProjectionSpec("l21", project_l21, exact=True, structured=True, grouped=True,
                   summary="group lasso: group l2 norms onto the l1 ball, groups rescaled"),
    ProjectionSpec("l1inf", project_l1inf, exact=True, structured=True, grouped=True,
                   summary="l1,inf ball: groups clipped at levels summing to the radius"),
    ProjectionSpec("nuclear", project_nuclear, exact=True, structured=False, grouped=False,
                   summary="nuclear-norm ball: singular values onto the l1 ball (low rank)"),
    ProjectionSpec("l11", project_l11, exact=False, structured=True, grouped=True,
                   summary="bi-level l1,1 (the paper's operator): group l1 norms, then groups"),
    ProjectionSpec("l1inf_bilevel", project_l1inf_bilevel, exact=False, structured=True,
                   grouped=True,
                   summary="bi-level l1,inf: group maxima onto the l1 ball, groups clipped"),
)

REGISTRY: MappingProxyType[str, ProjectionSpec] = MappingProxyType({s.name: s for s in _SPECS})


def constraint_names() -> tuple[str, ...]:
    """The constraint names in registry order."""
    return tuple(REGISTRY)


def project(W: torch.Tensor, name: str, radius: float, groups: str = "columns") -> torch.Tensor:
    """Project the weight ``W`` onto the constraint ``name`` of radius ``radius``.

    ``W``: torch tensor, 1-D, 2-D (out, in) or 4-D (out, in, kh, kw), float32/float64, any
    device; returned as a new tensor of the same shape, dtype and device (input untouched).
    ``groups``: "columns" (default) or "rows" for the grouped constraints; must stay at its
    default for ``l1``.  See ``REGISTRY[name].summary`` and the module of each operator for the
    formula, complexity and reference.  Raises TypeError/ValueError naming the bad argument
    (NaN/inf entries, a meta or sparse tensor included).  Finite entries of any magnitude,
    subnormal to the dtype's max, are handled (norms that would overflow or underflow are
    redone on the input rescaled by an exact power of two, see ``_scaling``).
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    spec = REGISTRY.get(name)
    if spec is None:
        raise ValueError(f"name must be one of {constraint_names()}, got {name!r}")
    return spec.fn(W, radius, groups)
