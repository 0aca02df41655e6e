"""Test helpers: the fixed architectures of docs/ARCHITECTURE.md, built directly so these tests
do not depend on projlib.training (test_compact checks they match build_model), and a LeNet with
chosen groups zeroed whose costs are derived by hand in test_costs."""

from __future__ import annotations

import torch
from torch import nn

MNIST = (1, 28, 28)


def lenet300(in_features: int = 784, classes: int = 10) -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(in_features, 300), nn.ReLU(),
                         nn.Linear(300, 100), nn.ReLU(), nn.Linear(100, classes))


def convnet(channels: int = 1, classes: int = 10) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(channels, 10, 5), nn.MaxPool2d(2), nn.ReLU(),
                         nn.Conv2d(10, 20, 5), nn.MaxPool2d(2), nn.ReLU(), nn.Flatten(),
                         nn.Linear(320, 50), nn.ReLU(), nn.Linear(50, classes))


def mlp(in_features: int = 64, classes: int = 10) -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(in_features, 128), nn.ReLU(),
                         nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, classes))


def sparse_lenet() -> nn.Sequential:
    """LeNet-300-100 with chosen groups zeroed; the expected counts are derived in the tests."""
    torch.manual_seed(0)
    m = lenet300().eval()
    w1, b1, w2, b2, w3 = m[1].weight, m[1].bias, m[3].weight, m[3].bias, m[5].weight
    with torch.no_grad():
        w1[:, 0:100] = 0  # 100 input pixels unused
        w1[100:120] = 0  # 20 hidden-1 neurons with zero rows ...
        b1[100:120] = 0  # ... and zero bias: always 0
        w1[120:130] = 0  # 10 neurons with zero rows but bias 0.5: constant, folded
        b1[120:130] = 0.5
        w1[130] = 0  # the dead neuron: zero row in layer 1 AND zero column in layer 2
        b1[130] = 0.3
        w2[:, 130] = 0
        w2[:, 131:141] = 0  # 10 nonzero hidden-1 neurons that nothing reads
        w1[200, 300:307] = 0  # 7 isolated zeros inside the kept block
        w2[0:5] = 0  # 5 hidden-2 neurons always 0
        b2[0:5] = 0
        w3[:, 5:8] = 0  # 3 hidden-2 neurons that nothing reads
    return m
