"""asv suites for the projection library (issue 2).

``ProjectionsSuite``: every registry name x shape x dtype x radius, ``time_project`` and
``peakmem_project``.  The radius is a fraction of the weight's own constraint norm, so every
case is a real projection (the point starts outside the ball).

``PeersSuite``: the l1 ball on 1e6 float64 entries at radii keeping about 1e-5, 1e-3 and 0.2 of
them: ``time_l1`` for projlib, copt's ``L1Ball.prox`` (Duchi et al.'s sort) and pyproximal's
``L1Ball.prox`` (bisection, its defaults maxiter=100, xtol=1e-5), on the same numpy data.

``*TargetsSuite``: the issue's performance targets as ratios measured in one process, each the
median over REPEATS of (best of INNER calls of the operator) / (best of INNER calls of the
reference), interleaved so machine load hits both sides alike (unit "ratio"):

* ``track_l1_over_abs``       l1 on 1e6 float64 / one ``np.abs`` pass      target <= 4
* ``track_copt_over_l1``      copt L1Ball.prox / projlib l1                target >= 10
* ``track_pyproximal_over_l1`` pyproximal L1Ball.prox / projlib l1         (reported)
* ``track_grouped_over_abs``  l11, l21, l1inf_bilevel on 1000x1000 float32 / ``np.abs``
                                                                           target <= 6
* ``track_l1inf_over_bilevel``  exact l1inf / l1inf_bilevel, 1000x1000     target <= 10
* ``track_nuclear_over_svd``  nuclear / one ``torch.linalg.svd``, 1000x1000 target <= 1.2

``setup`` calls :func:`projlib.projections.warmup` so numba compilation (or cache loading)
never lands in a timing.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from projlib.projections import constraint_names, project, warmup

REPEATS = 7
INNER = 3
KEEP_FRACTIONS = (1e-5, 1e-3, 0.2)
GROUPED_FAST = ("l11", "l21", "l1inf_bilevel")


def _best(fn: Callable[[], object], inner: int = INNER) -> float:
    best = float("inf")
    for _ in range(inner):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def ratio(op: Callable[[], object], ref: Callable[[], object], repeats: int = REPEATS,
          inner: int = INNER) -> float:
    """Median over ``repeats`` of best-of-``inner`` time(op) / best-of-``inner`` time(ref)."""
    values = []
    for _ in range(repeats):
        t_ref = _best(ref, inner)
        t_op = _best(op, inner)
        values.append(t_op / t_ref)
    return statistics.median(values)


def constraint_norm(W: torch.Tensor, name: str, groups: str = "columns") -> float:
    """The norm bounded by constraint ``name`` (float64), for choosing radii."""
    from projlib.projections._validate import group_shape

    W = W.to(torch.float64)
    if name in ("l1", "l11"):
        return float(W.abs().sum())
    if name == "nuclear":
        return float(torch.linalg.svdvals(W.reshape(W.shape[0], -1)).sum())
    A, G, B = group_shape(tuple(W.shape), groups)
    M = W.reshape(A, G, B).permute(1, 0, 2).reshape(G, A * B)
    if name == "l21":
        return float(torch.linalg.vector_norm(M, dim=1).sum())
    return float(M.abs().amax(dim=1).sum())


def radius_keeping(x: np.ndarray, fraction: float) -> float:
    """The l1 radius whose projection keeps about ``fraction`` of the entries nonzero."""
    a = np.sort(np.abs(x.ravel()))[::-1]
    k = max(1, int(round(fraction * a.size)))
    return float(a[:k].sum() - k * a[k])


def _weight(shape: tuple[int, ...], dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


SHAPES = {"1e6": (1_000_000,), "1000x1000": (1000, 1000), "conv64x32x3x3": (64, 32, 3, 3)}
DTYPES = {"float32": torch.float32, "float64": torch.float64}


class ProjectionsSuite:
    """Time and peak memory of ``project`` for every registry entry."""

    params = (list(constraint_names()), list(SHAPES), list(DTYPES), [0.01, 0.3])
    param_names = ("name", "shape", "dtype", "radius_fraction")
    timeout = 300

    def setup(self, name: str, shape: str, dtype: str, radius_fraction: float) -> None:
        if name == "nuclear" and shape == "1e6":
            raise NotImplementedError("nuclear on a 1e6 x 1 column is a plain l2 rescale")
        warmup()
        self.W = _weight(SHAPES[shape], DTYPES[dtype])
        self.radius = radius_fraction * constraint_norm(self.W, name)
        self.name = name

    def time_project(self, name, shape, dtype, radius_fraction) -> None:
        project(self.W, self.name, self.radius)

    def peakmem_project(self, name, shape, dtype, radius_fraction) -> None:
        project(self.W, self.name, self.radius)


class PeersSuite:
    """projlib's l1 ball against copt and pyproximal on the same 1e6 float64 data."""

    params = (["projlib", "copt", "pyproximal"], list(KEEP_FRACTIONS))
    param_names = ("implementation", "keep_fraction")
    timeout = 300

    def setup(self, implementation: str, keep_fraction: float) -> None:
        warmup()
        self.x = np.random.default_rng(0).standard_normal(1_000_000)
        self.radius = radius_keeping(self.x, keep_fraction)
        self.fn = _peer(implementation, self.x, self.radius)

    def time_l1(self, implementation, keep_fraction) -> None:
        self.fn()


def _peer(implementation: str, x: np.ndarray, radius: float) -> Callable[[], object]:
    if implementation == "projlib":
        W = torch.from_numpy(x)
        return lambda: project(W, "l1", radius)
    if implementation == "copt":
        from copt.constraint import L1Ball

        ball = L1Ball(radius)
        return lambda: ball.prox(x, 1.0)
    import pyproximal

    ball = pyproximal.L1Ball(x.size, radius)  # defaults: maxiter=100, xtol=1e-5 (bisection)
    return lambda: ball.prox(x, 1.0)


class L1TargetsSuite:
    """l1 on 1e6 float64: against one abs pass, and the peers against it (unit: ratio)."""

    params = (list(KEEP_FRACTIONS),)
    param_names = ("keep_fraction",)
    timeout = 600

    def setup(self, keep_fraction: float) -> None:
        warmup()
        self.x = np.random.default_rng(0).standard_normal(1_000_000)
        radius = radius_keeping(self.x, keep_fraction)
        self.ours = _peer("projlib", self.x, radius)
        self.radius = radius

    def track_l1_over_abs(self, keep_fraction) -> float:
        return ratio(self.ours, lambda: np.abs(self.x))

    track_l1_over_abs.unit = "ratio"

    def track_copt_over_l1(self, keep_fraction) -> float:
        return ratio(_peer("copt", self.x, self.radius), self.ours)

    track_copt_over_l1.unit = "ratio"

    def track_pyproximal_over_l1(self, keep_fraction) -> float:
        return ratio(_peer("pyproximal", self.x, self.radius), self.ours, repeats=3, inner=1)

    track_pyproximal_over_l1.unit = "ratio"


class GroupedTargetsSuite:
    """Grouped operators on a 1000x1000 float32 weight (unit: ratio).

    ``track_over_abs``: operator / one np.abs pass (target <= 6 for l11, l21, l1inf_bilevel).
    The radius is a fraction of the weight's own constraint norm.
    """

    params = (list(GROUPED_FAST), ["columns", "rows"], [0.01, 0.3])
    param_names = ("name", "groups", "radius_fraction")
    timeout = 600

    def setup(self, name: str, groups: str, radius_fraction: float) -> None:
        warmup()
        self.M = _weight((1000, 1000), torch.float32)
        self.M_np = self.M.numpy()
        self.radius = radius_fraction * constraint_norm(self.M, name, groups)

    def track_over_abs(self, name, groups, radius_fraction) -> float:
        return ratio(lambda: project(self.M, name, self.radius, groups),
                     lambda: np.abs(self.M_np))

    track_over_abs.unit = "ratio"



class ExactL1infTargetsSuite:
    """exact l1inf / l1inf_bilevel at the same radius, 1000x1000 float32 (unit: ratio)."""

    params = (["columns", "rows"], [0.01, 0.3])
    param_names = ("groups", "radius_fraction")
    timeout = 600

    def setup(self, groups: str, radius_fraction: float) -> None:
        warmup()
        self.M = _weight((1000, 1000), torch.float32)
        self.radius = radius_fraction * constraint_norm(self.M, "l1inf", groups)

    def track_l1inf_over_bilevel(self, groups, radius_fraction) -> float:
        return ratio(lambda: project(self.M, "l1inf", self.radius, groups),
                     lambda: project(self.M, "l1inf_bilevel", self.radius, groups))

    track_l1inf_over_bilevel.unit = "ratio"


class NuclearTargetsSuite:
    """nuclear / one torch.linalg.svd of the same 1000x1000 float32 matrix (unit: ratio)."""

    params = ([0.01, 0.3],)
    param_names = ("radius_fraction",)
    timeout = 600

    def setup(self, radius_fraction: float) -> None:
        warmup()
        self.M = _weight((1000, 1000), torch.float32)
        self.radius = radius_fraction * constraint_norm(self.M, "nuclear")

    def track_nuclear_over_svd(self, radius_fraction) -> float:
        return ratio(lambda: project(self.M, "nuclear", self.radius),
                     lambda: torch.linalg.svd(self.M, full_matrices=False), repeats=5, inner=1)

    track_nuclear_over_svd.unit = "ratio"
