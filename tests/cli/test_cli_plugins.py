"""`greenbench run --model package.module:factory --dataset package.module:loader`: your own
model and data in a sweep, from the flags and from TOML; editing the model gives new points;
bad paths are one line and exit 2 before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from projlib.cli import app
from projlib.cli.summary import fully_connected_models
from projlib.sweep import ResultsStore

runner = CliRunner()

EXTRA = '''

def wrong(input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 5))


def not_data():
    return [1, 2, 3]
'''


@pytest.fixture
def plugin(plugin_writer):
    return plugin_writer(EXTRA)


def _args(tmp_path: Path, *extra: str) -> list[str]:
    return ["--procedure", "projected", "--constraint", "l11", "--radius", "5", "--epochs", "2",
            "--batch-size", "16", "--threads", "1", "--no-measure-inference",
            "--db", str(tmp_path / "g.db"), "--report", str(tmp_path / "r.html"), *extra]


def test_own_model_and_data_in_a_sweep_and_an_edit_gives_new_points(plugin, tmp_path):
    mod, file = plugin
    flags = ["--model", f"{mod}:net", "--dataset", f"{mod}:blobs"]
    first = runner.invoke(app, ["run", *flags, *_args(tmp_path)])
    assert first.exit_code == 0, first.output
    assert "2 points (0 already done)" in first.output  # dense baseline + projected
    again = runner.invoke(app, ["run", *flags, *_args(tmp_path)])
    assert "2 points (2 already done)" in again.output

    toml = tmp_path / "sweep.toml"  # the same sweep from a TOML file: the same points
    toml.write_text(f'model = ["{mod}:net"]\ndataset = ["{mod}:blobs"]\n')
    from_file = runner.invoke(app, ["run", str(toml), *_args(tmp_path)])
    assert from_file.exit_code == 0, from_file.output
    assert "2 points (2 already done)" in from_file.output

    file.write_text(file.read_text() + "\n# an edit\n")
    edited = runner.invoke(app, ["run", *flags, *_args(tmp_path)])
    assert edited.exit_code == 0, edited.output
    assert "2 points (0 already done)" in edited.output

    with ResultsStore(tmp_path / "g.db", read_only=True) as store:
        rows = store.rows()
    assert len(rows) == 4 and {r["status"] for r in rows} == {"done"}
    assert {r["model"] for r in rows} == {f"{mod}:net"}
    assert {r["dataset"] for r in rows} == {f"{mod}:blobs"}
    projected = [r for r in rows if r["procedure"] == "projected"]
    assert all(r["fraction_nonzero"] < 1 for r in projected)


@pytest.mark.parametrize("flags, message", [
    (["--model", "{mod}:wrong"], "Error: --model '{mod}:wrong': output for a batch of shape "
                                 "(2, 1, 4, 4) is (2, 5), expected (2, 3)"),
    (["--model", "{mod}:nope"], "Error: --model '{mod}:nope': module {mod} has no attribute"),
    (["--model", "no_such_pkg_q.mod:net"], "Error: --model 'no_such_pkg_q.mod:net': cannot "
                                           "import no_such_pkg_q.mod: ModuleNotFoundError"),
    (["--model", "{mod}:net:x"], "Error: --model '{mod}:net:x' is not an import path"),
    (["--dataset", "{mod}:not_data"], "Error: --dataset '{mod}:not_data': the loader returned "
                                      "a list, not a projlib.training.Dataset"),
])
def test_bad_plugins_are_one_line_and_exit_2_before_anything(plugin, tmp_path, flags, message):
    mod, _ = plugin
    flags = [f.format(mod=mod) for f in flags]
    defaults = {"--model": f"{mod}:net", "--dataset": f"{mod}:blobs"}
    for flag, value in defaults.items():
        if flag not in flags:
            flags += [flag, value]
    result = runner.invoke(app, ["run", *flags, *_args(tmp_path)])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(message.format(mod=mod))
    assert not (tmp_path / "g.db").exists()


def test_summary_classes_a_model_of_your_own_by_its_stored_weights():
    def row(model, shapes):
        return {"model": model, "layers_json": json.dumps([{"shape": s} for s in shapes])}

    rows = [row("pkg.mlp:net", [[16, 8], [3, 16]]),
            row("pkg.cnn:net", [[8, 1, 3, 3], [3, 72]]), row("convnet", [[10, 1, 5, 5]])]
    assert fully_connected_models(rows) == {"lenet300", "mlp", "pkg.mlp:net"}
