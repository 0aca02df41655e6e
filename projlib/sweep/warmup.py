"""What a point pays once, kept out of its measured window: thread policy and warm-up.

A sweep point's time and energy must not depend on where it sits in the sweep. Two one-off
costs used to land inside the first point that met them:

* **Warm-up**: numba compiles a projection kernel the first time it sees a dtype, CUDA creates
  its context and cuBLAS handles on the first launch, torch starts its thread pool and sizes its
  allocator on the first step. `warm_up` pays all of it by training the point's own config for
  one epoch on a small slice of its data (two batches, the short last batch, one evaluation
  chunk) (same model, device, optimizer, procedure,
  constraint and constrained shapes), once per process and key, before the window opens.
* **Threads**: torch's default intra-op pool (one thread per core) makes the small steps of
  these models slower when the pool has to wait for a busy core (measured on a 2-core machine
  with one other busy process: a digits point took 19.8 s with 2 threads, 0.85 s with 1), and
  spinning threads burn energy inside the window. `choose_threads` with "auto" *measures* one
  training step at the point's batch size with 1 thread and with every available core, and takes
  more threads only when they are at least `MIN_SPEEDUP` times faster.

Both are cached per process, keyed by what makes them differ, so the first point of a key pays
them (recorded in its row as `warmup_time_s`, with the thread timings) and later points do not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import statistics
import time
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F

from projlib.checks import is_int
from projlib.training import Dataset, TrainConfig, build_model, train
from projlib.training.datasets import validation_split
from projlib.training.procedures import EVAL_BATCH

__all__ = [
    "AUTO",
    "MIN_SPEEDUP",
    "ThreadChoice",
    "available_cores",
    "choose_threads",
    "parse_threads",
    "reset_caches",
    "thread_limit",
    "warm_up",
]

AUTO = "auto"
# More threads must buy at least this speed-up to be used: below it the extra cores mostly
# add power (and contention risk) for little time saved.
MIN_SPEEDUP = 1.25
_STEPS = 8  # timed steps per round; 3 rounds, median
_ROUNDS = 3

_thread_choices: dict[tuple[Any, ...], ThreadChoice] = {}
_warm: set[tuple[Any, ...]] = set()


@dataclasses.dataclass(frozen=True)
class ThreadChoice:
    """Intra-op threads for a point and why: `policy` "fixed" (asked for) or "auto"
    (measured); `step_s` maps each candidate thread count to its median seconds per step."""

    threads: int
    policy: str
    step_s: tuple[tuple[int, float], ...] = ()
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"threads": self.threads, "policy": self.policy,
                "step_s": {str(k): v for k, v in self.step_s}, "reason": self.reason}


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS / Windows
        return max(1, os.cpu_count() or 1)


def parse_threads(value: Any) -> int | str:
    """"auto" or an int >= 1 (from a flag or TOML); ValueError otherwise."""
    if value == AUTO:
        return AUTO
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not is_int(value) or not 1 <= value <= 1024:
        raise ValueError(f"threads must be 'auto' or an integer between 1 and 1024, got {value!r}")
    return value


@contextlib.contextmanager
def thread_limit(threads: int) -> Iterator[None]:
    """torch's intra-op thread count set to `threads` inside the block, restored after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _device(config: TrainConfig) -> torch.device:
    if config.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(config.device)


def _step_seconds(config: TrainConfig, dataset: Dataset, threads: int) -> float:
    """Median seconds of one forward/backward/optimizer step at the point's batch size."""
    device = _device(config)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with thread_limit(threads):
        torch.manual_seed(0)
        model = build_model(config.model, dataset.input_shape, dataset.num_classes).to(device)
        opt = torch.optim.SGD(model.parameters(), lr=1e-6)
        n = min(config.batch_size, dataset.train_x.shape[0])
        x, y = dataset.train_x[:n].to(device), dataset.train_y[:n].to(device)

        def step() -> None:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        for _ in range(2):
            step()
        rounds = []
        for _ in range(_ROUNDS):
            sync()
            start = time.perf_counter()
            for _ in range(_STEPS):
                step()
            sync()
            rounds.append((time.perf_counter() - start) / _STEPS)
    return statistics.median(rounds)


def choose_threads(config: TrainConfig, dataset: Dataset, requested: int | str = AUTO
                   ) -> ThreadChoice:
    """The thread count a point trains with. An int is used as given; "auto" measures 1
    thread against all available cores on this point's model and batch size (cached per
    process by model, input shape, batch size and device)."""
    requested = parse_threads(requested)
    if requested != AUTO:
        return ThreadChoice(int(requested), "fixed", (), "asked for (--threads)")
    cores = available_cores()
    if cores == 1:
        return ThreadChoice(1, AUTO, (), "one core available")
    key = (config.model, dataset.input_shape, dataset.num_classes, config.batch_size,
           str(_device(config)), cores)
    if key not in _thread_choices:
        times = {k: _step_seconds(config, dataset, k) for k in (1, cores)}
        speedup = times[1] / times[cores]
        chosen = cores if speedup >= MIN_SPEEDUP else 1
        reason = (f"measured: {cores} threads {speedup:.2f}x the speed of 1 "
                  f"({'>=' if chosen == cores else '<'} {MIN_SPEEDUP}x needed)")
        _thread_choices[key] = ThreadChoice(chosen, AUTO, tuple(sorted(times.items())), reason)
    return _thread_choices[key]


def warm_up(config: TrainConfig, dataset: Dataset) -> float:
    """Pay the point's one-off costs outside its window; returns the seconds spent (about 0
    when an earlier point of this process already warmed the same key)."""
    key = (config.model, dataset.name, dataset.input_shape, str(_device(config)),
           config.procedure, config.constraint, config.groups, config.layers,
           config.constrain_first, config.constrain_last, config.optimizer, config.batch_size,
           torch.get_num_threads())
    start = time.perf_counter()
    if key not in _warm:
        # Every tensor shape the real run meets: two full batches plus the epoch's short last
        # batch, and one full evaluation chunk (first calls at a new shape pick kernels and
        # grow the allocator: on digits that was 0.4 s inside the first point's window).
        total, bs = dataset.train_x.shape[0], config.batch_size
        if config.validation > 0:  # the real run trains on what the split leaves
            total -= len(validation_split(total, config.validation)[1])
        n = min(2 * bs + total % bs, total)
        m = min(EVAL_BATCH, dataset.test_x.shape[0])
        small = dataclasses.replace(
            dataset, train_x=dataset.train_x[:n], train_y=dataset.train_y[:n],
            test_x=dataset.test_x[:m], test_y=dataset.test_y[:m], fingerprint="warm-up slice",
        )
        tiny = dataclasses.replace(
            config, epochs=1, retrain_epochs=1 if config.retrain_epochs is not None else None,
            data_fingerprint=None, validation=0.0,
        )
        train(tiny, dataset=small)
        if _device(config).type == "cuda":
            torch.cuda.synchronize()
        _warm.add(key)
    return time.perf_counter() - start


def reset_caches() -> None:
    """Forget every warm-up and thread decision (tests; a new device)."""
    _thread_choices.clear()
    _warm.clear()
