"""TrainConfig validation: every bad field is rejected with a message naming it."""

from __future__ import annotations

import json

import pytest

from projlib.training import TrainConfig


def test_defaults_and_to_dict_is_json():
    cfg = TrainConfig(procedure="projected", constraint="l11", radius=5, layers=["3.weight"])
    assert cfg.radius == 5.0 and isinstance(cfg.radius, float)
    assert cfg.layers == ("3.weight",)  # lists normalised to tuples: hashable, frozen
    d = cfg.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["layers"] == ["3.weight"] and d["constraint"] == "l11"
    assert cfg.resolved_retrain_epochs == cfg.epochs
    assert TrainConfig(lr=1).to_dict() == TrainConfig(lr=1.0).to_dict()
    assert TrainConfig(retrain_epochs=3).resolved_retrain_epochs == 3
    with pytest.raises(AttributeError):
        cfg.epochs = 3  # frozen


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"dataset": "imagenet"}, ValueError, "dataset"),
        ({"model": "resnet"}, ValueError, "model"),
        ({"procedure": "prune"}, ValueError, "procedure"),
        ({"procedure": "projected", "constraint": "l7", "radius": 1.0}, ValueError, "constraint"),
        ({"procedure": "projected", "radius": 1.0}, ValueError, "constraint is required"),
        ({"procedure": "lottery", "radius": 1.0}, ValueError, "constraint is required"),
        ({"procedure": "magnitude"}, ValueError, "constraint is required"),
        ({"procedure": "projected", "constraint": "l11"}, ValueError, "radius is required"),
        ({"procedure": "projected", "constraint": "l11", "radius": 0}, ValueError, "radius"),
        ({"procedure": "projected", "constraint": "l11", "radius": -2.0}, ValueError, "radius"),
        ({"procedure": "projected", "constraint": "l11", "radius": float("nan")}, ValueError,
         "radius"),
        ({"procedure": "projected", "constraint": "l11", "radius": "5"}, TypeError, "radius"),
        ({"constraint": "l11", "radius": 1.0}, ValueError, "constraint must be None"),
        ({"epochs": 0}, ValueError, "epochs"),
        ({"epochs": 2.5}, TypeError, "epochs"),
        ({"retrain_epochs": 0}, ValueError, "retrain_epochs"),
        ({"groups": "diagonals"}, ValueError, "groups"),
        ({"procedure": "projected", "constraint": "l1", "radius": 1.0, "groups": "rows"},
         ValueError, "groups does not apply"),
        ({"optimizer": "lbfgs"}, ValueError, "optimizer"),
        ({"lr": 0.0}, ValueError, "lr"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"seed": -1}, ValueError, "seed"),
        ({"device": "tpu"}, ValueError, "device"),
        ({"layers": ()}, ValueError, "layers"),
        ({"layers": "1.weight"}, TypeError, "layers"),
        ({"constrain_first": 1}, TypeError, "constrain_first"),
        ({"data_dir": 3}, TypeError, "data_dir"),
        ({"layer_sparsity": (("3.weight", 0.5),)}, ValueError, "only used by"),
        ({"procedure": "magnitude", "layer_sparsity": (("3.weight", 1.5),)}, ValueError,
         "layer_sparsity"),
        ({"procedure": "magnitude", "layer_sparsity": (("a", 0.1), ("a", 0.2))}, ValueError,
         "twice"),
        ({"procedure": "magnitude", "layer_sparsity": ()}, ValueError, "layer_sparsity"),
    ],
)
def test_bad_config_rejected(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        TrainConfig(**kwargs)


def test_magnitude_with_layer_sparsity_needs_no_constraint():
    cfg = TrainConfig(procedure="magnitude", layer_sparsity={"3.weight": 0.5})
    assert cfg.layer_sparsity == (("3.weight", 0.5),)


def test_every_layer_asks_the_spec_whether_groups_applies():
    """One rule for `groups`: a grouped toy constraint (registered with groups=("columns",
    "rows")) and an ungrouped one are accepted or refused alike by project, the norm,
    TrainConfig, the Projector and the sweep (which keeps "rows" only where it applies)."""
    import dataclasses
    import functools

    import torch
    from torch import nn

    from projlib.projections import REGISTRY, project, register, unregister
    from projlib.sweep import SweepConfig
    from projlib.training import Projector

    grouped = register(dataclasses.replace(REGISTRY["l21"], name="toy_grouped"))
    ungrouped = register(dataclasses.replace(REGISTRY["l1"], name="toy_ungrouped",
                                             fn=lambda W, r, groups="columns": W.clone()))
    try:
        W = torch.randn(4, 3)
        model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU(),
                              nn.Linear(4, 2))
        for spec in (grouped, ungrouped):
            for groups in ("columns", "rows"):
                name = spec.name
                calls = (functools.partial(project, W, name, 1.0, groups),
                         functools.partial(spec.norm, W, groups),
                         functools.partial(TrainConfig, procedure="projected", constraint=name,
                                           radius=1.0, groups=groups),
                         functools.partial(Projector, model, name, radius=1.0, groups=groups))
                if groups in spec.groupings:
                    for call in calls:
                        call()
                else:
                    for call in calls:
                        with pytest.raises(ValueError, match="groups does not apply"):
                            call()
        sweep = SweepConfig(constraints=("toy_grouped", "toy_ungrouped"), radii=(1.0,),
                            epochs=1, options=(("groups", "rows"),))
        assert {p.constraint: p.groups for p in sweep.points() if p.constraint} == {
            "toy_grouped": "rows", "toy_ungrouped": "columns"}
    finally:
        unregister("toy_grouped")
        unregister("toy_ungrouped")
