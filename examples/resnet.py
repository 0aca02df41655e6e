"""A small user-defined ResNet for small images (digits 8x8, Fashion-MNIST 28x28).

Not an ``nn.Sequential``: its residual adds, batch-norms, 1x1 projection shortcut and adaptive
pooling go through greenbench's dependency-graph path (`projlib.measure.graph`, built on
Torch-Pruning), for the cost report and for `compact`. From the repository root::

    greenbench run --model examples.resnet:build --dataset digits --procedure projected \\
        --constraint l11 --radius 20 --epochs 20

By default the projection constrains the hidden conv kernels (every conv but the stem; the last
weight, the classifier, is left alone), grouped by input channel (``groups="columns"``): a channel
no conv reads any more is cut out of the whole residual group by ``compact``.
"""

from __future__ import annotations

from torch import nn


class Block(nn.Module):
    """conv-BN-ReLU-conv-BN plus the shortcut (identity, or 1x1 conv + BN when the shape
    changes), then ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x):
        h = self.bn1(self.conv1(x)).relu()
        return (self.bn2(self.conv2(h)) + self.shortcut(x)).relu()


class SmallResNet(nn.Module):
    """Stem conv, two residual stages (width, then 2x width at stride 2), global average
    pooling, linear classifier."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 32) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU())
        self.layer1 = Block(width, width)
        self.layer2 = Block(width, 2 * width, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2 * width, num_classes)

    def forward(self, x):
        x = self.layer2(self.layer1(self.stem(x)))
        return self.fc(self.pool(x).flatten(1))


def build(input_shape: tuple[int, int, int], num_classes: int) -> SmallResNet:
    """greenbench's model factory: `input_shape` (C, H, W) of the dataset, its class count."""
    return SmallResNet(input_shape[0], num_classes)
