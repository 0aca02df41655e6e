"""The CUDA-graph training step (`TrainConfig.cuda_graph`), checked on the CPU.

A real capture needs a GPU (tests/training/test_graph_step_gpu.py). Here `_Runner._record`
is replaced by a stand-in with the documented semantics of a replayed capture (warm-up steps
that really train, then each replay = one step that overwrites the gradients), so everything
around it runs on the CPU: the static index buffer, the rollback of the warm-up, the eager
short last batch, the kept gradient tensors, the fallback when capture fails. Each must leave
the weights bit for bit those of the eager loop.
"""

from __future__ import annotations

import pytest
import torch

from projlib.sweep import point_id
from projlib.training import TrainConfig, load_dataset, train
from projlib.training import procedures as P

# digits' training split is not a multiple of 100: every epoch ends with a short batch.
BASE = {"dataset": "digits", "model": "mlp", "epochs": 2, "batch_size": 100, "seed": 3}


class FakeGraph:
    def __init__(self, run, opt) -> None:
        self.run, self.opt, self.replays = run, opt, 0

    def replay(self) -> None:
        self.opt.zero_grad(set_to_none=False)  # a captured backward writes, never accumulates
        self.run()
        self.replays += 1


def fake_record(graphs):
    def record(self, run, opt):
        for _ in range(P.GRAPH_WARMUP_STEPS):  # warm-up steps train for real
            opt.zero_grad(set_to_none=True)
            run()
        opt.zero_grad(set_to_none=True)
        graphs.append(FakeGraph(run, opt))
        return graphs[-1]
    return record


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _weights(result):
    return {k: v.clone() for k, v in result.model.state_dict().items()}


CASES = [
    dict(procedure="dense", optimizer="sgd", lr=0.02),
    dict(procedure="projected", constraint="l11", radius=60.0, optimizer="sgd", lr=0.02),
    dict(procedure="lottery", constraint="l21", radius=20.0, optimizer="adam", lr=1e-3),
    dict(procedure="magnitude", constraint="l1", radius=40.0, optimizer="sgd", lr=0.02),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["procedure"])
def test_graph_path_trains_bit_for_bit_like_the_eager_loop(digits, monkeypatch, case):
    cfg = TrainConfig(**BASE, **case)
    eager = train(cfg, dataset=digits)
    assert eager.step_mode == "eager"  # CPU: no graph is attempted
    graphs: list[FakeGraph] = []
    monkeypatch.setattr(P._Runner, "_graphs_wanted", lambda self: self.cfg.cuda_graph)
    monkeypatch.setattr(P._Runner, "_record", fake_record(graphs))
    graphed = train(cfg, dataset=digits)
    assert graphed.step_mode == "cuda-graph"
    phases = len(set(graphed.epoch_phases))
    assert len(graphs) == phases  # one capture per phase
    n = digits.train_x.shape[0]
    assert n % BASE["batch_size"]  # there is a short last batch, run eagerly
    assert all(g.replays == BASE["epochs"] * (n // BASE["batch_size"]) for g in graphs)
    a, b = _weights(eager), _weights(graphed)
    assert all(torch.equal(a[k], b[k]) for k in a), "weights differ from the eager loop"
    assert graphed.train_loss_per_epoch == eager.train_loss_per_epoch
    assert graphed.test_accuracy_per_epoch == eager.test_accuracy_per_epoch
    # the option turns it off
    off = train(TrainConfig(**BASE, **case, cuda_graph=False), dataset=digits)
    assert off.step_mode == "eager" and len(graphs) == phases


def test_failed_capture_falls_back_to_eager_and_says_why(digits, monkeypatch):
    cfg = TrainConfig(**BASE, procedure="projected", constraint="l1", radius=40.0)
    eager = train(cfg, dataset=digits)

    def broken(self, run, opt):
        opt.zero_grad(set_to_none=True)
        run()  # a warm-up step trained before capture failed: it must be rolled back
        raise RuntimeError("operation not permitted when stream is capturing\nmore")

    monkeypatch.setattr(P._Runner, "_graphs_wanted", lambda self: True)
    monkeypatch.setattr(P._Runner, "_record", broken)
    fallback = train(cfg, dataset=digits)
    assert fallback.step_mode == ("eager (CUDA graph capture failed: operation not permitted "
                                  "when stream is capturing more)")
    a, b = _weights(eager), _weights(fallback)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cuda_graph_is_not_part_of_the_point_identity() -> None:
    cfg = TrainConfig(**BASE, procedure="dense")
    assert point_id(cfg) == point_id(TrainConfig(**BASE, procedure="dense", cuda_graph=False))
    with pytest.raises(TypeError, match="cuda_graph"):
        TrainConfig(**BASE, cuda_graph="yes")


def test_gpu_training_report_runs_end_to_end_on_a_cpu_smoke_size(capsys) -> None:
    # The GPU script is run by hand on a CUDA machine; its Python is checked here on the CPU
    # (no graph there: the graph rows say "eager" and the speed checks may FAIL, by design).
    bench = pytest.importorskip("benchmarks.gpu_training")
    bench.report(None, device="cpu", images=600)
    out = capsys.readouterr().out
    assert out.count("| dense, CUDA graph | eager |") == 1
    assert "two graph runs of seed 0: same weights bit for bit | PASS" in out
    assert out.count("| PASS |") + out.count("| FAIL |") == 5
