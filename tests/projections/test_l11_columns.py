"""The l1,1 column kernel (``_l11_kernels.l11_cols_apply``) against the sort-based path.

The kernel solves all the columns of a matrix together, pass by pass, and finishes the last
few open columns (stragglers, when a matrix has more than 128 columns) on their own copies;
matrices of a few hundred columns with ties and sparse or badly scaled entries reach both
ends.  The pass sums feed phase 1 with a slack that they must honour.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from projlib.projections import _l11_kernels, grouped, project

from .helpers import constraint_norm, make_weight, torch_path


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", ["normal", "scaled", "ties", "sparse"])
@pytest.mark.parametrize("shape", [(131, 512), (40, 700), (300, 300)])
def test_columns_agree_with_the_sort_path(shape, kind, dtype):
    W = make_weight(shape, shape[1], kind, dtype)
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    scale = float(W.abs().max())
    for frac in (0.003, 0.05, 0.3):
        radius = frac * constraint_norm(W, "l11", "columns")
        got = project(W, "l11", radius, "columns")
        ref = torch_path(W, "l11", radius, "columns")
        err = float((got.double() - ref.double()).abs().max()) / scale
        assert err <= tol, (frac, err)
        assert constraint_norm(got, "l11", "columns") <= radius * (1 + 10 * tol)


@pytest.mark.parametrize("kind", ["normal", "cauchy", "lognormal"])
def test_column_pass_sums_are_as_accurate_as_the_slack_assumes(kind):
    """The column passes' sums feed phase 1 with the slack ``tol * _COLS_SLACK``: they must
    be that accurate on long columns (float32 per-column accumulators reached 3.6e-6 on
    4096-10000 rows, the float64 chunks stay under 2e-7)."""
    rng = np.random.default_rng(7)
    draw = {"normal": rng.standard_normal, "cauchy": rng.standard_cauchy,
            "lognormal": lambda size: rng.lognormal(0.0, 2.0, size)}[kind]
    x = draw((8003, 96)).astype(np.float32)  # 8003: the rows left over after the chunks too
    ax = np.abs(x).astype(np.float64)
    lo = np.quantile(ax, 0.3, axis=0).astype(np.float32)
    hi = np.quantile(ax, 0.9, axis=0).astype(np.float32)
    bound = grouped._L11_TOL[x.dtype] * _l11_kernels._COLS_SLACK
    sa, ca, sb, cb = _l11_kernels._cols_eval2(x, lo, hi, np.float32(0), np.float32(1))
    for t, sums, counts in ((lo, sa, ca), (hi, sb, cb)):
        above = ax > t
        exact = np.where(above, ax, 0.0).sum(axis=0)
        np.testing.assert_array_equal(counts, above.sum(axis=0))  # counts are exact
        assert float((np.abs(np.asarray(sums, np.float64) - exact) / exact).max()) <= bound


def _sorted_threshold(y: np.ndarray, r: float) -> float:
    """Reference: the l1-ball threshold of |y| at radius r, by sorting (float64)."""
    a = np.sort(np.abs(y).astype(np.float64))[::-1]
    t = (np.cumsum(a) - r) / np.arange(1, a.size + 1)
    return float(t[np.flatnonzero(t < a)[-1]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_misplaced_bracket_falls_back_to_the_exact_l1_kernel(dtype):
    """Phase 2 handed a bracket wholly above tau (as if phase 1's rounding had misplaced
    both bounds) finds its checks fail and takes ``_l1_kernels.l1_tau``: still exact."""
    rng = np.random.default_rng(3)
    for _ in range(20):
        y = rng.standard_normal(int(rng.integers(2, 3000))).astype(dtype)
        v = float(np.abs(y.astype(np.float64)).sum())
        r = float(rng.uniform(0.01, 0.9)) * v
        tau = _sorted_threshold(y, r)
        got, _c = _l11_kernels._exact_tau(y, r, v, 3 * tau + 1, v, 1.0, 3 * tau + 2, 1e-6)
        assert got == pytest.approx(tau, rel=1e-12)
