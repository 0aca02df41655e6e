"""Dataset identity: published checksums (`verify`), `fingerprint`, `verified`, `variant`.

The real-data tests use the Debian package `dataset-fashion-mnist` and are skipped without it;
MNIST and CIFAR-10 are exercised on small files written by the tests (and, for the accepting
paths, on checksum tables patched to those files).
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from projlib.training import Dataset, DatasetChecksumError, DatasetError, load_dataset
from projlib.training import datasets as ds_module

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
needs_fashion = pytest.mark.skipif(
    not all((DEBIAN / f"{s}.gz").is_file() for s in STEMS),
    reason=f"Fashion-MNIST not installed in {DEBIAN} (apt-get install dataset-fashion-mnist)",
)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _link_fashion(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for s in STEMS:
        (folder / f"{s}.gz").symlink_to(DEBIAN / f"{s}.gz")
    return folder


@pytest.fixture(scope="module")
def fashion() -> Dataset:
    """Fashion-MNIST from the Debian package, loaded once for the module (~0.5 s)."""
    if not DEBIAN.is_dir():
        pytest.skip(f"Fashion-MNIST not installed in {DEBIAN}")
    return load_dataset("fashion-mnist", data_dir=DEBIAN)


# ---------------------------------------------------------------- real Fashion-MNIST


@needs_fashion
def test_fashion_files_refused_as_mnist(tmp_path, no_system_data):
    folder = _link_fashion(tmp_path / "looks-like-mnist")
    with pytest.raises(DatasetChecksumError) as err:
        load_dataset("mnist", data_dir=folder)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{folder / 'train-images-idx3-ubyte.gz'}: md5 ")
    assert "is not the published checksum of MNIST's train images" in msg
    assert "it is Fashion-MNIST's train images" in msg
    assert "--no-verify-data" in msg and "verify=False" in msg
    assert isinstance(err.value, DatasetError)  # callers catching DatasetError still do


@needs_fashion
def test_fashion_as_mnist_with_verify_off_is_flagged(tmp_path, no_system_data, fashion):
    folder = _link_fashion(tmp_path / "looks-like-mnist")
    ds = load_dataset("mnist", data_dir=folder, verify=False)
    assert ds.name == "mnist" and ds.verified is False
    assert ds.variant == "custom (not verified; the files are fashion-mnist's published ones)"
    assert ds.fingerprint == fashion.fingerprint  # same data, whatever it was loaded as


@needs_fashion
def test_fashion_fingerprint_independent_of_folder_and_compression(
    tmp_path, no_system_data, fashion
):
    assert fashion.verified is True
    assert fashion.variant == "fashion-mnist (published checksums)"
    assert len(fashion.fingerprint) == 64 and int(fashion.fingerprint, 16) >= 0
    linked = load_dataset("fashion-mnist", data_dir=_link_fashion(tmp_path / "a"))
    # another folder, torchvision layout, uncompressed: same data -> same fingerprint
    raw = tmp_path / "b" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for s in STEMS:
        with gzip.open(DEBIAN / f"{s}.gz", "rb") as src, (raw / s).open("wb") as dst:
            shutil.copyfileobj(src, dst)
    plain = load_dataset("fashion-mnist", data_dir=tmp_path / "b")
    assert plain.source == str(raw)
    for other in (linked, plain):
        assert other.fingerprint == fashion.fingerprint and other.verified is True
    assert torch.equal(plain.test_x, fashion.test_x)


@needs_fashion
def test_modified_fashion_refused_and_fingerprinted(tmp_path, no_system_data, fashion):
    folder = _link_fashion(tmp_path / "modified")
    labels = folder / "t10k-labels-idx1-ubyte.gz"
    content = bytearray(gzip.decompress(labels.read_bytes()))
    content[8] = (content[8] + 1) % 10  # relabel one test image
    labels.unlink()
    labels.write_bytes(gzip.compress(bytes(content)))
    with pytest.raises(DatasetChecksumError, match=r"labels-idx1-ubyte\.gz: .*unknown content"):
        load_dataset("fashion-mnist", data_dir=folder)
    ds = load_dataset("fashion-mnist", data_dir=folder, verify=False)
    assert ds.verified is False and ds.variant == "custom (not verified)"
    assert ds.fingerprint != fashion.fingerprint


def test_published_checksums_match_torchvision():
    """The constants are copies of torchvision's (not imported at load time): keep them so."""
    tvd = pytest.importorskip("torchvision.datasets")
    roles = ("train_x", "train_y", "test_x", "test_y")
    for name, cls in (("mnist", tvd.MNIST), ("fashion-mnist", tvd.FashionMNIST)):
        assert [md5 for _, md5 in cls.resources] == [ds_module._IDX_GZ_MD5[name][r] for r in roles]
    assert [md5 for _, md5 in tvd.KMNIST.resources] == [
        ds_module._OTHER_GZ_MD5["KMNIST"][r] for r in roles
    ]
    assert dict(tvd.CIFAR10.train_list + tvd.CIFAR10.test_list) == ds_module._CIFAR_MD5


# ---------------------------------------------------------------- small files written here


@pytest.mark.parametrize("gz", [False, True])
def test_fake_mnist_refused_then_accepted_with_verify_off(tmp_path, idx_writer, no_system_data, gz):
    idx_writer(tmp_path, gz=gz)
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    with pytest.raises(DatasetChecksumError) as err:
        load_dataset("mnist", data_dir=tmp_path)
    msg = str(err.value)
    assert msg.startswith(f"{tmp_path / name}: md5 ") and "\n" not in msg
    assert ("uncompressed content md5" in msg) == gz
    assert "not the published checksum of MNIST's train images; unknown content" in msg
    assert "--no-verify-data (verify=False)" in msg
    ds = load_dataset("mnist", data_dir=tmp_path, verify=False)
    assert ds.verified is False and ds.variant == "custom (not verified)"
    assert ds.train_x.shape == (12, 1, 28, 28)


def test_fake_fingerprint_stable_across_folders_and_compression(tmp_path, idx_writer,
                                                                no_system_data):
    idx_writer(tmp_path / "a", gz=False)
    idx_writer(tmp_path / "b" / "MNIST" / "raw", gz=True)
    idx_writer(tmp_path / "c", seed=1)
    a = load_dataset("mnist", data_dir=tmp_path / "a", verify=False)
    b = load_dataset("mnist", data_dir=tmp_path / "b", verify=False)
    c = load_dataset("mnist", data_dir=tmp_path / "c", verify=False)
    assert a.fingerprint == b.fingerprint
    assert c.fingerprint != a.fingerprint
    # loaded as the other IDX dataset: same bytes, same fingerprint (the name is separate)
    assert load_dataset("fashion-mnist", data_dir=tmp_path / "a", verify=False).fingerprint == (
        a.fingerprint
    )


@needs_fashion
def test_fake_fingerprint_differs_from_fashion(tmp_path, idx_writer, no_system_data, fashion):
    idx_writer(tmp_path, n_train=60, n_test=10)
    fake = load_dataset("fashion-mnist", data_dir=tmp_path, verify=False)
    assert fake.fingerprint != fashion.fingerprint and fake.verified is False


def test_train_test_swap_changes_fingerprint(tmp_path, idx_writer, no_system_data):
    arrays = idx_writer(tmp_path / "a", n_train=5, n_test=5)
    swapped = tmp_path / "b"
    swapped.mkdir()
    for src, dst in (("train", "t10k"), ("t10k", "train")):
        for kind in ("images-idx3", "labels-idx1"):
            shutil.copy(tmp_path / "a" / f"{src}-{kind}-ubyte", swapped / f"{dst}-{kind}-ubyte")
    a = load_dataset("mnist", data_dir=tmp_path / "a", verify=False)
    b = load_dataset("mnist", data_dir=swapped, verify=False)
    assert len(arrays) == 4 and a.fingerprint != b.fingerprint


def _publish_idx(monkeypatch, folder: Path, name: str, table: str) -> None:
    """Pretend the IDX files in `folder` are `name`'s published files (content or .gz MD5s)."""
    roles = dict(zip(("train_x", "train_y", "test_x", "test_y"), STEMS, strict=True))
    md5s = {}
    for role, stem in roles.items():
        path = folder / stem if (folder / stem).is_file() else folder / f"{stem}.gz"
        md5s[role] = _md5(path)
    patched = {**getattr(ds_module, table), name: md5s}
    monkeypatch.setattr(ds_module, table, patched)
    monkeypatch.setattr(ds_module, "_KNOWN_MD5", ds_module._known_files())


@pytest.mark.parametrize(("gz", "table"), [(False, "_IDX_CONTENT_MD5"),
                                           (True, "_IDX_CONTENT_MD5"),
                                           (True, "_IDX_GZ_MD5")])
def test_published_idx_files_are_verified(monkeypatch, tmp_path, idx_writer, no_system_data,
                                          gz, table):
    idx_writer(tmp_path / "pub", gz=gz)
    if table == "_IDX_CONTENT_MD5" and gz:  # content MD5s of .gz files: gunzip a copy to get them
        idx_writer(tmp_path / "plain", gz=False)
        _publish_idx(monkeypatch, tmp_path / "plain", "mnist", table)
    else:
        _publish_idx(monkeypatch, tmp_path / "pub", "mnist", table)
    ds = load_dataset("mnist", data_dir=tmp_path / "pub")
    assert ds.verified is True and ds.variant == "mnist (published checksums)"
    # ... and the same files are named for what they are when loaded as the other dataset
    with pytest.raises(DatasetChecksumError, match="it is MNIST's train images"):
        load_dataset("fashion-mnist", data_dir=tmp_path / "pub")


def test_cifar_checksum_mismatch_refused_then_accepted(tmp_path, cifar_writer, no_system_data):
    folder = tmp_path / "cifar-10-batches-py"
    cifar_writer(folder)
    with pytest.raises(DatasetChecksumError) as err:
        load_dataset("cifar10", data_dir=tmp_path)
    msg = str(err.value)
    assert msg.startswith(f"{folder / 'data_batch_1'}: md5 ") and "\n" not in msg
    assert "not the published checksum of CIFAR-10's data_batch_1; unknown content" in msg
    assert "verify=False" in msg
    ds = load_dataset("cifar10", data_dir=tmp_path, verify=False)
    assert ds.verified is False and ds.variant == "custom (not verified)"
    moved = shutil.copytree(folder, tmp_path / "elsewhere" / "cifar-10-batches-py")
    again = load_dataset("cifar10", data_dir=moved.parent, verify=False)
    assert again.fingerprint == ds.fingerprint
    cifar_writer(folder, seed=1)
    assert load_dataset("cifar10", data_dir=tmp_path, verify=False).fingerprint != ds.fingerprint


def test_cifar_published_batches_verified_and_swaps_named(monkeypatch, tmp_path, cifar_writer,
                                                          no_system_data):
    folder = tmp_path / "cifar-10-batches-py"
    cifar_writer(folder)
    published = {b: _md5(folder / b) for b in ds_module._CIFAR_MD5}
    monkeypatch.setattr(ds_module, "_CIFAR_MD5", published)
    monkeypatch.setattr(ds_module, "_KNOWN_MD5", ds_module._known_files())
    ds = load_dataset("cifar10", data_dir=tmp_path)
    assert ds.verified is True and ds.variant == "cifar10 (published checksums)"
    shutil.copy(folder / "test_batch", folder / "data_batch_2")
    with pytest.raises(DatasetChecksumError, match="data_batch_2: .*it is CIFAR-10's test_batch"):
        load_dataset("cifar10", data_dir=tmp_path)


# ---------------------------------------------------------------- digits and hand-built datasets


def test_digits_fingerprint_stable_and_verified():
    a, b = load_dataset("digits"), load_dataset("digits")
    assert a.verified is True and a.variant == "digits (bundled with scikit-learn)"
    assert a.fingerprint == b.fingerprint and len(a.fingerprint) == 64


def test_hand_built_dataset_fingerprint_from_tensors():
    x, y = torch.zeros(4, 1, 2, 2), torch.zeros(4, dtype=torch.int64)
    a = Dataset("toy", x, y, x, y, (1, 2, 2), 10, "memory")
    b = Dataset("toy", x.clone(), y.clone(), x.clone(), y.clone(), (1, 2, 2), 10, "elsewhere")
    assert a.fingerprint == b.fingerprint and a.verified is False
    subset = dataclasses.replace(a, train_x=x[:2], train_y=y[:2], fingerprint="")
    assert subset.fingerprint != a.fingerprint
    ones = Dataset("toy", x + 1, y, x, y, (1, 2, 2), 10, "memory")
    assert ones.fingerprint != a.fingerprint
    assert Dataset("toy", x, y, x, y, (1, 2, 2), 10, "m", fingerprint="f").fingerprint == "f"


def test_verify_flag_is_keyword_compatible(tmp_path, idx_writer, no_system_data):
    idx_writer(tmp_path)
    ds = load_dataset("mnist", tmp_path, False, False)
    assert isinstance(ds.train_x, torch.Tensor) and np.isfinite(ds.train_x.numpy()).all()
