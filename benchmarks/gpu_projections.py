"""GPU timings of the projections (the CUDA path) against the targets.

    python -m benchmarks.gpu_projections            # a Markdown report on stdout, exit 0

Not an asv suite: a one-shot report for a CUDA machine (prints "no CUDA device" and exits 0
without one; under 2 minutes on an H100).  float32, radius = 0.3 x the constraint norm.
Every timing is the median of 15 CUDA-event timings of one call each, the stream idle
before it (so launch overhead counts, as it does for one projection per training step),
after 3 warm-up calls.  "abs" is one ``torch.abs`` pass over the same tensor, timed the same
way.  Sizes: 1000x1000 and 4096x4096 matrices (groups = columns), and a 1e7 vector read
with groups = rows (every entry its own group, so the grouped operators run their outer
projection on 1e7 group norms; with the default groups = columns a vector is one group,
a trivial case).

Targets (PASS/FAIL):
  * 1000x1000: l1, l21, l11, l1inf_bilevel <= 0.1 ms;
  * 4096x4096 and the 1e7 vector: every operator but nuclear <= 10 x one abs pass;
  * exact l1inf <= 3 x l1inf_bilevel (each matrix size);
  * no host synchronisation in l1, l21, l11, l1inf_bilevel, l1inf (one call each under
    ``torch.cuda.set_sync_debug_mode("error")``);
  * nuclear (1000x1000 float32): feasible to 1e-6 relative (float64 SVD of the result).
Also printed: the host (CPU) time to enqueue one call: when it is close to the GPU time the
operator is launch-bound, and the torch ops per call; and, to tune the crossover between
the one-sort and the chunked threshold searches (``_torch_ops.FULL_SORT_MAX``), both variants
of l1 and l1inf on 1000x1000, 2048x2048 and 4096x4096 matrices; and l11, l21 and
l1inf_bilevel by the Triton kernels (``_triton_ops``, what ``project`` runs for eligible
float32 weights, so the main table times them) against the pure-torch path, both groupings,
at 100x300, 300x784, 1000x1000 and 4096x4096, with their largest difference; and l1 by its
Triton search (``_triton_l1``, also what ``project`` runs) against the torch path's sort at
the three sizes, with whether its result equals the CPU kernel's bit for bit, and exact
l1inf by its Triton search (``_triton_l1inf``) the same way at 1000x1000 and 4096x4096
(the kernels are opt-in: ``benchmarks/gpu_check.sh`` runs this with ``GREENBENCH_TRITON=1``).
"""

from __future__ import annotations

import statistics
import sys
import time

import torch

from projlib.projections import _torch_ops, project
from projlib.projections._validate import group_shape

REPS = 15
WARMUP = 3
FAST = ("l1", "l21", "l11", "l1inf_bilevel")
SYNC_FREE = FAST + ("l1inf",)
SIZES = (("1000x1000", (1000, 1000), "columns"),
         ("4096x4096", (4096, 4096), "columns"),
         ("1e7 vector", (10_000_000,), "rows"))


def constraint_norm(W: torch.Tensor, name: str, groups: str) -> float:
    """The norm of the constraint, computed on the device in float64."""
    if name == "nuclear":
        return float(torch.linalg.svdvals(W.reshape(W.shape[0], -1).double()).sum())
    if name == "l1":
        return float(W.double().abs().sum())
    M = W.reshape(group_shape(tuple(W.shape), groups)).double()
    if name == "l21":
        return float(torch.linalg.vector_norm(M, dim=(0, 2)).sum())
    if name in ("l1inf", "l1inf_bilevel"):
        return float(M.abs().amax(dim=(0, 2)).sum())
    return float(M.abs().sum())  # l11


def gpu_ms(fn, *args, reps: int = REPS, warmup: int = WARMUP) -> tuple[float, float]:
    """(median GPU ms, median host ms to enqueue) of ``fn(*args)``, one call per timing."""
    for _ in range(warmup):
        fn(*args)
    torch.cuda.synchronize()
    gpu, host = [], []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        start.record()
        fn(*args)
        end.record()
        host.append((time.perf_counter() - t0) * 1e3)
        torch.cuda.synchronize()
        gpu.append(start.elapsed_time(end))
    return statistics.median(gpu), statistics.median(host)


def torch_ops_per_call(fn, *args) -> int:
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.__name__.split(".")[0] not in ("view", "reshape", "expand", "slice",
                                                   "select", "permute", "unsqueeze", "detach",
                                                   "alias", "_unsafe_view", "as_strided"):
                Count.n += 1
            return func(*args, **(kwargs or {}))

    with Count():
        fn(*args)
    return Count.n


def no_sync(fn, *args) -> str:
    torch.cuda.synchronize()
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        fn(*args)
    except RuntimeError as err:  # "called a synchronizing CUDA operation"
        return f"FAIL ({str(err).splitlines()[0][:60]})"
    finally:
        torch.cuda.set_sync_debug_mode(previous)
    return "PASS"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA device")
        return 0
    try:
        report()
    except Exception:  # a report, not a gate: show what broke, keep the exit status 0
        import traceback

        traceback.print_exc()
    return 0


def report() -> None:
    dev = torch.device("cuda")
    t_start = time.time()
    print(f"# GPU projections: {torch.cuda.get_device_name(dev)}, torch {torch.__version__}\n")
    print(f"float32, radius 0.3 x norm, median of {REPS} CUDA-event timings of one call; "
          f"knobs FULL_SORT_MAX={_torch_ops.FULL_SORT_MAX}, CHUNK={_torch_ops.CHUNK}, "
          f"PIVOTS={_torch_ops.PIVOTS}\n")
    gen = torch.Generator(device=dev).manual_seed(0)
    rows, checks, times = [], [], {}
    for label, shape, groups in SIZES:
        W = torch.randn(shape, device=dev, generator=gen)
        abs_ms, _ = gpu_ms(torch.abs, W)
        for name in SYNC_FREE:
            g = "columns" if name == "l1" else groups
            args = (W, name, 0.3 * constraint_norm(W, name, g), g)
            try:
                ms, host = gpu_ms(project, *args)
            except Exception as err:  # keep going: one broken row, the rest of the report
                rows.append((label, name, float("nan"), float("nan"), None, abs_ms, None,
                             float("nan"), "", f"ERROR {type(err).__name__}: {err}"[:80]))
                times[label, name] = float("nan")
                continue
            times[label, name] = ms
            ops = torch_ops_per_call(project, *args)
            r = args[2]
            P = project(*args)
            feas = constraint_norm(P, name, g) / r - 1
            if label == "1000x1000" and name in FAST:
                target, ok = "<= 0.1 ms", ms <= 0.1
            elif label != "1000x1000":
                target, ok = "<= 10 x abs", ms <= 10 * abs_ms
            else:
                target, ok = "-", None
            rows.append((label, name, ms, host, ops, abs_ms, ms / abs_ms, feas, target,
                         "" if ok is None else verdict(ok)))
            if label == "1000x1000":
                checks.append((f"no host sync: {name}", no_sync(project, *args)))
        W = P = None
        torch.cuda.empty_cache()

    # nuclear: time and feasibility of the float32 result
    W = torch.randn(1000, 1000, device=dev, generator=gen)
    for frac in (0.3, 0.01):
        r = frac * constraint_norm(W, "nuclear", "columns")
        if frac == 0.3:
            ms, host = gpu_ms(project, W, "nuclear", r, reps=5, warmup=1)
        P = project(W, "nuclear", r)
        excess = constraint_norm(P, "nuclear", "columns") / r - 1
        if frac == 0.3:
            rows.append(("1000x1000", "nuclear", ms, host, None, times.get(("1000x1000", "l1")),
                         None, excess, "feasible to 1e-6", verdict(excess <= 1e-6)))
        checks.append((f"nuclear 1000x1000 fp32 feasible at {frac} x norm "
                       f"(excess {excess:+.1e})", verdict(excess <= 1e-6)))

    print("| size | operator | GPU ms | host ms | torch ops | abs ms | x abs | feasibility "
          "| target | |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, name, ms, host, ops, abs_ms, ratio, feas, target, ok in rows:
        abs_s = "" if name == "nuclear" else f"{abs_ms:.4f}"
        ratio_s = "" if ratio is None else f"{ratio:.1f}"
        ops_s = "" if ops is None else str(ops)
        print(f"| {label} | {name} | {ms:.4f} | {host:.4f} | {ops_s} | {abs_s} | {ratio_s} "
              f"| {feas:+.1e} | {target} | {ok} |")

    print("\n| check | result |\n|---|---|")
    for label in ("1000x1000", "4096x4096"):
        ratio = times[label, "l1inf"] / times[label, "l1inf_bilevel"]
        checks.append((f"{label}: l1inf / l1inf_bilevel = {ratio:.2f} (<= 3)",
                       verdict(ratio <= 3)))
    for text, result in checks:
        print(f"| {text} | {result} |")

    # the crossover between the one-sort and the chunked searches
    print("\n| size | operator | one sort ms | chunked ms |\n|---|---|---|---|")
    saved = _torch_ops.FULL_SORT_MAX
    for label, shape in (("1000x1000", (1000, 1000)), ("2048x2048", (2048, 2048)),
                         ("4096x4096", (4096, 4096))):
        W = torch.randn(shape, device=dev, generator=gen)
        for name in ("l1", "l1inf"):
            r = 0.3 * constraint_norm(W, name, "columns")
            res = []
            for full in (1 << 40, 0):
                _torch_ops.FULL_SORT_MAX = full
                res.append(gpu_ms(project, W, name, r, reps=7)[0])
            _torch_ops.FULL_SORT_MAX = saved
            print(f"| {label} | {name} | {res[0]:.4f} | {res[1]:.4f} |")
        W = None
        torch.cuda.empty_cache()
    triton_vs_torch(dev, gen)
    print(f"\n({time.time() - t_start:.0f} s)")


def triton_vs_torch(dev: torch.device, gen: torch.Generator) -> None:
    """l11, l21, l1inf_bilevel by the Triton kernels (what ``project`` runs on eligible float32
    CUDA weights) against the pure-torch path, at layer sizes of the paper's networks and the
    targets'."""
    from projlib.projections import _triton_ops, grouped

    print("\n| shape | groups | operator | Triton ms | torch path ms | torch / Triton "
          "| max rel diff |\n|---|---|---|---|---|---|---|")
    for shape in ((100, 300), (300, 784), (1000, 1000), (4096, 4096)):
        W = torch.randn(shape, device=dev, generator=gen)
        for groups in ("columns", "rows"):
            for name in _triton_ops.KINDS:
                X, r, shape3 = grouped._prepare(W, 0.3 * constraint_norm(W, name, groups),
                                                groups)
                X3 = X.reshape(shape3)
                row = f"| {shape} | {groups} | {name} |"
                if not _triton_ops.eligible(X3):
                    why = f" ({_triton_ops._failed[0]})" if _triton_ops._failed else ""
                    print(f"{row} not eligible{why} | | | |"[:160])
                    continue
                try:
                    tri_ms = gpu_ms(_triton_ops.project, name, X3, r)[0]
                    got = _triton_ops.project(name, X3, r)
                except Exception as err:  # a broken kernel: say so, keep the report going
                    print(f"{row} ERROR {type(err).__name__}: {err} |"[:160])
                    continue
                torch_fn = getattr(_torch_ops, f"project_{name}")
                ref_ms = gpu_ms(torch_fn, X3, r)[0]
                diff = float((got - torch_fn(X3, r)).abs().max()) / float(W.abs().max())
                print(f"{row} {tri_ms:.4f} | {ref_ms:.4f} | {ref_ms / tri_ms:.1f} | {diff:.1e} |")
        W = None
        torch.cuda.empty_cache()
    searches_triton_vs_torch(dev, gen)


def searches_triton_vs_torch(dev: torch.device, gen: torch.Generator) -> None:
    """l1 and exact l1inf by their Triton searches (what ``project`` runs on float32 CUDA
    weights) against the torch path's sorts, and against the CPU kernels (bit for bit)."""
    from projlib.projections import _triton_l1, _triton_l1inf, _triton_ops, grouped

    def l1inf_triton(W, r):
        X, rr, shape3 = grouped._prepare(W, r, "columns")
        if not _triton_ops.eligible(X.reshape(shape3)):
            return None
        return lambda: _triton_l1inf.project(X.reshape(shape3), rr)

    def l1inf_torch(W, r):
        X, rr, shape3 = grouped._prepare(W, r, "columns")
        return lambda: _torch_ops.project_l1inf(X.reshape(shape3), rr).reshape(W.shape)

    cases = [("l1", lambda W, r: (lambda: _triton_l1.project(W, r))
              if _triton_l1.eligible(W) else None,
              lambda W, r: (lambda: _torch_ops.project_l1(W, r)), SIZES),
             ("l1inf", l1inf_triton, l1inf_torch, SIZES[:2])]
    print("\n| size | operator | Triton ms | torch path ms | torch / Triton "
          "| equal to the CPU |\n|---|---|---|---|---|---|")
    for name, triton_fn, torch_fn, sizes in cases:
        for label, shape, _ in sizes:
            W = torch.randn(shape, device=dev, generator=gen)
            r = 0.3 * constraint_norm(W, name, "columns")
            run = triton_fn(W, r)
            if run is None:
                print(f"| {label} | {name} | not eligible | | | |")
                continue
            try:
                tri_ms = gpu_ms(run)[0]
                got = run()
            except Exception as err:  # a broken kernel: say so, keep the report going
                print(f"| {label} | {name} | ERROR {type(err).__name__}: {err} | | | |"[:160])
                continue
            ref_ms = gpu_ms(torch_fn(W, r))[0]
            same = got is not None and torch.equal(got.reshape(W.shape).cpu(),
                                                   project(W.cpu(), name, r, "columns"))
            print(f"| {label} | {name} | {tri_ms:.4f} | {ref_ms:.4f} | {ref_ms / tri_ms:.1f} "
                  f"| {same} |")
            W = got = None
            torch.cuda.empty_cache()


if __name__ == "__main__":
    sys.exit(main())
