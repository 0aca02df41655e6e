"""Loaders: digits, IDX (MNIST / Fashion-MNIST) and CIFAR-10 pickles written by the tests.

The small files written here are not the published datasets, so loading them needs
`verify=False` (checksums and fingerprints: test_datasets_identity.py).
"""

from __future__ import annotations

import gzip
import math
import pickle

import numpy as np
import pytest
import torch

from projlib.training import (
    DATASETS,
    DatasetChecksumError,
    DatasetError,
    DatasetNotFoundError,
    load_dataset,
    read_cifar_batch,
    read_idx,
)


def test_digits_split_shape_scale_and_determinism():
    a = load_dataset("digits")
    b = load_dataset("digits")
    assert a.input_shape == (1, 8, 8) and a.num_classes == 10
    assert a.train_x.shape == (1347, 1, 8, 8) and a.test_x.shape == (450, 1, 8, 8)
    assert a.train_x.dtype == torch.float32 and a.train_y.dtype == torch.int64
    assert float(a.train_x.min()) == 0.0 and float(a.train_x.max()) == 1.0
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    # stratified: every class in both splits
    assert set(a.test_y.tolist()) == set(range(10))


@pytest.mark.parametrize("gz", [False, True])
def test_idx_roundtrip_flat_dir(tmp_path, idx_writer, no_system_data, gz):
    arrays = idx_writer(tmp_path, gz=gz)
    ds = load_dataset("mnist", data_dir=tmp_path, verify=False)
    assert ds.source == str(tmp_path)
    assert ds.verified is False and ds.variant == "custom (not verified)"
    assert ds.train_x.shape == (12, 1, 28, 28) and ds.test_x.shape == (5, 1, 28, 28)
    expected = torch.from_numpy(arrays["train-images-idx3-ubyte"].astype(np.float32) / 255.0)
    assert torch.equal(ds.train_x[:, 0], expected)
    assert ds.test_y.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()


def test_idx_torchvision_layout(tmp_path, idx_writer, no_system_data):
    idx_writer(tmp_path / "FashionMNIST" / "raw", gz=True)
    ds = load_dataset("fashion-mnist", data_dir=str(tmp_path), verify=False)
    assert ds.source == str(tmp_path / "FashionMNIST" / "raw")
    assert ds.input_shape == (1, 28, 28)


def test_missing_offline_lists_where_it_looked(tmp_path, no_system_data):
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("fashion-mnist", data_dir=tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "FashionMNIST" / "raw") in msg and "no-debian" in msg
    assert "apt-get install dataset-fashion-mnist" in msg and "--download" in msg
    with pytest.raises(DatasetNotFoundError, match="cifar-10-batches-py"):
        load_dataset("cifar10", data_dir=tmp_path)


def test_truncated_idx_names_file(tmp_path, idx_writer, no_system_data):
    idx_writer(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-7])
    # the file's structure is checked before its checksum: the error says what is wrong
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.*truncated") as err:
        load_dataset("mnist", data_dir=tmp_path)
    assert not isinstance(err.value, DatasetChecksumError)


def test_truncated_gzip_names_file(tmp_path, idx_writer, no_system_data):
    idx_writer(tmp_path, gz=True)
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte.gz"):
        load_dataset("mnist", data_dir=tmp_path)


def test_bad_magic_and_wrong_ndim(tmp_path, idx_encoder):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x08\x01" + (3).to_bytes(4, "big") + b"abc")
    with pytest.raises(DatasetError, match="bad magic"):
        read_idx(bad)
    labels = tmp_path / "labels"
    labels.write_bytes(idx_encoder(np.zeros(4, dtype=np.uint8)))
    with pytest.raises(DatasetError, match="expected 3"):
        read_idx(labels, expected_ndim=3)
    assert read_idx(labels, expected_ndim=1).tolist() == [0, 0, 0, 0]


def test_label_range_and_count_mismatch(tmp_path, idx_writer, idx_encoder, no_system_data):
    idx_writer(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_encoder(np.full(12, 10, np.uint8)))
    with pytest.raises(DatasetError, match="train-labels-idx1-ubyte.*label 10"):
        load_dataset("mnist", data_dir=tmp_path, verify=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_encoder(np.zeros(11, np.uint8)))
    with pytest.raises(DatasetError, match="11 labels for 12 images"):
        load_dataset("mnist", data_dir=tmp_path, verify=False)


def test_cifar_roundtrip(tmp_path, cifar_writer, no_system_data):
    batches = cifar_writer(tmp_path / "cifar-10-batches-py")
    ds = load_dataset("cifar10", data_dir=tmp_path, verify=False)
    assert ds.verified is False
    assert ds.train_x.shape == (20, 3, 32, 32) and ds.test_x.shape == (4, 3, 32, 32)
    first = batches["data_batch_1"][b"data"][0].reshape(3, 32, 32).astype(np.float32) / 255.0
    assert torch.equal(ds.train_x[0], torch.from_numpy(first))
    assert ds.test_y.tolist() == batches["test_batch"][b"labels"]


def test_cifar_corrupt_and_forbidden(tmp_path, cifar_writer):
    folder = tmp_path / "cifar-10-batches-py"
    cifar_writer(folder)
    path = folder / "data_batch_3"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DatasetError, match="data_batch_3"):
        read_cifar_batch(path)
    with path.open("wb") as fh:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 12]}, fh)
    with pytest.raises(DatasetError, match="labels outside"):
        read_cifar_batch(path)
    with path.open("wb") as fh:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, fh)
    with pytest.raises(DatasetError, match=r"\(N, 3072\)"):
        read_cifar_batch(path)
    # a pickle that would run code on load is refused, not executed
    with path.open("wb") as fh:
        pickle.dump(gzip.GzipFile, fh)
    with pytest.raises(DatasetError, match="forbidden"):
        read_cifar_batch(path)


def test_bad_arguments():
    with pytest.raises(ValueError, match="name must be one of"):
        load_dataset("imagenet")
    with pytest.raises(TypeError, match="data_dir"):
        load_dataset("mnist", data_dir=3)
    assert set(DATASETS) == {"digits", "fashion-mnist", "mnist", "cifar10"}


# ---------------------------------------------------------------- empty splits


@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize("verify", [True, False])
def test_idx_zero_images_refused(tmp_path, idx_writer, no_system_data, split, verify):
    # 0 images declared (and held): valid IDX, but every point would divide by zero
    idx_writer(tmp_path, **{f"n_{split}": 0})
    stem = "train-images-idx3-ubyte" if split == "train" else "t10k-images-idx3-ubyte"
    with pytest.raises(DatasetError, match=f"{stem}: holds 0 images; the {split} split is empty"):
        load_dataset("mnist", data_dir=tmp_path, verify=verify)


def test_idx_zero_pixel_images_refused(tmp_path, idx_writer, idx_encoder, no_system_data):
    idx_writer(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(idx_encoder(np.zeros((5, 0, 28), np.uint8)))
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte: images of size"):
        load_dataset("mnist", data_dir=tmp_path, verify=False)


def test_cifar_zero_rows_refused(tmp_path, cifar_writer, no_system_data):
    folder = tmp_path / "cifar-10-batches-py"
    cifar_writer(folder)
    with (folder / "test_batch").open("wb") as fh:
        pickle.dump({b"data": np.zeros((0, 3072), np.uint8), b"labels": []}, fh)
    with pytest.raises(DatasetError, match="test_batch: batch holds 0 images"):
        read_cifar_batch(folder / "test_batch")
    with pytest.raises(DatasetError, match="test_batch: batch holds 0 images"):
        load_dataset("cifar10", data_dir=tmp_path, verify=False)


def test_cifar_non_integer_labels_refused(tmp_path):
    path = tmp_path / "data_batch_1"
    with path.open("wb") as fh:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0.5, 1.0]}, fh)
    with pytest.raises(DatasetError, match="data_batch_1: labels must be integers"):
        read_cifar_batch(path)


# ---------------------------------------------------------------- IDX header edge cases


def _idx_header(ndim: int, dims: tuple[int, ...]) -> bytes:
    return bytes([0, 0, 0x08, ndim]) + b"".join(d.to_bytes(4, "big") for d in dims)


def test_idx_header_overflow_names_file_with_exact_size(tmp_path):
    # (2**32 - 1)**3 overflows int64: the declared size must be computed exactly
    dims = (0xFFFFFFFF,) * 3
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(_idx_header(3, dims) + bytes(16))
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte") as err:
        read_idx(path, expected_ndim=3)
    assert f"= {math.prod(dims)} bytes but the file holds 16" in str(err.value)


def test_idx_header_product_wrapping_to_file_size(tmp_path):
    # 2**31 * 2**31 * 4 == 2**64, which wraps to 0 in int64: an empty payload "matched" it
    path = tmp_path / "wraps"
    path.write_bytes(_idx_header(3, (2**31, 2**31, 4)))
    with pytest.raises(DatasetError, match=f"wraps: header declares shape .* = {2**64} bytes"):
        read_idx(path)


def test_idx_header_zero_size_but_unrepresentable_shape(tmp_path):
    path = tmp_path / "huge-empty"
    path.write_bytes(_idx_header(3, (0, 0xFFFFFFFF, 0xFFFFFFFF)))
    with pytest.raises(DatasetError, match="huge-empty: header declares shape .*too large"):
        read_idx(path)


def test_idx_header_zero_and_huge_ndim(tmp_path):
    scalar = tmp_path / "scalar"
    scalar.write_bytes(_idx_header(0, ()) + b"\x07")
    with pytest.raises(DatasetError, match="scalar: IDX header declares 0 dimensions"):
        read_idx(scalar)
    many = tmp_path / "many"
    many.write_bytes(_idx_header(255, (1,) * 255) + b"\x07")
    with pytest.raises(DatasetError, match="many: IDX header declares 255 dimensions"):
        read_idx(many)
    short = tmp_path / "short"
    short.write_bytes(_idx_header(255, (1,) * 10))
    with pytest.raises(DatasetError, match="short: IDX header declares 255 dimensions"):
        read_idx(short)


def test_idx_header_overflow_via_load_dataset(tmp_path, idx_writer, no_system_data):
    idx_writer(tmp_path, gz=True)
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as fh:
        fh.write(_idx_header(3, (2**31, 2**31, 4)))
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte\.gz: header declares"):
        load_dataset("mnist", data_dir=tmp_path)


def test_corrupt_gzip_stream_names_file(tmp_path, idx_writer, no_system_data):
    idx_writer(tmp_path, gz=True)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    good = path.read_bytes()
    raw = bytearray(good)
    assert raw[3] & 0x08  # FNAME flag: the deflate stream starts after the stored file name
    raw[raw.index(0, 10) + 1] = 0x07  # first deflate block of reserved type 3: zlib.error
    path.write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match="cannot read .*train-labels-idx1-ubyte.gz.*block type"):
        load_dataset("mnist", data_dir=tmp_path)
    raw = bytearray(good)
    raw[-8] ^= 0xFF  # the CRC32 trailer: BadGzipFile
    path.write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match="cannot read .*train-labels-idx1-ubyte.gz.*CRC"):
        load_dataset("mnist", data_dir=tmp_path)
