"""Fixtures of the projection tests."""

from __future__ import annotations

import pytest

from projlib.projections import _triton_l1, _triton_l1inf, _triton_ops

_TRITON_MODULES = (_triton_ops, _triton_l1, _triton_l1inf)


@pytest.fixture
def interpreter():
    """The Triton kernels switched on (they are opt-in) and allowed on CPU tensors, which
    Triton's interpreter runs (chosen in the top-level conftest); built kernels and any
    recorded compile failure forgotten before and after."""
    # Its own MonkeyPatch: the test's `monkeypatch` (which may replace `_kernels`) is undone
    # first, then the kernels are forgotten.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_triton_ops, "ENABLED", True)
        mp.setattr(_triton_ops, "ON_CPU", True)
        for mod in _TRITON_MODULES:
            mod._reset()
        yield
    for mod in _TRITON_MODULES:
        mod._reset()
