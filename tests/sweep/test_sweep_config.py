"""SweepConfig expansion, point hashing and validation."""

from __future__ import annotations

import dataclasses

import pytest

from projlib.sweep import SweepConfig, canonical_config, point_id, resolve_device
from projlib.sweep.config import TRAIN_OPTION_NAMES, TrainOptions
from projlib.training import DataSource, TrainConfig


def test_expansion_counts_and_dense_baseline_first() -> None:
    sweep = SweepConfig(
        procedures=("projected", "lottery"),
        constraints=("l1", "l11"),
        radii=(5.0, 20.0, 40.0),
        seeds=(0, 1),
        epochs=2,
    )
    points = sweep.points()
    # per seed: 1 dense + 2 procedures x 2 constraints x 3 radii
    assert len(points) == 2 * (1 + 2 * 2 * 3)
    assert points[0].procedure == "dense" and points[0].constraint is None
    assert {p.seed for p in points} == {0, 1}
    assert sum(p.procedure == "dense" for p in points) == 2
    assert len({point_id(p) for p in points}) == len(points)


def test_dense_in_procedures_is_not_duplicated() -> None:
    sweep = SweepConfig(procedures=("dense", "projected"), constraints=("l1",), radii=(5.0,))
    procs = [p.procedure for p in sweep.points()]
    assert procs == ["dense", "projected"]


def test_dense_only_sweep_needs_no_constraint() -> None:
    sweep = SweepConfig(procedures=("dense",), constraints=(), radii=())
    assert [p.procedure for p in sweep.points()] == ["dense"]


def test_radii_by_constraint_override() -> None:
    sweep = SweepConfig(
        constraints=("l1", "nuclear"),
        radii=(50.0,),
        radii_by_constraint=(("nuclear", (2.0, 4.0)),),
    )
    got = {(p.constraint, p.radius) for p in sweep.points() if p.constraint}
    assert got == {("l1", 50.0), ("nuclear", 2.0), ("nuclear", 4.0)}


def test_shared_options_reach_every_point() -> None:
    sweep = SweepConfig(
        constraints=("l1", "l21"), radii=(5.0,), options=(("lr", 0.01), ("groups", "rows"))
    )
    points = {p.constraint: p for p in sweep.points()}
    assert all(p.lr == 0.01 for p in points.values())
    assert points["l21"].groups == "rows"
    # groups means nothing to the ungrouped l1 operator: it keeps the default there
    assert points["l1"].groups == "columns"


def test_options_are_a_typed_frozen_record_of_every_training_option() -> None:
    # one field per non-axis TrainConfig field, with its default: read by name, not by key
    sweep = SweepConfig(radii=(5.0,), options={"lr": 0.01, "layers": ["1.weight"],
                                               "data_dir": "/data", "verify_data": False})
    opts = sweep.options
    assert isinstance(opts, TrainOptions) and opts.lr == 0.01 and opts.layers == ("1.weight",)
    assert opts.batch_size == TrainConfig.__dataclass_fields__["batch_size"].default
    assert {f.name for f in dataclasses.fields(opts)} == set(TRAIN_OPTION_NAMES)
    assert opts.changed() == {"lr": 0.01, "layers": ("1.weight",), "data_dir": "/data",
                              "verify_data": False}
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.lr = 1.0  # type: ignore[misc]
    # the data location has one description, the same a point's config gives
    assert opts.data_source == DataSource("/data", False, False)
    assert sweep.points()[0].data_source == opts.data_source
    with pytest.raises(ValueError, match="unknown training option 'lrate'"):
        SweepConfig(radii=(5.0,), options={"lrate": 0.1})
    assert SweepConfig(radii=(5.0,), options=opts).options is opts


def test_point_id_is_stable_and_ignores_data_location() -> None:
    a = TrainConfig(procedure="projected", constraint="l11", radius=5.0, epochs=3)
    b = dataclasses.replace(a, data_dir="/somewhere/else", download=True)
    c = dataclasses.replace(a, radius=6.0)
    assert point_id(a) == point_id(b)
    assert point_id(a) != point_id(c)
    assert len(point_id(a)) == 64 and int(point_id(a), 16) >= 0
    assert "data_dir" not in canonical_config(a)


def test_sweep_id_ignores_axis_order() -> None:
    a = SweepConfig(constraints=("l1", "l11"), radii=(5.0, 10.0))
    b = SweepConfig(constraints=("l11", "l1"), radii=(10.0, 5.0))
    assert a.sweep_id() == b.sweep_id()
    assert a.sweep_id() != SweepConfig(constraints=("l1",), radii=(5.0,)).sweep_id()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"constraints": ("l7",), "radii": (1.0,)}, r"constraint: unknown name 'l7'; valid: l1"),
        ({"datasets": ("imagenet",), "radii": (1.0,)}, r"dataset: unknown name .*digits"),
        ({"models": ("resnet",), "radii": (1.0,)}, r"model: unknown name .*mlp"),
        ({"procedures": ("pruned",), "radii": (1.0,)}, r"procedure: unknown name .*projected"),
        ({"radii": (-1.0,)}, r"radius must be a finite number > 0, got -1.0"),
        ({"radii": ()}, r"radius: no radius given for constraint 'l1'"),
        ({"radii": (1.0,), "device": "auto"}, r"resolve 'auto' first"),
        ({"radii": (1.0,), "seeds": (-1,)}, r"seeds must be >= 0"),
        ({"radii": (1.0,), "options": (("momentum", 0.9),)}, r"unknown training option 'momentum'"),
        ({"radii": (1.0,), "epochs": 0}, r"epochs must be >= 1"),
        ({"radii": (1.0,), "models": ("convnet",)}, r"'convnet' does not fit dataset 'digits'"),
    ],
)
def test_validation_errors_name_the_field(kwargs: dict, match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        SweepConfig(**kwargs)


def test_resolve_device() -> None:
    import torch

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto", "ray", 1.0) == "cuda"
    assert resolve_device("auto", "ray", 0.0) == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device must be one of"):
        resolve_device("tpu")
