"""Fixtures shared by every test folder: small IDX dataset files and no system data."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import torch

# Without a GPU, Triton kernels (``projlib.projections._triton_ops``) run in Triton's
# interpreter on CPU tensors.  It must be chosen before anything imports Triton, which then
# builds its own library functions (tl.sort, tl.cumsum) for the interpreter too.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


def idx_bytes(array: np.ndarray) -> bytes:
    """Serialise a uint8 array in IDX format: magic (0, 0, 0x08, ndim), big-endian sizes, data."""
    header = bytes([0, 0, 0x08, array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_set(folder: Path, n_train: int = 12, n_test: int = 5, gz: bool = False,
                  side: int = 28, seed: int = 0) -> dict[str, np.ndarray]:
    """Write the 4 MNIST-style IDX files into `folder`; return the arrays written."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, side, side), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, side, side), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for stem, arr in arrays.items():
        data = idx_bytes(arr)
        if gz:
            with gzip.open(folder / (stem + ".gz"), "wb") as fh:
                fh.write(data)
        else:
            (folder / stem).write_bytes(data)
    return arrays


@pytest.fixture
def no_system_data(monkeypatch, tmp_path):
    """Point the default download root and the Debian path at empty folders."""
    from projlib.training import datasets

    monkeypatch.setattr(datasets, "DEFAULT_ROOT", tmp_path / "empty-cache")
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian")


@pytest.fixture
def idx_writer():
    """The `write_idx_set` helper, as a fixture (test modules need no import path)."""
    return write_idx_set


@pytest.fixture
def idx_encoder():
    return idx_bytes
