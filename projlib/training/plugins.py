"""Your own model and data: `package.module:attr` import paths where a built-in name would go.

A *model path* names a factory ``factory(input_shape, num_classes) -> nn.Module`` (input_shape
is (C, H, W) of the dataset, num_classes its number of classes); a *dataset path* names a loader
``loader() -> Dataset`` (the type the built-in loaders return: float32 tensors (N, C, H, W),
int64 labels in [0, num_classes), `input_shape`, `num_classes`). Both are imported with the
usual `import` machinery, so the package must be importable: installed, on `PYTHONPATH`, or in
the working directory (searched first, as by `python -m`). A module whose file has changed since
it was imported is reloaded, so a long-lived process never trains stale code under a new hash.

Identity: a sweep point of a plugin model stores `source_hash(path)` (sha256 of the bytes of
the factory's module file) in `TrainConfig.model_source`, and a plugin dataset's points store
its `Dataset.fingerprint` like the built-in ones, so editing the model or the data never reuses
old results. The hash covers the file of the module named in the path and, when the factory is
re-exported there from another module, that module's file too (not other modules they import).

Errors are `PluginError` (a ValueError) for models and `DatasetError` for datasets, one line
naming the path: a malformed path, a module that cannot be imported, a missing or non-callable
attribute, a factory or loader that raises, a factory that returns no `nn.Module` or an output
of the wrong shape on a dummy batch, a loader that returns no valid `Dataset`.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

from projlib.checks import is_int
from projlib.training.datasets import Dataset, DatasetError

__all__ = [
    "PluginError",
    "check_model",
    "is_plugin",
    "load_plugin_dataset",
    "build_plugin_model",
    "check_path",
    "source_hash",
]

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_PATH = re.compile(rf"{_IDENT}(\.{_IDENT})*:{_IDENT}")
DUMMY_BATCH = 2  # samples in the batch a factory's model is checked on
# module name -> sha256 of its file when it was (re)imported here
_imported: dict[str, str] = {}


class PluginError(ValueError):
    """A `package.module:attr` model path that cannot be used (the message names it)."""


def is_plugin(name: object) -> bool:
    """Whether `name` is meant as an import path (it has a ':'), not a built-in name."""
    return isinstance(name, str) and ":" in name


def check_path(field: str, value: str) -> str:
    """`value` after checking it is `package.module:attr` (syntax only, nothing imported)."""
    if not _PATH.fullmatch(value):
        raise PluginError(
            f"{field} {value!r} is not an import path package.module:attr (dotted module, one "
            "':', then the name of the callable)"
        )
    return value


def _resolve(field: str, path: str, error: type[ValueError]) -> tuple[Callable[..., Any],
                                                                      list[ModuleType]]:
    """(the callable, [the module named in `path`, and the one defining the callable when it
    is another]), each freshly (re)imported if its file changed."""
    try:
        check_path(field, path)
    except PluginError as exc:
        raise error(str(exc)) from None
    module_name, attr = path.split(":")
    cwd = os.getcwd()
    if "" not in sys.path and cwd not in sys.path:
        sys.path.insert(0, cwd)  # like `python -m`: the working directory first
    try:
        module, _ = _import_fresh(module_name)
        target = getattr(module, attr, None)
        # re-exported (`from .nets import net`): the defining module is part of the source too
        home = getattr(target, "__module__", None)
        modules = [module]
        if isinstance(home, str) and home != module_name and home in sys.modules:
            defining, reloaded = _import_fresh(home)
            if reloaded:  # the name in `module` still points at the old function
                module = importlib.reload(module)
                target = getattr(module, attr, None)
            modules = [module, defining]
    except Exception as exc:  # noqa: BLE001 - any import failure is the user's module's, said once
        raise error(f"{field} {path!r}: cannot import {module_name}: "
                    f"{type(exc).__name__}: {_one_line(exc)}") from None
    if target is None:
        raise error(f"{field} {path!r}: module {module_name} has no attribute {attr!r}")
    if not callable(target):
        raise error(f"{field} {path!r}: {attr} is a {type(target).__name__}, not a callable")
    return target, modules


def _import_fresh(name: str) -> tuple[ModuleType, bool]:
    # (module, whether it was reloaded because its file changed since it was imported here)
    module = importlib.import_module(name)
    digest = _file_hash(module)
    if digest is not None and _imported.setdefault(name, digest) != digest:
        module = importlib.reload(module)  # edited since imported: never run stale code
        _imported[name] = digest
        return module, True
    return module, False


def _file_hash(module: ModuleType) -> str | None:
    file = getattr(module, "__file__", None)
    if not file:
        return None
    return hashlib.sha256(Path(file).read_bytes()).hexdigest()


def _sources_hash(modules: list[ModuleType]) -> str | None:
    digests = [_file_hash(m) for m in modules]
    if any(d is None for d in digests):
        return None
    if len(digests) == 1:
        return digests[0]
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()  # type: ignore[arg-type]


def source_hash(path: str) -> str:
    """sha256 hex of the bytes of the module file named in `path` (read now, so an edited file
    gives another hash); when the factory is defined in another module and re-exported, of both
    files' hashes."""
    _, modules = _resolve("model", path, PluginError)
    digest = _sources_hash(modules)
    if digest is None:
        raise PluginError(f"model {path!r}: module {modules[-1].__name__} has no source file "
                          "to hash")
    return digest


def build_plugin_model(path: str, input_shape: tuple[int, int, int],
                       num_classes: int) -> nn.Module:
    """`factory(input_shape, num_classes)` of `path`, checked to be an `nn.Module`."""
    factory, _ = _resolve("model", path, PluginError)
    try:
        model = factory(tuple(input_shape), num_classes)
    except Exception as exc:  # noqa: BLE001 - the factory is user code; its failure is one line
        raise PluginError(f"model {path!r}: the factory raised {type(exc).__name__}: "
                          f"{_one_line(exc)}") from None
    if not isinstance(model, nn.Module):
        raise PluginError(f"model {path!r}: the factory returned a {type(model).__name__}, "
                          "not a torch.nn.Module")
    return model


def check_model(path: str, input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """Build `path`'s model (the global RNG is left untouched) and run it, in eval mode without
    gradients, on a zero batch of DUMMY_BATCH samples: the output must be (DUMMY_BATCH,
    num_classes). Returns the throwaway model (for further checks)."""
    with torch.random.fork_rng(devices=[]):
        model = build_plugin_model(path, input_shape, num_classes)
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(DUMMY_BATCH, *input_shape))
    except Exception as exc:  # noqa: BLE001 - user code, said in one line
        raise PluginError(f"model {path!r}: forward on a batch of shape "
                          f"{(DUMMY_BATCH, *input_shape)} raised {type(exc).__name__}: "
                          f"{_one_line(exc)}") from None
    want = (DUMMY_BATCH, num_classes)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != want:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise PluginError(f"model {path!r}: output for a batch of shape "
                          f"{(DUMMY_BATCH, *input_shape)} is {got}, expected {want} "
                          "(batch, num_classes logits)")
    return model


def load_plugin_dataset(path: str) -> Dataset:
    """`loader()` of `path`, checked, named `path` (what `TrainConfig.dataset` says). Cached
    while the loader's module file is unchanged: the sweep's checks and its points call it once
    per process."""
    loader, modules = _resolve("dataset", path, DatasetError)
    return _load_dataset(path, loader, _sources_hash(modules))


@functools.lru_cache(maxsize=2)
def _load_dataset(path: str, loader: Callable[[], Any], digest: str | None) -> Dataset:
    try:
        data = loader()
    except Exception as exc:  # noqa: BLE001 - user code, said in one line
        raise DatasetError(f"dataset {path!r}: the loader raised {type(exc).__name__}: "
                           f"{_one_line(exc)}") from None
    if not isinstance(data, Dataset):
        raise DatasetError(f"dataset {path!r}: the loader returned a {type(data).__name__}, not "
                           "a projlib.training.Dataset")
    _check_dataset(path, data)
    return data if data.name == path else dataclasses.replace(data, name=path)


def _check_dataset(path: str, data: Dataset) -> None:
    shape, k = data.input_shape, data.num_classes
    if (not isinstance(shape, tuple) or len(shape) != 3
            or not all(isinstance(s, int) and s > 0 for s in shape)):
        raise DatasetError(f"dataset {path!r}: input_shape must be (C, H, W) of positive ints, "
                           f"got {shape!r}")
    if not is_int(k) or k < 2:
        raise DatasetError(f"dataset {path!r}: num_classes must be an int >= 2, got {k!r}")
    for split in ("train", "test"):
        x, y = getattr(data, f"{split}_x"), getattr(data, f"{split}_y")
        if not isinstance(x, torch.Tensor) or x.dtype != torch.float32 or (
                tuple(x.shape[1:]) != shape or x.shape[0] == 0):
            got = (f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor)
                   else type(x).__name__)
            raise DatasetError(f"dataset {path!r}: {split}_x must be a float32 tensor "
                               f"(N>0, {', '.join(map(str, shape))}), got {got}")
        if not isinstance(y, torch.Tensor) or y.dtype != torch.int64 or (
                tuple(y.shape) != (x.shape[0],)):
            got = (f"{y.dtype} {tuple(y.shape)}" if isinstance(y, torch.Tensor)
                   else type(y).__name__)
            raise DatasetError(f"dataset {path!r}: {split}_y must be an int64 tensor "
                               f"({x.shape[0]},), got {got}")
        if int(y.min()) < 0 or int(y.max()) >= k:
            raise DatasetError(f"dataset {path!r}: {split}_y holds labels outside "
                               f"[0, {k - 1}] (num_classes={k})")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or "(no message)"
