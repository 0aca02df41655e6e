"""The fixed network architectures, all plain `nn.Sequential`s (docs/ARCHITECTURE.md).

Only Flatten, Linear, Conv2d, ReLU, MaxPool2d, AvgPool2d, Dropout and BatchNorm1d/2d are used, so
the cost analyser and `compact` (projlib.measure) can walk a model in order and follow removed
channels / neurons from one weight layer to the next. Parameter names are therefore
"<index>.weight", e.g. "1.weight" is LeNet-300-100's 784 -> 300 matrix.

`cifarnet` (our choice; the paper does not specify its CIFAR-10 net): a small VGG-style net,
    [Conv3x3(C,32) BN ReLU] [Conv3x3(32,32) BN ReLU] MaxPool2
    [Conv3x3(32,64) BN ReLU] [Conv3x3(64,64) BN ReLU] MaxPool2
    [Conv3x3(64,128) BN ReLU] MaxPool2  Flatten  Linear(128*4*4, 256) ReLU Dropout(0.5)
    Linear(256, classes)
~0.6 M parameters: VGG-style because its conv weights have clear input-channel slabs for the
grouped projections to remove (no residual adds that would tie channels across layers), and
small enough to train for a few epochs on one GPU in minutes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from projlib.checks import check_int


def _check_shape(input_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ValueError(f"input_shape must be (C, H, W) of positive ints, got {input_shape!r}")
    return shape  # type: ignore[return-value]


def lenet300(input_shape: tuple[int, int, int], num_classes: int) -> nn.Sequential:
    """LeNet-300-100: Flatten, Linear(C*H*W, 300), ReLU, Linear(300, 100), ReLU, Linear(100, k)."""
    c, h, w = input_shape
    return nn.Sequential(
        nn.Flatten(), nn.Linear(c * h * w, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(),
        nn.Linear(100, num_classes),
    )


def mlp(input_shape: tuple[int, int, int], num_classes: int) -> nn.Sequential:
    """Small MLP for digits: Flatten, Linear(C*H*W, 128), ReLU, Linear(128, 64), ReLU,
    Linear(64, k)."""
    c, h, w = input_shape
    return nn.Sequential(
        nn.Flatten(), nn.Linear(c * h * w, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
        nn.Linear(64, num_classes),
    )


def convnet(input_shape: tuple[int, int, int], num_classes: int) -> nn.Sequential:
    """The paper's MNIST conv net; for 28x28 input the flattened size is 20*4*4 = 320."""
    c, h, w = input_shape
    # Two (conv5 -> pool2) stages: side -> (side - 4) // 2 -> ((side - 4) // 2 - 4) // 2.
    oh, ow = ((h - 4) // 2 - 4) // 2, ((w - 4) // 2 - 4) // 2
    if oh < 1 or ow < 1:
        raise ValueError(f"input_shape {input_shape} too small for convnet (needs H, W >= 16)")
    return nn.Sequential(
        nn.Conv2d(c, 10, 5), nn.MaxPool2d(2), nn.ReLU(),
        nn.Conv2d(10, 20, 5), nn.MaxPool2d(2), nn.ReLU(),
        nn.Flatten(), nn.Linear(20 * oh * ow, 50), nn.ReLU(), nn.Linear(50, num_classes),
    )


def cifarnet(input_shape: tuple[int, int, int], num_classes: int) -> nn.Sequential:
    """Small VGG-style conv net for 3x32x32 (see the module docstring)."""
    c, h, w = input_shape
    if h < 8 or w < 8:
        raise ValueError(f"input_shape {input_shape} too small for cifarnet (needs H, W >= 8)")

    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]

    return nn.Sequential(
        *block(c, 32), *block(32, 32), nn.MaxPool2d(2),
        *block(32, 64), *block(64, 64), nn.MaxPool2d(2),
        *block(64, 128), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(128 * (h // 8) * (w // 8), 256), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(256, num_classes),
    )


@dataclass(frozen=True)
class ModelSpec:
    """A registered architecture. fully_connected: only linear layers (the paper's second
    claim compares fully connected and convolutional nets)."""

    name: str
    builder: Callable[[tuple[int, int, int], int], nn.Sequential]
    summary: str
    fully_connected: bool


MODELS: dict[str, ModelSpec] = {
    "lenet300": ModelSpec("lenet300", lenet300, "LeNet-300-100 fully connected (paper)", True),
    "convnet": ModelSpec("convnet", convnet, "MNIST conv net 10-20 5x5, fc 320-50 (paper)",
                         False),
    "mlp": ModelSpec("mlp", mlp, "small MLP 128-64 for digits", True),
    "cifarnet": ModelSpec("cifarnet", cifarnet, "small VGG-style conv net for CIFAR-10", False),
}


def build_model(name: str, input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """Build the named architecture with PyTorch's default init (seed the RNG before calling).

    `name`: a built-in name (an `nn.Sequential`), or `package.module:factory`, whose
    `factory(input_shape, num_classes)` returns any `nn.Module` (`projlib.training.plugins`)."""
    from projlib.training import plugins  # noqa: PLC0415 - plugins imports datasets, not models

    if not plugins.is_plugin(name) and (not isinstance(name, str) or name not in MODELS):
        raise ValueError(
            f"name must be one of {', '.join(MODELS)} or package.module:factory; got {name!r}"
        )
    shape = _check_shape(input_shape)
    check_int("num_classes", num_classes, 2)
    if plugins.is_plugin(name):
        return plugins.build_plugin_model(name, shape, num_classes)
    return MODELS[name].builder(shape, num_classes)
