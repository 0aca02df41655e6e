"""Test helpers: the fixed architectures of docs/ARCHITECTURE.md, built directly so these tests
do not depend on projlib.training (test_compact checks they match build_model), a LeNet with
chosen groups zeroed whose costs are derived by hand in test_costs, and a fake NVML GPU whose
power can change over time (``IntegratingGpu`` + ``install_fake_nvml``)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pynvml
import pytest
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


class IntegratingGpu:
    """Fake NVML device whose energy counter integrates a power that ``set_power`` can change.

    ``counter=False`` makes the energy counter unsupported, so the backend samples power instead.
    """

    def __init__(self, power_w: float = 100.0, counter: bool = True) -> None:
        self.counter = counter
        self._lock = threading.Lock()
        self._power_w = float(power_w)
        self._t = time.perf_counter()
        self._energy_j = 1000.0

    def _advance(self) -> None:
        now = time.perf_counter()
        self._energy_j += self._power_w * (now - self._t)
        self._t = now

    def set_power(self, power_w: float) -> None:
        with self._lock:
            self._advance()
            self._power_w = float(power_w)

    def energy_mj(self, handle: object) -> int:
        if not self.counter:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        with self._lock:
            self._advance()
            return int(self._energy_j * 1000)

    def power_mw(self, handle: object) -> int:
        with self._lock:
            return int(self._power_w * 1000)


def install_fake_nvml(monkeypatch: pytest.MonkeyPatch, gpu: Any | None,
                      init_error: int | None = None) -> None:
    """Patch pynvml so NVML sees ``gpu`` (any fake with ``energy_mj`` / ``power_mw``) as its
    only device (or no device when ``None``); ``init_error`` makes ``nvmlInit`` fail with it."""

    def init() -> None:
        if init_error is not None:
            raise pynvml.NVMLError(init_error)

    monkeypatch.setattr(pynvml, "nvmlInit", init)
    monkeypatch.setattr(pynvml, "nvmlShutdown", lambda: None)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetCount", lambda: 0 if gpu is None else 1)
    monkeypatch.setattr(pynvml, "nvmlDeviceGetHandleByIndex", lambda i: ("handle", i))
    if gpu is not None:
        monkeypatch.setattr(pynvml, "nvmlDeviceGetTotalEnergyConsumption", gpu.energy_mj)
        monkeypatch.setattr(pynvml, "nvmlDeviceGetPowerUsage", gpu.power_mw)
