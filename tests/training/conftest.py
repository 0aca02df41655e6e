"""Helpers that write small, valid dataset files for the loader tests."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest


def write_cifar_set(folder: Path, n_per_batch: int = 4, seed: int = 0) -> dict[str, dict]:
    """Write cifar-10-batches-py/{data_batch_1..5,test_batch} like the official pickles."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            b"data": rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8),
            b"labels": [int(v) for v in rng.integers(0, 10, n_per_batch)],
            b"batch_label": name.encode(),
        }
        with (folder / name).open("wb") as fh:
            pickle.dump(batch, fh, protocol=2)
        batches[name] = batch
    return batches


@pytest.fixture
def cifar_writer():
    return write_cifar_set


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """One intra-op thread: these tiny models slow down 20-50x when torch's thread pool fights
    other processes for the 2 shared cores (measured: 0.8 s vs 25-50 s for a digits run)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
