"""Your own model and data by import path (`package.module:attr`): resolution, checks, identity.

Each test writes its plugin module under tmp_path with a name of its own (modules stay in
`sys.modules`), on `sys.path` through monkeypatch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path

import pytest
import torch

from projlib import Projector
from projlib.sweep import SweepConfig, canonical_config, point_id
from projlib.training import DatasetError, TrainConfig, build_model, load_dataset, plugins, train
from projlib.training.plugins import PluginError

EXTRA = '''


class Residual(nn.Module):
    def __init__(self, input_shape, num_classes):
        super().__init__()
        c, h, w = input_shape
        self.a, self.b = nn.Linear(c * h * w, 8), nn.Linear(8, 8)
        self.c = nn.Linear(8, num_classes)

    def forward(self, x):
        h = torch.relu(self.a(x.flatten(1)))
        return self.c(torch.relu(self.b(h)) + h)


def two_layers(input_shape, num_classes):
    c, h, w = input_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, 8), nn.ReLU(),
                         nn.Linear(8, num_classes))


def wrong_width(input_shape, num_classes):
    c, h, w = input_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, num_classes + 1))


def not_a_module(input_shape, num_classes):
    return "resnet"


def raises(input_shape, num_classes):
    raise RuntimeError("needs a GPU\\nsecond line")


def bad_forward(input_shape, num_classes):
    return nn.Sequential(nn.Linear(3, num_classes))


NOT_CALLABLE = 3


def tuple_loader():
    return blobs().train_x, blobs().train_y


def bad_labels():
    d = blobs()
    return Dataset("x", d.train_x, d.train_y + 5, d.test_x, d.test_y, (1, 4, 4), 3, "x")


def bad_dtype():
    d = blobs()
    return Dataset("x", d.train_x.double(), d.train_y, d.test_x, d.test_y, (1, 4, 4), 3, "x")


def loader_raises():
    raise FileNotFoundError("/data/mine not there")
'''


@pytest.fixture
def plugin(plugin_writer):
    return plugin_writer(EXTRA)


# --- built-in points keep their identity ---------------------------------------------------------

def test_builtin_point_ids_are_what_they_were_before_plugins():
    # recorded at 88531c2, before `model_source` existed
    sweep = SweepConfig(datasets=("digits",), models=("mlp",), procedures=("projected", "lottery"),
                        constraints=("l1", "l11"), radii=(10.0,), seeds=(0, 1))
    ids = [point_id(dataclasses.replace(c, data_fingerprint="abc")) for c in sweep.points()]
    assert "model_source" not in canonical_config(sweep.points()[0])
    assert ids[0] == "1fa22872ca712f4c262b5fcbdac21bba6ca5257752bf3b27530bfacc4769de7a"
    assert hashlib.sha256(",".join(ids).encode()).hexdigest() == (
        "671d6a9f123da6eee6de81941ebeffbb0df452c18d3bd419e8f8629d87fcdd60")


# --- resolution and checks -----------------------------------------------------------------------

def test_a_plugin_model_and_dataset_train_like_builtin_ones(plugin):
    mod, _ = plugin
    data = load_dataset(f"{mod}:blobs")
    assert data.name == f"{mod}:blobs" and data.input_shape == (1, 4, 4)
    assert load_dataset(f"{mod}:blobs") is data  # cached while the file is unchanged
    model = build_model(f"{mod}:net", (1, 4, 4), 3)
    assert Projector(model, "l11", 1.0).names == ("3.weight",)
    cfg = TrainConfig(dataset=f"{mod}:blobs", model=f"{mod}:net", procedure="projected",
                      constraint="l11", radius=5.0, epochs=10, batch_size=16)
    result = train(cfg)
    assert result.constrained_layers == ("3.weight",)
    assert result.test_accuracy > 0.9  # well-separated blobs
    assert result.layers[1].fraction_zero > 0


@pytest.mark.parametrize("kind, attr, match", [
    ("model", "wrong_width", r"output for a batch of shape \(2, 1, 4, 4\) is \(2, 4\), "
                             r"expected \(2, 3\)"),
    ("model", "not_a_module", r"the factory returned a str, not a torch.nn.Module"),
    ("model", "raises", r"the factory raised RuntimeError: needs a GPU second line$"),
    ("model", "bad_forward", r"forward on a batch of shape \(2, 1, 4, 4\) raised RuntimeError"),
    ("model", "NOT_CALLABLE", r"NOT_CALLABLE is a int, not a callable"),
    ("model", "missing", r"module gb_plugin_\w+ has no attribute 'missing'"),
    ("dataset", "tuple_loader", r"the loader returned a tuple, not a projlib.training.Dataset"),
    ("dataset", "bad_labels", r"train_y holds labels outside \[0, 2\] \(num_classes=3\)"),
    ("dataset", "bad_dtype", r"train_x must be a float32 tensor \(N>0, 1, 4, 4\), got "
                             r"torch.float64"),
    ("dataset", "loader_raises", r"the loader raised FileNotFoundError: /data/mine not there"),
])
def test_bad_factories_and_loaders_are_one_line_naming_the_path(plugin, kind, attr, match):
    mod, _ = plugin
    path = f"{mod}:{attr}"
    error = PluginError if kind == "model" else DatasetError
    with pytest.raises(error, match=rf"^{kind} '{path}': {match}") as info:
        if kind == "model":
            plugins.check_model(path, (1, 4, 4), 3)
        else:
            load_dataset(path)
    assert "\n" not in str(info.value)


def test_bad_paths():
    with pytest.raises(PluginError, match=r"^model 'no_such_mod_xyz:net': cannot import "
                                          r"no_such_mod_xyz: ModuleNotFoundError"):
        plugins.check_model("no_such_mod_xyz:net", (1, 4, 4), 3)
    for bad in ("a:b:c", "a.:b", ":b", "a:", "a b:c", "a:b()"):
        with pytest.raises(ValueError, match=r"is not an import path package.module:attr"):
            TrainConfig(model=bad)
    with pytest.raises(ValueError, match=r"^model must be one of .* or package.module:factory"):
        TrainConfig(model="resnet")
    with pytest.raises(ValueError, match=r"^dataset must be one of .* or package.module:loader"):
        TrainConfig(dataset="imagenet")
    with pytest.raises(ValueError, match=r"^model_source must be None"):
        TrainConfig(model="mlp", model_source="ab" * 32)


# --- sweeps ---------------------------------------------------------------------------------------

def test_sweep_checks_plugins_before_anything_runs(plugin):
    mod, _ = plugin
    base = dict(datasets=(f"{mod}:blobs",), procedures=("projected",), constraints=("l11",),
                radii=(1.0,))
    sweep = SweepConfig(models=(f"{mod}:net", "mlp"), **base)
    assert {c.model for c in sweep.points()} == {f"{mod}:net", "mlp"}
    with pytest.raises(ValueError, match=rf"^model '{mod}:wrong_width': output .* \(dataset "
                                         rf"'{mod}:blobs'\)$"):
        SweepConfig(models=(f"{mod}:wrong_width",), **base)
    # any nn.Module: a skip connection goes to the dependency-graph path (issue 24 item 3)
    SweepConfig(models=(f"{mod}:Residual",), **base)
    with pytest.raises(ValueError, match=rf"^model '{mod}:two_layers' has no weight to "
                                         r"constrain by default"):
        SweepConfig(models=(f"{mod}:two_layers",), **base)
    # the dense baseline alone needs no constrained weight
    SweepConfig(models=(f"{mod}:two_layers",), datasets=(f"{mod}:blobs",),
                procedures=("dense",))
    with pytest.raises(DatasetError, match=rf"^dataset '{mod}:bad_labels'"):
        SweepConfig(models=("mlp",), datasets=(f"{mod}:bad_labels",), procedures=("dense",))


def test_editing_the_model_file_changes_identity_and_the_code_that_runs(plugin):
    mod, file = plugin
    path = f"{mod}:net"
    before = plugins.source_hash(path)
    cfg = TrainConfig(dataset=f"{mod}:blobs", model=path, epochs=1, batch_size=16,
                      model_source=before)
    assert point_id(cfg) != point_id(dataclasses.replace(cfg, model_source=None))
    assert train(cfg).model[1].out_features == 16
    file.write_text(file.read_text().replace("WIDTH = 16", "WIDTH = 24"))
    after = plugins.source_hash(path)
    assert after != before
    with pytest.raises(PluginError, match=rf"^model '{path}': its module file changed since "
                                          "this run was registered"):
        train(cfg)
    # the edited module is reloaded: the new code runs, under the new hash
    assert build_model(path, (1, 4, 4), 3)[1].out_features == 24
    assert train(dataclasses.replace(cfg, model_source=after)).model[1].out_features == 24


def test_the_readme_example_factory_sweeps_on_digits(tmp_path, monkeypatch):
    """The `mynets.py` block of README's "Your own model and data", written out as printed:
    the sweep it describes is accepted and constrains what the README says."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("**Your own model and data.**", 1)[1].split("**Bad input**", 1)[0]
    (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    name = f"mynets_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(block)
    monkeypatch.syspath_prepend(str(tmp_path))
    sweep = SweepConfig(models=(f"{name}:small_cnn",), datasets=("digits",),
                        procedures=("projected",), constraints=("l11",), radii=(30.0,))
    assert len(sweep.points()) == 2
    model = build_model(f"{name}:small_cnn", (1, 8, 8), 10)
    # "the second conv and the first Linear"
    assert Projector(model, "l11", 30.0).names == ("2.weight", "6.weight")
    assert isinstance(model[2], torch.nn.Conv2d) and isinstance(model[6], torch.nn.Linear)
    result = train(TrainConfig(model=f"{name}:small_cnn", procedure="projected",
                               constraint="l11", radius=30.0, epochs=1))
    assert result.constrained_layers == ("2.weight", "6.weight")


def test_a_re_exported_factory_is_identified_by_its_defining_module_too(tmp_path, monkeypatch):
    """`mypkg:net` where mypkg does `from mypkg_nets import net`: editing the defining file
    changes the hash, and the edited factory is the one that runs."""
    stem = tmp_path.name.replace("-", "_")
    home, front = f"gb_nets_{stem}", f"gb_front_{stem}"
    source = "from torch import nn\n\n\ndef net(input_shape, num_classes):\n" \
             "    return nn.Sequential(nn.Flatten(), nn.Linear(16, WIDTH), nn.ReLU(),\n" \
             "                         nn.Linear(WIDTH, num_classes))\n\n\nWIDTH = 8\n"
    (tmp_path / f"{home}.py").write_text(source)
    (tmp_path / f"{front}.py").write_text(f"from {home} import net  # noqa: F401\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = f"{front}:net"
    before = plugins.source_hash(path)
    assert build_model(path, (1, 4, 4), 3)[1].out_features == 8
    (tmp_path / f"{home}.py").write_text(source.replace("WIDTH = 8", "WIDTH = 12"))
    assert plugins.source_hash(path) != before
    assert build_model(path, (1, 4, 4), 3)[1].out_features == 12
