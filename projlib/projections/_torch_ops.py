"""Pure-torch kernels: the path taken for tensors that are not on the CPU (CUDA).

Everything stays on the tensor's device.  Thresholds are computed in float64 so that float32
weights get the same thresholds as float64 ones up to the final rounding.  These kernels are
sort based, O(n log n): on a GPU a sort is a few fast passes and the whole point is to avoid
host round trips.  Host synchronisations per call (``.item()`` / Python ``if`` on a tensor):

* ``l1``: 1 (inside-ball test, which also carries the NaN/inf check);
* ``l21``, ``l11``, ``l1inf_bilevel``: 1 (same test on the group norms);
* ``l1inf``: 1 + 2 per Newton iteration (typically 8-12 iterations);
* ``nuclear``: 3 (max |entry| before the SVD, which is also the finiteness check, the
  singular-value sum, the kept rank);
* ``project_simplex``: 1 (finiteness check).

Extreme magnitudes: the norm behind the inside-ball test is checked against
``_scaling.SAFE``; outside it (squares or sums that overflow/underflow, NaN/inf) the operator
reruns on the input exactly rescaled by a power of two (``_scaling.run_scaled``: a few more
syncs, on that rare path only).  The nuclear ball rescales before its SVD when the largest
entry is outside ``_NUCLEAR_SAFE``.

They also run on CPU tensors, which is how the tests cross-check them against the numba
kernels used there.
"""

from __future__ import annotations

import torch

from projlib.projections._scaling import check_range, rescaled, run_scaled
from projlib.projections._validate import check_finite_norm


def sorted_thresholds(Y: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """Per-row tau with ``sum_i max(Y_gi - tau_g, 0) = r_g`` (any real Y, r_g >= 0), float64.

    Held et al. 1974 / Duchi et al. 2008: sort each row descending; Z_(k) k > cumsum_k - r holds
    exactly on a prefix k = 1..rho, and tau = (cumsum_rho - r) / rho.  O(G m log m).
    """
    Z = torch.sort(Y.to(torch.float64), dim=1, descending=True).values
    r = radii.to(torch.float64).reshape(-1, 1)
    cs = torch.cumsum(Z, dim=1)
    k = torch.arange(1, Z.shape[1] + 1, device=Z.device, dtype=torch.float64)
    rho = (Z * k > cs - r).sum(dim=1, keepdim=True).clamp(min=1)
    return ((cs.gather(1, rho - 1) - r) / rho.to(torch.float64)).squeeze(1)


def l1_thresholds(Y: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """Per-row soft thresholds of the l1-ball projections of the rows of ``Y`` (G, m), Y >= 0.

    tau_g solves ``sum_i max(Y_gi - tau_g, 0) = r_g`` when ``sum_i Y_gi > r_g``; tau_g = 0 when
    the row is already inside, +inf when r_g = 0.  O(G m log m).
    """
    radii = radii.to(torch.float64)
    tau = sorted_thresholds(Y, radii).clamp(min=0.0)
    inside = Y.to(torch.float64).sum(dim=1) <= radii
    tau = torch.where(inside, torch.zeros_like(tau), tau)
    return torch.where(radii <= 0, torch.full_like(tau, float("inf")), tau)


def soft_threshold(X: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """``sign(x) max(|x| - tau, 0)`` written as ``x - clip(x, -tau, tau)``.

    That form returns ``x`` bit for bit when tau = 0 and an exact +0.0 wherever |x| <= tau.
    """
    t = tau.to(X.dtype)
    return X - torch.maximum(torch.minimum(X, t), -t)


def project_l1(X: torch.Tensor, radius: float) -> torch.Tensor:
    """Euclidean projection of ``X`` (any shape, read as one vector) onto the l1 ball."""
    return run_scaled(_l1, X, radius)


def _l1(X: torch.Tensor, radius: float) -> torch.Tensor | None:
    """The l1 projection, None when X is inside; raises OutOfRange (see ``_scaling``)."""
    total_f = float(X.abs().sum(dtype=torch.float64).item())  # the one host sync
    check_range(total_f, X.dtype)
    if total_f <= radius:
        return None
    if radius == 0.0:
        return torch.zeros_like(X)
    r = torch.full((1,), radius, dtype=torch.float64, device=X.device)
    tau = sorted_thresholds(X.reshape(1, -1).abs(), r).clamp(min=0.0)
    return soft_threshold(X, tau.reshape(()))


def project_simplex(v: torch.Tensor, radius: float) -> torch.Tensor:
    """Projection of ``v`` (read as one vector) onto {x >= 0, sum x = radius}."""
    r = torch.full((1,), radius, dtype=torch.float64, device=v.device)
    tau = sorted_thresholds(v.reshape(1, -1), r)
    return torch.clamp(v.to(torch.float64) - tau.reshape(()), min=0.0).to(v.dtype)


def group_norms(X3: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-group norms (float64, shape (G,)) of the (A, G, B) view: kind in l1, l2, linf."""
    Y = X3.to(torch.float64)
    if kind == "l1":
        return Y.abs().sum(dim=(0, 2))
    if kind == "l2":
        return torch.sqrt((Y * Y).sum(dim=(0, 2)))
    return Y.abs().amax(dim=(0, 2))


def _outer_radii(norms: torch.Tensor, radius: float, dtype: torch.dtype) -> torch.Tensor | None:
    """u = P_B1(radius)(norms) for a non-negative vector, or None when already inside.

    Raises OutOfRange when the total is outside ``SAFE[dtype]`` (dtype: the input's).
    """
    total = float(norms.sum().item())  # the one host sync
    check_range(total, dtype)
    if total <= radius:
        return None
    if radius == 0.0:
        return torch.zeros_like(norms)
    r = torch.full((1,), radius, dtype=torch.float64, device=norms.device)
    tau = l1_thresholds(norms.reshape(1, -1), r)
    return torch.clamp(norms - tau, min=0.0)


def _per_group(X3: torch.Tensor, vec: torch.Tensor) -> torch.Tensor:
    return vec.reshape(1, -1, 1)


def project_l21(X3: torch.Tensor, radius: float) -> torch.Tensor:
    """Group-lasso ball: groups rescaled by u_g / ||X_g||_2 with u = P_B1(radius)(norms)."""
    return run_scaled(_l21, X3, radius)


def _l21(X3: torch.Tensor, radius: float) -> torch.Tensor | None:
    norms = group_norms(X3, "l2")  # squares: out of range -> OutOfRange -> rescaled input
    u = _outer_radii(norms, radius, X3.dtype)
    if u is None:
        return None
    scale = torch.where(norms > 0, u / torch.where(norms > 0, norms, 1.0), 0.0)
    return X3 * _per_group(X3, scale).to(X3.dtype)


def project_l1inf_bilevel(X3: torch.Tensor, radius: float) -> torch.Tensor:
    """Bi-level l1,inf: clip every group at u_g with u = P_B1(radius)(group maxima)."""
    return run_scaled(_l1inf_bilevel, X3, radius)


def _l1inf_bilevel(X3: torch.Tensor, radius: float) -> torch.Tensor | None:
    u = _outer_radii(group_norms(X3, "linf"), radius, X3.dtype)
    if u is None:
        return None
    t = _per_group(X3, u).to(X3.dtype)
    return torch.maximum(torch.minimum(X3, t), -t)


def project_l11(X3: torch.Tensor, radius: float) -> torch.Tensor:
    """Bi-level l1,1: u = P_B1(radius)(group l1 norms), then group g onto the l1 ball of u_g."""
    return run_scaled(_l11, X3, radius)


def _l11(X3: torch.Tensor, radius: float) -> torch.Tensor | None:
    u = _outer_radii(group_norms(X3, "l1"), radius, X3.dtype)
    if u is None:
        return None
    A, G, B = X3.shape
    rows = X3.abs().permute(1, 0, 2).reshape(G, A * B)
    tau = l1_thresholds(rows, u)
    return soft_threshold(X3, _per_group(X3, tau))


def project_l1inf(X3: torch.Tensor, radius: float, max_iter: int = 100) -> torch.Tensor:
    """Exact Euclidean projection onto {sum_g max_i |X_ig| <= radius}.

    Optimality (Quattoni et al. 2009): group g is clipped at mu_g, where mu_g(theta) is the l1
    threshold of |X_g| at radius theta (0 when ||X_g||_1 <= theta) and theta solves
    f(theta) = sum_g mu_g(theta) - radius = 0.  f is convex, decreasing and piecewise linear,
    so Newton's method started at theta = 0 (f > 0 outside the ball) climbs monotonically and
    stops on the last linear piece exactly (semismooth Newton, Chu et al. 2020).  Each step
    evaluates every mu_g by a binary search in the sorted groups: O(nm log m) for the sort plus
    O(G log m) per iteration.
    """
    return run_scaled(_l1inf, X3, radius, max_iter)


def _l1inf(X3: torch.Tensor, radius: float, max_iter: int) -> torch.Tensor | None:
    maxima = group_norms(X3, "linf")
    total = float(maxima.sum().item())
    check_range(total, X3.dtype)
    if total <= radius:
        return None
    if radius == 0.0:
        return torch.zeros_like(X3)
    A, G, B = X3.shape
    Z = torch.sort(X3.abs().permute(1, 0, 2).reshape(G, A * B).to(torch.float64), dim=1,
                   descending=True).values
    cs = torch.cumsum(Z, dim=1)
    m = Z.shape[1]
    k = torch.arange(1, m + 1, device=Z.device, dtype=torch.float64)
    # c_k = mass above Z_(k): element k is active (clipped) for theta > c_k; c is non-decreasing
    c = (cs - k * Z).contiguous()
    theta = torch.zeros((), dtype=torch.float64, device=Z.device)
    for _ in range(max_iter):
        cnt = torch.searchsorted(c, theta.expand(G, 1).contiguous(), right=False).squeeze(1)
        cnt = cnt.clamp(min=1)
        s_k = cs.gather(1, (cnt - 1).unsqueeze(1)).squeeze(1)
        alive = cs[:, -1] > theta
        kf = cnt.to(torch.float64)
        mu = torch.where(alive, (s_k - theta) / kf, 0.0)
        f = mu.sum() - radius
        slope = torch.where(alive, 1.0 / kf, 0.0).sum()
        step = f / slope
        if float(step.item()) <= 1e-15 * max(float(theta.item()), radius):  # one sync per step
            break
        theta = theta + step
    mu = mu.clamp(min=0.0)
    t = _per_group(X3, mu).to(X3.dtype)
    return torch.maximum(torch.minimum(X3, t), -t)


# Largest entry for which the nuclear ball runs its SVD unscaled: the SVD's own sums of squares
# (Frobenius and column norms, rotations) then stay far inside the range on every backend.
_NUCLEAR_SAFE = {torch.float32: (2.0**-30, 2.0**30), torch.float64: (2.0**-300, 2.0**300)}


def project_nuclear(M: torch.Tensor, radius: float) -> torch.Tensor:
    """Nuclear-ball projection of a matrix: one thin SVD, singular values onto the l1 ball.

    Raises ValueError on NaN/inf entries (checked before the SVD: LAPACK may hang on them).
    """
    if M.numel() == 0:
        return M.clone()
    top = float(M.abs().amax())  # amax propagates NaN
    check_finite_norm(top)
    lo, hi = _NUCLEAR_SAFE[M.dtype]
    if not lo <= top <= hi:  # SVD of the exactly rescaled matrix (and zeros: returned as is)
        return rescaled(_nuclear, M, radius)
    P = _nuclear(M, radius)
    return M.clone() if P is None else P


def _nuclear(M: torch.Tensor, radius: float) -> torch.Tensor | None:
    U, s, Vh = torch.linalg.svd(M, full_matrices=False)
    total = float(s.sum(dtype=torch.float64).item())
    check_finite_norm(total)
    if total <= radius:
        return None
    if radius == 0.0:
        return torch.zeros_like(M)
    r = torch.full((1,), radius, dtype=torch.float64, device=M.device)
    tau = l1_thresholds(s.reshape(1, -1), r)
    s2 = torch.clamp(s.to(torch.float64) - tau, min=0.0).to(M.dtype)
    keep = int((s2 > 0).sum().item())
    return (U[:, :keep] * s2[:keep]) @ Vh[:keep]
