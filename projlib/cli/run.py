"""`greenbench run`: validate, register, execute and report a sweep."""

from __future__ import annotations

import signal
import sqlite3
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import torch
import typer
from rich.console import Console
from rich.markup import escape

from projlib.cli import EXIT_INTERRUPTED
from projlib.cli.common import (
    check_path,
    check_report_target,
    fail,
    open_existing_store,
    report_provenance,
    write_report,
)
from projlib.cli.options import (
    DEFAULT_CONSTRAINTS,
    DEFAULT_FLAGS,
    OptionError,
    RunFlags,
    RunOptions,
    TrainFlags,
    load_toml,
    parse_radius,
    resolve_run_options,
)
from projlib.cli.progress import RichSweepObserver
from projlib.measure import EnergyMeter
from projlib.projections import constraint_names
from projlib.sweep import ResultsStore, StoreError, prepare_sweep, run_local, run_ray
from projlib.sweep.config import TRAIN_DEFAULTS
from projlib.sweep.runner import cached_dataset
from projlib.training import (
    DATASETS,
    MODELS,
    DatasetError,
    DatasetNotFoundError,
    build_model,
)

__all__ = ["run"]

# Help text only (computed at import: a constraint registered later is not listed here, but
# it is accepted: the names are validated against the registry when the options are resolved).
_CONSTRAINTS = ", ".join(constraint_names())
_DATASETS = ", ".join(DATASETS)
_MODELS = ", ".join(MODELS)
# What each option resolves to when neither the command line nor a TOML file gives it:
# DEFAULT_FLAGS, then TrainConfig's own defaults, so the help cannot drift from what runs.
_DEFAULTS: dict[str, Any] = {
    **TRAIN_DEFAULTS,
    **{f.name: getattr(DEFAULT_FLAGS.train, f.name) for f in fields(TrainFlags)
       if getattr(DEFAULT_FLAGS.train, f.name) is not None},
    **{f.name: getattr(DEFAULT_FLAGS, f.name) for f in fields(RunFlags)
       if f.name != "train" and getattr(DEFAULT_FLAGS, f.name) is not None},
    "constraint": DEFAULT_CONSTRAINTS,
}


_PAPER_STEP = "the paper's step"


def _default(name: str, note: str = "") -> str:
    """'(default: VALUE[, note])' for the help of option ``name``, VALUE from ``_DEFAULTS``."""
    value = _DEFAULTS[name]
    if isinstance(value, bool):
        text = "on" if value else "off"
    elif isinstance(value, (tuple, list)):
        text = ", ".join(map(str, value))
    elif isinstance(value, float):
        text = f"{value:g}"
    else:
        text = str(value)
    return f"(default: {text}{', ' + note if note else ''})"



def run(
    config: Annotated[
        str | None,
        typer.Argument(help="TOML sweep file; command-line flags override its values.",
                       show_default=False),
    ] = None,
    dataset: Annotated[
        list[str] | None, typer.Option(help=f"Dataset (repeatable): {_DATASETS}, or "
                                        f"package.module:loader (your own). {_default('dataset')}")
    ] = None,
    model: Annotated[
        list[str] | None, typer.Option(help=f"Model (repeatable): {_MODELS}, or "
                                        f"package.module:factory (your own). {_default('model')}")
    ] = None,
    constraint: Annotated[
        list[str] | None,
        typer.Option(help=f"Constraint (repeatable): {_CONSTRAINTS}. "
                          f"{_default('constraint')}"),
    ] = None,
    radius: Annotated[
        list[str] | None,
        typer.Option(help="Radius for every constraint, or NAME=R for one (repeatable). "
                           "(default: built-in per-constraint radii tuned for digits/mlp)"),
    ] = None,
    procedure: Annotated[
        list[str] | None,
        typer.Option(help="projected|lottery|magnitude|dense (repeatable; dense is always added)."),
    ] = None,
    seeds: Annotated[
        int | None, typer.Option(help=f"Number of seeds (0..N-1). {_default('seeds')}")
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(help=f"Epochs per phase. {_default('epochs')}")
    ] = None,
    device: Annotated[str | None, typer.Option(help=f"auto|cpu|cuda {_default('device')}")] = None,
    executor: Annotated[str | None, typer.Option(help=f"local|ray {_default('executor')}")] = None,
    ray_address: Annotated[
        str | None, typer.Option(help="Ray cluster to join (default: start a local instance).")
    ] = None,
    gpus_per_task: Annotated[
        float | None, typer.Option(help="GPUs per Ray task (ray executor). "
                                     f"{_default('gpus_per_task')}")
    ] = None,
    db: Annotated[
        Path | None, typer.Option(help=f"Results database. {_default('db')}")
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help=f"HTML report to write. {_default('report')}")
    ] = None,
    country: Annotated[
        str | None, typer.Option(help="ISO 3166-1 alpha-3 grid for carbon. "
                                   f"{_default('country')}")
    ] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Where datasets are looked up.")] = None,
    download: Annotated[
        bool | None, typer.Option("--download/--no-download", help="Allow dataset downloads.")
    ] = None,
    verify_data: Annotated[
        bool | None,
        typer.Option("--verify-data/--no-verify-data",
                     help="Check MNIST/Fashion-MNIST/CIFAR-10 files against their published "
                          "checksums; --no-verify-data for a custom variant. "
                          f"{_default('verify_data')}"),
    ] = None,
    cuda_graph: Annotated[
        bool | None,
        typer.Option("--cuda-graph/--no-cuda-graph",
                     help="On CUDA, replay each full-batch training step from one captured CUDA "
                          f"graph (eager where capture is impossible). {_default('cuda_graph')}"),
    ] = None,
    lr: Annotated[
        float | None, typer.Option(help=f"Learning rate. {_default('lr', _PAPER_STEP)}")
    ] = None,
    optimizer: Annotated[
        str | None, typer.Option(help="adam|sgd (sgd: momentum 0.9). "
                                   f"{_default('optimizer')}")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help=f"Minibatch size. {_default('batch_size')}")
    ] = None,
    groups: Annotated[str | None, typer.Option(help=f"columns|rows {_default('groups')}")] = None,
    retrain_epochs: Annotated[
        int | None, typer.Option(help="Epochs of the lottery/magnitude retraining phase.")
    ] = None,
    validation: Annotated[
        float | None,
        typer.Option(help="Fraction of the training set held out as a fixed validation split "
                          "(per-epoch accuracy and val_accuracy on it; the test set is read "
                          f"once, at the end). {_default('validation', 'no split')}"),
    ] = None,
    radius_mode: Annotated[
        str | None,
        typer.Option(help="absolute|relative: relative makes each radius a fraction of each "
                          f"constrained layer's norm at initialisation. {_default('radius_mode')}"),
    ] = None,
    retry_failed: Annotated[
        bool | None,
        typer.Option("--retry-failed/--no-retry-failed", help="Rerun failed points on resume."),
    ] = None,
    threads: Annotated[
        str | None,
        typer.Option(help="Torch intra-op threads per point: N, or auto (measured per model: "
                          "more threads only when a step is >= 1.25x faster). "
                          f"{_default('threads')}"),
    ] = None,
    measure_inference: Annotated[
        bool | None,
        typer.Option("--measure-inference/--no-measure-inference",
                     help="After training, measure latency, throughput and energy per 1,000 "
                          "inferences of the model and its compacted version. "
                          f"{_default('measure_inference')}"),
    ] = None,
    max_points: Annotated[
        int | None,
        typer.Option(help=f"Refuse a sweep with more points than this. {_default('max_points')}"),
    ] = None,
) -> None:
    """Run a sweep (resumable), store every point in the db, then write the HTML report.

    With no arguments: a small sweep on the bundled digits data (mlp, projected training,
    l1/l21/l11 at three radii each, plus the dense baseline).
    """
    console = Console(highlight=False, soft_wrap=True)
    try:
        cli = RunFlags(
            dataset=_given(dataset), model=_given(model), procedure=_given(procedure),
            constraint=_given(constraint),
            radius=parse_radius(radius) if radius else None,
            seeds=seeds, epochs=epochs, device=device, executor=executor,
            ray_address=ray_address, gpus_per_task=gpus_per_task, db=db, report=report,
            country=country, data_dir=data_dir, download=download, verify_data=verify_data,
            cuda_graph=cuda_graph,
            retry_failed=retry_failed, threads=threads, measure_inference=measure_inference,
            max_points=max_points,
            train=TrainFlags(lr=lr, optimizer=optimizer, batch_size=batch_size, groups=groups,
                             retrain_epochs=retrain_epochs, validation=validation,
                             radius_mode=radius_mode),
        )
        layers = (cli,) if config is None else (load_toml(config), cli)
        options = resolve_run_options(*layers)
    except OptionError as exc:
        fail(str(exc))
    _preflight(options)
    try:
        _execute(options, console)
    except sqlite3.DatabaseError as exc:  # e.g. a page corrupted while the sweep ran
        fail(f"--db: {options.db}: {exc}")


def _preflight(options: RunOptions) -> None:
    # Everything that can be checked is checked before the first point trains: a sweep that
    # cannot write its report at the end must not spend an hour training first.
    check_report_target(options.report, options.db, "--report")
    _check_db_target(options.db)
    _check_datasets(options)
    if options.executor == "ray":
        try:
            import ray  # noqa: F401, PLC0415 - optional dependency (the ray extra)
        except ImportError:
            fail("--executor: ray is not installed (pip install 'greenbench[ray]')")


def _given(values: list[str] | None) -> tuple[str, ...] | None:
    # A repeatable flag that was not given is None (an empty list never reaches here).
    return tuple(values) if values else None


def _check_datasets(options: RunOptions) -> None:
    # A dataset that is not on disk (or not what its name says) would fail every one of its
    # points; say it once, before anything is written. The data is read here, in the driver,
    # with any executor: its fingerprint is part of every point's identity (Ray workers check
    # that they read the same data).

    source = options.sweep.options.data_source
    for name in options.sweep.datasets:
        try:  # cached: the first points of this dataset reuse what the check read
            data = cached_dataset(name, source)
        except (DatasetNotFoundError, DatasetError, OSError, RuntimeError) as exc:
            fail(f"--dataset: {name}: {str(exc).splitlines()[0]}")
        for model in options.sweep.models:
            _check_model_fits(model, data)


def _check_model_fits(model: str, data: Any) -> None:
    # The sweep checked each model against the dataset's published shape; files read with
    # --no-verify-data may hold other images (8x8 under an mnist name). One sample through
    # the model says it now, not once per point after the sweep started.
    shape = "x".join(map(str, data.input_shape))
    try:
        net = build_model(model, data.input_shape, data.num_classes)
        with torch.no_grad():
            net(data.train_x[:1].to(torch.float32))
    except (ValueError, TypeError, RuntimeError) as exc:
        fail(f"--model: {model} does not fit the {data.name} data at {data.source} ({shape} "
             f"images, {data.num_classes} classes): {str(exc).splitlines()[0]}")


def _check_db_target(path: Path) -> None:
    # An existing file must be a greenbench db (checked read-only); a new one needs a
    # directory that exists or can be created.
    check_path(path, "--db")
    if path.exists() or path.is_symlink():
        open_existing_store(path).close()
        return
    parent = path.resolve().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        fail(f"--db: cannot create {path}: {parent} is not a directory")


def _open_store(path: Path) -> Any:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return ResultsStore(path)
    except (StoreError, OSError) as exc:
        fail(f"--db: {str(exc).removeprefix('db: ')}")


def _execute(options: RunOptions, console: Console) -> None:
    sweep = options.sweep
    store = _open_store(options.db)
    with store:
        sweep_id, configs, already = prepare_sweep(store, sweep, options.retry_failed)
        todo = len(configs) - already
        console.print(
            f"sweep {sweep_id[:12]}: {len(configs)} points ({already} already done), "
            f"device {sweep.device}, executor {options.executor}, db {escape(str(options.db))}"
        )
        if sweep.skipped:
            pairs = ", ".join(f"{c} x {p}" for p, c in sweep.skipped)
            console.print(f"not run: {escape(pairs)} (a low-rank constraint zeros no weight, so "
                          "its mask keeps every weight: the dense baseline under another name)")
        meter = EnergyMeter(options.country)
        # Probed once here, before the first point's clock starts, and said up front: a sweep
        # whose energy column will be empty should say why before it runs, not after.
        backends = "; ".join(
            f"{s.name} {'ok' if s.available else 'unavailable'} ({s.reason})"
            for s in meter.statuses()
        )
        console.print(f"energy backends: {escape(backends)}")
        try:
            with RichSweepObserver(console, todo) as observer:
                if options.executor == "ray":
                    run_ray(
                        store, sweep_id, configs, country_iso_code=options.country,
                        observer=observer, address=options.ray_address,
                        gpus_per_task=options.gpus_per_task, settings=options.settings,
                    )
                else:
                    run_local(
                        store, sweep_id, configs, country_iso_code=options.country,
                        observer=observer, meter=meter, settings=options.settings,
                    )
        except KeyboardInterrupt:
            # A second Ctrl-C while we report must not leave a traceback instead of the code.
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                counts = store.counts(sweep_id)
                console.print(
                    f"interrupted: {counts['done']}/{len(configs)} points done, "
                    f"{counts['interrupted']} marked interrupted; "
                    "rerun the same command to resume"
                )
            finally:
                signal.signal(signal.SIGINT, previous)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        counts = store.counts(sweep_id)
        rows = store.rows(sweep_id=sweep_id)
    statuses = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    console.print(f"sweep {sweep_id[:12]}: {statuses}")
    provenance = report_provenance(options.db, meter, sweep_id=sweep_id, country=options.country)
    path = write_report(rows, provenance, options.report, db=options.db)
    console.print(f"report: {escape(str(path.resolve()))}")
    if counts["failed"]:
        db = escape(str(options.db))
        console.print(f"{counts['failed']} point(s) failed; see `greenbench runs --db {db}`")
        raise typer.Exit(1)
