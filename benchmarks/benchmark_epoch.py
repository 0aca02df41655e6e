"""asv epoch suite (issue 21): greenbench `train` against a plain PyTorch loop, in one run.

Same data tensors, batch 128, SGD (lr 0.02, momentum 0.9: the CLI's optimiser), one torch
thread, CPU. The plain loop is the shortest honest training loop: data tensors in memory,
`randperm` batches, `zero_grad(set_to_none=True)`, forward, cross-entropy, backward, step.
Every figure is a ratio of medians measured in the same process, the variants interleaved
(REPEATS calls each), because the machines are shared and noisy:

- ``EpochSuite.track_dense_over_plain`` (lenet300, convnet): greenbench's per-epoch training
  time (`TrainResult.epoch_time_s`, evaluation excluded) / the plain loop's epoch in the
  *default* layout. Targets: LeNet-300-100 <= 1.05; the conv net <= 0.75 (greenbench trains it
  in channels_last on the CPU, `projlib.training.procedures.CPU_CONV_LAYOUT`).
- ``EpochSuite.track_fixed_per_call_s``: seconds of a `train` call outside its epochs (model
  build, the evaluation after every epoch, result assembly) per call; ``track_evaluation_s``:
  one evaluation of the 10 000 test images; ``track_cost_analysis_s``: one `cost_report`;
  ``track_data_loading_s``: one `load_dataset("fashion-mnist")` (NaN: not installed). They are
  fixed costs, reported apart from the per-epoch figure.
- ``ProjectedEpochSuite.track_projected_over_dense`` (l11, l21, l1 on LeNet-300-100's hidden
  layer, the paper's default): per-epoch time projected / dense. Target <= 1.15.
- ``RetrainSuite.track_compacted_over_masked``: a LeNet-300-100 retrain epoch on the compacted
  network / on the full-size masked one, at ~10 % structured MACCs (Linear(300, 100) keeps 30
  of its 300 input columns: a 784-30-100-10 network). Target <= 0.5 (>= 2x faster).

Data: Fashion-MNIST where it is installed (`load_dataset`), else synthetic tensors of its
sizes (the epoch time depends on the shapes). The conv net trains on the first CONV_TRAIN
images (a fifth of an epoch) to keep the suite short; the ratios do not depend on it.

`python -m benchmarks.benchmark_epoch` (PYTHONPATH at the repository root) prints the table of
docs/BENCHMARKS.md "Training speed" with full 60 000-image epochs.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import statistics
import time

import torch

from benchmarks._common import BATCH, LR, MOMENTUM, PlainLoop, fashion_mnist, within_target

EPOCHS = 3  # per call: projected epochs slow down after ~2 epochs without subnormal flushing
REPEATS = 3
CONV_TRAIN = 12_000
RADIUS = 50.0  # l11 on LeNet's hidden layer: active at every step (its l1,1 norm is ~870)
RADII = {"l11": RADIUS, "l21": 5.0, "l1": RADIUS}
PROJECTED = tuple(RADII)
RETRAIN_KEEP = 30  # input columns of Linear(300, 100) the retrain keeps: ~10 % of the MACCs
TARGETS = {"dense_over_plain": {"lenet300": 1.05, "convnet": 0.75},
           "projected_over_dense": 1.15, "compacted_over_masked": 0.5}


def config(model: str, procedure: str = "dense", constraint: str | None = None,
           epochs: int = EPOCHS):
    from projlib.training import TrainConfig

    extra = {} if constraint is None else {"constraint": constraint,
                                           "radius": RADII.get(constraint, RADIUS)}
    return TrainConfig(dataset="fashion-mnist", model=model, procedure=procedure, epochs=epochs,
                       batch_size=BATCH, optimizer="sgd", lr=LR, seed=0, device="cpu", **extra)


def train_call(cfg, data):
    """(mean seconds per training epoch, seconds of the call outside its epochs)."""
    from projlib.training import train

    start = time.perf_counter()
    res = train(cfg, dataset=data)
    wall = time.perf_counter() - start
    return statistics.fmean(res.epoch_time_s), wall - sum(res.epoch_time_s)


def plain_call(model: str, data, epochs: int = EPOCHS, **kwargs) -> float:
    """Mean seconds per epoch of a fresh plain loop trained `epochs` epochs."""
    loop = PlainLoop(model, data, **kwargs)
    return statistics.fmean(loop.epoch() for _ in range(epochs))


def interleaved(variants: dict, repeats: int = REPEATS) -> dict[str, float]:
    """Median of each variant's value over `repeats` rounds, the variants run in turn."""
    values: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(repeats):
        for name, run in variants.items():
            values[name].append(run())
    return {k: statistics.median(v) for k, v in values.items()}


def retrain_epoch(data, compacted: bool, keep: int = RETRAIN_KEEP) -> tuple[float, float | None]:
    """(seconds, predicted speed-up) of one masked LeNet-300-100 retrain epoch in which
    Linear(300, 100) keeps `keep` random input columns, compacted or full-size."""
    from projlib.training.procedures import _Runner
    from projlib.training.sparsity import apply_masks

    runner = _Runner(config("lenet300", "lottery", "l11", epochs=1), data, None)
    gen = torch.Generator().manual_seed(0)
    mask = torch.zeros(100, 300, dtype=torch.bool)
    mask[:, torch.randperm(300, generator=gen)[:keep]] = True
    apply_masks(runner.model, {"3.weight": mask})
    runner.run_phase("retrain", 1, masks={"3.weight": mask}, compacted=compacted)
    return runner.epoch_times[-1], runner.retrain_predicted


@contextlib.contextmanager
def issue21_measures(on: bool):
    """`train` with (on) or without (off: the code before issue 21) its speed measures: the
    subnormal flushing, the CPU conv layout and the compacted retrain."""
    from projlib.training import procedures

    saved = (procedures.flush_denormal, procedures.CPU_CONV_LAYOUT, procedures.COMPACT_RETRAIN)
    if not on:
        procedures.flush_denormal = contextlib.nullcontext
        procedures.CPU_CONV_LAYOUT = None
        procedures.COMPACT_RETRAIN = False
    try:
        yield
    finally:
        (procedures.flush_denormal, procedures.CPU_CONV_LAYOUT,
         procedures.COMPACT_RETRAIN) = saved


# The study of the paper's claims (issue 21): per net, 6 constraints x 6 radii x 10 seeds
# projected, 10 dense seeds, 20 epochs; lottery and magnitude points per projected point.
STUDY_POINTS, STUDY_DENSE, STUDY_EPOCHS = 360, 10, 20


def study_cost(repeats: int) -> None:
    """Core-hours of the study before / after issue 21, from per-epoch times measured in this
    run (before and after interleaved; the conv net on CONV_TRAIN images, scaled to 60 000)."""
    from projlib.projections import REGISTRY, warmup

    warmup()
    full = fashion_mnist()
    hours = {"before": {}, "after": {}}
    for model in ("lenet300", "convnet"):
        data = fashion_mnist(CONV_TRAIN) if model == "convnet" else full
        scale = full.train_x.shape[0] / data.train_x.shape[0]
        cfgs = {"dense": config(model)}
        for name, spec in REGISTRY.items():
            radius = spec.radii_for(model)[1]
            cfgs[name] = dataclasses.replace(config(model, "projected", name), radius=radius)
        variants = {}
        for when in ("before", "after"):
            for name, cfg in cfgs.items():
                def run(cfg=cfg, on=(when == "after"), data=data, scale=scale) -> float:
                    with issue21_measures(on):
                        epoch, fixed = train_call(cfg, data)
                    return epoch * scale + fixed / EPOCHS  # evaluation counted per epoch
                variants[(when, name)] = run
        med = interleaved(variants, repeats)
        for when in ("before", "after"):
            t = {name: med[(when, name)] for name in cfgs}
            proj = statistics.fmean(t[c] for c in REGISTRY)  # the 6 constraints equally
            for name in cfgs:
                print(f"study {model:8s} {when:6s} {name:14s} {t[name]:7.2f} s/epoch "
                      f"(incl. evaluation)", flush=True)
            e = STUDY_EPOCHS / 3600
            hours[when][model] = {
                "projected+dense": e * (STUDY_POINTS * proj + STUDY_DENSE * t["dense"]),
                # phase 1 projected + a full-size retrain at about a dense epoch's cost
                "lottery (full-size retrain)": e * STUDY_POINTS * (proj + t["dense"]),
                "magnitude (full-size retrain)": e * STUDY_POINTS * (proj + 2 * t["dense"]),
            }
    for when in ("before", "after"):
        for kind in hours[when]["lenet300"]:
            both = [hours[when][m][kind] for m in ("lenet300", "convnet")]
            print(f"study hours {when:6s} {kind:30s} lenet {both[0]:6.1f} conv {both[1]:6.1f} "
                  f"total {sum(both):6.1f}", flush=True)


def projection_cold(repeats: int, calls: int = 100) -> None:
    """Median time of one projection of LeNet's hidden weight (100x300) called in a loop (warm
    cache) and right after a forward/backward of Linear(784, 300) at batch 128 (as in `train`)."""
    from projlib.projections import REGISTRY, warmup

    warmup()
    torch.manual_seed(0)
    weight = torch.nn.Linear(300, 100).weight.detach().clone()
    first, x = torch.nn.Linear(784, 300), torch.rand(BATCH, 784)
    for name in PROJECTED:
        spec = REGISTRY[name]
        kwargs = {"groups": "columns"} if spec.grouped else {}
        medians: dict[str, list[float]] = {"warm": [], "after forward/backward": []}
        for _ in range(repeats):
            for case, times in medians.items():
                runs = []
                for _ in range(calls):
                    if case != "warm":
                        first(x).sum().backward()
                    start = time.perf_counter()
                    spec.fn(weight, radius=RADII[name], **kwargs)
                    runs.append(time.perf_counter() - start)
                times.append(statistics.median(runs))
        print(f"projection {name:4s} " + "  ".join(
            f"{case} {statistics.median(v) * 1e6:6.0f} us" for case, v in medians.items()),
            flush=True)


def _one_thread(suite) -> None:
    suite._threads = torch.get_num_threads()
    torch.set_num_threads(1)


class _Timed:
    number = 1
    repeat = 1
    warmup_time = 0.0
    timeout = 900

    def teardown(self, *args) -> None:
        torch.set_num_threads(self._threads)


class EpochSuite(_Timed):
    params = [("lenet300", "convnet")]
    param_names = ["model"]

    def setup(self, model: str) -> None:
        _one_thread(self)
        self.data = fashion_mnist(CONV_TRAIN if model == "convnet" else None)

    def track_dense_over_plain(self, model: str) -> float:
        def measure() -> float:
            m = interleaved({"plain": lambda: plain_call(model, self.data),
                             "greenbench": lambda: train_call(config(model), self.data)[0]})
            return m["greenbench"] / m["plain"]

        return within_target(measure, TARGETS["dense_over_plain"][model],
                             f"{model} greenbench dense epoch / plain loop")

    track_dense_over_plain.unit = "ratio"

    def track_fixed_per_call_s(self, model: str) -> float:
        return statistics.median(train_call(config(model, epochs=1), self.data)[1]
                                 for _ in range(REPEATS))

    track_fixed_per_call_s.unit = "s"

    def track_evaluation_s(self, model: str) -> float:
        from projlib.training.procedures import _Runner

        runner = _Runner(config(model), self.data, None)

        def once() -> float:
            start = time.perf_counter()
            runner.evaluate()
            return time.perf_counter() - start

        return statistics.median(once() for _ in range(REPEATS))

    track_evaluation_s.unit = "s"

    def track_cost_analysis_s(self, model: str) -> float:
        from projlib.measure import cost_report
        from projlib.training import build_model

        net = build_model(model, self.data.input_shape, self.data.num_classes)

        def once() -> float:
            start = time.perf_counter()
            cost_report(net, self.data.input_shape)
            return time.perf_counter() - start

        return statistics.median(once() for _ in range(REPEATS))

    track_cost_analysis_s.unit = "s"

    def track_data_loading_s(self, model: str) -> float:
        from projlib.training import DatasetError, load_dataset

        start = time.perf_counter()
        try:
            load_dataset("fashion-mnist")
        except DatasetError:
            return math.nan  # not installed: not measured
        return time.perf_counter() - start

    track_data_loading_s.unit = "s"


class ProjectedEpochSuite(_Timed):
    params = [PROJECTED]
    param_names = ["constraint"]

    def setup(self, constraint: str) -> None:
        from projlib.projections import warmup

        _one_thread(self)
        warmup()  # the numba kernels compile outside the timings
        self.data = fashion_mnist()

    def track_projected_over_dense(self, constraint: str) -> float:
        def measure() -> float:
            m = interleaved({
                "dense": lambda: train_call(config("lenet300"), self.data)[0],
                "projected": lambda: train_call(
                    config("lenet300", "projected", constraint), self.data)[0]})
            return m["projected"] / m["dense"]

        return within_target(measure, TARGETS["projected_over_dense"],
                             f"lenet300 {constraint} projected / dense epoch")

    track_projected_over_dense.unit = "ratio"


class RetrainSuite(_Timed):
    def setup(self) -> None:
        _one_thread(self)
        self.data = fashion_mnist()

    def track_compacted_over_masked(self) -> float:
        def measure() -> float:
            m = interleaved({"masked": lambda: retrain_epoch(self.data, False)[0],
                             "compacted": lambda: retrain_epoch(self.data, True)[0]})
            return m["compacted"] / m["masked"]

        return within_target(measure, TARGETS["compacted_over_masked"],
                             "lenet300 compacted / masked retrain epoch")

    track_compacted_over_masked.unit = "ratio"


def main() -> None:
    """Print the figures of docs/BENCHMARKS.md "Training speed" (full epochs, medians)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--compile", action="store_true",
                        help="also the conv net's plain loop under torch.compile")
    parser.add_argument("--only", choices=("lenet", "conv", "retrain", "study", "projection"),
                        default=None)
    parser.add_argument("--conv-train", type=int, default=None,
                        help="train the conv net on the first N images (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = fashion_mnist()
    print(f"data: {data.source}; batch {BATCH}; SGD lr {LR} momentum {MOMENTUM}; 1 thread; "
          f"{EPOCHS} epochs a call; medians of {args.repeats} interleaved calls", flush=True)

    def report(title: str, medians: dict[str, float], base: str) -> None:
        for name, value in medians.items():
            print(f"{title:8s} {name:28s} {value:8.3f} s/epoch  {value / medians[base]:6.3f}x "
                  f"{base}", flush=True)

    if args.only == "study":
        study_cost(args.repeats)
        return
    if args.only == "projection":
        projection_cold(args.repeats)
        return
    if args.only in (None, "lenet"):
        from projlib.projections import warmup

        warmup()
        variants = {"plain loop": lambda: plain_call("lenet300", data),
                    "greenbench dense": lambda: train_call(config("lenet300"), data)[0]}
        for c in PROJECTED:
            variants[f"greenbench {c}"] = (
                lambda c=c: train_call(config("lenet300", "projected", c), data)[0])
        report("lenet", interleaved(variants, args.repeats), "greenbench dense")
    if args.only in (None, "conv"):
        data = fashion_mnist(args.conv_train)
        variants = {"plain loop default": lambda: plain_call("convnet", data),
                    "plain loop channels_last": lambda: plain_call(
                        "convnet", data, layout=torch.channels_last),
                    "greenbench dense": lambda: train_call(config("convnet"), data)[0]}
        if args.compile:
            # the first epoch compiles: timed are the EPOCHS after it
            def compiled() -> float:
                loop = PlainLoop("convnet", data, compiled=True)
                loop.epoch()
                return statistics.fmean(loop.epoch() for _ in range(EPOCHS))

            variants["plain loop torch.compile"] = compiled
        report(f"conv ({data.train_x.shape[0]} images)", interleaved(variants, args.repeats),
               "plain loop default")
        data = fashion_mnist()
    if args.only in (None, "retrain"):
        medians = interleaved({"masked full-size": lambda: retrain_epoch(data, False)[0],
                               "compacted": lambda: retrain_epoch(data, True)[0]},
                              args.repeats)
        report("retrain", medians, "masked full-size")
        print(f"retrain  predicted speed-up (MACCs) {retrain_epoch(data, True)[1]:.2f}")


if __name__ == "__main__":
    main()
