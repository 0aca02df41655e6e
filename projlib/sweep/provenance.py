"""Software and hardware provenance recorded with every point.

Read-only introspection (package metadata, `git rev-parse`, torch build info, /proc/cpuinfo):
nothing here writes files or prints. Anything that cannot be determined is None, never a guess.
"""

from __future__ import annotations

import functools
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

import projlib

__all__ = ["software_provenance", "device_name", "git_sha", "package_version"]


def package_version() -> str | None:
    """Installed greenbench version (falls back to projlib.__version__ for a source tree)."""
    try:
        return version("greenbench")
    except PackageNotFoundError:
        try:
            return getattr(projlib, "__version__", None)
        except ImportError:
            return None


@functools.lru_cache(maxsize=1)
def git_sha() -> str | None:
    """HEAD commit of the checkout projlib is imported from; None outside git or without git.

    A trailing "+dirty" marks uncommitted changes (untracked, non-ignored files included), since
    the sha alone would then not reproduce the code that produced the numbers."""
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain"],
            cwd=root, capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    out = sha.stdout.strip() or None
    if out and dirty.returncode == 0 and dirty.stdout.strip():
        out += "+dirty"
    return out


@functools.lru_cache(maxsize=1)
def _cpu_name() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def device_name(device: str) -> str | None:
    """Human name of the device a point ran on: the GPU name for cuda, the CPU model for cpu."""
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            return None
        index = torch.device(device).index
        return torch.cuda.get_device_name(index if index is not None else 0)
    return _cpu_name()


def software_provenance(device: str) -> dict[str, str | None]:
    """The provenance columns of a results row (package_version ... device_name)."""
    return {
        "package_version": package_version(),
        "git_sha": git_sha(),
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda,  # None on CPU-only torch builds
        "device_name": device_name(device),
    }
