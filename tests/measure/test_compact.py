"""compact(): physically smaller, same outputs to 1e-5, consistent with cost_report."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from projlib.measure import Select, compact, cost_report, torch_flop_maccs

from .helpers import MNIST, convnet, lenet300, mlp, sparse_lenet


def _check(model: nn.Module, shape: tuple[int, ...], seed: int = 0) -> nn.Sequential:
    model.eval()
    small = compact(model, shape)
    x = torch.randn((16, *shape), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        torch.testing.assert_close(small(x), model(x), atol=1e-5, rtol=1e-5)
    before, after = cost_report(model, shape), cost_report(small, shape)
    assert after.maccs_dense == before.maccs_structured == torch_flop_maccs(small, shape)
    assert before.maccs_lowrank <= before.maccs_structured <= before.maccs_dense
    assert before.maccs_nonzero <= before.maccs_structured
    assert before.params_nonzero <= before.params_structured
    assert after.params_dense == before.params_structured
    assert after.maccs_structured == after.maccs_dense  # compaction is a fixed point
    return small


def _zero_groups(model: nn.Sequential, fraction: float, seed: int) -> None:
    """Zero random rows and columns (with or without bias) of every weight layer."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model:
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                rows = torch.rand(m.weight.shape[0], generator=g) < fraction
                cols = torch.rand(m.weight.shape[1], generator=g) < fraction
                m.weight[rows] = 0
                m.weight[:, cols] = 0
                keep_bias = torch.rand(m.weight.shape[0], generator=g) < 0.5
                m.bias[rows & ~keep_bias] = 0


def test_lenet_hand_case() -> None:
    small = _check(sparse_lenet(), MNIST)
    linears = [m for m in small if isinstance(m, nn.Linear)]
    assert [tuple(m.weight.shape) for m in linears] == [(259, 684), (92, 259), (10, 92)]
    assert isinstance(small[1], Select)  # the 100 unused pixels are skipped at the input


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("build,shape", [(lenet300, MNIST), (convnet, MNIST), (mlp, (1, 8, 8))])
def test_random_structured_sparsity(build, shape, seed) -> None:
    torch.manual_seed(seed)
    model = build()
    _zero_groups(model, 0.3, seed)
    _check(model, shape, seed)


def _small_bn_net() -> nn.Sequential:
    net = nn.Sequential(
        nn.Conv2d(2, 6, 3), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 5, 2),
        nn.ReLU(), nn.Flatten(), nn.Linear(5 * 3 * 3, 7), nn.BatchNorm1d(7), nn.ReLU(),
        nn.Dropout(), nn.Linear(7, 3))
    with torch.no_grad():
        for m in net:
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.bias.uniform_(-1, 1)
    return net


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), fraction=st.floats(0.0, 0.9))
def test_property_compact_preserves_outputs(seed: int, fraction: float) -> None:
    torch.manual_seed(seed)
    net = _small_bn_net()
    _zero_groups(net, fraction, seed)
    _check(net, (2, 10, 10), seed)


def test_batchnorm_conv_folding() -> None:
    torch.manual_seed(3)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.AvgPool2d(2), nn.Dropout(0.3),
        nn.Conv2d(8, 6, 3), nn.BatchNorm2d(6), nn.ReLU(), nn.Flatten(),
        nn.Linear(6 * 4 * 4, 12), nn.BatchNorm1d(12), nn.ReLU(), nn.Linear(12, 4))
    with torch.no_grad():
        for m in model:
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(0.1, 1)  # positive shifts: zeroed filters become constants
        model[0].weight[[1, 4]] = 0
        model[0].bias[[1, 4]] = 0
        model[5].weight[:, 6] = 0
        model[9].weight[3:7] = 0
    small = _check(model, (3, 14, 14))
    convs = [m for m in small if isinstance(m, nn.Conv2d)]
    # filters 1 and 4 are constants through BN (folded), channel 6 is unused
    assert [tuple(c.weight.shape[:2]) for c in convs] == [(5, 3), (6, 5)]
    bn1 = [m for m in small if isinstance(m, nn.BatchNorm1d)][0]
    assert bn1.num_features == 8  # rows 3-6 of the Linear: constants after BN, folded


def test_padded_conv_keeps_nonuniform_constant() -> None:
    """With zero padding a constant channel's contribution is not uniform: it must stay."""
    torch.manual_seed(4)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(4, 3, 3, padding=1), nn.Flatten(), nn.Linear(3 * 36, 2))
    with torch.no_grad():
        model[0].weight[0] = 0
        model[0].bias[0] = 0.7
        model[0].weight[1] = 0
        model[0].bias[1] = 0.0
    small = _check(model, (2, 6, 6))
    assert small[0].weight.shape[0] == 3  # the zero channel goes, the constant one stays


def test_everything_removed_gives_constant_net() -> None:
    model = mlp().eval()
    with torch.no_grad():
        model[3].weight.zero_()
    small = _check(model, (1, 8, 8))
    assert cost_report(small, (1, 8, 8)).maccs_dense == 0


def test_input_not_modified_and_train_flag_kept() -> None:
    model = sparse_lenet().train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    small = compact(model, MNIST)
    assert small.training and model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k])


def test_matches_training_models_when_available() -> None:
    models = pytest.importorskip("projlib.training.models")
    for name, ours in (("lenet300", lenet300()), ("convnet", convnet())):
        theirs = models.build_model(name, MNIST, 10)
        assert [type(m) for m in theirs] == [type(m) for m in ours]
        assert [p.shape for p in theirs.parameters()] == [p.shape for p in ours.parameters()]
    cifar = models.build_model("cifarnet", (3, 32, 32), 10)
    _zero_groups(cifar, 0.3, 0)
    _check(cifar, (3, 32, 32))


@pytest.mark.gpu
def test_compact_on_cuda() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: torch.cuda.is_available() is False")
    torch.manual_seed(5)
    model = convnet()
    _zero_groups(model, 0.4, 5)
    model = model.cuda().eval()
    small = compact(model, MNIST)
    assert next(small.parameters()).is_cuda
    x = torch.randn(32, *MNIST, device="cuda")
    with torch.no_grad():
        torch.testing.assert_close(small(x), model(x), atol=1e-5, rtol=1e-5)
    assert cost_report(small, MNIST).maccs_dense == cost_report(model, MNIST).maccs_structured
