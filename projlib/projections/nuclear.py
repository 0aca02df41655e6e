"""Projection onto the nuclear-norm ball {M : sum_k sigma_k(M) <= radius}.

Formula: thin SVD M = U diag(s) V^T, s' = P_B1(radius)(s) (s >= 0, so this is the simplex-type
projection of the singular values), M' = U diag(s') V^T (pyproximal's ``Nuclear`` ball does the
same).  Exactly one SVD per call: the inside-ball early return reads the singular values of that
same SVD, and the reconstruction only multiplies the r columns with s'_k > 0, O(r m n).  Cost is
dominated by the SVD, O(m n min(m, n)).  A 1-D tensor is read as an (n, 1) column, a conv weight
(out, in, kh, kw) as the (out, in*kh*kw) matrix.  It takes no ``groups`` (M and M^T have the
same singular values): the registry's spec (``groups=()``) refuses any but the default.  A
matrix whose largest entry is extreme (squares that would overflow/underflow inside the SVD) is
projected exactly rescaled by a power of two: the ball is positively homogeneous,
P_r(M) = s P_{r/s}(M / s).

Off the CPU (CUDA) the SVD and the reconstruction run in float64 ("precise" mode of
``_torch_ops.project_nuclear``): float32 GPU SVDs (and TF32 matmuls, when enabled) left
results about 1e-4 (relative) outside the ball.  A float32 result is then feasible to the
float64 SVD's accuracy: its kept singular values are shrunk by a factor bounding the nuclear
norm of the final rounding to float32 (at most sqrt(min(m, n)) * 6e-8 relative).  There the
inside-ball test is a device-side select and all singular vectors are multiplied (no sync
for the kept rank); the NaN/inf check before the SVD stays the one host read.
See docs/METHOD.md §2.5.
"""

from __future__ import annotations

import torch

from projlib.projections import _torch_ops
from projlib.projections._validate import (
    as_contiguous,
    check_radius,
    check_tensor,
)


def project_nuclear(W: torch.Tensor, radius: float) -> torch.Tensor:
    """Exact Euclidean projection of the matrix view of ``W`` onto the nuclear-norm ball."""
    W = check_tensor(W, grouped=True)
    r = check_radius(radius)
    X = as_contiguous(W)
    if X.numel() == 0:
        return X.clone()
    # the NaN/inf check (LAPACK may hang on NaN) and the rescaling of extreme magnitudes happen
    # in _torch_ops.project_nuclear, on one max |entry| pass, negligible next to the SVD
    M = X.reshape(X.shape[0], -1)
    return _torch_ops.project_nuclear(M, r).reshape(X.shape)
