"""Datasets, offline-first: digits (bundled), fashion-mnist / mnist (IDX), cifar10 (pickles).

Every dataset comes back as in-memory float32 tensors scaled to [0, 1] with shape (N, C, H, W)
and int64 labels. The whole splits fit in memory for these datasets (CIFAR-10: ~0.7 GB), and
indexing a tensor per batch is far cheaper than a DataLoader for 28x28 images.

Files are parsed here, not by torchvision, so that every corrupt or truncated file gives a
`DatasetError` naming it (torchvision would read a short file into a short dataset). torchvision
is only used to *download*, and only when `download=True`.
"""

from __future__ import annotations

import gzip
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

DEFAULT_ROOT = Path.home() / ".cache" / "greenbench" / "datasets"
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

_IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
_CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR_TEST = "test_batch"


class DatasetError(ValueError):
    """A dataset file exists but is corrupt, truncated or inconsistent."""


class DatasetNotFoundError(FileNotFoundError):
    """The dataset is not available offline (and download was not allowed)."""


@dataclass(frozen=True)
class Dataset:
    """Train/test splits as tensors: x float32 (N, C, H, W) in [0, 1], y int64 (N,)."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    input_shape: tuple[int, int, int]
    num_classes: int
    source: str


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    input_shape: tuple[int, int, int]
    num_classes: int
    summary: str
    loader: Callable[[Path | None, bool], Dataset]


# ---------------------------------------------------------------- IDX (MNIST, Fashion-MNIST)


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:  # truncated gzip raises EOFError
        raise DatasetError(f"cannot read {path}: {exc}") from exc


def read_idx(path: str | Path, expected_ndim: int | None = None) -> np.ndarray:
    """Parse one IDX file (LeCun's format) of unsigned bytes, optionally gzip-compressed.

    Layout: magic (0, 0, dtype=0x08, ndim), ndim big-endian uint32 sizes, then prod(sizes) bytes.
    The declared sizes must match the payload exactly; anything else is a `DatasetError`.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DatasetError(f"{path}: not an IDX file (bad magic number)")
    if raw[2] != 0x08:
        raise DatasetError(f"{path}: IDX element type 0x{raw[2]:02x} unsupported (want 0x08)")
    ndim = raw[3]
    if expected_ndim is not None and ndim != expected_ndim:
        raise DatasetError(f"{path}: IDX has {ndim} dimensions, expected {expected_ndim}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{path}: truncated IDX header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims, dtype=np.int64))
    if len(raw) - header != expected:
        raise DatasetError(
            f"{path}: header declares shape {dims} = {expected} bytes but the file holds "
            f"{len(raw) - header} (truncated or corrupt)"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _find_idx_dir(candidates: list[Path]) -> Path | None:
    for folder in candidates:
        if all(_idx_path(folder, stem) is not None for stem in _IDX_FILES.values()):
            return folder
    return None


def _idx_path(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _labels(path: Path, labels: np.ndarray, count: int, num_classes: int) -> torch.Tensor:
    if labels.shape[0] != count:
        raise DatasetError(f"{path}: {labels.shape[0]} labels for {count} images")
    if labels.size and int(labels.max()) >= num_classes:
        raise DatasetError(f"{path}: label {int(labels.max())} outside 0..{num_classes - 1}")
    return torch.from_numpy(labels.astype(np.int64))


def _load_idx(name: str, folder: Path) -> Dataset:
    arrays: dict[str, torch.Tensor] = {}
    for split in ("train", "test"):
        x_path = _idx_path(folder, _IDX_FILES[f"{split}_x"])
        y_path = _idx_path(folder, _IDX_FILES[f"{split}_y"])
        assert x_path is not None and y_path is not None  # guaranteed by _find_idx_dir
        images = read_idx(x_path, expected_ndim=3)
        arrays[f"{split}_y"] = _labels(y_path, read_idx(y_path, 1), images.shape[0], 10)
        arrays[f"{split}_x"] = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    if arrays["train_x"].shape[1:] != arrays["test_x"].shape[1:]:
        raise DatasetError(f"{folder}: train and test images have different sizes")
    c, h, w = arrays["train_x"].shape[1:]
    return Dataset(name, input_shape=(c, h, w), num_classes=10, source=str(folder), **arrays)


def _idx_loader(name: str, tv_folder: str, tv_class: str) -> Callable[[Path | None, bool], Dataset]:
    def load(data_dir: Path | None, download: bool) -> Dataset:
        candidates: list[Path] = []
        if data_dir is not None:
            candidates += [data_dir, data_dir / tv_folder / "raw", data_dir / name]
        candidates.append(DEFAULT_ROOT / tv_folder / "raw")
        if name == "fashion-mnist":
            candidates.append(DEBIAN_FASHION_MNIST)
        found = _find_idx_dir(candidates)
        if found is None and download:
            import torchvision.datasets as tvd

            root = data_dir if data_dir is not None else DEFAULT_ROOT
            getattr(tvd, tv_class)(root=str(root), train=True, download=True)
            found = _find_idx_dir([root / tv_folder / "raw"])
        if found is None:
            hint = (
                "install the Debian package (apt-get install dataset-fashion-mnist), "
                if name == "fashion-mnist"
                else ""
            )
            raise DatasetNotFoundError(
                f"{name} not found offline; looked for the 4 IDX files "
                f"({', '.join(_IDX_FILES.values())}, optionally .gz) in: "
                f"{', '.join(str(c) for c in candidates)}. To get them: {hint}put the files in "
                f"--data-dir, or allow a download (--download / download=True)"
            )
        return _load_idx(name, found)

    return load


# ---------------------------------------------------------------- CIFAR-10 (python pickles)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """CIFAR batches are pickles; refuse anything but the numpy pieces they contain.

    A pickle can run arbitrary code on load, and `data_dir` is user-supplied, so only the
    classes needed to rebuild an ndarray are allowed.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # protocol-2 pickles of ndarrays (str -> bytes, side-effect free)
    }

    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle protocol
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"forbidden global {module}.{name}")
        if module.startswith("numpy.core"):
            module = module.replace("numpy.core", "numpy._core", 1)
        return super().find_class(module, name)


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one `cifar-10-batches-py` batch -> (uint8 (N, 3, 32, 32), int64 (N,)), validated."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            batch = _NumpyOnlyUnpickler(fh, encoding="bytes").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError) as exc:
        raise DatasetError(f"cannot read CIFAR batch {path}: {exc}") from exc
    if not isinstance(batch, dict):
        raise DatasetError(f"{path}: expected a dict, got {type(batch).__name__}")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise DatasetError(f"{path}: missing 'data' or 'labels' entry")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch["labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DatasetError(f"{path}: data must be uint8 (N, 3072), got {data.dtype} {data.shape}")
    if labels.shape != (data.shape[0],):
        raise DatasetError(f"{path}: {labels.shape} labels for {data.shape[0]} images")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DatasetError(f"{path}: labels outside 0..9")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _load_cifar10(data_dir: Path | None, download: bool) -> Dataset:
    candidates: list[Path] = []
    if data_dir is not None:
        candidates += [data_dir / "cifar-10-batches-py", data_dir]
    candidates.append(DEFAULT_ROOT / "cifar-10-batches-py")

    def complete(folder: Path) -> bool:
        return all((folder / n).is_file() for n in (*_CIFAR_TRAIN, _CIFAR_TEST))

    found = next((c for c in candidates if complete(c)), None)
    if found is None and download:
        import torchvision.datasets as tvd

        root = data_dir if data_dir is not None else DEFAULT_ROOT
        tvd.CIFAR10(root=str(root), train=True, download=True)
        found = root / "cifar-10-batches-py" if complete(root / "cifar-10-batches-py") else None
    if found is None:
        raise DatasetNotFoundError(
            "cifar10 not found offline; looked for cifar-10-batches-py/{data_batch_1..5,"
            f"test_batch}} in: {', '.join(str(c) for c in candidates)}. To get them: extract "
            "cifar-10-python.tar.gz into --data-dir, or allow a download "
            "(--download / download=True)"
        )
    train = [read_cifar_batch(found / n) for n in _CIFAR_TRAIN]
    test_x, test_y = read_cifar_batch(found / _CIFAR_TEST)

    def to_x(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a.astype(np.float32) / 255.0)

    return Dataset(
        "cifar10",
        train_x=to_x(np.concatenate([b[0] for b in train])),
        train_y=torch.from_numpy(np.concatenate([b[1] for b in train])),
        test_x=to_x(test_x),
        test_y=torch.from_numpy(test_y),
        input_shape=(3, 32, 32),
        num_classes=10,
        source=str(found),
    )


# ---------------------------------------------------------------- digits (scikit-learn, bundled)

DIGITS_TEST_FRACTION = 0.25
DIGITS_SPLIT_SEED = 0


def _load_digits(data_dir: Path | None, download: bool) -> Dataset:
    # Shipped inside scikit-learn, so it never needs data_dir or a download.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.data.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)  # pixel values are 0..16
    y = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=DIGITS_TEST_FRACTION, random_state=DIGITS_SPLIT_SEED, stratify=y
    )
    return Dataset(
        "digits",
        train_x=torch.from_numpy(np.ascontiguousarray(x_tr)),
        train_y=torch.from_numpy(y_tr),
        test_x=torch.from_numpy(np.ascontiguousarray(x_te)),
        test_y=torch.from_numpy(y_te),
        input_shape=(1, 8, 8),
        num_classes=10,
        source="sklearn.datasets.load_digits (bundled)",
    )


DATASETS: dict[str, DatasetSpec] = {
    "digits": DatasetSpec(
        "digits", (1, 8, 8), 10, "scikit-learn 8x8 digits, 1347/450 stratified split (seed 0)",
        _load_digits,
    ),
    "fashion-mnist": DatasetSpec(
        "fashion-mnist", (1, 28, 28), 10, "Zalando Fashion-MNIST, IDX files, 60000/10000",
        _idx_loader("fashion-mnist", "FashionMNIST", "FashionMNIST"),
    ),
    "mnist": DatasetSpec(
        "mnist", (1, 28, 28), 10, "LeCun MNIST, IDX files, 60000/10000",
        _idx_loader("mnist", "MNIST", "MNIST"),
    ),
    "cifar10": DatasetSpec(
        "cifar10", (3, 32, 32), 10, "CIFAR-10 python pickle batches, 50000/10000", _load_cifar10
    ),
}


def load_dataset(name: str, data_dir: str | Path | None = None, download: bool = False) -> Dataset:
    """Load `name` offline-first; download (via torchvision) only when `download` is True.

    Search order for IDX/CIFAR files: `data_dir` itself, its torchvision layout
    (`<data_dir>/FashionMNIST/raw`, `<data_dir>/MNIST/raw`, `<data_dir>/cifar-10-batches-py`),
    `~/.cache/greenbench/datasets` (where downloads land when `data_dir` is None), and for
    Fashion-MNIST the Debian package's `/usr/share/datasets/fashion-mnist/`.
    Raises `DatasetNotFoundError` (lists where it looked) or `DatasetError` (names the bad file).
    """
    if not isinstance(name, str) or name not in DATASETS:
        raise ValueError(f"name must be one of {', '.join(DATASETS)}; got {name!r}")
    if data_dir is not None and not isinstance(data_dir, (str, Path)):
        raise TypeError(f"data_dir must be a str or Path, got {type(data_dir).__name__}")
    root = Path(data_dir).expanduser() if data_dir is not None else None
    return DATASETS[name].loader(root, bool(download))
