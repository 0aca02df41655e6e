"""asv training suite: the cost of the paper's projection step inside a training epoch.

One epoch of LeNet-300-100 (batch 128, Adam, CPU, one thread) on **synthetic** data of
Fashion-MNIST's size (60 000 train / 10 000 test images of 1x28x28, seeded uniform pixels,
seeded labels): the epoch time depends on the shapes, not on the pixels, and synthetic data keeps
the suite independent of any download. Each `train(...)` call also builds the model and scores
the 10 000 test images once; both runs pay that, so it dilutes the ratio only slightly.

- ``time_dense_epoch`` / ``time_projected_epoch``: wall time of one `train(epochs=1)` call.
- ``track_projected_over_dense``: projected / dense epoch time measured in the same process,
  alternating the two, median of REPEATS each. Target: <= 1.15 for the paper's
  default layer selection.

Parameter ``layers``: "hidden" = the paper's default (only Linear(300, 100) constrained);
"first+hidden" = also the 784 -> 300 input layer (constrain_first=True), 8x more weights to
project per step.
"""

from __future__ import annotations

import statistics
import time

import torch

# Active at every step: the hidden layer's l1,1 norm is ~870 at init, the input layer's ~6800.
RADIUS = 50.0
REPEATS = 5
LAYER_CHOICES = ("hidden", "first+hidden")


def _synthetic_fashion_mnist():
    from projlib.training import Dataset

    gen = torch.Generator().manual_seed(0)
    return Dataset(
        name="fashion-mnist",
        train_x=torch.rand(60_000, 1, 28, 28, generator=gen),
        train_y=torch.randint(0, 10, (60_000,), generator=gen),
        test_x=torch.rand(10_000, 1, 28, 28, generator=gen),
        test_y=torch.randint(0, 10, (10_000,), generator=gen),
        input_shape=(1, 28, 28),
        num_classes=10,
        source="synthetic (benchmark_training.py), Fashion-MNIST sizes",
    )


def _config(procedure: str, layers: str):
    from projlib.training import TrainConfig

    kwargs = {}
    if procedure == "projected":
        kwargs = {"constraint": "l11", "radius": RADIUS}
    return TrainConfig(
        dataset="fashion-mnist", model="lenet300", procedure=procedure, epochs=1,
        batch_size=128, optimizer="adam", lr=1e-3, seed=0, device="cpu",
        constrain_first=(layers == "first+hidden"), **kwargs,
    )


class TrainingSuite:
    params = [LAYER_CHOICES]
    param_names = ["layers"]
    number = 1
    repeat = (2, 5, 30.0)
    warmup_time = 0.0
    timeout = 600

    def setup(self, layers: str) -> None:
        from projlib.training import train

        # One thread: the measurement should not depend on what else shares the cores.
        self._threads = torch.get_num_threads()
        torch.set_num_threads(1)
        self.data = _synthetic_fashion_mnist()
        self.train = train
        self.dense = _config("dense", layers)
        self.projected = _config("projected", layers)

    def teardown(self, layers: str) -> None:
        torch.set_num_threads(self._threads)

    def _epoch_s(self, cfg) -> float:
        start = time.perf_counter()
        self.train(cfg, dataset=self.data)
        return time.perf_counter() - start

    def time_dense_epoch(self, layers: str) -> None:
        self.train(self.dense, dataset=self.data)

    def time_projected_epoch(self, layers: str) -> None:
        self.train(self.projected, dataset=self.data)

    def track_projected_over_dense(self, layers: str) -> float:
        dense, projected = [], []
        for _ in range(REPEATS):  # alternate so drifts in machine load hit both equally
            dense.append(self._epoch_s(self.dense))
            projected.append(self._epoch_s(self.projected))
        return statistics.median(projected) / statistics.median(dense)

    track_projected_over_dense.unit = "ratio"


class _DigitsPoint:
    """Set-up shared by the two thread suites (no benchmark of its own)."""

    number = 1
    repeat = (2, 5, 30.0)
    warmup_time = 0.0
    timeout = 300

    def setup(self, threads: str = "all") -> None:
        from projlib.sweep.warmup import available_cores
        from projlib.training import TrainConfig, load_dataset, train

        self._previous = torch.get_num_threads()
        self.cores = available_cores()
        self.n = 1 if threads == "1" else self.cores
        self.data = load_dataset("digits")
        self.train = train
        self.cfg = TrainConfig(dataset="digits", model="mlp", procedure="projected",
                               constraint="l11", radius=30.0, epochs=5, optimizer="sgd",
                               lr=0.02, batch_size=32)
        torch.set_num_threads(self.n)
        self.train(self.cfg, dataset=self.data)  # compile the kernels outside the timings

    def teardown(self, threads: str = "all") -> None:
        torch.set_num_threads(self._previous)


class ThreadsSuite(_DigitsPoint):
    """Why the sweep picks its intra-op threads per model (`--threads auto`): one digits point
    (mlp, l11, the CLI's SGD settings, 5 epochs) with 1 thread and with every available core.

    - ``time_digits_point``: wall time of the point at each thread count.
    - ``track_all_cores_over_one`` (ThreadPolicySuite): all-cores / 1-thread time, same
      process, alternating, median of REPEATS (> 1: the pool costs more than it buys here).
    - ``track_auto_threads`` (ThreadPolicySuite): the count `choose_threads(..., "auto")`
      picks here (measured).
    """

    params = [("1", "all")]
    param_names = ["threads"]

    def time_digits_point(self, threads: str) -> None:
        self.train(self.cfg, dataset=self.data)


class ThreadPolicySuite(_DigitsPoint):
    """The ratio and the automatic choice, measured once (not per thread count)."""

    def _point_s(self, n: int) -> float:
        torch.set_num_threads(n)
        start = time.perf_counter()
        self.train(self.cfg, dataset=self.data)
        return time.perf_counter() - start

    def track_all_cores_over_one(self) -> float:
        one, many = [], []
        for _ in range(REPEATS):
            one.append(self._point_s(1))
            many.append(self._point_s(self.cores))
        return statistics.median(many) / statistics.median(one)

    track_all_cores_over_one.unit = "ratio"

    def track_auto_threads(self) -> int:
        from projlib.sweep.warmup import choose_threads, reset_caches

        reset_caches()
        return choose_threads(self.cfg, self.data, "auto").threads

    track_auto_threads.unit = "threads"
