"""Datasets, offline-first: digits (bundled), fashion-mnist / mnist (IDX), cifar10 (pickles).

Every dataset comes back as in-memory float32 tensors scaled to [0, 1] with shape (N, C, H, W)
and int64 labels. The whole splits fit in memory for these datasets (CIFAR-10: ~0.7 GB), and
indexing a tensor per batch is far cheaper than a DataLoader for 28x28 images.

Files are parsed here, not by torchvision, so that every corrupt or truncated file gives a
`DatasetError` naming it (torchvision would read a short file into a short dataset). torchvision
is only used to *download*, and only when `download=True`.

Dataset identity (checksums)
----------------------------
MNIST and Fashion-MNIST use the same four file names, so a folder of Fashion-MNIST files would
otherwise be accepted as `mnist`. With `verify=True` (the default) every file is checked against
published checksums before the dataset is returned, and a mismatch raises
`DatasetChecksumError`, one line naming the file and what its content is instead (another
dataset's file, or unknown content) and how to opt out (`--no-verify-data` / `verify=False`) for a
deliberately custom variant. All files are read and checked for structure first (a truncated
or empty file is reported as such, not as a checksum mismatch), then against the checksums.

* The checksums are the MD5s torchvision publishes (`torchvision.datasets.MNIST.resources`,
  `FashionMNIST.resources`, `CIFAR10.train_list` / `test_list`), copied here as constants so that
  torchvision is not imported to load a dataset.
* IDX files are identified by the MD5 of their *uncompressed* content (`_IDX_CONTENT_MD5`), so a
  `.gz` and the file gunzipped from it are the same data, and a re-compressed `.gz` (the Debian
  package `dataset-fashion-mnist` ships re-compressed files whose `.gz` MD5s differ from the
  published ones) is accepted when its content is. A `.gz` whose content MD5 is unknown is still
  accepted when the `.gz` itself has the published MD5 (`_IDX_GZ_MD5`).
  The Fashion-MNIST content MD5s were computed from the Debian package's files, and they are the
  ones Fashion-MNIST users publish for the gunzipped files. torchvision lists no content MD5s for
  MNIST; the MNIST content MD5s here are the ones published for the gunzipped files next to the
  `.gz` MD5s above by several independent MNIST download scripts (their sizes match the IDX
  headers). They could not be recomputed offline: if genuine uncompressed MNIST files are ever
  refused, load the original `.gz` files (checked against torchvision's MD5s) or pass
  `verify=False`.
* CIFAR-10 is read from the extracted `cifar-10-batches-py` pickles; each batch file is checked
  against its published MD5.
* digits ships inside scikit-learn (no file can be substituted through `data_dir`), so it is
  always `verified=True`.

`Dataset.fingerprint` is a sha256 hex digest identifying the data actually read, computed from
the bytes already in memory (no second read): for IDX and CIFAR the sha256 of the sorted
(role, content MD5) pairs of the files, for digits the sha256 of the split arrays. It does not
depend on the folder, on the file names or on `.gz` compression; any change of content changes
it. It is computed with `verify=False` too, and `verified` then says whether every file still
matched the published checksums. A `Dataset` built by hand gets a fingerprint hashed from its
tensors (pass `fingerprint=""` to `dataclasses.replace` after changing the tensors).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import pickle
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from projlib.checks import check_number

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

# ---------------------------------------------------------------- published checksums

_DISPLAY = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}
_ROLE_WORDS = {
    "train_x": "train images",
    "train_y": "train labels",
    "test_x": "test images",
    "test_y": "test labels",
}

# MD5 of the published .gz files (torchvision's MNIST / FashionMNIST `resources`).
_IDX_GZ_MD5: dict[str, dict[str, str]] = {
    "mnist": {
        "train_x": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train_y": "d53e105ee54ea40749a09fcbcd1e9432",
        "test_x": "9fb629c4189551a2d022fa330f9573f3",
        "test_y": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train_x": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train_y": "25c81989df183df01b3e8a0aad5dffbe",
        "test_x": "bef4ecab320f06d8554ea6380940ec79",
        "test_y": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}
# MD5 of the uncompressed IDX content of those .gz files (see the module docstring).
_IDX_CONTENT_MD5: dict[str, dict[str, str]] = {
    "mnist": {
        "train_x": "6bbc9ace898e44ae57da46a324031adb",
        "train_y": "a25bea736e30d166cdddb491f175f624",
        "test_x": "2646ac647ad5339dbf082846283269ea",
        "test_y": "27ae3e4e09519cfbb04c329615203637",
    },
    "fashion-mnist": {
        "train_x": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train_y": "9018921c3c673c538a1fc5bad174d6f9",
        "test_x": "8181f5470baa50b63fa0f6fddb340f0a",
        "test_y": "15d484375f8d13e6eb1aabb0c3f46965",
    },
}
# Only to say what a refused file is: KMNIST uses the same file names (torchvision's KMNIST).
_OTHER_GZ_MD5: dict[str, dict[str, str]] = {
    "KMNIST": {
        "train_x": "bdb82020997e1d708af4cf47b453dcf7",
        "train_y": "e144d726b3acfaa3e44228e80efcd344",
        "test_x": "5c965bf0a639b31b8f53240b1b52f4d7",
        "test_y": "7320c461ea6c1c855c0b718fb2a4b134",
    },
}
# MD5 of the extracted cifar-10-batches-py files (torchvision's CIFAR10 train_list / test_list).
_CIFAR_MD5: dict[str, str] = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}


def _known_files() -> dict[str, tuple[str, str]]:
    """md5 -> (dataset name, what the file is, e.g. "Fashion-MNIST's train images")."""
    known: dict[str, tuple[str, str]] = {}
    for table, suffix in ((_IDX_CONTENT_MD5, ""), (_IDX_GZ_MD5, " (.gz)")):
        for name, roles in table.items():
            for role, md5 in roles.items():
                known[md5] = (name, f"{_DISPLAY[name]}'s {_ROLE_WORDS[role]}{suffix}")
    for other, roles in _OTHER_GZ_MD5.items():
        for role, md5 in roles.items():
            known[md5] = (other, f"{other}'s {_ROLE_WORDS[role]} (.gz)")
    for batch, md5 in _CIFAR_MD5.items():
        known[md5] = ("cifar10", f"CIFAR-10's {batch}")
    return known


_KNOWN_MD5 = _known_files()
_OPT_OUT = "to use a custom or modified variant on purpose, pass --no-verify-data (verify=False)"


class DatasetError(ValueError):
    """A dataset file exists but is corrupt, truncated or inconsistent."""


class DatasetNotFoundError(FileNotFoundError):
    """The dataset is not available offline (and download was not allowed)."""


class DatasetChecksumError(DatasetError):
    """A dataset file is readable but is not the published file (`verify=True`)."""


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _fingerprint(kind: str, digests: Iterable[tuple[str, str]]) -> str:
    """sha256 over the sorted (role, md5) pairs: independent of folder and compression."""
    text = kind + "\n" + "".join(f"{role} {md5}\n" for role, md5 in sorted(digests))
    return hashlib.sha256(text.encode()).hexdigest()


def _mismatch_message(path: Path, expected: str, file_md5: str, content_md5: str | None) -> str:
    """One line: the file, its md5, what it is instead, how to opt out."""
    shown = f"md5 {file_md5}"
    if content_md5 is not None and content_md5 != file_md5:
        shown += f" (uncompressed content md5 {content_md5})"
    match = _KNOWN_MD5.get(content_md5 or "") or _KNOWN_MD5.get(file_md5)
    instead = f"it is {match[1]}" if match else "unknown content (no published file has it)"
    return f"{path}: {shown} is not the published checksum of {expected}; {instead}; {_OPT_OUT}"


def _variant(name: str, verified: bool, md5s: Iterable[str]) -> str:
    if verified:
        return f"{name} (published checksums)"
    owners = {(_KNOWN_MD5.get(m) or ("",))[0] for m in md5s}
    if len(owners) == 1 and "" not in owners:
        return f"custom (not verified; the files are {owners.pop()}'s published ones)"
    return "custom (not verified)"


def _tensor_fingerprint(tensors: Iterable[torch.Tensor]) -> str:
    h = hashlib.sha256(b"tensors\n")
    for t in tensors:
        a = np.ascontiguousarray(t.detach().cpu().numpy())
        h.update(f"{a.dtype.str} {a.shape}\n".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


@dataclass(frozen=True)
class Dataset:
    """Train/test splits as tensors: x float32 (N, C, H, W) in [0, 1], y int64 (N,).

    `fingerprint`: sha256 hex digest of the data read (same files anywhere -> same value; other
    content -> other value). `verified`: every file matched its published checksum.
    `variant`: a short human-readable label, e.g. "fashion-mnist (published checksums)" or
    "custom (not verified)".
    """

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    input_shape: tuple[int, int, int]
    num_classes: int
    source: str
    fingerprint: str = ""
    verified: bool = False
    variant: str = "in-memory (not verified)"

    def __post_init__(self) -> None:
        if not self.fingerprint:  # built by hand: identify it by its tensors
            tensors = (self.train_x, self.train_y, self.test_x, self.test_y)
            object.__setattr__(self, "fingerprint", _tensor_fingerprint(tensors))


#: Names the validation split's algorithm: which examples are held out is a function of this,
#: the data (its fingerprint) and the fraction alone. Change it whenever `validation_split`
#: would hold out other examples; it enters every split point's identity, so results on an old
#: split are never reused for a new one.
VALIDATION_SPLIT_ID = "randperm-seed-20201205"
_VALIDATION_SPLIT_SEED = 20201205
MAX_VALIDATION = 0.5


def validation_split(n: int, fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(train indices, validation indices) of a training set of `n` examples, both ascending.

    The last ``round(n * fraction)`` positions of one fixed permutation (its own generator,
    seeded with a constant: the same examples for every run, seed and device) are held out;
    the rest keep their order. ``fraction`` in (0, MAX_VALIDATION]; ValueError when it would
    hold out nothing. O(n)."""
    check_number("validation", fraction, 0, MAX_VALIDATION, low_open=True)
    n_val = round(n * fraction)
    if n_val < 1:
        raise ValueError(f"validation={fraction} holds out no example of {n}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(_VALIDATION_SPLIT_SEED))
    return perm[: n - n_val].sort().values, perm[n - n_val :].sort().values


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    input_shape: tuple[int, int, int]
    num_classes: int
    summary: str
    loader: Callable[[Path | None, bool, bool], Dataset]


# ---------------------------------------------------------------- IDX (MNIST, Fashion-MNIST)

# numpy 1.x refuses arrays of more than 32 dimensions (2.x: 64); IDX files in use have 1 to 4.
_IDX_MAX_NDIM = 32


def _read_file(path: Path) -> tuple[bytes, bytes]:
    """-> (bytes on disk, content): the content is gunzipped for `.gz`; the file is read once."""
    try:
        raw = path.read_bytes()
        return raw, (gzip.decompress(raw) if path.suffix == ".gz" else raw)
    except (OSError, EOFError, zlib.error) as exc:  # truncated gzip: EOFError; BadGzipFile: OSError
        raise DatasetError(f"cannot read {path}: {exc}") from exc


def _parse_idx(path: Path, raw: bytes, expected_ndim: int | None) -> np.ndarray:
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DatasetError(f"{path}: not an IDX file (bad magic number)")
    if raw[2] != 0x08:
        raise DatasetError(f"{path}: IDX element type 0x{raw[2]:02x} unsupported (want 0x08)")
    ndim = raw[3]
    if expected_ndim is not None and ndim != expected_ndim:
        raise DatasetError(f"{path}: IDX has {ndim} dimensions, expected {expected_ndim}")
    if not 1 <= ndim <= _IDX_MAX_NDIM:
        raise DatasetError(
            f"{path}: IDX header declares {ndim} dimensions (1 to {_IDX_MAX_NDIM} supported)"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{path}: truncated IDX header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = math.prod(dims)  # Python ints: no overflow, whatever the header says
    if len(raw) - header != expected:
        raise DatasetError(
            f"{path}: header declares shape {dims} = {expected} bytes but the file holds "
            f"{len(raw) - header} (truncated or corrupt)"
        )
    # e.g. (0, 2**32 - 1, 2**32 - 1): 0 bytes, yet no array can have that shape
    if math.prod(d for d in dims if d) > np.iinfo(np.intp).max:
        raise DatasetError(f"{path}: header declares shape {dims}, too large for an array")
    try:
        return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)
    except ValueError as exc:
        raise DatasetError(f"{path}: header declares unusable shape {dims}: {exc}") from exc


def read_idx(path: str | Path, expected_ndim: int | None = None) -> np.ndarray:
    """Parse one IDX file (LeCun's format) of unsigned bytes, optionally gzip-compressed.

    Layout: magic (0, 0, dtype=0x08, ndim), ndim big-endian uint32 sizes, then prod(sizes) bytes.
    The declared sizes must match the payload exactly; anything else is a `DatasetError`.
    No checksum is verified here (`load_dataset` does that).
    """
    path = Path(path)
    return _parse_idx(path, _read_file(path)[1], expected_ndim)


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


def _check_idx_checksum(
    name: str, role: str, path: Path, raw: bytes, content: bytes, verify: bool
) -> tuple[str, bool]:
    """-> (content md5, matches the published file). Raises on a mismatch when `verify`."""
    content_md5 = _md5(content)
    if content_md5 == _IDX_CONTENT_MD5[name][role]:
        return content_md5, True
    file_md5 = _md5(raw) if raw is not content else content_md5  # only on a mismatch
    if file_md5 == _IDX_GZ_MD5[name][role]:
        return content_md5, True
    if verify:
        expected = f"{_DISPLAY[name]}'s {_ROLE_WORDS[role]}"
        raise DatasetChecksumError(_mismatch_message(path, expected, file_md5, content_md5))
    return content_md5, False


def _load_idx(name: str, folder: Path, verify: bool) -> Dataset:
    # Every file is read once and checked for structure first (so a truncated or empty file
    # says so), then against the published checksums, then converted.
    files: dict[str, tuple[Path, bytes, bytes, np.ndarray]] = {}
    for role, stem in _IDX_FILES.items():
        path = _idx_path(folder, stem)
        assert path is not None  # guaranteed by _find_idx_dir
        raw, content = _read_file(path)
        files[role] = (path, raw, content, _parse_idx(path, content, 3 if role[-1] == "x" else 1))
    labels: dict[str, torch.Tensor] = {}
    for split in ("train", "test"):
        x_path, *_, images = files[f"{split}_x"]
        if images.shape[0] == 0:
            raise DatasetError(f"{x_path}: holds 0 images; the {split} split is empty")
        if images.shape[1] == 0 or images.shape[2] == 0:
            raise DatasetError(f"{x_path}: images of size {images.shape[1:]} hold no pixels")
        y_path, *_, y = files[f"{split}_y"]
        labels[split] = _labels(y_path, y, images.shape[0], 10)
    if files["train_x"][3].shape[1:] != files["test_x"][3].shape[1:]:
        raise DatasetError(f"{folder}: train and test images have different sizes")
    digests: dict[str, str] = {}
    matched = []
    for role, (path, raw, content, _) in files.items():
        digests[role], ok = _check_idx_checksum(name, role, path, raw, content, verify)
        matched.append(ok)
    verified = all(matched)

    def to_x(images: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)

    train_x, test_x = to_x(files["train_x"][3]), to_x(files["test_x"][3])
    c, h, w = train_x.shape[1:]
    return Dataset(
        name, train_x=train_x, train_y=labels["train"], test_x=test_x, test_y=labels["test"],
        input_shape=(c, h, w), num_classes=10, source=str(folder),
        fingerprint=_fingerprint("idx", digests.items()), verified=verified,
        variant=_variant(name, verified, digests.values()),
    )


def _idx_loader(
    name: str, tv_folder: str, tv_class: str
) -> Callable[[Path | None, bool, bool], Dataset]:
    def load(data_dir: Path | None, download: bool, verify: bool = True) -> Dataset:
        candidates: list[Path] = []
        if data_dir is not None:
            candidates += [data_dir, data_dir / tv_folder / "raw", data_dir / name]
        candidates.append(DEFAULT_ROOT / tv_folder / "raw")
        if name == "fashion-mnist":
            candidates.append(DEBIAN_FASHION_MNIST)
        found = _find_idx_dir(candidates)
        if found is None and download:
            import torchvision.datasets as tvd  # noqa: PLC0415 - heavy, needed only to download

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
        return _load_idx(name, found, verify)

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


def _parse_cifar_batch(path: Path, raw: bytes) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _NumpyOnlyUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, OverflowError) as exc:  # what a corrupt pickle stream can raise
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
    if data.shape[0] == 0:
        raise DatasetError(f"{path}: batch holds 0 images")
    if labels.shape != (data.shape[0],):
        raise DatasetError(f"{path}: {labels.shape} labels for {data.shape[0]} images")
    if not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(f"{path}: labels must be integers, got {labels.dtype}")
    if labels.min() < 0 or labels.max() > 9:
        raise DatasetError(f"{path}: labels outside 0..9")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one `cifar-10-batches-py` batch -> (uint8 (N, 3, 32, 32), int64 (N,)), validated.

    No checksum is verified here (`load_dataset` does that).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read CIFAR batch {path}: {exc}") from exc
    return _parse_cifar_batch(path, raw)


def _load_cifar10(data_dir: Path | None, download: bool, verify: bool = True) -> Dataset:
    candidates: list[Path] = []
    if data_dir is not None:
        candidates += [data_dir / "cifar-10-batches-py", data_dir]
    candidates.append(DEFAULT_ROOT / "cifar-10-batches-py")

    def complete(folder: Path) -> bool:
        return all((folder / n).is_file() for n in (*_CIFAR_TRAIN, _CIFAR_TEST))

    found = next((c for c in candidates if complete(c)), None)
    if found is None and download:
        import torchvision.datasets as tvd  # noqa: PLC0415 - heavy, needed only to download

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
    # as for IDX: every batch read once, checked for structure, then against its checksum
    batches: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    digests: dict[str, str] = {}
    for batch in (*_CIFAR_TRAIN, _CIFAR_TEST):
        path = found / batch
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise DatasetError(f"cannot read CIFAR batch {path}: {exc}") from exc
        batches[batch] = _parse_cifar_batch(path, raw)
        digests[batch] = _md5(raw)
    for batch, md5 in digests.items():
        if verify and md5 != _CIFAR_MD5[batch]:
            raise DatasetChecksumError(
                _mismatch_message(found / batch, f"CIFAR-10's {batch}", md5, None)
            )
    verified = all(digests[b] == md5 for b, md5 in _CIFAR_MD5.items())
    train = [batches[b] for b in _CIFAR_TRAIN]
    test_x, test_y = batches[_CIFAR_TEST]

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
        fingerprint=_fingerprint("cifar10-batches", digests.items()),
        verified=verified,
        variant=_variant("cifar10", verified, digests.values()),
    )


# ---------------------------------------------------------------- digits (scikit-learn, bundled)

DIGITS_TEST_FRACTION = 0.25
DIGITS_SPLIT_SEED = 0


def _load_digits(data_dir: Path | None, download: bool, verify: bool = True) -> Dataset:
    # Shipped inside scikit-learn, so it never needs data_dir or a download.
    from sklearn.datasets import load_digits  # noqa: PLC0415 - heavy (about 0.5 s), needed only for digits
    from sklearn.model_selection import train_test_split  # noqa: PLC0415 - heavy (about 0.5 s), needed only for digits

    bunch = load_digits()
    x = (bunch.data.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)  # pixel values are 0..16
    y = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=DIGITS_TEST_FRACTION, random_state=DIGITS_SPLIT_SEED, stratify=y
    )
    arrays = {
        "train_x": torch.from_numpy(np.ascontiguousarray(x_tr)),
        "train_y": torch.from_numpy(y_tr),
        "test_x": torch.from_numpy(np.ascontiguousarray(x_te)),
        "test_y": torch.from_numpy(y_te),
    }
    return Dataset(
        "digits",
        input_shape=(1, 8, 8),
        num_classes=10,
        source="sklearn.datasets.load_digits (bundled)",
        # the split arrays themselves (~0.6 MB): covers the data and the split parameters
        fingerprint=_tensor_fingerprint(arrays.values()),
        verified=True,
        variant="digits (bundled with scikit-learn)",
        **arrays,
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


@dataclass(frozen=True)
class DataSource:
    """Where datasets are read from and how: the one description of a data location that
    `TrainConfig`, a sweep's options, the runner and the CLI pass around (hashable, so a cache
    may key on it). Not part of a point's identity: the data fingerprint is.

    data_dir: a directory searched first (None: the default places, see `load_dataset`);
    download: fetch a missing dataset with torchvision; verify: files must match the published
    checksums."""

    data_dir: str | None = None
    download: bool = False
    verify: bool = True

    @classmethod
    def of(cls, options: object) -> DataSource:
        """The source named by an object's ``data_dir``, ``download`` and ``verify_data``
        (a `TrainConfig` or a sweep's `TrainOptions`): the one place those fields are read."""
        return cls(options.data_dir, options.download, options.verify_data)  # type: ignore[attr-defined]

    def load(self, name: str) -> Dataset:
        """`load_dataset(name)` from this source."""
        return load_dataset(name, self.data_dir, self.download, self.verify)


def load_dataset(
    name: str, data_dir: str | Path | None = None, download: bool = False, verify: bool = True
) -> Dataset:
    """Load `name` offline-first; download (via torchvision) only when `download` is True.

    Search order for IDX/CIFAR files: `data_dir` itself, its torchvision layout
    (`<data_dir>/FashionMNIST/raw`, `<data_dir>/MNIST/raw`, `<data_dir>/cifar-10-batches-py`),
    `~/.cache/greenbench/datasets` (where downloads land when `data_dir` is None), and for
    Fashion-MNIST the Debian package's `/usr/share/datasets/fashion-mnist/`.
    With `verify` (default) every file must match the published checksums (module docstring);
    `verify=False` accepts custom variants (`Dataset.verified` then says whether they matched).
    `name` may also be `package.module:loader`: `loader()` returns a `Dataset`, checked and
    named `name` (`projlib.training.plugins`; `data_dir`, `download`, `verify` do not apply).
    Raises `DatasetNotFoundError` (lists where it looked), `DatasetChecksumError` (names the file
    and what it is instead) or `DatasetError` (names the bad file).
    """
    from projlib.training import plugins  # noqa: PLC0415 - plugins imports this module

    if plugins.is_plugin(name):
        return plugins.load_plugin_dataset(name)
    if not isinstance(name, str) or name not in DATASETS:
        raise ValueError(
            f"name must be one of {', '.join(DATASETS)} or package.module:loader; got {name!r}"
        )
    if data_dir is not None and not isinstance(data_dir, (str, Path)):
        raise TypeError(f"data_dir must be a str or Path, got {type(data_dir).__name__}")
    root = Path(data_dir).expanduser() if data_dir is not None else None
    return DATASETS[name].loader(root, bool(download), bool(verify))
