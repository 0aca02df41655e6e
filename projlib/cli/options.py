"""Resolve `greenbench run` options: built-in defaults < TOML file < command-line flags.

The flow is typed end to end:

* each source is read into the same frozen `RunFlags` (None = "not given here"): the command
  line by `run`, a TOML file by `load_toml`, the built-in values are `DEFAULT_FLAGS`;
* `merge_flags(*layers)` is a pure field-wise merge (the last layer that gives a value wins);
* `resolve_run_options(*layers)` merges the layers over `DEFAULT_FLAGS` and validates the result
  once, into a `RunOptions` (a `SweepConfig`, the executor, the paths, the `PointSettings`).

Nothing here writes anything. Every problem raises `OptionError` with a message naming the
option, which the CLI prints as one line before exiting with code 2. The names a sweep may
use (datasets, models, procedures, constraints) are checked against the registries, once, by
`SweepConfig`; a constraint registered with `projlib.projections.register` is accepted.

TOML layout (all keys optional; lists may be given as a single value; the accepted keys and
their types are the fields of `RunFlags` and `TrainFlags`)::

    dataset = ["digits"]            # --dataset; or your own "package.module:loader"
    model = ["mlp"]                 # --model; or your own "package.module:factory"
    procedure = ["projected"]       # --procedure
    constraint = ["l1", "l11"]      # --constraint
    radius = [5.0, 20.0]            # --radius; or a table per constraint: {l1 = [5.0], l11 = [3.0]}
    seeds = 2                       # --seeds (seeds 0..N-1) or an explicit list [0, 7]
    epochs = 10                     # --epochs
    device = "auto"                 # --device auto|cpu|cuda
    executor = "local"              # --executor local|ray
    ray_address = "auto"            # --ray-address
    gpus_per_task = 1               # --gpus-per-task
    db = "reports/greenbench.db"    # --db      (relative paths: relative to the TOML file)
    report = "reports/greenbench.html"  # --report
    country = "FRA"                 # --country (ISO 3166-1 alpha-3, carbon intensity)
    data_dir = "data"               # --data-dir
    download = false                # --download
    verify_data = true              # --verify-data / --no-verify-data (published checksums)
    cuda_graph = true               # --cuda-graph / --no-cuda-graph (CUDA: one graph per step)
    retry_failed = true             # --retry-failed / --no-retry-failed
    threads = "auto"                # --threads N|auto (torch intra-op threads per point)
    measure_inference = true        # --measure-inference / --no-measure-inference
    max_points = 10000              # --max-points
    [train]                         # shared TrainConfig options (`TrainFlags`)
    lr = 0.001
    validation = 0.1                # --validation: fraction of the training set held out
    radius_mode = "relative"        # --radius-mode absolute|relative (x each layer's initial norm)
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from projlib.checks import is_int, is_number
from projlib.cli.paths import path_problem, shown
from projlib.measure.carbon import DEFAULT_COUNTRY, CarbonBackend, known_countries
from projlib.projections import REGISTRY, constraint_names
from projlib.sweep import PointSettings, SweepConfig, resolve_device
from projlib.sweep.config import TRAIN_DEFAULTS
from projlib.sweep.warmup import AUTO

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (requires-python >= 3.10) has only the tomli backport
    import tomli as tomllib

__all__ = [
    "OptionError",
    "Radii",
    "TrainFlags",
    "RunFlags",
    "RunOptions",
    "DEFAULT_FLAGS",
    "merge_flags",
    "load_toml",
    "flags_from_toml",
    "resolve_run_options",
    "parse_radius",
    "DEFAULT_DB",
    "DEFAULT_REPORT",
    "DEFAULT_CONSTRAINTS",
    "DEFAULT_COUNTRY",
    "default_radii",
    "DEFAULT_EPOCHS",
    "DEFAULT_TRAIN_OPTIONS",
    "EXECUTORS",
]

_SWEEP_DEFAULTS = {f.name: f.default for f in fields(SweepConfig)}
DEFAULT_DB = Path("reports/greenbench.db")
DEFAULT_REPORT = Path("reports/greenbench.html")
EXECUTORS = ("local", "ray")
DEFAULT_EPOCHS = TRAIN_DEFAULTS["epochs"]
# Bounds that keep a typo from allocating the machine away (`--seeds 1000000000`): a sweep
# larger than DEFAULT_MAX_POINTS must be asked for with --max-points.
MAX_SEEDS = 10_000
DEFAULT_MAX_POINTS = 10_000
MAX_CONFIG_BYTES = 1 << 20  # a sweep file is a few hundred bytes; 1 MiB is far past any real one
# The training defaults are TrainConfig's (the paper's step): one set, in one place.
DEFAULT_TRAIN_OPTIONS: dict[str, Any] = {
    k: TRAIN_DEFAULTS[k] for k in ("optimizer", "lr", "batch_size")
}
# The constraints swept when none is given: SweepConfig's (a choice of the sweep, not a
# property of each constraint: what they are is in the registry, REGISTRY[name]).
DEFAULT_CONSTRAINTS: tuple[str, ...] = _SWEEP_DEFAULTS["constraints"]
_DEFAULT_MODELS: tuple[str, ...] = _SWEEP_DEFAULTS["models"]


def default_radii(constraint: str, models: Sequence[str] = _DEFAULT_MODELS) -> tuple[float, ...]:
    """Radii swept for ``constraint`` when none is given: its registry spec's defaults for each
    swept model (``spec.radii_for(model)``: the model's own entry, else the model-agnostic
    one), merged and sorted; () for an unknown name. Read from the registry at call time."""
    spec = REGISTRY.get(constraint) if isinstance(constraint, str) else None
    if spec is None:
        return ()
    return tuple(sorted({r for m in models if isinstance(m, str) for r in spec.radii_for(m)}))


class OptionError(ValueError):
    """A bad option value; the message names the option and is shown as one line."""


# ---------------------------------------------------------------------------------------------
# The typed layers. Each field's metadata says what a TOML file may hold there ("types") and
# whether a list is accepted ("many"); the TOML reader, its error messages and the merge are
# all driven by these declarations, so an option is declared once.

_STR, _INT, _NUM, _BOOL = (str,), (int,), (int, float), (bool,)


def _opt(types: tuple[type, ...], many: bool = False) -> Any:
    return field(default=None, metadata={"types": types, "many": many})


@dataclass(frozen=True)
class Radii:
    """Radii as given: ``shared`` for every constraint, ``by_constraint`` per name. A layer
    that gives any radius replaces the radii of the layers below it as a whole."""

    shared: tuple[float, ...] = ()
    by_constraint: tuple[tuple[str, tuple[float, ...]], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.shared or self.by_constraint)


@dataclass(frozen=True)
class TrainFlags:
    """Training options shared by every point (TOML ``[train]``; some also flags)."""

    lr: float | None = _opt(_NUM)
    optimizer: str | None = _opt(_STR)
    batch_size: int | None = _opt(_INT)
    groups: str | None = _opt(_STR)
    retrain_epochs: int | None = _opt(_INT)
    layers: tuple[str, ...] | None = _opt(_STR, many=True)
    constrain_first: bool | None = _opt(_BOOL)
    constrain_last: bool | None = _opt(_BOOL)
    validation: float | None = _opt(_NUM)
    radius_mode: str | None = _opt(_STR)


@dataclass(frozen=True)
class RunFlags:
    """One layer of `greenbench run` options (command line, TOML file or defaults); None =
    not given in this layer."""

    dataset: tuple[str, ...] | None = _opt(_STR, many=True)
    model: tuple[str, ...] | None = _opt(_STR, many=True)
    procedure: tuple[str, ...] | None = _opt(_STR, many=True)
    constraint: tuple[str, ...] | None = _opt(_STR, many=True)
    radius: Radii | None = _opt(_NUM, many=True)
    seeds: int | tuple[int, ...] | None = _opt(_INT, many=True)
    epochs: int | None = _opt(_INT)
    device: str | None = _opt(_STR)
    executor: str | None = _opt(_STR)
    ray_address: str | None = _opt(_STR)
    gpus_per_task: float | None = _opt(_NUM)
    db: Path | None = _opt(_STR)
    report: Path | None = _opt(_STR)
    country: str | None = _opt(_STR)
    data_dir: Path | None = _opt(_STR)
    download: bool | None = _opt(_BOOL)
    verify_data: bool | None = _opt(_BOOL)
    cuda_graph: bool | None = _opt(_BOOL)
    retry_failed: bool | None = _opt(_BOOL)
    threads: int | str | None = _opt(_STR + _INT)
    measure_inference: bool | None = _opt(_BOOL)
    max_points: int | None = _opt(_INT)
    train: TrainFlags = field(default_factory=TrainFlags)


# What `greenbench run` does when neither the file nor the command line says otherwise. The
# constraints and radii are derived instead (see `resolve_run_options`): DEFAULT_CONSTRAINTS,
# and each constraint's registry radii for the swept models.
DEFAULT_FLAGS = RunFlags(
    dataset=_SWEEP_DEFAULTS["datasets"],
    model=_SWEEP_DEFAULTS["models"],
    procedure=_SWEEP_DEFAULTS["procedures"],
    seeds=1,
    epochs=DEFAULT_EPOCHS,
    device="auto",
    executor="local",
    gpus_per_task=0.0,
    db=DEFAULT_DB,
    report=DEFAULT_REPORT,
    country=DEFAULT_COUNTRY,
    download=False,
    verify_data=True,
    cuda_graph=True,
    retry_failed=True,
    threads=AUTO,
    measure_inference=True,
    max_points=DEFAULT_MAX_POINTS,
    train=TrainFlags(**DEFAULT_TRAIN_OPTIONS),
)


def _merge_layer(cls: type, layers: Sequence[Any]) -> dict[str, Any]:
    return {
        f.name: next((getattr(x, f.name) for x in reversed(layers)
                      if getattr(x, f.name) is not None), None)
        for f in fields(cls) if f.name != "train"
    }


def merge_flags(*layers: RunFlags) -> RunFlags:
    """Field-wise merge, later layers win; a field a layer leaves None falls through. Pure."""
    for x in layers:
        if not isinstance(x, RunFlags):
            raise TypeError(f"merge_flags takes RunFlags, got {type(x).__name__}")
    train = TrainFlags(**_merge_layer(TrainFlags, [x.train for x in layers]))
    return RunFlags(**_merge_layer(RunFlags, layers), train=train)


# ---------------------------------------------------------------------------------------------
# TOML


def load_toml(path: str | Path) -> RunFlags:
    """Read a sweep TOML file into a `RunFlags` layer; OptionError on unreadable / invalid
    files, unknown keys and values of the wrong type. Relative paths in the file are relative
    to the file, so a sweep file works from any working directory."""
    path = Path(path)
    problem = path_problem(path)
    if problem is not None:
        raise OptionError(f"config: {problem}")
    try:
        # Checked before a byte is parsed: /dev/zero, a fifo (whose open would wait for a
        # writer) or a 10 GB file is not a sweep.
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise OptionError(f"config: {path} is not a regular file")
        with path.open("rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise OptionError(f"config: cannot read {path}: {exc.strerror or exc}") from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise OptionError(f"config: {path} is larger than {MAX_CONFIG_BYTES >> 20} MiB; "
                          "a sweep file is a few lines")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise OptionError(f"config: {path} is not valid TOML: {exc}") from exc
    except RecursionError:
        raise OptionError(f"config: {path} is not a sweep file: its values are nested too "
                          "deeply to parse") from None
    return flags_from_toml(data, base=path.parent)


def flags_from_toml(data: Mapping[str, Any], base: Path = Path(".")) -> RunFlags:
    """The `RunFlags` layer a parsed TOML document describes (see `load_toml`)."""
    valid = [f.name for f in fields(RunFlags)]
    unknown = sorted(set(data) - set(valid))
    if unknown:
        raise OptionError(f"config: unknown key(s) {', '.join(unknown)}; valid: {', '.join(valid)}")
    train = data.get("train", {})
    if not isinstance(train, dict):
        raise OptionError("config: [train] must be a table")
    train_valid = [f.name for f in fields(TrainFlags)]
    bad = sorted(set(train) - set(train_valid))
    if bad:
        raise OptionError(
            f"config: unknown [train] option(s) {', '.join(bad)}; valid: {', '.join(train_valid)}"
        )
    values = {f.name: _toml_value(f, f.name, data[f.name])
              for f in fields(RunFlags) if f.name in data and f.name != "train"}
    for key in ("db", "report", "data_dir"):
        if key in values:
            p = Path(values[key])
            values[key] = p if p.is_absolute() else base / p
    train_values = {f.name: _toml_value(f, f"train.{f.name}", train[f.name])
                    for f in fields(TrainFlags) if f.name in train}
    return RunFlags(**values, train=TrainFlags(**train_values))


def _toml_value(f: Any, key: str, value: Any) -> Any:
    types, many = f.metadata["types"], f.metadata["many"]
    if f.name == "radius":
        if isinstance(value, dict):  # {l1 = [5.0], l11 = 3.0}
            return Radii(by_constraint=tuple(
                (name, tuple(_check_values(f"radius.{name}", types, True, v)))
                for name, v in value.items()
            ))
        return Radii(shared=tuple(_check_values(key, types, True, value)))
    checked = _check_values(key, types, many, value)
    if not many:
        return checked[0]
    if f.name == "seeds" and not isinstance(value, list):
        return value  # a count, 0..N-1
    return tuple(checked)


def _check_values(key: str, types: tuple[type, ...], many: bool, value: Any) -> list[Any]:
    items = value if isinstance(value, list) and many else [value]
    for v in items:
        # bool is an int in Python, but a TOML true is never a count or a radius.
        if (isinstance(v, bool) and bool not in types) or not isinstance(v, types):
            names = {str: "a string", int: "an integer", float: "a number", bool: "true/false"}
            kind = " or ".join(names[t] for t in types if not (t is int and float in types))
            more = " (or a list of them)" if many else ""
            raise OptionError(f"config: {key} must be {kind}{more}, got {value!r}")
    return list(items)


# ---------------------------------------------------------------------------------------------
# Command line


def parse_radius(values: Sequence[str]) -> Radii:
    """CLI radii: "5" applies to every constraint, "l11=5" only to l11. Only parsed here: the
    values are checked (finite, > 0) with the file's, by `SweepConfig`."""
    shared: list[float] = []
    by: dict[str, list[float]] = {}
    for text in values:
        name, sep, number = text.partition("=")
        if not sep:
            name, number = "", text
        elif not name.strip():
            raise OptionError(f"--radius: {shown(text)} names no constraint before '=' (use "
                              "e.g. 5.0 for every constraint or l11=5.0 for one)")
        try:
            value = float(number)
        except ValueError:
            raise OptionError(
                f"--radius: {shown(text)} is not a number (use e.g. 5.0 or l11=5.0)"
            ) from None
        (by.setdefault(name.strip(), []) if name else shared).append(value)
    return Radii(tuple(shared), tuple((k, tuple(v)) for k, v in by.items()))


# ---------------------------------------------------------------------------------------------
# Validation: once, on the merged layers.


@dataclass(frozen=True)
class RunOptions:
    """Everything `greenbench run` needs, validated."""

    sweep: SweepConfig
    executor: str
    ray_address: str | None
    gpus_per_task: float
    db: Path
    report: Path
    country: str
    retry_failed: bool
    settings: PointSettings = PointSettings()


def resolve_run_options(*layers: RunFlags) -> RunOptions:
    """Merge `DEFAULT_FLAGS` < ``layers`` (e.g. the TOML file, then the command line) and
    validate the result; OptionError names the first bad option."""
    flags = merge_flags(DEFAULT_FLAGS, *layers)
    constraints, by, shared = _constraints_and_radii(flags)
    seeds = _seeds(flags.seeds)
    _check_sweep_size(flags, constraints, shared, by, len(seeds))
    executor, gpus, device = _execution(flags)
    country = _country(flags.country)
    try:
        settings = PointSettings(threads=flags.threads, inference=flags.measure_inference)
    except (ValueError, TypeError) as exc:
        raise OptionError(f"--{_flagify(str(exc)).lstrip('-')}") from None
    train = {k: v for k, v in vars(flags.train).items() if v is not None}
    if flags.data_dir is not None:
        train["data_dir"] = str(flags.data_dir)
    if flags.download:
        train["download"] = True
    if not flags.verify_data:
        train["verify_data"] = False
    if not flags.cuda_graph:
        train["cuda_graph"] = False
    try:
        sweep = SweepConfig(
            datasets=flags.dataset,
            models=flags.model,
            procedures=flags.procedure,
            constraints=constraints,
            radii=shared,
            radii_by_constraint=by,
            seeds=seeds,
            epochs=flags.epochs,
            device=device,
            options=tuple(train.items()),
        )
    except (ValueError, TypeError) as exc:
        raise OptionError(_flagify(str(exc))) from None
    return RunOptions(
        sweep=sweep,
        executor=executor,
        ray_address=flags.ray_address,
        gpus_per_task=gpus,
        db=Path(flags.db),
        report=Path(flags.report),
        country=country,
        retry_failed=flags.retry_failed,
        settings=settings,
    )


def _constraints_and_radii(
    flags: RunFlags,
) -> tuple[tuple[str, ...], tuple[tuple[str, tuple[float, ...]], ...], tuple[float, ...]]:
    radii = flags.radius or Radii()
    valid = tuple(constraint_names())
    by = dict(radii.by_constraint)
    for name in by:
        if name not in valid:
            raise OptionError(f"--radius: unknown constraint {name!r}; valid: {', '.join(valid)}")
    constraints = flags.constraint or (tuple(by) if by else DEFAULT_CONSTRAINTS)
    # A radius for a constraint that is not swept is a mistake in either form (flag or table).
    stray = sorted(set(by) - set(constraints))
    if stray and any(p != "dense" for p in flags.procedure):
        raise OptionError(
            f"--radius: {', '.join(stray)} not among the swept constraints "
            f"({', '.join(constraints)})"
        )
    if not radii:
        # No radius anywhere: each constraint's registry defaults for the swept models
        # (unknown names are caught by SweepConfig with the list of valid ones).
        by = {c: default_radii(c, flags.model) for c in constraints
              if default_radii(c, flags.model)}
    return tuple(constraints), tuple(by.items()), radii.shared


def _seeds(seeds: int | tuple[int, ...]) -> tuple[int, ...]:
    if not (is_int(seeds) or isinstance(seeds, (tuple, list))):
        raise OptionError(f"--seeds: expected a count or a list of seeds, got {seeds!r}")
    if is_int(seeds):
        if not 1 <= seeds <= MAX_SEEDS:
            raise OptionError(f"--seeds: must be between 1 and {MAX_SEEDS:,}, got {seeds}")
        return tuple(range(seeds))
    try:
        seeds = tuple(dict.fromkeys(seeds))  # a repeated seed is one seed
    except TypeError:  # unhashable: left to SweepConfig's message
        seeds = tuple(seeds)
    if len(seeds) > MAX_SEEDS:
        raise OptionError(f"--seeds: at most {MAX_SEEDS:,} seeds, got {len(seeds):,}")
    return seeds


def _check_sweep_size(
    flags: RunFlags, constraints: Sequence[str], shared: tuple[float, ...],
    by: tuple[tuple[str, tuple[float, ...]], ...], n_seeds: int,
) -> None:
    # Counted before anything is expanded, so an absurd product costs nothing to refuse.
    max_points = flags.max_points
    if not is_int(max_points) or max_points < 1:
        raise OptionError(f"--max-points: must be an integer >= 1, got {max_points!r}")
    # Distinct values only: the sweep drops repeated names, radii and seeds before expanding.
    sparse = {p for p in flags.procedure if p != "dense"}
    per_constraint = dict(by)
    radii = sum(len(set(per_constraint.get(c, shared) or default_radii(c, flags.model)))
                for c in set(constraints))
    total = (len(set(flags.dataset)) * len(set(flags.model)) * n_seeds
             * (1 + len(sparse) * radii))
    if total > max_points:
        raise OptionError(
            f"--max-points: this sweep has {total:,} points, more than {max_points:,}; "
            "pass --max-points N to allow it"
        )


def _execution(flags: RunFlags) -> tuple[str, float, str]:
    executor, gpus = flags.executor, flags.gpus_per_task
    if executor not in EXECUTORS:
        raise OptionError(f"--executor: {executor!r} is not one of {', '.join(EXECUTORS)}")
    if not is_number(gpus) or not gpus >= 0:
        raise OptionError(f"--gpus-per-task: must be a number >= 0, got {gpus!r}")
    if gpus > 0 and executor != "ray":
        raise OptionError("--gpus-per-task: only used with --executor ray")
    try:
        device = resolve_device(flags.device, executor, float(gpus))
    except ValueError as exc:
        raise OptionError(f"--device: {exc}") from None
    if device == "cuda" and executor == "ray" and not gpus > 0:
        # Ray hides every GPU from a task that did not ask for one (CUDA_VISIBLE_DEVICES="").
        raise OptionError("--gpus-per-task: must be > 0 for --device cuda with --executor ray")
    if device == "cuda" and executor == "local" and not torch.cuda.is_available():
        raise OptionError("--device: cuda requested but torch sees no CUDA device")
    return executor, float(gpus), device


def _country(country: str) -> str:
    try:
        CarbonBackend(country)  # validates the form of the code, probes nothing
    except (ValueError, TypeError) as exc:
        raise OptionError(f"--country: {exc}") from None
    known = known_countries()
    if known is not None and country not in known:
        raise OptionError(
            f"--country: {country!r} is not in CodeCarbon's offline energy-mix table "
            f"(codecarbon/data/private_infra/global_energy_mix.json, {len(known)} countries, "
            f"e.g. {', '.join(sorted(known)[:6])}, ...)"
        )
    return country


def _flagify(message: str) -> str:
    # SweepConfig / TrainConfig / PointSettings name their fields ("radius: ...", "epochs must
    # be ..."); show them as the flag the user typed. The flags are RunFlags' fields.
    head, sep, rest = message.partition(" ")
    name = head.rstrip(":")
    flags = {f.name for f in fields(RunFlags)} | {f.name for f in fields(TrainFlags)}
    if name in flags:
        return f"--{name.replace('_', '-')}{':' if head.endswith(':') else ''} {rest}"
    return message

