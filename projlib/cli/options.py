"""Resolve `greenbench run` options: built-in defaults < TOML file < command-line flags.

Everything here is validation; nothing is written. Every problem raises `OptionError` with a
message naming the option, which the CLI prints as one line before exiting with code 2.

TOML layout (all keys optional; lists may be given as a single value)::

    dataset = ["digits"]            # --dataset
    model = ["mlp"]                 # --model
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
    threads = "auto"                # --threads N|auto (torch intra-op threads per point)
    measure_inference = true        # --measure-inference / --no-measure-inference
    [train]                         # shared TrainConfig options: lr, optimizer, batch_size, ...
    lr = 0.001
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NoReturn

import torch

from projlib.measure.carbon import CarbonBackend, known_countries
from projlib.projections import REGISTRY, constraint_names
from projlib.sweep import TRAIN_OPTION_NAMES, PointSettings, SweepConfig, resolve_device
from projlib.sweep.warmup import AUTO
from projlib.training import TrainConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (requires-python >= 3.10) has only the tomli backport
    import tomli as tomllib

__all__ = [
    "OptionError",
    "RunOptions",
    "load_toml",
    "resolve_run_options",
    "parse_radius",
    "DEFAULT_DB",
    "DEFAULT_REPORT",
    "DEFAULT_CONSTRAINTS",
    "DEFAULT_RADII",
    "default_radii",
    "DEFAULT_EPOCHS",
    "DEFAULT_TRAIN_OPTIONS",
    "EXECUTORS",
]

_TRAIN_DEFAULTS = {f.name: f.default for f in fields(TrainConfig)}
DEFAULT_DB = Path("reports/greenbench.db")
DEFAULT_REPORT = Path("reports/greenbench.html")
EXECUTORS = ("local", "ray")
DEFAULT_COUNTRY = "FRA"  # the paper's authors' grid; pass --country for yours
DEFAULT_EPOCHS = _TRAIN_DEFAULTS["epochs"]
# Bounds that keep a typo from allocating the machine away (`--seeds 1000000000`): a sweep
# larger than DEFAULT_MAX_POINTS must be asked for with --max-points.
MAX_SEEDS = 10_000
DEFAULT_MAX_POINTS = 10_000
# The training defaults are TrainConfig's (the paper's step): one set, in one place.
DEFAULT_TRAIN_OPTIONS: dict[str, Any] = {
    k: _TRAIN_DEFAULTS[k] for k in ("optimizer", "lr", "batch_size")
}
# The constraints swept when none is given (a choice of the CLI, not a property of each
# constraint: what they are is in the registry, REGISTRY[name]).
DEFAULT_CONSTRAINTS = ("l1", "l21", "l11")
_DEFAULT_MODELS: tuple[str, ...] = next(f.default for f in fields(SweepConfig)
                                        if f.name == "models")


def default_radii(constraint: str, models: Sequence[str] = _DEFAULT_MODELS) -> tuple[float, ...]:
    """Radii swept for ``constraint`` when none is given: its registry spec's defaults for each
    swept model (``spec.radii_for(model)``: the model's own entry, else the model-agnostic
    one), merged and sorted; () for an unknown name. Read from the registry at call time."""
    spec = REGISTRY.get(constraint) if isinstance(constraint, str) else None
    if spec is None:
        return ()
    return tuple(sorted({r for m in models if isinstance(m, str) for r in spec.radii_for(m)}))


class _DefaultRadii(Mapping[str, tuple[float, ...]]):
    """``DEFAULT_RADII[name]``: the default radii of the default model (digits/mlp) for every
    registered constraint, read from the registry on each access (never a stale copy)."""

    def __getitem__(self, name: str) -> tuple[float, ...]:
        radii = default_radii(name)
        if not radii:
            raise KeyError(name)
        return radii

    def __iter__(self) -> Iterator[str]:
        return iter([n for n in constraint_names() if default_radii(n)])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return repr(dict(self))


# Kept for the imports that predate the registry's default radii (a live view of them).
DEFAULT_RADII: Mapping[str, tuple[float, ...]] = _DefaultRadii()

_LIST_KEYS = ("dataset", "model", "procedure", "constraint")
_SCALAR_KEYS = ("seeds", "epochs", "device", "executor", "ray_address", "gpus_per_task", "db",
                "report", "country", "data_dir", "download", "retry_failed", "max_points",
                "verify_data", "threads", "measure_inference")
_FILE_TRAIN_OPTIONS = tuple(
    n for n in TRAIN_OPTION_NAMES if n not in ("data_dir", "download", "verify_data")
)


class OptionError(ValueError):
    """A bad option value; the message names the option and is shown as one line."""


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


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a sweep TOML file; OptionError on unreadable / invalid files or unknown keys."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise OptionError(f"config: cannot read {path}: {exc.strerror or exc}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise OptionError(f"config: {path} is not valid TOML: {exc}") from exc
    valid = (*_LIST_KEYS, "radius", *_SCALAR_KEYS, "train")
    unknown = sorted(set(data) - set(valid))
    if unknown:
        raise OptionError(f"config: unknown key(s) {', '.join(unknown)}; valid: {', '.join(valid)}")
    train = data.get("train", {})
    if not isinstance(train, dict):
        raise OptionError("config: [train] must be a table")
    bad = sorted(set(train) - set(_FILE_TRAIN_OPTIONS))
    if bad:
        raise OptionError(
            f"config: unknown [train] option(s) {', '.join(bad)}; "
            f"valid: {', '.join(_FILE_TRAIN_OPTIONS)}"
        )
    for key, value in data.items():
        _check_file_type(key, value)
    for key, value in train.items():
        _check_file_type(f"train.{key}", value)
    # Paths in a config file are relative to the file, so a sweep file works from any cwd.
    for key in ("db", "report", "data_dir"):
        if isinstance(data.get(key), str) and not Path(data[key]).is_absolute():
            data[key] = str(path.parent / data[key])
    return data


# What each TOML key must hold, so a file says exactly what the flags say: `download = "yes"`
# is an error, not "true"; lists of the same types are accepted for the repeatable keys.
_STR, _INT, _NUM, _BOOL = (str,), (int,), (int, float), (bool,)
_FILE_TYPES: dict[str, tuple[type, ...]] = {
    "dataset": _STR, "model": _STR, "procedure": _STR, "constraint": _STR, "radius": _NUM,
    "seeds": _INT, "epochs": _INT, "device": _STR, "executor": _STR, "ray_address": _STR,
    "gpus_per_task": _NUM, "db": _STR, "report": _STR, "country": _STR, "data_dir": _STR,
    "download": _BOOL, "retry_failed": _BOOL, "threads": _STR + _INT, "max_points": _INT,
    "verify_data": _BOOL, "measure_inference": _BOOL,
    "train.lr": _NUM, "train.optimizer": _STR, "train.batch_size": _INT, "train.groups": _STR,
    "train.retrain_epochs": _INT, "train.layers": _STR, "train.constrain_first": _BOOL,
    "train.constrain_last": _BOOL,
}
_LISTABLE = {*_LIST_KEYS, "radius", "seeds", "train.layers"}


def _type_name(types: tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true/false"}
    return " or ".join(names[t] for t in types if not (t is int and float in types))


def _check_file_type(key: str, value: Any) -> None:
    types = _FILE_TYPES.get(key)
    if types is None:
        return
    if key == "radius" and isinstance(value, dict):  # {l1 = [5.0], l11 = 3.0}
        for name, radii in value.items():
            _check_values(f"radius.{name}", types, radii)
        return
    _check_values(key, types, value)


def _check_values(key: str, types: tuple[type, ...], value: Any) -> None:
    listable = key in _LISTABLE or key.startswith("radius.")
    for v in value if isinstance(value, list) and listable else [value]:
        # bool is an int in Python, but a TOML true is never a count or a radius.
        if (isinstance(v, bool) and bool not in types) or not isinstance(v, types):
            _bad(key, types, value)


def _bad(key: str, types: tuple[type, ...], value: Any) -> NoReturn:
    many = " (or a list of them)" if key in _LISTABLE or key.startswith("radius.") else ""
    raise OptionError(f"config: {key} must be {_type_name(types)}{many}, got {value!r}")


def parse_radius(values: list[str]) -> tuple[tuple[float, ...], dict[str, list[float]]]:
    """CLI radii: "5" applies to every constraint, "l11=5" only to l11."""
    shared: list[float] = []
    by: dict[str, list[float]] = {}
    for text in values:
        name, sep, number = text.partition("=")
        if not sep:
            name, number = "", text
        try:
            value = float(number)
        except ValueError:
            raise OptionError(
                f"--radius: {text!r} is not a number (use e.g. 5.0 or l11=5.0)"
            ) from None
        if not math.isfinite(value) or value <= 0:
            raise OptionError(f"--radius: {text!r} must be finite and > 0")
        (by.setdefault(name.strip(), []) if name else shared).append(value)
    return tuple(shared), by


def _as_list(key: str, value: Any) -> list[Any]:
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return [value]
    if isinstance(value, list):
        return value
    raise OptionError(f"{key}: expected a value or a list, got {type(value).__name__}")


def _pick(cli: Mapping[str, Any], file: Mapping[str, Any], key: str, default: Any) -> Any:
    value = cli.get(key)
    if value is not None and value != []:
        return value
    return file.get(key, default)


def resolve_run_options(
    cli: Mapping[str, Any], file: Mapping[str, Any] | None = None
) -> RunOptions:
    """Merge defaults < `file` (from `load_toml`) < `cli` (None / [] = flag not given)."""
    file = dict(file or {})
    axes = {k: _as_list(k, _pick(cli, file, k, [])) for k in _LIST_KEYS}
    shared, by = parse_radius(cli.get("radius") or [])
    if not shared and not by and "radius" in file:
        radius = file["radius"]
        if isinstance(radius, dict):
            by = {k: _as_list(f"radius.{k}", v) for k, v in radius.items()}
        else:
            shared = tuple(_as_list("radius", radius))
    valid = tuple(constraint_names())
    for name in by:
        if name not in valid:
            raise OptionError(f"--radius: unknown constraint {name!r}; valid: {', '.join(valid)}")
    constraints = axes["constraint"] or (list(by) if by else list(DEFAULT_CONSTRAINTS))
    # A radius for a constraint that is not swept is a mistake in either form (flag or table).
    stray = sorted(set(by) - set(constraints))
    if stray and any(p != "dense" for p in axes["procedure"] or ["projected"]):
        raise OptionError(
            f"--radius: {', '.join(stray)} not among the swept constraints "
            f"({', '.join(constraints)})"
        )
    if not shared and not by:
        # No radius anywhere: each constraint's registry defaults for the swept models
        # (unknown names are caught by SweepConfig with the list of valid ones).
        models = axes["model"] or list(_DEFAULT_MODELS)
        by = {c: list(default_radii(c, models)) for c in constraints if default_radii(c, models)}

    seeds = _pick(cli, file, "seeds", 1)
    if isinstance(seeds, bool) or not isinstance(seeds, (int, list)):
        raise OptionError(f"--seeds: expected a count or a list of seeds, got {seeds!r}")
    if isinstance(seeds, int):
        if not 1 <= seeds <= MAX_SEEDS:
            raise OptionError(f"--seeds: must be between 1 and {MAX_SEEDS:,}, got {seeds}")
        seeds = list(range(seeds))
    elif len(seeds) > MAX_SEEDS:
        raise OptionError(f"--seeds: at most {MAX_SEEDS:,} seeds, got {len(seeds):,}")
    max_points = _pick(cli, file, "max_points", DEFAULT_MAX_POINTS)
    if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 1:
        raise OptionError(f"--max-points: must be an integer >= 1, got {max_points!r}")
    _check_sweep_size(axes, constraints, shared, by, len(seeds), max_points)

    executor = _pick(cli, file, "executor", "local")
    if executor not in EXECUTORS:
        raise OptionError(f"--executor: {executor!r} is not one of {', '.join(EXECUTORS)}")
    gpus = _pick(cli, file, "gpus_per_task", 0.0)
    if isinstance(gpus, bool) or not isinstance(gpus, (int, float)) or not gpus >= 0:
        raise OptionError(f"--gpus-per-task: must be a number >= 0, got {gpus!r}")
    if gpus > 0 and executor != "ray":
        raise OptionError("--gpus-per-task: only used with --executor ray")
    device_in = _pick(cli, file, "device", "auto")
    try:
        device = resolve_device(device_in, executor, float(gpus))
    except ValueError as exc:
        raise OptionError(f"--device: {exc}") from None
    if device == "cuda" and executor == "ray" and not gpus > 0:
        # Ray hides every GPU from a task that did not ask for one (CUDA_VISIBLE_DEVICES="").
        raise OptionError("--gpus-per-task: must be > 0 for --device cuda with --executor ray")
    if device == "cuda" and executor == "local":
        if not torch.cuda.is_available():
            raise OptionError("--device: cuda requested but torch sees no CUDA device")

    train = {**DEFAULT_TRAIN_OPTIONS, **file.get("train", {})}
    for key in ("lr", "optimizer", "batch_size", "groups", "retrain_epochs"):
        if cli.get(key) is not None:
            train[key] = cli[key]
    data_dir = _pick(cli, file, "data_dir", None)
    if data_dir is not None:
        train["data_dir"] = str(data_dir)
    if _pick(cli, file, "download", False):
        train["download"] = True
    if not _pick(cli, file, "verify_data", True):
        train["verify_data"] = False

    country = _pick(cli, file, "country", DEFAULT_COUNTRY)
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

    try:
        settings = PointSettings(
            threads=_pick(cli, file, "threads", AUTO),
            inference=_pick(cli, file, "measure_inference", True),
        )
    except (ValueError, TypeError) as exc:
        raise OptionError(f"--{_flagify(str(exc)).lstrip('-')}") from None

    try:
        sweep = SweepConfig(
            datasets=tuple(axes["dataset"] or ["digits"]),
            models=tuple(axes["model"] or ["mlp"]),
            procedures=tuple(axes["procedure"] or ["projected"]),
            constraints=tuple(constraints),
            radii=tuple(shared),
            radii_by_constraint=tuple((k, tuple(v)) for k, v in by.items()),
            seeds=tuple(seeds),
            epochs=_pick(cli, file, "epochs", DEFAULT_EPOCHS),
            device=device,
            options=tuple(train.items()),
        )
    except (ValueError, TypeError) as exc:
        raise OptionError(_flagify(str(exc))) from None
    return RunOptions(
        sweep=sweep,
        executor=executor,
        ray_address=_pick(cli, file, "ray_address", None),
        gpus_per_task=float(gpus),
        db=Path(_pick(cli, file, "db", DEFAULT_DB)),
        report=Path(_pick(cli, file, "report", DEFAULT_REPORT)),
        country=country,
        retry_failed=bool(_pick(cli, file, "retry_failed", True)),
        settings=settings,
    )


def _check_sweep_size(
    axes: Mapping[str, list[Any]], constraints: list[str], shared: tuple[float, ...],
    by: Mapping[str, list[float]], n_seeds: int, max_points: int,
) -> None:
    # Counted before anything is expanded, so an absurd product costs nothing to refuse.
    sparse = [p for p in axes["procedure"] or ["projected"] if p != "dense"]
    models = axes["model"] or list(_DEFAULT_MODELS)
    radii = sum(len(by.get(c, shared) or default_radii(c, models)) for c in constraints)
    per_seed = 1 + len(sparse) * radii
    total = len(axes["dataset"] or [0]) * len(axes["model"] or [0]) * n_seeds * per_seed
    if total > max_points:
        raise OptionError(
            f"--max-points: this sweep has {total:,} points, more than {max_points:,}; "
            "pass --max-points N to allow it"
        )


def _flagify(message: str) -> str:
    # SweepConfig / TrainConfig name their fields ("radius: ...", "epochs must be ..."); show
    # them as the flag the user typed.
    head, sep, rest = message.partition(" ")
    name = head.rstrip(":")
    if name in ("dataset", "model", "procedure", "constraint", "radius", "seeds", "epochs", "lr",
                "optimizer", "batch_size", "groups", "retrain_epochs", "device"):
        return f"--{name.replace('_', '-')}{':' if head.endswith(':') else ''} {rest}"
    return message
