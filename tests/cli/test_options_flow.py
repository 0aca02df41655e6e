"""The typed option flow of `greenbench run`: defaults < TOML file < flags, merged purely,
validated once (see projlib/cli/options.py)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from projlib.cli.options import (
    DEFAULT_FLAGS,
    OptionError,
    Radii,
    RunFlags,
    TrainFlags,
    flags_from_toml,
    load_toml,
    merge_flags,
    parse_radius,
    resolve_run_options,
)
from projlib.sweep import TRAIN_OPTION_NAMES, SweepConfig, point_id
from projlib.training import TrainConfig


def test_every_shared_training_option_has_one_typed_home() -> None:
    # A new TrainConfig field that a sweep shares must be declared in TrainFlags (the [train]
    # table) or as a run-level flag; nothing is accepted untyped.
    run_level = {"data_dir", "download", "verify_data", "cuda_graph"}
    assert {f.name for f in fields(TrainFlags)} | run_level == set(TRAIN_OPTION_NAMES)
    assert run_level <= {f.name for f in fields(RunFlags)}


def test_defaults_are_trainconfigs_and_sweepconfigs() -> None:
    cfg, sweep = TrainConfig(), SweepConfig(radii=(1.0,))
    assert (DEFAULT_FLAGS.train.lr, DEFAULT_FLAGS.train.optimizer,
            DEFAULT_FLAGS.train.batch_size) == (cfg.lr, cfg.optimizer, cfg.batch_size)
    assert DEFAULT_FLAGS.epochs == cfg.epochs
    assert (DEFAULT_FLAGS.dataset, DEFAULT_FLAGS.model) == (sweep.datasets, sweep.models)


def test_merge_is_field_wise_last_given_wins_and_pure() -> None:
    file = RunFlags(seeds=3, epochs=7, radius=Radii(by_constraint=(("l1", (5.0,)),)),
                    train=TrainFlags(lr=0.1, batch_size=64))
    cli = RunFlags(epochs=2, train=TrainFlags(lr=0.5))
    merged = merge_flags(DEFAULT_FLAGS, file, cli)
    assert merged.epochs == 2 and merged.seeds == 3
    assert merged.train.lr == 0.5 and merged.train.batch_size == 64
    assert merged.train.optimizer == DEFAULT_FLAGS.train.optimizer
    assert merged.radius == Radii(by_constraint=(("l1", (5.0,)),))
    # radii given on the command line replace the file's as a whole
    assert merge_flags(file, RunFlags(radius=parse_radius(["3"]))).radius == Radii((3.0,))
    assert file.epochs == 7 and cli.train.batch_size is None  # inputs untouched
    with pytest.raises(TypeError, match="RunFlags"):
        merge_flags({"epochs": 2})  # type: ignore[arg-type]


def test_toml_becomes_the_same_typed_layer_as_the_flags(tmp_path: Path) -> None:
    path = tmp_path / "sweep.toml"
    path.write_text(
        'constraint = "l11"\nseeds = [0, 7]\nthreads = 1\ndb = "out/r.db"\n'
        '[radius]\nl11 = 4\n[train]\nlayers = "1.weight"\nlr = 1\n'
    )
    flags = load_toml(path)
    assert flags.constraint == ("l11",) and flags.seeds == (0, 7) and flags.threads == 1
    assert flags.radius == Radii(by_constraint=(("l11", (4,)),))
    assert flags.db == tmp_path / "out" / "r.db"
    assert flags.train == TrainFlags(layers=("1.weight",), lr=1)
    options = resolve_run_options(flags)
    assert options.sweep.seeds == (0, 7) and options.sweep.radii_for("l11") == (4.0,)
    assert options.sweep.options.lr == 1.0


@pytest.mark.parametrize("data, message", [
    ({"epochs": "3"}, "config: epochs must be an integer, got '3'"),
    ({"radius": {"l1": [1, "x"]}}, "config: radius.l1 must be a number"),
    ({"train": {"constrain_first": 1}}, "config: train.constrain_first must be true/false"),
    ({"train": {"momentum": 0.9}}, "unknown [train] option(s) momentum"),
    ({"colour": "red"}, "unknown key(s) colour"),
])
def test_toml_types_come_from_the_field_declarations(data, message) -> None:
    with pytest.raises(OptionError) as info:
        flags_from_toml(data)
    assert message in str(info.value)


def test_validation_names_the_flag_whatever_the_layer() -> None:
    with pytest.raises(OptionError, match="^--epochs"):
        resolve_run_options(RunFlags(epochs=0))
    with pytest.raises(OptionError, match="^--batch-size"):
        resolve_run_options(RunFlags(train=TrainFlags(batch_size=0)))


def test_a_sweep_is_expanded_once() -> None:
    sweep = SweepConfig(procedures=("projected", "lottery"), radii=(1.0, 2.0), seeds=(0, 1))
    first, again = sweep.points(), sweep.points()
    assert len(first) == 2 * (1 + 2 * 3 * 2)
    assert all(a is b for a, b in zip(first, again, strict=True))  # the same configs, not rebuilt
    assert sweep.point_ids() == [point_id(c) for c in first]
