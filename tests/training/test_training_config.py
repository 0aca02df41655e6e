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
