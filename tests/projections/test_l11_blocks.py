"""The l1,1 column kernel solved in several blocks of columns agrees with one block.

``project`` solves a matrix's columns in one block up to 16384 columns, so the block
boundaries (predictions carried over from one block to the next, stragglers finished on
their own) are only reached by wide matrices; here they are forced with small blocks and
checked against the default kernel and the sort-based (GPU) path.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from projlib.projections import _l11_kernels, grouped, project

from .helpers import constraint_norm, make_weight, torch_path


def _blocked(W: torch.Tensor, radius: float, block: int) -> torch.Tensor:
    x = W.numpy()
    norms = grouped._stats(x.reshape(x.shape[0], x.shape[1], 1), grouped._L1)
    u = grouped._outer(norms, radius, W.dtype)
    out = np.empty_like(x)
    _l11_kernels.l11_cols_apply(x, u, norms, grouped._L11_TOL[x.dtype],
                                _l11_kernels._consts(x.dtype), out, block)
    return torch.from_numpy(out)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", ["normal", "scaled", "ties", "sparse"])
@pytest.mark.parametrize("shape", [(131, 512), (40, 700), (300, 300)])
def test_columns_in_blocks_agree_with_one_block_and_the_sort_path(shape, kind, dtype):
    W = make_weight(shape, shape[1], kind, dtype)
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    scale = float(W.abs().max())
    for frac in (0.003, 0.05, 0.3):
        radius = frac * constraint_norm(W, "l11", "columns")
        one = project(W, "l11", radius, "columns")
        ref = torch_path(W, "l11", radius, "columns")
        for block in (37, 128):
            got = _blocked(W, radius, block)
            for other in (one, ref):
                err = float((got.double() - other.double()).abs().max()) / scale
                assert err <= tol, (block, frac, err)
            assert constraint_norm(got, "l11", "columns") <= radius * (1 + 10 * tol)
