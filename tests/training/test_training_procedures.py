"""The four procedures on digits (seconds each), sparsity accounting and masks."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from projlib.training import (
    PROCEDURES,
    TrainConfig,
    apply_masks,
    build_model,
    layer_sparsity,
    load_dataset,
    procedures,
    select_layers,
    train,
)

# digits + mlp: 20 epochs of batch 32 (~840 steps of SGD with momentum at the paper's step 0.02)
# reach ~97% dense in about a second on one thread.
BASE = {"dataset": "digits", "model": "mlp", "epochs": 20, "batch_size": 32, "seed": 0,
        "optimizer": "sgd", "lr": 0.02}
# l11 radius on the mlp's Linear(128, 64) (its l1,1 norm is ~360 at init). Measured on this
# config (one CPU thread): r=45 removes 73% of its input columns at -1.8 points, r=60 removes 59%
# at -1.3 points, r=30 84% at -2.4 points; 60 leaves margin on both acceptance bounds.
L11_RADIUS = 60.0


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def dense(digits):
    return train(TrainConfig(**BASE), dataset=digits)


@pytest.fixture(scope="module")
def projected(digits):
    cfg = TrainConfig(**BASE, procedure="projected", constraint="l11", radius=L11_RADIUS)
    return train(cfg, dataset=digits)


def state_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_dense_accuracy_and_result_fields(dense):
    assert dense.test_accuracy >= 0.95
    assert len(dense.train_loss_per_epoch) == len(dense.test_accuracy_per_epoch) == 20
    assert dense.epoch_phases == ["train"] * 20
    assert dense.train_loss_per_epoch[-1] < dense.train_loss_per_epoch[0]
    assert dense.masks is None and dense.device == "cpu" and dense.wall_time_s > 0
    assert dense.input_shape == (1, 8, 8) and dense.num_classes == 10
    assert not dense.model.training
    assert [s.name for s in dense.layers] == ["1.weight", "3.weight", "5.weight"]
    assert [s.constrained for s in dense.layers] == [False, True, False]
    assert dense.fraction_nonzero == 1.0 and dense.removed_input_fraction == 0.0
    # initial_state is the untrained init, not the trained weights
    assert not torch.equal(dense.initial_state["3.weight"], dense.model.state_dict()["3.weight"])


def test_bit_for_bit_reproducible_and_rng_untouched(digits, dense):
    rng_before = torch.get_rng_state()
    events = []
    again = train(TrainConfig(**BASE), progress=events.append, dataset=digits)
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert state_equal(again.model, dense.model)
    assert again.train_loss_per_epoch == dense.train_loss_per_epoch
    assert [e["epoch"] for e in events] == list(range(1, 21))
    assert events[-1] == {"phase": "train", "epoch": 20, "epochs": 20,
                          "train_loss": dense.train_loss_per_epoch[-1],
                          "test_accuracy": dense.test_accuracy}
    other_seed = train(TrainConfig(**{**BASE, "seed": 1, "epochs": 1}), dataset=digits)
    assert not torch.equal(other_seed.initial_state["1.weight"], dense.initial_state["1.weight"])


def test_projected_l11_removes_columns_within_3_points(dense, projected):
    w = projected.model.state_dict()["3.weight"]
    assert float(w.abs().sum()) <= L11_RADIUS * (1 + 1e-5)  # ends on a projection: feasible
    assert projected.removed_input_fraction >= 0.40
    assert projected.test_accuracy >= dense.test_accuracy - 0.03
    hidden = next(s for s in projected.layers if s.name == "3.weight")
    assert hidden.columns_removed == int((w.abs().sum(dim=0) == 0).sum())
    assert hidden.rows_removed == int((w.abs().sum(dim=1) == 0).sum())
    assert hidden.nonzero == int((w != 0).sum())
    # unconstrained layers stay dense
    assert all(s.fraction_zero == 0.0 for s in projected.layers if not s.constrained)
    assert projected.fraction_nonzero == hidden.nonzero / hidden.numel


def test_lottery_keeps_mask_exactly(digits, projected):
    cfg = TrainConfig(**BASE, procedure="lottery", constraint="l11", radius=L11_RADIUS,
                      retrain_epochs=10)
    res = train(cfg, dataset=digits)
    assert res.epoch_phases == ["phase1"] * 20 + ["retrain"] * 10
    # phase 1 is the projected run, so the mask is its nonzero pattern
    assert res.test_accuracy_per_epoch[:20] == projected.test_accuracy_per_epoch
    mask = res.masks["3.weight"]
    assert torch.equal(mask, projected.model.state_dict()["3.weight"] != 0)
    w = res.model.state_dict()["3.weight"]
    assert torch.count_nonzero(w[~mask]) == 0  # exactly zero after 430 momentum steps
    # survivors were rewound to the init and retrained (they moved, and are not the phase-1 ones)
    assert not torch.equal(w[mask], res.initial_state["3.weight"][mask])
    assert res.test_accuracy >= 0.85


def test_masked_gradients_are_zero(digits, monkeypatch):
    # Observe the gradients the optimizer sees, through a hook on the retrain phase's parameter.
    # Adam: its per-weight state is what could resurrect a masked weight. The full-size masked
    # retrain (the compacted one is compared with it in test_compacted_retrain.py).
    monkeypatch.setattr(procedures, "COMPACT_RETRAIN", False)
    cfg = TrainConfig(**{**BASE, "epochs": 2, "optimizer": "adam", "lr": 1e-3},
                      procedure="lottery", constraint="l11", radius=L11_RADIUS, retrain_epochs=1)
    seen = []
    original = torch.optim.Adam.step

    def spy(self, *args, **kwargs):
        for group in self.param_groups:
            for p in group["params"]:
                if p.shape == (64, 128) and p.grad is not None:
                    seen.append((p.detach() == 0, p.grad.detach().clone()))
        return original(self, *args, **kwargs)

    torch.optim.Adam.step = spy
    try:
        res = train(cfg, dataset=digits)
    finally:
        torch.optim.Adam.step = original
    mask = res.masks["3.weight"]
    retrain = seen[-43:]  # 1347 / 32 -> 43 steps in the retrain epoch
    assert all(torch.count_nonzero(g[~mask]) == 0 for _, g in retrain)
    assert all(torch.equal(zero, zero | ~mask) for zero, _ in retrain)


def test_magnitude_matches_projected_sparsity(digits, projected):
    cfg = TrainConfig(**{**BASE, "epochs": 10}, procedure="magnitude", constraint="l11",
                      radius=L11_RADIUS)
    res = train(cfg, dataset=digits)
    assert res.epoch_phases == ["match"] * 10 + ["phase1"] * 10 + ["retrain"] * 10
    short = train(TrainConfig(**{**BASE, "epochs": 10}, procedure="projected", constraint="l11",
                              radius=L11_RADIUS), dataset=digits)
    target = next(s for s in short.layers if s.name == "3.weight")
    got = next(s for s in res.layers if s.name == "3.weight")
    assert int(res.masks["3.weight"].sum()) == target.nonzero  # matched per-layer sparsity
    assert got.nonzero <= target.nonzero
    assert torch.count_nonzero(res.model.state_dict()["3.weight"][~res.masks["3.weight"]]) == 0


def test_magnitude_given_sparsity_is_largest_magnitude_of_dense(digits, dense):
    cfg = TrainConfig(**BASE, procedure="magnitude", layer_sparsity={"3.weight": 0.75},
                      retrain_epochs=2)
    res = train(cfg, dataset=digits)
    mask = res.masks["3.weight"]
    assert int(mask.sum()) == round(0.25 * 64 * 128)
    # phase 1 is the dense run: the mask keeps its largest-magnitude weights
    trained = dense.model.state_dict()["3.weight"].abs()
    assert float(trained[mask].min()) >= float(trained[~mask].max())
    assert torch.count_nonzero(res.model.state_dict()["3.weight"][~mask]) == 0
    assert [s.constrained for s in res.layers] == [False, True, False]


@pytest.mark.parametrize("constraint", ["l1", "l21", "nuclear"])
def test_projected_other_constraints_feasible(digits, constraint):
    from projlib.projections import REGISTRY

    cfg = TrainConfig(**{**BASE, "epochs": 2}, procedure="projected", constraint=constraint,
                      radius=5.0)
    res = train(cfg, dataset=digits)
    w = res.model.state_dict()["3.weight"]
    norm = {"l1": w.abs().sum(), "l21": w.norm(dim=0).sum(),
            "nuclear": torch.linalg.svdvals(w).sum()}[constraint]
    assert float(norm) <= 5.0 * (1 + 1e-4)
    assert REGISTRY[constraint].exact


def test_layer_selection(digits):
    m = build_model("mlp", (1, 8, 8), 10)
    assert select_layers(m, None, False, False) == ["3.weight"]
    assert select_layers(m, None, True, False) == ["1.weight", "3.weight"]
    assert select_layers(m, None, True, True) == ["1.weight", "3.weight", "5.weight"]
    assert select_layers(m, ("5.*", "1.weight"), False, False) == ["1.weight", "5.weight"]
    with pytest.raises(ValueError, match="layers pattern '9.weight' matches no weight"):
        select_layers(m, ("9.weight",), False, False)
    cfg = TrainConfig(**BASE, procedure="projected", constraint="l11", radius=1.0,
                      layers=("0.weight",))
    with pytest.raises(ValueError, match="layers pattern"):
        train(cfg, dataset=digits)


def test_conv_groups_are_channel_slabs():
    m = build_model("convnet", (1, 28, 28), 10)
    with torch.no_grad():
        w = m[3].weight  # (20, 10, 5, 5)
        w[:, 3] = 0  # input channel 3 of conv 2: a column (slab of 20x5x5)
        w[7] = 0  # filter 7: a row
        w[:, 5, 0, 0] = 0  # a partial slab removes nothing
    stats = {s.name: s for s in layer_sparsity(m, ["3.weight"])}["3.weight"]
    assert (stats.columns_total, stats.columns_removed) == (10, 1)
    assert (stats.rows_total, stats.rows_removed) == (20, 1)
    assert stats.nonzero == 20 * 10 * 25 - 20 * 25 - 9 * 25 - 19
    assert stats.constrained and stats.shape == (20, 10, 5, 5)


def test_convnet_projected_on_small_idx(tmp_path, idx_writer, no_system_data):
    idx_writer(tmp_path, n_train=40, n_test=10)
    cfg = TrainConfig(dataset="mnist", model="convnet", procedure="projected", constraint="l21",
                      radius=0.5, epochs=1, batch_size=8, data_dir=str(tmp_path),
                      layers=("3.weight",), verify_data=False)  # fake MNIST, not the published
    res = train(cfg)
    conv = next(s for s in res.layers if s.name == "3.weight")
    w = res.model.state_dict()["3.weight"]
    assert float(w.flatten(2).transpose(0, 1).reshape(10, -1).norm(dim=1).sum()) <= 0.5 + 1e-5
    assert conv.columns_removed == int((w.abs().sum(dim=(0, 2, 3)) == 0).sum())


def test_apply_masks_rejects_bad_masks():
    m = build_model("mlp", (1, 8, 8), 10)
    before = m[3].weight.detach().clone()
    with pytest.raises(ValueError, match=r"masks\['3.weight'\] has shape \(64, 64\)"):
        apply_masks(m, {"3.weight": torch.ones(64, 64, dtype=torch.bool)})
    with pytest.raises(TypeError, match="bool"):
        apply_masks(m, {"3.weight": torch.ones(64, 128)})
    with pytest.raises(ValueError, match="not a parameter"):
        apply_masks(m, {"7.weight": torch.ones(1, dtype=torch.bool)})
    assert torch.equal(m[3].weight, before)
    mask = torch.zeros(64, 128, dtype=torch.bool)
    mask[:, :5] = True
    apply_masks(m, {"3.weight": mask})
    assert torch.count_nonzero(m[3].weight) == int((before[:, :5] != 0).sum())


def test_bad_runtime_arguments(digits):
    with pytest.raises(ValueError, match="not a weight of the model"):
        train(TrainConfig(**BASE, procedure="magnitude", layer_sparsity={"2.weight": 0.5}),
              dataset=digits)
    with pytest.raises(TypeError, match="config"):
        train({"dataset": "digits"})
    with pytest.raises(ValueError, match="dataset must be the loaded 'digits'"):
        train(TrainConfig(**BASE), dataset=dataclasses.replace(digits, name="mnist"))
    assert set(PROCEDURES) == {"dense", "projected", "lottery", "magnitude"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error path")
def test_cuda_requested_without_gpu(digits):
    with pytest.raises(ValueError, match="device='cuda'"):
        train(TrainConfig(**BASE, device="cuda"), dataset=digits)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_projected_and_lottery(digits):
    cfg = TrainConfig(**BASE, procedure="lottery", constraint="l11", radius=L11_RADIUS,
                      device="cuda", retrain_epochs=5)
    res = train(cfg, dataset=digits)
    assert res.device.startswith("cuda")
    w = res.model.state_dict()["3.weight"]
    assert w.is_cuda and torch.count_nonzero(w.cpu()[~res.masks["3.weight"]]) == 0
    assert res.test_accuracy >= 0.85
