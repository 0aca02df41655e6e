"""`greenbench run` through Typer's CliRunner: a real sweep on digits, resume, failures,
TOML configs and every validation error path (exit code 2, one line, nothing written)."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from projlib.cli import app, main
from projlib.sweep import executors

runner = CliRunner()


def _rows(db: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    return [dict(r) for r in conn.execute("SELECT * FROM points")]


@pytest.fixture(scope="module")
def real_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Any]:
    """One real two-point sweep on digits (dense + projected l11), shared by several tests."""
    tmp = tmp_path_factory.mktemp("real")
    db, report = tmp / "g.db", tmp / "out" / "g.html"
    args = ["run", "--epochs", "2", "--constraint", "l11", "--radius", "30", "--db", str(db),
            "--report", str(report), "--country", "FRA"]
    result = runner.invoke(app, args)
    return db, report, result, args


def test_real_sweep_end_to_end(real_sweep: tuple) -> None:
    db, report, result, _ = real_sweep
    assert result.exit_code == 0, result.output
    assert "2 points (0 already done)" in result.output
    assert f"report: {report.resolve()}" in result.output
    html = report.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html")
    rows = _rows(db)
    assert sorted(r["procedure"] for r in rows) == ["dense", "projected"]
    for r in rows:
        assert r["status"] == "done" and r["error"] is None
        assert 0 <= r["test_accuracy"] <= 1
        assert r["maccs_structured"] <= r["maccs_dense"]
        assert r["torch_version"] and r["device_name"] and r["package_version"]
        assert r["energy_method"] and r["country_iso_code"] == "FRA"
        assert r["energy_j"] is None or r["energy_j"] > 0
        assert r["started_at"] <= r["finished_at"]
    projected = next(r for r in rows if r["procedure"] == "projected")
    assert projected["fraction_nonzero"] < 1.0


def test_rerun_skips_finished_points(real_sweep: tuple) -> None:
    db, _, first, args = real_sweep
    assert first.exit_code == 0
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 points (2 already done)" in result.output
    assert all(r["attempts"] == 1 for r in _rows(db))


def test_runs_formats_and_report(real_sweep: tuple, tmp_path: Path) -> None:
    db = real_sweep[0]
    as_json = runner.invoke(app, ["runs", "--db", str(db), "--format", "json"])
    assert as_json.exit_code == 0
    rows = json.loads(as_json.stdout)
    assert len(rows) == 2 and {r["status"] for r in rows} == {"done"}
    as_csv = runner.invoke(app, ["runs", "--db", str(db), "--format", "csv"])
    lines = as_csv.stdout.strip().splitlines()
    assert lines[0].startswith("point_id,status,error,dataset") and len(lines) == 3
    some = runner.invoke(app, ["runs", "--db", str(db), "--format", "csv",
                               "--columns", "procedure, test_accuracy,train_step"])
    assert some.exit_code == 0, some.output
    picked = list(csv.DictReader(io.StringIO(some.stdout)))
    assert [list(r) for r in picked] == [["procedure", "test_accuracy", "train_step"]] * 2
    assert {r["train_step"] for r in picked} == {"eager"}  # CPU: no graph
    for bad, needle in (("accuracy", "unknown column(s) accuracy"), (",", "(none given)")):
        refused = runner.invoke(app, ["runs", "--db", str(db), "--format", "csv",
                                      "--columns", bad])
        assert refused.exit_code == 2 and needle in refused.stderr
    only_json = runner.invoke(app, ["runs", "--db", str(db), "--columns", "seed"])
    assert only_json.exit_code == 2 and "only with --format json or csv" in only_json.stderr
    table = runner.invoke(app, ["runs", "--db", str(db), "--status", "done"])
    assert table.exit_code == 0 and "projected" in table.stdout and "l11" in table.stdout
    out = tmp_path / "again.html"
    rep = runner.invoke(app, ["report", "--db", str(db), "-o", str(out)])
    assert rep.exit_code == 0 and out.is_file() and "(2 points)" in rep.output


def test_failed_point_recorded_sweep_continues_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def flaky(config, progress=None, **_: Any) -> dict[str, Any]:
        if config.constraint == "l1":
            raise RuntimeError("simulated failure in l1")
        progress({"phase": "train", "epoch": 1, "epochs": 1, "test_accuracy": 0.4})
        return {"test_accuracy": 0.4}

    monkeypatch.setattr(executors, "run_point", flaky)
    db, report = tmp_path / "f.db", tmp_path / "f.html"
    result = runner.invoke(app, ["run", "--constraint", "l1", "--constraint", "l21",
                                 "--radius", "5", "--db", str(db), "--report", str(report)])
    assert result.exit_code == 1, result.output
    assert "failed" in result.output and "RuntimeError: simulated failure in l1" in result.output
    assert report.is_file()  # the report is still written
    statuses = {r["constraint"]: r["status"] for r in _rows(db)}
    assert statuses == {None: "done", "l1": "failed", "l21": "done"}
    failed = runner.invoke(app, ["runs", "--db", str(db), "--status", "failed", "--format", "json"])
    assert json.loads(failed.stdout)[0]["error"].startswith("RuntimeError")


def test_toml_config_with_flag_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []

    def record(config, **_: Any) -> dict[str, Any]:
        seen.append(config)
        return {"test_accuracy": 0.5}

    monkeypatch.setattr(executors, "run_point", record)
    cfg = tmp_path / "sweep.toml"
    cfg.write_text(
        'procedure = ["projected", "lottery"]\n'
        "seeds = 2\nepochs = 7\n"
        'db = "results/s.db"\nreport = "results/s.html"\n'
        "[radius]\nl1 = [10.0, 20.0]\nnuclear = [3.0]\n"
        "[train]\nlr = 0.01\n"
    )
    result = runner.invoke(app, ["run", str(cfg), "--epochs", "3"])
    assert result.exit_code == 0, result.output
    db = tmp_path / "results" / "s.db"  # relative to the TOML file
    assert db.is_file() and (tmp_path / "results" / "s.html").is_file()
    # 2 seeds x (dense + projected x (2 l1 radii + 1 nuclear radius) + lottery x 2 l1 radii):
    # a lottery of nuclear (a low-rank constraint, whose mask keeps every weight) is not run
    assert len(seen) == 2 * (1 + 3 + 2)
    assert not any(c.procedure == "lottery" and c.constraint == "nuclear" for c in seen)
    assert "not run: nuclear x lottery" in result.output
    assert {c.epochs for c in seen} == {3} and {c.lr for c in seen} == {0.01}
    assert {(c.constraint, c.radius) for c in seen if c.constraint} == {
        ("l1", 10.0), ("l1", 20.0), ("nuclear", 3.0)
    }


def _bad_config(tmp_path: Path, text: str | None) -> str:
    path = tmp_path / "bad.toml"
    if text is not None:
        path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--constraint", "l7"], "--constraint: unknown name 'l7'; valid: l1, l21"),
        (["--dataset", "imagenet"], "--dataset: unknown name 'imagenet'; valid: "),
        (["--model", "convnet"], "model 'convnet' does not fit dataset 'digits'"),
        (["--procedure", "pruned"], "--procedure: unknown name 'pruned'"),
        (["--radius", "abc"], "--radius: 'abc' is not a number"),
        (["--radius", "-3"], "--radius must be a finite number > 0, got -3.0"),
        (["--radius", "l9=3"], "--radius: unknown constraint 'l9'; valid: l1, l21"),
        (["--constraint", "l1", "--radius", "l11=3"], "--radius: l11 not among the swept"),
        (["--seeds", "0"], "--seeds: must be between 1 and 10,000"),
        (["--epochs", "0"], "--epochs must be >= 1"),
        (["--executor", "slurm"], "--executor: 'slurm' is not one of local, ray"),
        (["--device", "gpu"], "--device: device must be one of cpu, cuda, auto"),
        (["--country", "fr"], "--country: country_iso_code must be an upper-case ISO"),
        (["--gpus-per-task", "1"], "--gpus-per-task: only used with --executor ray"),
        (["--optimizer", "lbfgs"], "--optimizer must be one of adam, sgd"),
        (["--executor", "ray", "--device", "cuda"], "--gpus-per-task: must be > 0 for --device"),
        (["--report", "."], "--report: . is a directory"),
        (["--lr", "-1"], "--lr must be a finite number > 0"),
    ],
)
def test_bad_options_exit_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    db = tmp_path / "never.db"
    result = runner.invoke(app, ["run", *args, "--db", str(db)])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: ")
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert not db.exists()  # nothing written for a sweep that failed validation


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "config: cannot read"),
        ("epochs = [", "is not valid TOML"),
        ("epochz = 3\n", "config: unknown key(s) epochz; valid: dataset"),
        ("[train]\nmomentum = 0.9\n", "config: unknown [train] option(s) momentum"),
        ('constraint = "l1"\nradius = "big"\n', "config: radius must be a number"),
        ("seeds = true\n", "config: seeds must be an integer"),
    ],
)
def test_bad_config_file_exit_2(tmp_path: Path, text: str | None, message: str) -> None:
    db = tmp_path / "never.db"
    result = runner.invoke(app, ["run", _bad_config(tmp_path, text), "--db", str(db)])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and message in result.stderr
    assert not db.exists()


def test_unusable_db_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "text.db"
    bad.write_text("not a database " * 200)
    result = runner.invoke(app, ["run", "--db", str(bad), "--epochs", "1"])
    assert result.exit_code == 2 and "--db: cannot use" in result.stderr
    missing = runner.invoke(app, ["runs", "--db", str(tmp_path / "missing.db")])
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    fmt = runner.invoke(app, ["runs", "--db", str(bad), "--format", "xml"])
    assert fmt.exit_code == 2 and "--format: 'xml' is not one of table, json, csv" in fmt.stderr


def test_main_reduces_click_usage_errors_to_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run", "--seeds", "many"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'--seeds'" in err and "integer" in err
    with pytest.raises(SystemExit) as exc:
        main(["run", "--no-such-option"])
    assert exc.value.code == 2 and "--no-such-option" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0 and "run" in capsys.readouterr().out


def test_env_lists_devices_backends_datasets() -> None:
    result = runner.invoke(app, ["env"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    for expected in ("devices", "cpu:", "energy backends", "nvml:", "rapl:", "codecarbon:",
                     "datasets", "digits: found"):
        assert expected in out


@pytest.mark.gpu
def test_cuda_point_end_to_end(tmp_path: Path) -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device (torch.cuda.is_available() is False)")
    db, report = tmp_path / "gpu.db", tmp_path / "gpu.html"
    result = runner.invoke(app, ["run", "--device", "cuda", "--epochs", "2", "--constraint",
                                 "l11", "--radius", "30", "--db", str(db), "--report", str(report)])
    assert result.exit_code == 0, result.output
    rows = _rows(db)
    assert len(rows) == 2 and all(r["status"] == "done" for r in rows)
    for r in rows:
        assert json.loads(r["config_json"])["device"] == "cuda"
        assert r["device_name"] == torch.cuda.get_device_name(0)
        assert r["cuda_version"] == torch.version.cuda
        # on a GPU with NVML the energy is measured (counter or sampled power), never 0
        assert r["energy_j"] is None or r["energy_j"] > 0
        gpus = [d for d in json.loads(r["energy_json"])["devices"] if d["kind"] == "gpu"]
        assert gpus, r["energy_json"]  # the NVML backend names devices gpu0, gpu1, ...
        assert all(d["method"] in ("counter", "power-integral") for d in gpus), gpus
        assert all(d["name"].startswith("gpu") for d in gpus)
        # the per-point figures of a measuring backend: idle baseline, warm-up, inference
        assert r["idle_power_w"] is not None and r["idle_power_w"] > 0
        assert r["energy_above_idle_j"] is not None
        assert r["warmup_time_s"] is not None and r["threads"] >= 1
        assert r["infer_latency_b1_s"] > 0 and r["infer_energy_per_1000_j"] is not None


def test_unreadable_dataset_is_one_line_before_anything_runs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (data / stem).write_bytes(b"\x00\x00\x08\x03truncated")
    db = tmp_path / "never.db"
    result = runner.invoke(app, ["run", "--dataset", "mnist", "--model", "lenet300",
                                 "--data-dir", str(data), "--db", str(db)])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: --dataset: mnist: ") and result.stderr.count("\n") == 1
    assert not db.exists()


def test_run_help_shows_the_defaults_a_bare_run_resolves_to() -> None:
    """The help's defaults are read from the values `greenbench run` resolves to with no
    flags, never written by hand: each one shown is what a bare run uses."""
    from projlib.cli.options import RunFlags, resolve_run_options

    result = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "2000"},
                                terminal_width=2000)
    assert result.exit_code == 0, result.output
    shown = " ".join(result.output.split())
    opts = resolve_run_options(RunFlags())
    train = opts.sweep.options
    for value in (", ".join(opts.sweep.datasets), ", ".join(opts.sweep.models),
                  ", ".join(opts.sweep.constraints), str(opts.sweep.epochs),
                  str(len(opts.sweep.seeds)), opts.country, str(opts.db), str(opts.report),
                  opts.executor, f"{train.lr:g}", train.optimizer,
                  str(train.batch_size)):
        assert f"(default: {value}" in shown, value


def test_a_report_without_its_marker_is_never_written(tmp_path: Path, monkeypatch) -> None:
    """A rendered page that lacks the generator marker (which later runs use to recognise a
    report they may replace) is refused before anything is written, even under -O."""
    from projlib.cli import common

    monkeypatch.setattr(common, "build_report", lambda rows, provenance, config=None:
                        "<html>no marker</html>")
    out = tmp_path / "r.html"
    with pytest.raises(RuntimeError, match="marker"):
        common.write_report([], {}, out)
    assert not out.exists() and list(tmp_path.iterdir()) == []
