"""The validation split (`TrainConfig.validation`) and relative radii (`radius_mode`): what
trains on what, what the test set is read for, the absolute radius of each layer, and that the
defaults leave every existing point id (and so every stored result) where it was."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from projlib.cli import app
from projlib.projections import REGISTRY
from projlib.sweep import SweepConfig, canonical_config, point_id
from projlib.training import TrainConfig, load_dataset, train
from projlib.training.datasets import VALIDATION_SPLIT_ID, validation_split

BASE = dict(dataset="digits", model="mlp", epochs=2, batch_size=64, seed=1)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_split_is_fixed_disjoint_and_complete() -> None:
    keep, held = validation_split(1000, 0.1)
    again_keep, again_held = validation_split(1000, 0.1)
    assert torch.equal(keep, again_keep) and torch.equal(held, again_held)
    assert len(held) == 100 and len(keep) == 900
    assert set(keep.tolist()).isdisjoint(held.tolist())
    assert sorted(keep.tolist() + held.tolist()) == list(range(1000))
    assert torch.equal(keep, keep.sort().values)  # the kept examples keep their order
    for bad in (0, 0.6, -0.1):
        with pytest.raises(ValueError, match="validation"):
            validation_split(1000, bad)
    with pytest.raises(ValueError, match="holds out no example"):
        validation_split(3, 0.1)


def test_split_trains_on_the_rest_and_reads_the_test_set_once(digits) -> None:
    cfg = TrainConfig(**BASE, procedure="dense", validation=0.2)
    res = train(cfg, dataset=digits)
    keep, held = validation_split(digits.train_x.shape[0], 0.2)
    # the same run on a dataset that simply lacks the held-out examples: identical weights
    rest = dataclasses.replace(digits, train_x=digits.train_x[keep],
                               train_y=digits.train_y[keep], fingerprint="")
    plain = train(TrainConfig(**BASE, procedure="dense"), dataset=rest)
    for (name, a), b in zip(res.model.state_dict().items(), plain.model.state_dict().values(),
                            strict=True):
        assert torch.equal(a, b), name
    assert len(res.val_accuracy_per_epoch) == 2 and res.test_accuracy_per_epoch == []
    assert res.val_accuracy == res.val_accuracy_per_epoch[-1]
    with torch.no_grad():
        val = (res.model(digits.train_x[held]).argmax(1) == digits.train_y[held]).float().mean()
        test = (res.model(digits.test_x).argmax(1) == digits.test_y).float().mean()
    assert res.val_accuracy == pytest.approx(float(val))
    assert res.test_accuracy == pytest.approx(float(test))
    # no split: no validation figures, per-epoch accuracy on the test set as before
    assert plain.val_accuracy is None and plain.val_accuracy_per_epoch == []
    assert len(plain.test_accuracy_per_epoch) == 2


def test_defaults_keep_every_existing_point_id() -> None:
    # Hashes computed before the two fields existed: stored results stay reusable.
    old = TrainConfig(dataset="fashion-mnist", model="lenet300", procedure="projected",
                      constraint="l11", radius=20.0, epochs=1, batch_size=128, seed=3,
                      data_fingerprint="abc")
    assert point_id(old) == "2f14b32bc5f251e79fccfc9deea618cec289a643444a4da0484b572c569b7d2c"
    assert point_id(TrainConfig()) == (
        "78732b0501ccc4bc8d7de180d3087aa0253771b0e871031d9b3f5d34ad376078")
    assert "validation" not in canonical_config(old) and "radius_mode" not in canonical_config(old)


def test_split_and_mode_enter_the_identity() -> None:
    plain = TrainConfig(**BASE, procedure="projected", constraint="l1", radius=0.5)
    split = dataclasses.replace(plain, validation=0.1)
    relative = dataclasses.replace(plain, radius_mode="relative")
    ids = {point_id(plain), point_id(split), point_id(relative),
           point_id(dataclasses.replace(plain, validation=0.2))}
    assert len(ids) == 4
    assert canonical_config(split)["validation_split"] == VALIDATION_SPLIT_ID
    assert point_id(dataclasses.replace(plain, validation=0)) == point_id(plain)


def test_bad_values_name_the_field() -> None:
    with pytest.raises(ValueError, match="validation must be in"):
        TrainConfig(validation=0.9)
    with pytest.raises(TypeError, match="validation must be a number"):
        TrainConfig(validation="0.1")
    with pytest.raises(ValueError, match="radius_mode must be one of"):
        TrainConfig(procedure="projected", constraint="l1", radius=1.0, radius_mode="rel")
    with pytest.raises(ValueError, match="needs a constraint"):
        TrainConfig(radius_mode="relative")


@pytest.mark.parametrize("constraint", ["l11", "nuclear"])
def test_relative_radius_is_a_fraction_of_the_initial_norm(digits, constraint: str) -> None:
    cfg = TrainConfig(**BASE, procedure="projected", constraint=constraint, radius=0.05,
                      radius_mode="relative")
    res = train(cfg, dataset=digits)
    (name,) = res.constrained_layers
    expected = 0.05 * REGISTRY[constraint].norm(res.initial_state[name])
    assert res.layer_radii == {name: pytest.approx(expected, rel=1e-12)}
    # the same run as an absolute radius of that size gives the same weights, bit for bit
    absolute = train(dataclasses.replace(cfg, radius=res.layer_radii[name],
                                         radius_mode="absolute"), dataset=digits)
    assert absolute.layer_radii == {name: res.layer_radii[name]}
    for a, b in zip(res.model.parameters(), absolute.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_sweep_gives_the_dense_baseline_no_radius_mode() -> None:
    sweep = SweepConfig(procedures=("projected",), constraints=("l1",), radii=(0.1,),
                        options=(("radius_mode", "relative"), ("validation", 0.1)))
    dense, projected = sweep.points()
    assert dense.procedure == "dense" and dense.radius_mode == "absolute"
    assert dense.validation == projected.validation == 0.1
    assert projected.radius_mode == "relative"


def test_cli_and_store(tmp_path: Path) -> None:
    db, cfg = tmp_path / "r.db", tmp_path / "s.toml"
    cfg.write_text('constraint = ["l11"]\nradius = [0.1]\nepochs = 1\n'
                   '[train]\nvalidation = 0.1\nradius_mode = "relative"\n')
    result = CliRunner().invoke(app, ["run", str(cfg), "--db", str(db), "--report",
                                      str(tmp_path / "r.html"), "--threads", "1",
                                      "--no-measure-inference"])
    assert result.exit_code == 0, result.output
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        rows = {r["procedure"]: dict(r) for r in conn.execute("SELECT * FROM points")}
    for row in rows.values():
        assert 0 <= row["val_accuracy"] <= 1
        assert json.loads(row["config_json"])["validation"] == 0.1
    radii = json.loads(rows["projected"]["layer_radii_json"])
    assert list(radii) == ["3.weight"] and radii["3.weight"] > 0.1
    assert rows["dense"]["layer_radii_json"] is None
    # bad values: one line, exit 2, nothing written
    for args in (["--validation", "0.7"], ["--radius-mode", "fraction"]):
        bad = CliRunner().invoke(app, ["run", *args, "--db", str(tmp_path / "bad.db")])
        assert bad.exit_code == 2 and len(bad.output.strip().splitlines()) == 1, bad.output
        assert not (tmp_path / "bad.db").exists()
    cfg.write_text('[train]\nvalidation = "10%"\n')
    bad = CliRunner().invoke(app, ["run", str(cfg), "--db", str(tmp_path / "bad.db")])
    assert bad.exit_code == 2 and "validation" in bad.output


def test_warm_up_trains_on_what_the_split_leaves(digits, monkeypatch) -> None:
    from projlib.sweep import warmup

    seen = []
    monkeypatch.setattr(warmup, "train", lambda cfg, dataset: seen.append((cfg, dataset)))
    warmup.reset_caches()
    cfg = TrainConfig(**BASE, procedure="dense", validation=0.2)
    warmup.warm_up(cfg, digits)
    (tiny, small), = seen
    keep, _ = validation_split(digits.train_x.shape[0], 0.2)
    # the real run's short last batch, and no split of the slice (which may be too small)
    assert small.train_x.shape[0] == 2 * 64 + len(keep) % 64 and tiny.validation == 0.0
    warmup.reset_caches()
