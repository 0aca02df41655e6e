"""Fixtures shared by every test folder: small IDX dataset files and no system data."""

from __future__ import annotations

import gzip
import itertools
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


# A model factory and a data loader of "your own" (`package.module:attr` plugins); the tests add
# their own functions after it.
PLUGIN_BASE = '''
import torch
from torch import nn
from projlib.training import Dataset

WIDTH = 16


def net(input_shape, num_classes):
    c, h, w = input_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, WIDTH), nn.ReLU(),
                         nn.Linear(WIDTH, WIDTH), nn.ReLU(), nn.Linear(WIDTH, num_classes))


def blobs():
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(3, 1, 4, 4, generator=g) * 2

    def split(n):
        y = torch.randint(0, 3, (n,), generator=g)
        return (centers[y] + 0.5 * torch.randn(n, 1, 4, 4, generator=g)).float(), y

    (trx, try_), (tex, tey) = split(96), split(48)
    return Dataset("blobs", trx, try_, tex, tey, input_shape=(1, 4, 4), num_classes=3,
                   source="blobs")
'''
_plugin_count = itertools.count()


@pytest.fixture
def plugin_writer(tmp_path, monkeypatch):
    """write(extra="") -> (module name, file): PLUGIN_BASE + extra as a module of a new name
    (imported modules stay in sys.modules) on sys.path for this test."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(extra: str = "") -> tuple[str, Path]:
        name = f"gb_plugin_{next(_plugin_count)}_{tmp_path.name.replace('-', '_')}"
        file = tmp_path / f"{name}.py"
        file.write_text(PLUGIN_BASE + extra)
        return name, file

    return write
