"""The registry of constraints: one entry per name, iterated by the CLI, the tests and asv.

``REGISTRY[name]`` is a :class:`ProjectionSpec`; ``spec.fn(W, radius, groups)`` has the same
contract as :func:`project`.  The spec is the one place that knows a constraint: its operator,
its norm (``spec.norm``), which groupings it accepts (``spec.groups``), its default radii per
model, and its label and colour in reports.  Everything else asks the spec, so adding a
constraint is one module (operator + norm) and one :func:`register` call; the property tests,
the benchmarks, the CLI and the report pick it up.  The operators, their formulas and
references: docs/METHOD.md §2.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import torch

from projlib.checks import TRAINING_RADIUS, is_number
from projlib.projections._norms import (
    PlainNorm,
    l1_norm,
    l1inf_norm,
    l21_norm,
    nuclear_norm,
    safe_norm,
)
from projlib.projections._validate import GROUPS_CHOICES, check_groups
from projlib.projections.grouped import (
    project_l1inf,
    project_l1inf_bilevel,
    project_l11,
    project_l21,
)
from projlib.projections.l1 import project_l1
from projlib.projections.nuclear import project_nuclear

ProjectionFn = Callable[[torch.Tensor, float, str], torch.Tensor]

# default_radii key used for every model without an entry of its own
ANY_MODEL = "*"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


def _radii_tuple(name: str, model: object, values: object) -> tuple[float, ...]:
    if not isinstance(model, str) or not model:
        raise ValueError(f"{name}: default_radii keys must be model names (str), got {model!r}")
    if is_number(values):
        values = (values,)
    if not isinstance(values, (tuple, list)) or not values:
        raise ValueError(f"{name}: default_radii[{model!r}] must be a non-empty tuple of radii")
    return tuple(TRAINING_RADIUS.check(f"{name}: default_radii[{model!r}]", v) for v in values)


@dataclass(frozen=True)
class ProjectionSpec:
    """Metadata of one constraint (validated on construction).

    fn: ``fn(W, radius, groups="columns")``, the operator, with the contract of :func:`project`.
    exact: ``fn`` is the Euclidean projection onto the set (else a feasible, non-Euclidean map).
    structured: it can zero whole groups (columns/rows/channels), which removes neurons.
    groups: the groupings it accepts, ``("columns", "rows")`` or ``()`` for an operator whose
        result does not depend on them (then ``groups`` must stay at its default "columns").
    summary: one line for the CLI help and the docs.
    norm_fn: the gauge of the set, ``norm_fn(X, groups) -> float`` on a float64 CPU tensor
        whose largest |entry| is in [0.5, 1); it must be positively homogeneous (every ball
        here is), :meth:`norm` relies on it to be overflow/underflow safe.
    colour: "#rrggbb", the constraint's colour in reports (the same in every report).
    label: its name in report legends ("" -> ``name``).
    default_radii: model name -> radii swept when none is given; the ``"*"`` entry
        (``ANY_MODEL``) serves every model without an entry of its own.
    low_rank: it saves by rank, not by zeros (the nuclear ball): cost summaries count its
        MACCs as those of the factorised layers (``maccs_lowrank``) and label it "(rank)".
    """

    name: str
    fn: ProjectionFn
    exact: bool
    structured: bool
    groups: tuple[str, ...]
    summary: str
    norm_fn: PlainNorm
    colour: str
    label: str = ""
    default_radii: Mapping[str, tuple[float, ...]] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    low_rank: bool = False

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ValueError(
                f"name must be a letter then letters, digits or '_', got {self.name!r}"
            )
        name = self.name
        for attr in ("fn", "norm_fn"):
            if not callable(getattr(self, attr)):
                raise TypeError(f"{name}: {attr} must be callable")
        for attr in ("exact", "structured", "low_rank"):
            if not isinstance(getattr(self, attr), bool):
                raise TypeError(f"{name}: {attr} must be a bool")
        groups = self.groups
        if isinstance(groups, str) or not isinstance(groups, (tuple, list)):
            raise TypeError(f"{name}: groups must be a tuple of grouping names")
        groups = tuple(groups)
        if (not set(groups) <= set(GROUPS_CHOICES) or len(set(groups)) != len(groups)
                or (groups and "columns" not in groups)):
            raise ValueError(
                f"{name}: groups must be () or distinct names from {GROUPS_CHOICES} including "
                f"the default 'columns', got {groups!r}"
            )
        set_(self, "groups", groups)
        for attr in ("summary", "label"):
            if not isinstance(getattr(self, attr), str):
                raise TypeError(f"{name}: {attr} must be a str")
        if not self.summary:
            raise ValueError(f"{name}: summary must not be empty")
        if not self.label:
            set_(self, "label", name)
        if not isinstance(self.colour, str) or not _COLOUR.fullmatch(self.colour):
            raise ValueError(f"{name}: colour must be a '#rrggbb' string, got {self.colour!r}")
        set_(self, "colour", self.colour.lower())
        if not isinstance(self.default_radii, Mapping):
            raise TypeError(f"{name}: default_radii must be a mapping model -> radii")
        set_(self, "default_radii", MappingProxyType(
            {m: _radii_tuple(name, m, v) for m, v in self.default_radii.items()}
        ))

    @property
    def grouped(self) -> bool:
        """The result depends on ``groups`` (it accepts "rows" as well as "columns")."""
        return bool(self.groups)

    @property
    def groupings(self) -> tuple[str, ...]:
        """Every value of ``groups`` this constraint takes: ``self.groups``, or only the default
        "columns" for an operator whose result does not depend on a grouping."""
        return self.groups or ("columns",)

    def check_groups(self, groups: object) -> str:
        """``groups`` after checking it is a grouping name this constraint accepts (one of
        :attr:`groupings`).  The one rule for every caller: project, the norm, the registered
        operators of the ungrouped constraints, TrainConfig, Projector and the sweep."""
        g = check_groups(groups)
        if g not in self.groupings:
            raise ValueError(
                f"groups does not apply to the {self.name!r} constraint (its result does not "
                f"depend on a grouping); leave it at its default, got {g!r}"
            )
        return g

    def norm(self, W: torch.Tensor, groups: str = "columns") -> float:
        """The norm whose ball of radius r ``fn(W, r, groups)`` maps into, as a float64 number
        (any device and float dtype; overflow/underflow safe, see ``_norms.safe_norm``)."""
        return safe_norm(self.norm_fn, W, self.check_groups(groups))

    def radii_for(self, model: str) -> tuple[float, ...]:
        """Default radii for ``model``: its own entry, else the ``"*"`` one, else ()."""
        radii = self.default_radii
        return radii[model] if model in radii else radii.get(ANY_MODEL, ())


def _l1_entry(W: torch.Tensor, radius: float, groups: str = "columns") -> torch.Tensor:
    _SPECS["l1"].check_groups(groups)  # l1 treats W as one vector
    return project_l1(W, radius)


def _nuclear_entry(W: torch.Tensor, radius: float, groups: str = "columns") -> torch.Tensor:
    _SPECS["nuclear"].check_groups(groups)  # M and M^T have the same singular values
    return project_nuclear(W, radius)


def _defaults(*radii: float) -> Mapping[str, tuple[float, ...]]:
    # Tuned for the default digits/mlp sweep (the constrained layer is mlp's 64x128 hidden
    # matrix, whose l1 norm at init is ~360) from a 10-epoch scan: each list runs from "most
    # groups removed, accuracy clearly down" to "close to dense", so the default report shows a
    # trade-off curve.  No other model has been tuned: they use the same radii ("*").
    return {"mlp": radii, ANY_MODEL: radii}


_BOTH = ("columns", "rows")
_BUILTIN: tuple[ProjectionSpec, ...] = (
    ProjectionSpec("l1", _l1_entry, exact=True, structured=False, groups=(),
                   summary="l1 ball of vec(W); Condat 2016 threshold, unstructured sparsity",
                   norm_fn=l1_norm, colour="#1f77b4", default_radii=_defaults(10.0, 30.0, 100.0)),
    ProjectionSpec("l21", project_l21, exact=True, structured=True, groups=_BOTH,
                   summary="group lasso: group l2 norms onto the l1 ball, groups rescaled",
                   norm_fn=l21_norm, colour="#ff7f0e", default_radii=_defaults(3.0, 10.0, 30.0)),
    ProjectionSpec("l1inf", project_l1inf, exact=True, structured=True, groups=_BOTH,
                   summary="l1,inf ball: groups clipped at levels summing to the radius",
                   norm_fn=l1inf_norm, colour="#2ca02c", default_radii=_defaults(1.0, 3.0, 10.0)),
    ProjectionSpec("nuclear", _nuclear_entry, exact=True, structured=False, groups=(),
                   summary="nuclear-norm ball: singular values onto the l1 ball (low rank)",
                   norm_fn=nuclear_norm, colour="#d62728",
                   default_radii=_defaults(3.0, 10.0, 30.0), low_rank=True),
    ProjectionSpec("l11", project_l11, exact=False, structured=True, groups=_BOTH,
                   summary="bi-level l1,1 (the paper's operator): group l1 norms, then groups",
                   norm_fn=l1_norm, colour="#9467bd", default_radii=_defaults(10.0, 30.0, 100.0)),
    ProjectionSpec("l1inf_bilevel", project_l1inf_bilevel, exact=False, structured=True,
                   groups=_BOTH,
                   summary="bi-level l1,inf: group maxima onto the l1 ball, groups clipped",
                   norm_fn=l1inf_norm, colour="#8c564b", default_radii=_defaults(1.0, 3.0, 10.0)),
)
_BUILTIN_NAMES = frozenset(s.name for s in _BUILTIN)

_SPECS: dict[str, ProjectionSpec] = {s.name: s for s in _BUILTIN}
# A live read-only view: what register/unregister change is seen by every holder of REGISTRY.
REGISTRY: MappingProxyType[str, ProjectionSpec] = MappingProxyType(_SPECS)


def register(spec: ProjectionSpec) -> ProjectionSpec:
    """Add a constraint (after the built-in ones, in call order); returns ``spec``.

    The spec was validated when it was built; here its name must be new.  Names are read from
    the registry at call time everywhere (configs, CLI, sweeps), so a constraint registered
    after import is usable at once; the CLI's --help text lists the names known at import.
    """
    if not isinstance(spec, ProjectionSpec):
        raise TypeError(f"spec must be a ProjectionSpec, got {type(spec).__name__}")
    if spec.name in _SPECS:
        raise ValueError(f"a constraint named {spec.name!r} is already registered")
    _SPECS[spec.name] = spec
    return spec


def unregister(name: str) -> ProjectionSpec:
    """Remove a constraint added with :func:`register` (built-in ones stay); returns it."""
    if name in _BUILTIN_NAMES:
        raise ValueError(f"{name!r} is a built-in constraint and cannot be unregistered")
    if name not in _SPECS:
        raise KeyError(f"no constraint named {name!r} is registered")
    return _SPECS.pop(name)


def constraint_names() -> tuple[str, ...]:
    """The constraint names in registry order."""
    return tuple(REGISTRY)


def project(W: torch.Tensor, name: str, radius: float, groups: str = "columns") -> torch.Tensor:
    """Project the weight ``W`` onto the constraint ``name`` of radius ``radius``.

    ``W``: torch tensor, 1-D, 2-D (out, in) or 4-D (out, in, kh, kw), float32/float64, any
    device; returned as a new tensor of the same shape, dtype and device (input untouched).
    ``groups``: "columns" (default) or "rows" for the grouped constraints
    (``REGISTRY[name].groups``); must stay at its default for the others (``l1``,
    ``nuclear``).  See ``REGISTRY[name].summary`` and the module of each operator for the
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
    return spec.fn(W, radius, spec.check_groups(groups))


def constraints_markdown() -> str:
    """The constraint table of docs/METHOD.md §2.8, generated from `REGISTRY` (registry
    order): what a newcomer's `register` adds shows there once the table is regenerated
    (``python -m projlib.projections``); a test keeps METHOD.md in step."""
    lines = ["| name | operator | exact projection | structured | groups |",
             "|---|---|---|---|---|"]
    for spec in REGISTRY.values():
        structured = "yes" if spec.structured else ("no (low rank)" if spec.low_rank else "no")
        groups = ", ".join(spec.groups) if spec.groups else "none"
        summary = spec.summary.replace("|", "\\|")
        exact = "yes" if spec.exact else "no (feasible)"
        lines.append(f"| `{spec.name}` | {summary} | {exact} | {structured} | {groups} |")
    return "\n".join(lines) + "\n"
