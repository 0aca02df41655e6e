"""The fixed nn.Sequential architectures of docs/ARCHITECTURE.md."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from projlib.training import MODELS, build_model

ALLOWED = (nn.Flatten, nn.Linear, nn.Conv2d, nn.ReLU, nn.MaxPool2d, nn.AvgPool2d, nn.Dropout,
           nn.BatchNorm1d, nn.BatchNorm2d)


def signature(model: nn.Sequential) -> list[tuple]:
    out = []
    for m in model:
        if isinstance(m, nn.Linear):
            out.append(("Linear", m.in_features, m.out_features))
        elif isinstance(m, nn.Conv2d):
            out.append(("Conv2d", m.in_channels, m.out_channels, m.kernel_size[0]))
        elif isinstance(m, nn.MaxPool2d):
            out.append(("MaxPool2d", m.kernel_size))
        else:
            out.append((type(m).__name__,))
    return out


def test_lenet300_exact():
    m = build_model("lenet300", (1, 28, 28), 10)
    assert signature(m) == [("Flatten",), ("Linear", 784, 300), ("ReLU",), ("Linear", 300, 100),
                            ("ReLU",), ("Linear", 100, 10)]


def test_mlp_exact_and_input_adapts():
    m = build_model("mlp", (1, 8, 8), 10)
    assert signature(m) == [("Flatten",), ("Linear", 64, 128), ("ReLU",), ("Linear", 128, 64),
                            ("ReLU",), ("Linear", 64, 10)]
    assert signature(build_model("lenet300", (3, 32, 32), 7))[1] == ("Linear", 3072, 300)


def test_convnet_exact():
    m = build_model("convnet", (1, 28, 28), 10)
    assert signature(m) == [("Conv2d", 1, 10, 5), ("MaxPool2d", 2), ("ReLU",),
                            ("Conv2d", 10, 20, 5), ("MaxPool2d", 2), ("ReLU",), ("Flatten",),
                            ("Linear", 320, 50), ("ReLU",), ("Linear", 50, 10)]
    assert m(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_is_flat_sequential_of_allowed_layers(name):
    shape = (1, 8, 8) if name == "mlp" else (3, 32, 32) if name == "cifarnet" else (1, 28, 28)
    m = build_model(name, shape, 10)
    assert isinstance(m, nn.Sequential)
    assert all(isinstance(layer, ALLOWED) for layer in m)
    m.eval()
    assert m(torch.rand(3, *shape)).shape == (3, 10)


def test_bad_arguments():
    with pytest.raises(ValueError, match="name must be one of"):
        build_model("resnet", (1, 28, 28), 10)
    with pytest.raises(ValueError, match="input_shape"):
        build_model("mlp", (64,), 10)
    with pytest.raises(ValueError, match="num_classes"):
        build_model("mlp", (1, 8, 8), 1)
    with pytest.raises(ValueError, match="too small for convnet"):
        build_model("convnet", (1, 8, 8), 10)
