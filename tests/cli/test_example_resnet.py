"""issue 24 item 4: the user-defined small ResNet of examples/ through `greenbench run` on
digits, projected l11 on its conv kernels, compacted by the dependency-graph path, with the
compacted model's measured inference speed-up stored and in the report (tiny budget)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from projlib.cli import app
from projlib.sweep import ResultsStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_example_resnet_end_to_end(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # `examples.resnet` is imported from the repository root
    db, report = tmp_path / "g.db", tmp_path / "r.html"
    result = CliRunner().invoke(app, [
        "run", "--model", "examples.resnet:build", "--dataset", "digits",
        "--procedure", "projected", "--constraint", "l11", "--radius", "10", "--epochs", "1",
        "--threads", "1", "--db", str(db), "--report", str(report),
    ])
    assert result.exit_code == 0, result.output
    with ResultsStore(db, read_only=True) as store:
        rows = {r["procedure"]: r for r in store.rows()}
    assert {r["status"] for r in rows.values()} == {"done"}
    dense, projected = rows["dense"], rows["projected"]
    assert dense["maccs_structured"] == dense["maccs_dense"]
    # l11 on the hidden conv kernels removes whole channels of the residual graph
    assert projected["maccs_structured"] < projected["maccs_dense"] == dense["maccs_dense"]
    assert projected["speedup_predicted_maccs"] > 1
    for row in (dense, projected):  # the compacted model was measured, not assumed
        assert row["compact_latency_b1_s"] > 0 and row["speedup_realised_latency"] > 0
        assert row["speedup_realised_throughput"] > 0
    assert "realised" in report.read_text()


@pytest.mark.slow
def test_example_resnet_lottery_retrains_full_size(monkeypatch):
    from projlib.sweep.runner import result_metrics
    from projlib.training import TrainConfig, train

    monkeypatch.chdir(ROOT)
    res = train(TrainConfig(dataset="digits", model="examples.resnet:build", procedure="lottery",
                            constraint="l11", radius=20.0, epochs=1, retrain_epochs=1,
                            batch_size=64, seed=0))
    assert res.retrain_speedup_predicted is None  # not an nn.Sequential: retrained full-size
    costs = result_metrics(res)
    assert costs["maccs_structured"] < costs["maccs_dense"]
