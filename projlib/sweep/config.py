"""`SweepConfig`: a Cartesian product of training runs, validated before anything runs.

datasets x models x seeds x (dense baseline + procedures x constraints x radii). The dense
baseline is added once per (dataset, model, seed) whatever the procedures, because every Pareto
plot needs it as the reference point. Radii may be given per constraint, since the balls of
different norms live on very different scales (an l1 radius of 50 and a nuclear radius of 50 are
not comparable).

Every point is identified by `point_id`: the sha256 of its canonical config JSON (sorted keys,
no whitespace), leaving out the fields that say *where* to find data rather than *what* is run
(data_dir, download, verify_data, cuda_graph), and the options the point's procedure never
reads (`unread_options`: a dense baseline's `groups`, `layers`, `constrain_*` and
`retrain_epochs`), which are reset to their defaults before the point is hashed, trained and
stored (`identity_config`). *What* data is run is in the identity: `prepare_sweep` sets
each point's `data_fingerprint` from the files actually found, so moving the files keeps the
results and different files never reuse them. Two sweeps that share a point share its row.

Your own model and data (`package.module:factory`, `package.module:loader`, see
`projlib.training.plugins`) are swept like the built-in ones: the import path is the name, and
`prepare_sweep` adds the sha256 of the factory's module file (`model_source`) to the identity,
so editing the model never reuses old results. A factory that cannot be imported, raises, or
gives logits of the wrong shape, or a net the cost analyser cannot walk, fails the sweep's
construction, before anything runs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, make_dataclass, replace
from typing import Any

import torch

from projlib.checks import TRAINING_RADIUS, check_int, is_number
from projlib.measure.graph import compact_graph
from projlib.measure.structure import is_chain
from projlib.measure.structure import validate as check_walkable
from projlib.projections import REGISTRY, constraint_names
from projlib.training.config import (
    DEVICE_NAMES,
    MASKED_PROCEDURES,
    PROCEDURE_NAMES,
    TrainConfig,
)
from projlib.training.datasets import DATASETS, VALIDATION_SPLIT_ID, DataSource
from projlib.training.models import MODELS, build_model
from projlib.training.plugins import check_model, check_path, is_plugin, load_plugin_dataset
from projlib.training.sparsity import select_layers

__all__ = [
    "SweepConfig",
    "point_id",
    "canonical_config",
    "identity_config",
    "unread_options",
    "TRAIN_DEFAULTS",
    "TRAIN_OPTION_NAMES",
    "NON_IDENTITY_FIELDS",
    "resolve_device",
    "sweep_id_of",
]

# Fields of TrainConfig that locate the data or choose how a step is launched; they do not
# change what is computed.
NON_IDENTITY_FIELDS: frozenset[str] = frozenset(
    {"data_dir", "download", "verify_data", "cuda_graph"}
)
# Fields added after points were first stored: at their default they are left out of the
# identity, so every point stored before them keeps its id (and its results).
_OMITTED_AT_DEFAULT: dict[str, Any] = {
    "validation": 0.0, "radius_mode": "absolute", "model_source": None,
}
# Sweep axes are set by the sweep itself; layer_sparsity is per-point (magnitude matching) and
# would make no sense shared across a product.
_AXES = frozenset({"dataset", "model", "procedure", "constraint", "radius", "seed", "epochs"})
TRAIN_OPTION_NAMES: tuple[str, ...] = tuple(
    f.name for f in fields(TrainConfig)
    if f.name not in _AXES | {"layer_sparsity", "device", "data_fingerprint", "model_source"}
)
#: Every TrainConfig field's default: the one table the sweep, the options and the help read.
TRAIN_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(TrainConfig)}


def _options_changed(self: Any) -> dict[str, Any]:
    """The options not at their TrainConfig default, in field order (name -> value)."""
    return {name: getattr(self, name) for name in TRAIN_OPTION_NAMES
            if getattr(self, name) != TRAIN_DEFAULTS[name]}


def _options_from(cls: type, value: Any) -> Any:
    """`value` (a TrainOptions, a mapping or (name, value) pairs) as a TrainOptions; an
    unknown name is a ValueError listing the valid ones."""
    if isinstance(value, cls):
        return value
    pairs = tuple(value.items()) if isinstance(value, Mapping) else tuple(value)
    for pair in pairs:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"options entries must be (name, value), got {pair!r}")
        if pair[0] not in TRAIN_OPTION_NAMES:
            raise ValueError(f"options: unknown training option {pair[0]!r}; "
                             f"valid: {', '.join(TRAIN_OPTION_NAMES)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in pairs})


#: The training options a sweep shares across its points: a frozen dataclass with one field
#: per TrainConfig field that is not a sweep axis, same name, type and default (generated from
#: TrainConfig, so a new training option is a sweep option with no other edit). Values are
#: checked by TrainConfig when the sweep builds its points. `changed()`: the non-default ones;
#: `data_source`: where the data is read from; `TrainOptions.of(x)`: from a mapping or pairs.
TrainOptions = make_dataclass(
    "TrainOptions",
    [(f.name, f.type, field(default=f.default)) for f in fields(TrainConfig)
     if f.name in TRAIN_OPTION_NAMES],
    frozen=True,
    namespace={
        "changed": _options_changed,
        "data_source": property(DataSource.of),
        "of": classmethod(_options_from),
        "__module__": __name__,
    },
)
_DEFAULT_EPOCHS: int = TRAIN_DEFAULTS["epochs"]
# Bumped when the meaning of a config field changes, so old rows are not silently reused.
_HASH_VERSION = "greenbench-point-v1"


def unread_options(config: TrainConfig) -> frozenset[str]:
    """The options `train(config)` never reads, so they cannot change its result: a dense run
    has no constrained layer (`groups`, `layers`, `constrain_first`, `constrain_last`) and no
    retraining phase (`retrain_epochs`), a projected run no retraining phase either, and an
    explicit `layers` selection leaves `constrain_first` / `constrain_last` unconsulted."""
    unread: set[str] = set()
    if config.procedure == "dense":
        unread |= {"groups", "layers", "constrain_first", "constrain_last", "retrain_epochs"}
    elif config.procedure == "projected":
        unread.add("retrain_epochs")
    if config.layers is not None:
        unread |= {"constrain_first", "constrain_last"}
    return frozenset(unread)


def identity_config(config: TrainConfig) -> TrainConfig:
    """`config` with every option it never reads (`unread_options`) at its default: the one
    config that stands for every config giving the same result. The point hash covers it and
    a sweep trains and stores it, so a dense baseline swept with `--retrain-epochs 5` is the
    same point as without, trained once. Options at their defaults hash as before this rule
    existed, so such rows of older dbs keep their ids."""
    changes = {k: TRAIN_DEFAULTS[k] for k in unread_options(config)
               if getattr(config, k) != TRAIN_DEFAULTS[k]}
    return replace(config, **changes) if changes else config




def canonical_config(config: TrainConfig) -> dict[str, Any]:
    """The identity-relevant part of `config.to_dict()` (what the point hash covers): what
    can change the result, i.e. neither where the data is found (NON_IDENTITY_FIELDS) nor an
    option the run never reads (`identity_config`); fields added after points were stored are
    left out at their defaults (`_OMITTED_AT_DEFAULT`). A validation split adds
    `validation_split` (the split algorithm's id): the held-out examples are a function of it,
    the data fingerprint and the fraction."""
    out = {
        k: v for k, v in identity_config(config).to_dict().items()
        if k not in NON_IDENTITY_FIELDS
        and not (k in _OMITTED_AT_DEFAULT and v == _OMITTED_AT_DEFAULT[k])
    }
    if config.validation > 0:
        out["validation_split"] = VALIDATION_SPLIT_ID
    return out


def point_id(config: TrainConfig) -> str:
    """sha256 hex of the canonical config JSON (sorted keys, compact separators). O(size)."""
    payload = json.dumps(
        {"v": _HASH_VERSION, "config": canonical_config(config)},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _names(field: str, values: Any, valid: tuple[str, ...],
           plugins_allowed: bool = False) -> tuple[str, ...]:
    if isinstance(values, str):
        values = (values,)
    if not isinstance(values, (tuple, list)) or not values:
        raise ValueError(f"{field} must be a non-empty list of names from: {', '.join(valid)}")
    out: list[str] = []
    for v in values:
        if plugins_allowed and is_plugin(v):
            check_path(field, v)
        elif not isinstance(v, str) or v not in valid:
            more = " or package.module:attr" if plugins_allowed else ""
            raise ValueError(f"{field}: unknown name {v!r}; valid: {', '.join(valid)}{more}")
        if v not in out:
            out.append(v)
    return tuple(out)


def _radii(field: str, values: Any) -> tuple[float, ...]:
    if is_number(values):
        values = (values,)
    if not isinstance(values, (tuple, list)):
        raise TypeError(f"{field} must be a list of numbers, got {type(values).__name__}")
    # dict.fromkeys: order kept, duplicates dropped in O(n) (a million copies of one radius)
    return tuple(dict.fromkeys(TRAINING_RADIUS.check(field, v) for v in values))


@dataclass(frozen=True)
class SweepConfig:
    """The sweep axes plus the training options shared by every point.

    radii: used for every constraint not named in `radii_by_constraint`.
    radii_by_constraint: ((constraint, (radius, ...)), ...) overrides per constraint.
    seeds: explicit seed values (the CLI's ``--seeds N`` means 0..N-1).
    options: the shared training options, a `TrainOptions` (lr, optimizer, groups, batch_size,
    retrain_epochs, layers, constrain_first, constrain_last, data_dir, download, ...); a
    mapping or (name, value) pairs are accepted and converted.
    device: "cpu" | "cuda" (resolve "auto" with `resolve_device` before building the sweep, so
    the point hash names the device the point really ran on).
    """

    datasets: tuple[str, ...] = ("digits",)
    models: tuple[str, ...] = ("mlp",)
    procedures: tuple[str, ...] = ("projected",)
    constraints: tuple[str, ...] = ("l1", "l21", "l11")
    radii: tuple[float, ...] = ()
    radii_by_constraint: tuple[tuple[str, tuple[float, ...]], ...] = ()
    seeds: tuple[int, ...] = (0,)
    epochs: int = _DEFAULT_EPOCHS
    device: str = "cpu"
    options: Any = ()  # a TrainOptions once built

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "datasets", _names("dataset", self.datasets, tuple(DATASETS), True))
        set_(self, "models", _names("model", self.models, tuple(MODELS), True))
        set_(self, "procedures", _names("procedure", self.procedures, PROCEDURE_NAMES))
        valid_constraints = tuple(constraint_names())
        sparse = [p for p in self.procedures if p != "dense"]
        if sparse:
            set_(self, "constraints", _names("constraint", self.constraints, valid_constraints))
        else:
            set_(self, "constraints", ())
        set_(self, "radii", _radii("radius", self.radii))
        by: dict[str, tuple[float, ...]] = {}
        pairs = self.radii_by_constraint
        if isinstance(pairs, Mapping):
            pairs = tuple(pairs.items())
        for pair in pairs:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise ValueError(
                    f"radius: per-constraint entries must be (name, radii), got {pair!r}"
                )
            name, values = pair
            _names("radius", (name,), valid_constraints)
            by[name] = _radii(f"radius for {name}", values)
        set_(self, "radii_by_constraint", tuple(by.items()))
        for c in self.constraints:
            if not self.radii_for(c):
                raise ValueError(f"radius: no radius given for constraint {c!r}")
        seeds = (self.seeds,) if isinstance(self.seeds, int) else self.seeds
        if not isinstance(seeds, (tuple, list)) or not seeds:
            raise ValueError("seeds must be a non-empty list of ints >= 0")
        for s in seeds:
            check_int("seeds", s, 0)
        set_(self, "seeds", tuple(dict.fromkeys(seeds)))
        if self.device not in DEVICE_NAMES or self.device == "auto":
            raise ValueError(
                f"device must be cpu or cuda (resolve 'auto' first), got {self.device!r}"
            )
        set_(self, "options", TrainOptions.of(self.options))
        # Building every point runs TrainConfig's own validation (epochs, lr, ...) now, before
        # anything is written: a sweep that fails validation leaves no trace in the store. The
        # expansion is kept (the config is frozen), so points() and sweep_id() reuse it.
        set_(self, "_points", self._expand())
        self._check_models_fit()

    @property
    def skipped(self) -> tuple[tuple[str, str], ...]:
        """(procedure, constraint) pairs of the sweep not run: a masked retrain (lottery,
        magnitude) of a low-rank constraint, whose projection zeros no weight, so its mask keeps
        every weight and the point would be the dense baseline retrained under another name."""
        return tuple((p, c) for p in self.procedures if p in MASKED_PROCEDURES
                     for c in self.constraints if REGISTRY[c].low_rank)

    def radii_for(self, constraint: str) -> tuple[float, ...]:
        """The radii swept for `constraint` (per-constraint list if given, else `radii`)."""
        return dict(self.radii_by_constraint).get(constraint, self.radii)

    def _check_models_fit(self) -> None:
        # e.g. convnet's fc layer is sized for 28x28 inputs, or a `layers` pattern with a typo:
        # fail now, once, not once per point (the dense baseline included).

        opts = self.options
        patterns = None if opts.layers is None else tuple(opts.layers)
        first, last = opts.constrain_first, opts.constrain_last
        sparse = any(p != "dense" for p in self.procedures)
        for d in self.datasets:
            # a loader of your own is called here (once per process) to learn its shape
            spec = load_plugin_dataset(d) if is_plugin(d) else DATASETS[d]
            for m in self.models:
                if is_plugin(m):
                    model = _check_plugin_model(m, spec.input_shape, spec.num_classes, d)
                else:
                    try:
                        model = build_model(m, spec.input_shape, spec.num_classes)
                    except (ValueError, TypeError, RuntimeError) as exc:
                        raise ValueError(
                            f"model {m!r} does not fit dataset {d!r}: {exc}"
                        ) from exc
                try:
                    chosen = select_layers(model, patterns, first, last)
                except ValueError as exc:
                    raise ValueError(f"layers: model {m!r}: {exc}") from exc
                if sparse and not chosen:
                    raise ValueError(
                        f"model {m!r} has no weight to constrain by default (its only weights "
                        "are the first and the last): set layers, constrain_first or "
                        "constrain_last"
                    )

    def points(self) -> list[TrainConfig]:
        """The sweep's TrainConfigs: per (dataset, model, seed) the dense baseline first, then
        procedures x constraints x radii. Duplicates (same point_id) are dropped, order kept.
        Expanded once, when the config is built."""
        return [c for c, _ in self._points]

    def point_ids(self) -> list[str]:
        """`point_id` of each of `points()`, in the same order (computed once)."""
        return [pid for _, pid in self._points]

    def _expand(self) -> tuple[tuple[TrainConfig, str], ...]:
        shared = self.options.changed()
        skipped = set(self.skipped)
        out: dict[str, TrainConfig] = {}
        for d in self.datasets:
            for m in self.models:
                for s in self.seeds:
                    base = dict(shared, dataset=d, model=m, seed=s, epochs=self.epochs,
                                device=self.device)
                    # a radius mode means nothing to the dense baseline
                    dense = {k: v for k, v in base.items() if k != "radius_mode"}
                    candidates = [TrainConfig(**dense, procedure="dense")]
                    for p in self.procedures:
                        if p == "dense":
                            continue
                        for c in self.constraints:
                            if (p, c) in skipped:
                                continue
                            point = dict(base)
                            if not REGISTRY[c].grouped:
                                # `groups` means nothing to an ungrouped operator (l1, nuclear)
                                # and TrainConfig rejects it there; a sweep over l1 and l21 with
                                # groups="rows" applies it where it has a meaning.
                                point.pop("groups", None)
                            for r in self.radii_for(c):
                                candidates.append(
                                    TrainConfig(**point, procedure=p, constraint=c, radius=r)
                                )
                    for cfg in candidates:
                        cfg = identity_config(cfg)  # what runs is the point's identity
                        out.setdefault(point_id(cfg), cfg)
        return tuple((cfg, pid) for pid, cfg in out.items())

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description (stored with the sweep)."""
        return {
            "datasets": list(self.datasets),
            "models": list(self.models),
            "procedures": list(self.procedures),
            "constraints": list(self.constraints),
            "radii": list(self.radii),
            "radii_by_constraint": {k: list(v) for k, v in self.radii_by_constraint},
            "seeds": list(self.seeds),
            "epochs": self.epochs,
            "device": self.device,
            "options": {k: list(v) if isinstance(v, tuple) else v
                        for k, v in self.options.changed().items()},
        }

    def sweep_id(self) -> str:
        """sha256 hex of the sorted point ids: same points, same sweep."""
        return sweep_id_of(self.point_ids())


def sweep_id_of(point_ids: Iterable[str]) -> str:
    """sha256 hex of the sorted point ids."""
    return hashlib.sha256("\n".join(sorted(point_ids)).encode("ascii")).hexdigest()


def _check_plugin_model(path: str, input_shape: tuple[int, int, int], num_classes: int,
                        dataset: str) -> Any:
    """The throwaway model of a `package.module:factory` after checking it on a dummy batch
    of `dataset`'s shape and that the cost analysis and compaction can walk it."""
    try:
        model = check_model(path, input_shape, num_classes)
    except ValueError as exc:
        raise ValueError(f"{exc} (dataset {dataset!r})") from None
    try:
        if is_chain(model):
            check_walkable(model, input_shape)
        else:  # any other module: Torch-Pruning's dependency graph must trace it
            compact_graph(model, input_shape)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(
            f"model {path!r}: greenbench's cost analysis and compaction cannot handle it: {exc}"
        ) from None
    return model


def resolve_device(device: str, executor: str = "local", gpus_per_task: float = 0.0) -> str:
    """Turn "auto" into the device points will really use, so the point hash names it.

    Local: cuda when this process sees a GPU. Ray: the driver may have no GPU while the workers
    do, so the answer follows the resources asked per task (cuda iff gpus_per_task > 0)."""
    if device not in DEVICE_NAMES:
        raise ValueError(f"device must be one of {', '.join(DEVICE_NAMES)}; got {device!r}")
    if device != "auto":
        return device
    if executor == "ray":
        return "cuda" if gpus_per_task > 0 else "cpu"

    return "cuda" if torch.cuda.is_available() else "cpu"
