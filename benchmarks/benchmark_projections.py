"""asv suites for the projection library (issue 2).

``ProjectionsSuite``: every registry name x shape x dtype x radius, ``time_project`` and
``peakmem_project``.  The radius is a fraction of the weight's own constraint norm, so every
case is a real projection (the point starts outside the ball).

``PeersSuite``: the l1 ball on 1e6 float64 entries at radii keeping about 1e-5, 1e-3 and 0.2 of
them: ``time_l1`` for projlib, copt's ``L1Ball.prox`` (Duchi et al.'s sort) and pyproximal's
``L1Ball.prox`` (bisection, its defaults maxiter=100, xtol=1e-5), on the same numpy data.

``*TargetsSuite``: the issue's performance targets as ratios measured in one process, each the
median over REPEATS of (best of INNER calls of the operator) / (best of INNER calls of the
reference), interleaved so machine load hits both sides alike (unit "ratio").  In cache:
sizes that fit a 32 MiB L3 (8 MB and 4 MB); out of cache: 80 MB and 64 MB, well above it:

* ``track_l1_over_abs``       l1 / one ``np.abs`` pass, 1e6 float64      target <= 4
                              (``L1TargetsSuite``), 1e7 float64         target <= 3
                              (``L1LargeTargetsSuite``)
* ``track_copt_over_l1``      copt L1Ball.prox / projlib l1 (1e6)        target >= 10
* ``track_pyproximal_over_l1`` pyproximal L1Ball.prox / projlib l1 (1e6) (reported)
* ``track_over_abs``          l11, l21, l1inf_bilevel / ``np.abs``, 1000x1000 float32
                              (``GroupedTargetsSuite``), 4096x4096 float32
                              (``GroupedLargeTargetsSuite``)  target <= 6 / <= 3, per
                              operator in ``GROUPED_TARGETS``
* ``track_l1inf_over_bilevel``  exact l1inf / l1inf_bilevel, 1000x1000     target <= 10
* ``track_nuclear_over_svd``  nuclear / one ``torch.linalg.svd``, 1000x1000 target <= 1.2
* ``track_fast_over_reference``  each CPU fast path / its sort-based reference path
                              (``_torch_ops``) at the layer sizes of a projected epoch
                              (``FastPathSuite``, reported)

The l1 and grouped targets are checked by :func:`within_target`: a first median beyond the
target is measured again, up to ATTEMPTS times in all, and the best median counts; a miss is
printed as "TARGET MISSED" and, with GREENBENCH_ASSERT_TARGETS=1 (nightly, quiet machine),
raises so the run fails and names the benchmark.  docs/BENCHMARKS.md
("Projection targets") gives the measured figures and why each target is what it is.

``setup`` calls :func:`projlib.projections.warmup` so numba compilation (or cache loading)
never lands in a timing.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from benchmarks._common import within_target
from projlib.projections import constraint_names, project, warmup

REPEATS = 7
INNER = 3
KEEP_FRACTIONS = (1e-5, 1e-3, 0.2)
GROUPED_FAST = ("l11", "l21", "l1inf_bilevel")
# l1 on float64 vectors: 8 MB in cache, 80 MB out of cache (a 32 MiB L3 holds the first only)
L1_SIZES = {"1e6": 1_000_000, "1e7": 10_000_000}
L1_TARGETS = {"1e6": 4.0, "1e7": 3.0}
# grouped operators on float32 matrices: 4 MB in cache, 64 MB out of cache.  The issue's
# target is <= 6 in cache and <= 3 out of cache.  l11 misses <= 6 in cache (columns always,
# rows at radius 0.3 under load; figures and reasons in docs/BENCHMARKS.md, "Projection
# targets"): a miss is printed as TARGET MISSED, not hidden behind a looser value.
GROUPED_SIZES = {"1000x1000": (1000, 1000), "4096x4096": (4096, 4096)}
GROUPED_TARGETS = {  # (name, groups, size) -> target (the same for every operator)
    **{(n, g, "1000x1000"): 6.0 for n in GROUPED_FAST for g in ("columns", "rows")},
    **{(n, g, "4096x4096"): 3.0 for n in GROUPED_FAST for g in ("columns", "rows")},
    # l11 measured on the 32 MB-L3 EPYC (docs/BENCHMARKS.md): columns 7-9 in cache and
    # about 3 out of cache (quiet-machine medians 2.8-2.9 before issue 22's simplification,
    # ~5 % more since), rows 4.4-7.3 in cache: the in-cache targets are missed and reported
    # as such.
}
COPT_TARGET = 10.0


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
    """The norm bounded by constraint ``name``, from its registry spec (for choosing radii)."""
    from projlib.projections import REGISTRY

    return REGISTRY[name].norm(W, groups)


def radius_keeping(x: np.ndarray, fraction: float) -> float:
    """The l1 radius whose projection keeps about ``fraction`` of the entries nonzero."""
    a = np.abs(x.ravel())
    k = max(1, int(round(fraction * a.size)))
    top = np.sort(np.partition(a, a.size - k - 1)[a.size - k - 1:])[::-1]  # k + 1 largest
    return float(top[:k].sum() - k * top[k])


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
    """l1 on 1e6 float64 (8 MB, in cache): against one abs pass, and the peers against it
    (unit: ratio)."""

    params = (list(KEEP_FRACTIONS),)
    param_names = ("keep_fraction",)
    timeout = 600
    vector_size = "1e6"
    ratio_options: dict = {}

    def setup(self, keep_fraction: float) -> None:
        warmup()
        self.x = np.random.default_rng(0).standard_normal(L1_SIZES[self.vector_size])
        radius = radius_keeping(self.x, keep_fraction)
        self.ours = _peer("projlib", self.x, radius)
        self.radius = radius

    def track_l1_over_abs(self, keep_fraction) -> float:
        return within_target(
            lambda: ratio(self.ours, lambda: np.abs(self.x), **self.ratio_options),
            L1_TARGETS[self.vector_size], f"l1 {self.vector_size} keep {keep_fraction} / abs")

    track_l1_over_abs.unit = "ratio"

    def track_copt_over_l1(self, keep_fraction) -> float:
        return within_target(lambda: ratio(_peer("copt", self.x, self.radius), self.ours),
                             COPT_TARGET, f"copt / l1 {self.vector_size} keep {keep_fraction}",
                             higher_is_better=True)

    track_copt_over_l1.unit = "ratio"

    def track_pyproximal_over_l1(self, keep_fraction) -> float:
        return ratio(_peer("pyproximal", self.x, self.radius), self.ours, repeats=3, inner=1)

    track_pyproximal_over_l1.unit = "ratio"


class L1LargeTargetsSuite(L1TargetsSuite):
    """l1 on 1e7 float64 (80 MB, out of cache) against one abs pass (unit: ratio).  The peers
    sort (copt) or bisect (pyproximal) for seconds there: compared on 1e6 only."""

    vector_size = "1e7"
    ratio_options = {"repeats": 3, "inner": 2}  # ~20 ms a call: keeps the CI quick run short
    track_copt_over_l1 = None
    track_pyproximal_over_l1 = None


class GroupedTargetsSuite:
    """Grouped operators on a 1000x1000 float32 weight (4 MB, in cache; unit: ratio).

    ``track_over_abs``: operator / one np.abs pass, asserted against ``GROUPED_TARGETS``.
    The radius is a fraction of the weight's own constraint norm.
    """

    params = (list(GROUPED_FAST), ["columns", "rows"], [0.01, 0.3])
    param_names = ("name", "groups", "radius_fraction")
    timeout = 600
    weight_size = "1000x1000"
    ratio_options: dict = {}

    def setup(self, name: str, groups: str, radius_fraction: float) -> None:
        warmup()
        self.M = _weight(GROUPED_SIZES[self.weight_size], torch.float32)
        self.M_np = self.M.numpy()
        self.radius = radius_fraction * constraint_norm(self.M, name, groups)

    def track_over_abs(self, name, groups, radius_fraction) -> float:
        return within_target(
            lambda: ratio(lambda: project(self.M, name, self.radius, groups),
                          lambda: np.abs(self.M_np), **self.ratio_options),
            GROUPED_TARGETS[name, groups, self.weight_size],
            f"{name} {groups} {radius_fraction} {self.weight_size} / abs")

    track_over_abs.unit = "ratio"


class GroupedLargeTargetsSuite(GroupedTargetsSuite):
    """The same on a 4096x4096 float32 weight (64 MB, out of cache; unit: ratio)."""

    weight_size = "4096x4096"
    ratio_options = {"repeats": 3, "inner": 2}  # 20-70 ms a call: keeps the CI quick run short


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


class FastPathSuite:
    """What each CPU fast path (numba) gains over its constraint's sort-based reference path
    (``_torch_ops``, the formulas of docs/METHOD.md §2 as written, run on the same CPU
    tensor), at the layer sizes a projected epoch projects after every step: LeNet-300-100's
    300x784 and 100x300 weights and the conv net's 20x10x5x5 kernel, float32, groups by
    columns, radius 0.3 of the weight's own norm (unit: ratio, fast / reference; below 1 is
    the gain that keeps the fast path).  Reported, not asserted."""

    params = (["l1", "l11", "l21", "l1inf_bilevel", "l1inf"],
              ["300x784", "100x300", "conv20x10x5x5"])
    param_names = ("name", "shape")
    timeout = 600
    shapes = {"300x784": (300, 784), "100x300": (100, 300), "conv20x10x5x5": (20, 10, 5, 5)}

    def setup(self, name: str, shape: str) -> None:
        from projlib.projections import _torch_ops
        from projlib.projections._validate import group_shape

        warmup()
        self.W = _weight(self.shapes[shape], torch.float32)
        self.radius = 0.3 * constraint_norm(self.W, name)
        fn = getattr(_torch_ops, f"project_{name}")
        W3 = self.W if name == "l1" else self.W.reshape(group_shape(tuple(self.W.shape),
                                                                    "columns"))
        self.reference = lambda: fn(W3, self.radius)

    def track_fast_over_reference(self, name, shape) -> float:
        # the reference's searches are built for a GPU: 5-150 ms a call on a CPU, hence few
        # repetitions (the ratios are far below 1, the noise does not matter)
        return ratio(lambda: project(self.W, name, self.radius), self.reference,
                     repeats=3, inner=3)

    track_fast_over_reference.unit = "ratio"
