"""The l1,1 column kernel solved in several blocks of columns agrees with one block.

``project`` solves a matrix's columns in one block up to 16384 columns, so the block
boundaries (predictions carried over from one block to the next, stragglers finished on
their own) are only reached by wide matrices; here they are forced with small blocks and
checked against the default kernel and the sort-based (GPU) path.  So is the end of the
passes: open brackets collected by the float64 pass as soon as they are short
(``entry_cost`` 0) or never (inf, the passes go on until every bracket is closed).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from projlib.projections import _l11_kernels, grouped, project

from .helpers import constraint_norm, make_weight, torch_path


def _blocked(W: torch.Tensor, radius: float, block: int, entry_cost: float) -> torch.Tensor:
    return grouped._l11_cpu(W, radius, (*W.shape, 1), block=block, entry_cost=entry_cost)


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
        for block, cost in ((37, 0.0), (128, np.inf), (16384, 0.0), (16384, np.inf)):
            got = _blocked(W, radius, block, cost)
            for other in (one, ref):
                err = float((got.double() - other.double()).abs().max()) / scale
                assert err <= tol, (block, cost, frac, err)
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
    k = _l11_kernels._consts(x.dtype)
    bound = grouped._L11_TOL[x.dtype] * _l11_kernels._COLS_SLACK
    sa, ca, sb, cb = _l11_kernels._cols_eval2(x, 0, x.shape[1], lo, hi, k[0], k[1])
    for t, sums, counts in ((lo, sa, ca), (hi, sb, cb)):
        above = ax > t
        exact = np.where(above, ax, 0.0).sum(axis=0)
        np.testing.assert_array_equal(counts, above.sum(axis=0))  # counts are exact
        assert float((np.abs(np.asarray(sums, np.float64) - exact) / exact).max()) <= bound


def _l1_threshold(y: np.ndarray, r: float) -> float:
    """Reference: the l1-ball threshold of |y| at radius r, by sorting (float64)."""
    a = np.sort(np.abs(y).astype(np.float64))[::-1]
    t = (np.cumsum(a) - r) / np.arange(1, a.size + 1)
    return float(t[np.flatnonzero(t < a)[-1]])


@pytest.mark.parametrize("seed", range(40))
def test_band_tau_finishes_an_open_bracket_exactly(seed):
    """_band_tau gets what the float64 pass gives (sum and count above lo, count above hi,
    the entries in between) and returns the exact threshold; a bracket that misses tau on
    either side gives -1 (the per-column solve takes over)."""
    rng = np.random.default_rng(seed)
    y = np.abs(rng.standard_normal(int(rng.integers(5, 400)))).astype(np.float32)
    if seed % 4 == 0:
        y = np.round(y, 1)  # ties, taus on entries
    y64 = y.astype(np.float64)
    r = float(rng.uniform(0.02, 0.9)) * float(y64.sum())
    tau = _l1_threshold(y, r)
    a = np.sort(np.unique(y64))
    at = int(np.searchsorted(a, tau))
    for lo_i, hi_i in ((at - 3, at + 4), (at - 1, at + 1), (at - 40, at + 2), (0, a.size)):
        lo = 0.0 if lo_i < 0 else float(a[lo_i]) if lo_i < at else tau
        hi = float(a[min(hi_i, a.size - 1)])
        if not lo <= tau <= hi:
            continue
        above = y64 > lo
        band = y[above & (y64 <= hi)]
        t, c = _l11_kernels._band_tau(band, float(y64[above].sum()), float(above.sum()),
                                      float((y64 > hi).sum()), r, lo, hi)
        assert t == pytest.approx(tau, rel=1e-12, abs=1e-300), (lo, hi)
        assert c == float((y64 > t).sum()) or np.any(y64 == t)
    # bounds on the wrong side of tau
    for lo, hi in ((tau * 1.01 + 1e-3, tau * 1.5 + 1), (0.0, tau * 0.99)):
        above = y64 > lo
        band = y[above & (y64 <= hi)]
        t, _c = _l11_kernels._band_tau(band, float(y64[above].sum()), float(above.sum()),
                                       float((y64 > hi).sum()), r, lo, hi)
        assert t == -1.0, (lo, hi, tau)
