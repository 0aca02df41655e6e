"""cost_report and compact of any nn.Module (projlib.measure.graph, Torch-Pruning's dependency
graph): residual adds, concatenation, batch-norm, depthwise convolutions, adaptive pooling.
After structured zeros, compact gives a smaller model with the same outputs and thop's MACCs
of it are the report's structured MACCs; the built-in nets stay on the chain walker."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from examples.resnet import build as small_resnet
from projlib.measure import compact, cost_report, thop_maccs
from projlib.measure.structure import is_chain
from projlib.training.models import build_model


class SkipNet(nn.Module):
    """A user-defined net: stem, a residual block, a depthwise + concatenation branch,
    adaptive pooling, classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.bn0 = nn.BatchNorm2d(8)
        self.a = nn.Conv2d(8, 12, 3, padding=1)
        self.bn_a = nn.BatchNorm2d(12)
        self.b = nn.Conv2d(12, 8, 3, padding=1)
        self.bn_b = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.pw = nn.Conv2d(8, 6, 1)
        self.head = nn.Conv2d(14, 10, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(10, 5)

    def forward(self, x):
        x = self.bn0(self.stem(x)).relu()
        x = (self.bn_b(self.b(self.bn_a(self.a(x)).relu())) + x).relu()
        y = self.pw(self.dw(x)).relu()
        z = self.head(torch.cat([x, y], dim=1)).relu()
        return self.fc(self.pool(z).flatten(1))


def _randomise_bn(model: nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) - 0.5)
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


def _check(model: nn.Module, shape: tuple[int, ...]) -> tuple[nn.Module, object]:
    """compact: same outputs (float tolerance), and thop's MACCs of it = structured MACCs."""
    model.eval()
    small = compact(model, shape)
    x = torch.randn((3, *shape), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(small(x), model(x), atol=1e-5, rtol=1e-4)
    report = cost_report(model, shape)
    assert report.maccs_structured == thop_maccs(small, shape)
    assert report.maccs_dense == thop_maccs(model, shape) == report.thop_maccs
    assert report.maccs_nonzero <= report.maccs_structured <= report.maccs_dense
    assert report.maccs_lowrank <= report.maccs_structured
    assert report.params_structured == sum(p.numel() for p in small.parameters())
    assert report.params_dense == sum(p.numel() for p in model.parameters())
    assert report.params_nonzero <= report.params_structured
    return small, report


def test_skip_connection_net_compacts_to_the_predicted_maccs():
    torch.manual_seed(0)
    net = SkipNet()
    _randomise_bn(net)
    with torch.no_grad():
        net.b.weight[:, :4] = 0  # columns: block channels 0-3 unread -> removed from a, bn_a
        net.head.weight[:, 8:11] = 0  # pw's outputs 0-2 (concat offset 8) unread -> removed
    small, report = _check(net, (3, 16, 16))
    assert small.a.out_channels == 8 and small.bn_a.num_features == 8 and small.b.in_channels == 8
    assert small.pw.out_channels == 3 and small.head.in_channels == 11
    assert report.maccs_structured < report.maccs_dense
    a = next(layer for layer in report.layers if layer.kind == "Conv2d" and layer.out_units == 12)
    assert (a.out_kept, a.outputs_zero) == (8, 4)


def test_residual_channel_goes_only_when_both_branches_drop_it():
    torch.manual_seed(0)
    net = SkipNet()
    _randomise_bn(net)
    with torch.no_grad():  # channels 0-1 of the residual stream: unread by `a` and by `pw`
        net.a.weight[:, :2] = 0  # (through the depthwise `dw`, which passes them on) ...
        net.pw.weight[:, :2] = 0
    small, _ = _check(net, (3, 16, 16))
    assert small.stem.out_channels == 8  # ... but `head` reads them through the concatenation
    with torch.no_grad():
        net.head.weight[:, :2] = 0  # now no consumer reads them: stem, b, bn0, bn_b, dw lose them
    small, _ = _check(net, (3, 16, 16))
    assert small.stem.out_channels == small.b.out_channels == small.dw.out_channels == 6
    assert small.bn0.num_features == small.bn_b.num_features == 6


def test_zero_filters_with_a_nonzero_constant_are_kept_and_zero_ones_removed():
    torch.manual_seed(0)
    net = SkipNet()
    _randomise_bn(net)
    with torch.no_grad():
        net.a.weight[:6] = 0  # filters 0-5 of `a` emit bn_a's constant, then ReLU
        net.a.bias[:6] = 0
        net.bn_a.bias[:6] = torch.tensor([1.0, 0.5, 0.2, -1.0, -0.5, -0.2])
        net.bn_a.running_mean[:6] = 0
    small, _ = _check(net, (3, 16, 16))
    # positive constants survive ReLU and reach `b` through its padding unevenly: kept
    # (never folded); negative ones are 0 after ReLU: removed
    assert small.a.out_channels == 9


def test_graph_compact_rejects_a_training_support_and_bad_input():
    net = SkipNet()
    with pytest.raises(ValueError, match="support"):
        compact(net, (3, 8, 8), support={0: torch.ones(8, 3, 3, 3, dtype=torch.bool)})
    with pytest.raises(ValueError, match="input_shape"):
        cost_report(net, (2, 8, 8))
    with pytest.raises(ValueError, match="input_shape"):
        compact(net, (0, 8, 8))
    with pytest.raises(ValueError, match="tolerance"):
        compact(net, (3, 8, 8), tolerance=-1)


def test_dense_model_compacts_to_itself():
    torch.manual_seed(0)
    small, report = _check(SkipNet(), (3, 8, 8))
    assert report.maccs_structured == report.maccs_dense
    assert report.params_structured == report.params_dense


@pytest.mark.parametrize("name", ["mlp", "lenet300", "convnet", "cifarnet"])
def test_builtin_nets_stay_on_the_chain_walker(name):
    shape = (3, 32, 32) if name == "cifarnet" else (1, 28, 28) if name != "mlp" else (1, 8, 8)
    assert is_chain(build_model(name, shape, 10))


def test_example_resnet_after_l11_on_its_convs():
    from projlib import project

    torch.manual_seed(0)
    net = small_resnet((1, 8, 8), 10)
    _randomise_bn(net)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.ndim == 4 and not name.startswith("stem"):
                p.copy_(project(p, "l11", radius=float(p.abs().sum()) / 40))
    small, report = _check(net, (1, 8, 8))
    assert report.maccs_structured < report.maccs_dense


@pytest.mark.slow
@pytest.mark.parametrize("ctor", ["resnet18", "mobilenet_v3_small"])
def test_torchvision_models_compact_with_equal_outputs(ctor):
    import torchvision

    torch.manual_seed(0)
    model = getattr(torchvision.models, ctor)(weights=None)
    _randomise_bn(model)
    with torch.no_grad():  # structured zeros: a quarter of the filters of every plain conv
        for m in model.modules():
            if isinstance(m, nn.Conv2d) and m.groups == 1 and m.out_channels >= 8:
                m.weight[: m.out_channels // 4] = 0
    small, report = _check(model, (3, 64, 64))
    assert report.maccs_structured < report.maccs_dense
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in model.parameters())


def test_masked_retrain_of_a_graph_model_runs_full_size():
    from projlib.training.compacted import compactable

    # a Sequential the chain walker cannot plan (Tanh) now passes the sweep's check: its
    # masked retrain must not try the chain walker's training plan
    assert not compactable(nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)))
    assert not compactable(SkipNet())
    assert compactable(build_model("lenet300", (1, 28, 28), 10))


class TokenMLP(nn.Module):
    """Linear layers on (batch, tokens, features) with a skip: the unit dim is the last."""

    def __init__(self) -> None:
        super().__init__()
        self.up, self.down, self.out = nn.Linear(6, 10), nn.Linear(10, 6), nn.Linear(6, 3)

    def forward(self, x):
        return self.out((x + self.down(self.up(x).relu())).mean(1))


def test_linear_units_on_token_inputs():
    torch.manual_seed(0)
    net = TokenMLP()
    with torch.no_grad():
        net.up.weight[:4] = 0  # hidden units 0-3: constant relu(bias); 0 where the bias is < 0
        net.up.bias[:4] = torch.tensor([-1.0, -0.5, 0.5, 1.0])
    small, _ = _check(net, (5, 6))
    assert small.up.out_features == 8 and small.down.in_features == 8
