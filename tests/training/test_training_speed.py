"""The speed measures of `train` (issue 21) change no result: the compacted masked retrain, the
channels_last conv layout and the flushing of subnormals inside the training window."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from projlib.training import Dataset, TrainConfig, build_model, load_dataset, procedures, train
from projlib.training.compacted import compactable, compacted_net
from projlib.training.procedures import flush_denormal, flush_denormal_enabled
from projlib.training.sparsity import apply_masks

# digits + mlp, SGD with momentum: l11 at this radius removes ~80% of Linear(128, 64)'s input
# columns (so the compacted net is much smaller) in a second of training.
DIGITS = {"dataset": "digits", "model": "mlp", "epochs": 2, "batch_size": 32, "seed": 0,
          "optimizer": "sgd", "lr": 0.02, "retrain_epochs": 2}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def images():
    """A small synthetic 1x28x28 set (the conv net needs >= 16 pixels a side)."""
    gen = torch.Generator().manual_seed(0)
    return Dataset(name="fashion-mnist", train_x=torch.rand(384, 1, 28, 28, generator=gen),
                   train_y=torch.randint(0, 10, (384,), generator=gen),
                   test_x=torch.rand(100, 1, 28, 28, generator=gen),
                   test_y=torch.randint(0, 10, (100,), generator=gen), input_shape=(1, 28, 28),
                   num_classes=10, source="synthetic (test_training_speed.py)")


def _both_retrains(cfg: TrainConfig, data: Dataset, monkeypatch):
    """(compacted, full-size masked) results of the same config."""
    monkeypatch.setattr(procedures, "COMPACT_RETRAIN", True)
    small = train(cfg, dataset=data)
    monkeypatch.setattr(procedures, "COMPACT_RETRAIN", False)
    full = train(cfg, dataset=data)
    return small, full


def _assert_same_weights(small, full, atol: float = 1e-5) -> None:
    a, b = small.model.state_dict(), full.model.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=1e-4, atol=atol), k
    for name, mask in small.masks.items():  # the removed weights stay exactly 0
        assert torch.count_nonzero(a[name][~mask]) == 0, name
        assert torch.equal(mask, full.masks[name])


@pytest.mark.parametrize("procedure,optimizer", [("lottery", "sgd"), ("lottery", "adam"),
                                                 ("magnitude", "sgd")])
def test_compacted_retrain_gives_the_masked_retrains_weights(digits, monkeypatch, procedure,
                                                             optimizer):
    lr = 0.02 if optimizer == "sgd" else 1e-3
    cfg = TrainConfig(**{**DIGITS, "optimizer": optimizer, "lr": lr}, procedure=procedure,
                      constraint="l11", radius=20.0)
    small, full = _both_retrains(cfg, digits, monkeypatch)
    assert small.retrain_compacted is True and full.retrain_compacted is None
    _assert_same_weights(small, full)
    assert small.train_loss_per_epoch == pytest.approx(full.train_loss_per_epoch, rel=1e-4)
    assert small.epoch_phases == full.epoch_phases
    assert small.retrain_time_s is not None and small.retrain_time_s > 0
    assert small.retrain_speedup_realised is not None and small.retrain_speedup_realised > 0
    if procedure == "lottery":  # structured masks: the training network really is smaller
        assert small.retrain_speedup_predicted > 1.5
    else:  # unstructured magnitude masks remove (almost) no whole unit
        assert small.retrain_speedup_predicted >= 1.0


def test_compacted_retrain_of_the_conv_net(images, monkeypatch):
    # channels (conv) and flattened positions (conv -> linear) cut out, channels_last layout
    cfg = TrainConfig(dataset="fashion-mnist", model="convnet", procedure="lottery",
                      constraint="l11", radius=3.0, epochs=1, retrain_epochs=1, batch_size=64,
                      optimizer="sgd", lr=0.02, seed=0)
    small, full = _both_retrains(cfg, images, monkeypatch)
    assert small.retrain_speedup_predicted > 1.2
    _assert_same_weights(small, full)


def test_compacted_net_cuts_only_unread_units_and_writes_back():
    torch.manual_seed(0)
    model = build_model("mlp", (1, 8, 8), 10)
    mask = torch.ones(64, 128, dtype=torch.bool)
    mask[:, 5:] = False  # Linear(128, 64) reads 5 of its inputs
    mask[3] = False  # its output 3 has no weight left, but its bias still trains
    apply_masks(model, {"3.weight": mask})
    net = compacted_net(model, {"3.weight": mask}, (1, 8, 8))
    layers = [m for m in net.model if isinstance(m, nn.Linear)]
    assert [tuple(m.weight.shape) for m in layers] == [(5, 64), (64, 5), (10, 64)]
    assert set(net.masks) == {"3.weight"} and not net.masks["3.weight"][3].any()
    x = torch.rand(7, 1, 8, 8)
    assert torch.allclose(net.model(x), model(x), atol=1e-6)
    with torch.no_grad():
        for m in layers:
            m.weight.add_(1.0)
            m.bias.add_(1.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    net.write_back()
    after = model.state_dict()
    assert torch.equal(after["1.weight"][5:], before["1.weight"][5:])  # rows nobody reads
    assert torch.equal(after["1.weight"][:5], before["1.weight"][:5] + 1)
    assert torch.equal(after["3.weight"][:, 5:], before["3.weight"][:, 5:])
    assert torch.equal(after["5.bias"], before["5.bias"] + 1)


def test_networks_with_dropout_or_batchnorm_are_not_compacted():
    assert compactable(build_model("convnet", (1, 28, 28), 10))
    assert not compactable(build_model("cifarnet", (3, 32, 32), 10))
    with pytest.raises(ValueError, match="Dropout or BatchNorm"):
        compacted_net(build_model("cifarnet", (3, 32, 32), 10), {}, (3, 32, 32))


def test_conv_net_in_the_fast_layout_trains_like_the_default_one(images, monkeypatch):
    cfg = TrainConfig(dataset="fashion-mnist", model="convnet", procedure="projected",
                      constraint="l21", radius=5.0, epochs=2, batch_size=32, optimizer="sgd",
                      lr=0.02, seed=0)
    assert procedures.CPU_CONV_LAYOUT is torch.channels_last
    fast = train(cfg, dataset=images)
    monkeypatch.setattr(procedures, "CPU_CONV_LAYOUT", None)
    default = train(cfg, dataset=images)
    for k, v in fast.model.state_dict().items():
        assert v.is_contiguous(), k  # stored in the logical layout
        assert torch.allclose(v, default.model.state_dict()[k], rtol=1e-4, atol=1e-5), k


@pytest.mark.parametrize("before", [False, True])
def test_flush_denormal_is_scoped_to_training(digits, before):
    if not torch.set_flush_denormal(before):
        pytest.skip("this CPU cannot flush subnormals")
    seen = []
    try:
        cfg = TrainConfig(**{**DIGITS, "epochs": 1})
        train(cfg, dataset=digits, progress=lambda e: seen.append(flush_denormal_enabled()))
        assert seen == [True]
        assert flush_denormal_enabled() is before

        def fail(event):
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            train(cfg, dataset=digits, progress=fail)
        assert flush_denormal_enabled() is before
    finally:
        torch.set_flush_denormal(False)


def test_flush_denormal_detection():
    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU cannot flush subnormals")
    assert flush_denormal_enabled() is False
    with flush_denormal():
        assert flush_denormal_enabled() is True
        assert (torch.full((1,), 1e-40) * torch.ones(1)).item() == 0.0
    assert flush_denormal_enabled() is False



def test_the_point_stores_the_retrain_time_and_speed_ups(digits):
    from projlib.sweep.runner import result_metrics

    lottery = train(TrainConfig(**DIGITS, procedure="lottery", constraint="l11", radius=20.0),
                    dataset=digits)
    row = result_metrics(lottery)
    assert row["retrain_time_s"] == pytest.approx(sum(lottery.epoch_time_s[-2:]))
    assert row["retrain_speedup_predicted"] == lottery.retrain_speedup_predicted > 1.5
    assert row["retrain_speedup_realised"] == lottery.retrain_speedup_realised > 0
    dense = result_metrics(train(TrainConfig(**{**DIGITS, "epochs": 1}), dataset=digits))
    assert [dense[k] for k in ("retrain_time_s", "retrain_speedup_predicted",
                               "retrain_speedup_realised")] == [None, None, None]
