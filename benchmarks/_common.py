"""What the benchmark scripts and asv suites share: the target check, the data, the plain loop.

Everything here builds on projlib's public API (`projlib.training`); a benchmark imports it as
``from benchmarks._common import ...`` (asv puts the repository root on the path; scripts run
as ``python -m benchmarks.<name>`` from the repository root).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

# "sgd" in a TrainConfig is heavy-ball SGD: the plain loop uses the same momentum.
from projlib.training.procedures import SGD_MOMENTUM as MOMENTUM

ATTEMPTS = 3  # medians measured before a target counts as missed (see within_target)
BATCH = 128
LR = 0.02  # the paper's step


def within_target(measure: Callable[[], float], target: float, what: str,
                  higher_is_better: bool = False, attempts: int = ATTEMPTS) -> float:
    """``measure()`` (a ratio), checked against ``target``: <= target (>= when
    ``higher_is_better``).  A value beyond the target is measured again, up to ``attempts``
    times in all, and the best one counts: a burst of load on a shared machine rarely spans
    three medians, while a real regression misses the target every time.  A miss is printed
    to stderr and raises AssertionError where ``GREENBENCH_ASSERT_TARGETS=1`` (which fails
    ``benchmarks/ci_quick.sh``); returns the best value otherwise."""
    values: list[float] = []
    best = float("nan")
    for _ in range(attempts):
        values.append(measure())
        best = max(values) if higher_is_better else min(values)
        if (best >= target) if higher_is_better else (best <= target):
            return best
    op = ">=" if higher_is_better else "<="
    msg = f"{what}: ratio {best:.3g} misses the target {op} {target:g} (measured {values})"
    print(f"TARGET MISSED {msg}", file=sys.stderr)
    if os.environ.get("GREENBENCH_ASSERT_TARGETS") == "1":
        raise AssertionError(msg)
    return best


def fashion_mnist(n_train: int | None = None, data_dir: str | None = None):
    """Fashion-MNIST (installed, or under `data_dir`) or random data of its sizes (the source
    says which); the first `n_train` training images when given."""
    from projlib.training import Dataset, DatasetError, load_dataset

    try:
        data = load_dataset("fashion-mnist", data_dir)
    except (DatasetError, OSError, ValueError):
        gen = torch.Generator().manual_seed(0)
        data = Dataset(
            name="fashion-mnist", train_x=torch.rand(60_000, 1, 28, 28, generator=gen),
            train_y=torch.randint(0, 10, (60_000,), generator=gen),
            test_x=torch.rand(10_000, 1, 28, 28, generator=gen),
            test_y=torch.randint(0, 10, (10_000,), generator=gen), input_shape=(1, 28, 28),
            num_classes=10, source="random data of Fashion-MNIST's sizes (files not found)")
    if n_train is None:
        return data
    return Dataset(name=data.name, train_x=data.train_x[:n_train],
                   train_y=data.train_y[:n_train], test_x=data.test_x, test_y=data.test_y,
                   input_shape=data.input_shape, num_classes=data.num_classes,
                   source=f"{data.source} (first {n_train} training images)")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PlainLoop:
    """The shortest honest PyTorch loop on in-memory tensors: `randperm` batches,
    `zero_grad(set_to_none=True)`, forward, cross-entropy, backward, step.  `epoch()` trains
    one epoch and returns its seconds (the device synchronised at both ends)."""

    def __init__(self, model: str, data, *, optimizer: str = "sgd", lr: float = LR,
                 device: str = "cpu", layout: torch.memory_format | None = None,
                 compiled: bool = False, batch: int = BATCH) -> None:
        from projlib.training import build_model

        self.device = torch.device(device)
        torch.manual_seed(0)
        self.model = build_model(model, data.input_shape, data.num_classes).to(self.device)
        self.x, self.y = data.train_x.to(self.device), data.train_y.to(self.device)
        if layout is not None:
            self.model.to(memory_format=layout)
            self.x = self.x.contiguous(memory_format=layout)
        self.forward = torch.compile(self.model) if compiled else self.model
        params = self.model.parameters()
        self.opt = (torch.optim.Adam(params, lr=lr) if optimizer == "adam"
                    else torch.optim.SGD(params, lr=lr, momentum=MOMENTUM))
        self.shuffle = torch.Generator().manual_seed(0)
        self.batch = batch

    def epoch(self) -> float:
        _sync(self.device)
        start = time.perf_counter()
        order = torch.randperm(self.x.shape[0], generator=self.shuffle).to(self.device)
        for idx in order.split(self.batch):
            self.opt.zero_grad(set_to_none=True)
            F.cross_entropy(self.forward(self.x[idx]), self.y[idx]).backward()
            self.opt.step()
        _sync(self.device)
        return time.perf_counter() - start
