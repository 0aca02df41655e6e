"""The training procedures of docs/METHOD.md §3: dense, projected, lottery, magnitude.

`train(config, progress)` is pure: it reads the dataset, trains, and returns a `TrainResult`;
it writes no file and prints nothing (progress goes through the callback).

Reproducibility: the global RNG is forked (so the caller's RNG state is untouched) and seeded
with `config.seed` before the model is built and again at the start of every phase; shuffling
uses its own `torch.Generator` seeded with `config.seed` per phase. Hence on CPU the same
config gives bit-identical weights, and a phase is reproduced exactly by the procedure that
consists of it alone (lottery's phase 1 == the projected run, magnitude's phase 1 == the dense
run with the same config).

Speed on CPU (docs/BENCHMARKS.md, "Training speed"): subnormal floats are flushed to zero for
the duration of `train` (the momentum of weights a projection holds at 0 decays into the
subnormal range, where every operation on it is ~100x slower), the previous setting is restored
afterwards; conv nets train in the channels_last memory format (`CPU_CONV_LAYOUT`; the model
comes back contiguous); the masked retrain of lottery / magnitude trains the compacted network
(`projlib.training.compacted`) and writes it back into the full shape after every epoch.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from projlib.measure.maccs import torch_flop_maccs
from projlib.training.compacted import CompactedNet, compactable, compacted_net
from projlib.training.config import TrainConfig
from projlib.training.datasets import Dataset, DatasetError, validation_split
from projlib.training.models import build_model
from projlib.training.plugins import PluginError, source_hash
from projlib.training.projector import Projector
from projlib.training.sparsity import (
    LayerSparsity,
    apply_masks,
    layer_sparsity,
    magnitude_masks,
    select_layers,
)

Progress = Callable[[dict[str, Any]], None]
EVAL_BATCH = 1000
SGD_MOMENTUM = 0.9  # "sgd" means heavy-ball SGD; plain SGD at the paper's step needs many epochs
# Steps run before a CUDA-graph capture (PyTorch asks for a few, on a side stream, so lazily
# created state such as optimizer buffers and cuBLAS workspaces exists before capture).
GRAPH_WARMUP_STEPS = 3
# Memory format of conv nets trained on the CPU: with channels_last the paper's conv net's
# epoch took 0.55x the plain loop's in the default layout (docs/BENCHMARKS.md, "Training
# speed"); None keeps the default layout.
CPU_CONV_LAYOUT: torch.memory_format | None = torch.channels_last
# The realised speed-up of a compacted retrain: PROBE_ROUNDS interleaved rounds of PROBE_STEPS
# full-size masked and compacted steps (on copies, so training is unaffected), median per step.
PROBE_STEPS = 4
PROBE_ROUNDS = 3
# lottery / magnitude retrain the compacted network on the CPU (same steps to float rounding,
# faster); False trains the full-size masked network (the reference the tests compare it
# with). CUDA keeps the full-size masked retrain (not measured there).
COMPACT_RETRAIN = True


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced. `test_accuracy` in [0, 1]; per-epoch lists cover all
    phases in order, `epoch_phases` says which phase each entry belongs to."""

    config: TrainConfig
    test_accuracy: float
    train_loss_per_epoch: list[float]
    test_accuracy_per_epoch: list[float]
    model: nn.Module
    initial_state: dict[str, torch.Tensor]
    masks: dict[str, torch.Tensor] | None
    layers: list[LayerSparsity]
    wall_time_s: float
    device: str
    input_shape: tuple[int, int, int]
    num_classes: int
    epoch_phases: list[str] = field(default_factory=list)
    # Seconds of training steps in each epoch (evaluation excluded), same order as epoch_phases.
    epoch_time_s: list[float] = field(default_factory=list)
    constrained_layers: tuple[str, ...] = ()
    step_mode: str = "eager"  # "eager" | "cuda-graph" | "eager (CUDA graph capture failed: ...)"
    # lottery / magnitude: whether the masked retrain ran on the compacted network (None: no
    # retrain), the speed-up its MACCs predict (full-size / compacted training network) and
    # the one measured on a few interleaved steps (None: not compacted, not measured).
    retrain_compacted: bool | None = None
    retrain_speedup_predicted: float | None = None
    retrain_speedup_realised: float | None = None

    @property
    def retrain_time_s(self) -> float | None:
        """Seconds of training steps of the masked retrain (None: no retrain phase)."""
        times = [t for t, p in zip(self.epoch_time_s, self.epoch_phases, strict=False)
                 if p == "retrain"]
        return sum(times) if times else None
    # With `config.validation` > 0: accuracy on the held-out split after each epoch (then
    # `test_accuracy_per_epoch` is empty: the test set is read once, for `test_accuracy`) and
    # after the last one; None / [] without a split.
    val_accuracy: float | None = None
    val_accuracy_per_epoch: list[float] = field(default_factory=list)
    # The absolute radius each constrained layer was projected with (empty when no projection
    # ran): `config.radius` in "absolute" mode, radius x initial norm in "relative" mode.
    layer_radii: dict[str, float] = field(default_factory=dict)

    @property
    def fraction_nonzero(self) -> float | None:
        """Nonzero weights / weights over the constrained layers (None if there are none)."""
        chosen = [s for s in self.layers if s.constrained]
        if not chosen:
            return None
        return sum(s.nonzero for s in chosen) / sum(s.numel for s in chosen)

    @property
    def fraction_nonzero_all(self) -> float:
        """Nonzero weights / weights over every weight matrix / kernel (biases excluded)."""
        return sum(s.nonzero for s in self.layers) / sum(s.numel for s in self.layers)

    @property
    def removed_input_fraction(self) -> float | None:
        """Removed columns / columns of the first constrained layer (None if none)."""
        first = next((s for s in self.layers if s.constrained), None)
        return None if first is None else first.columns_removed / first.columns_total


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' but torch.cuda.is_available() is False")
    return torch.device(name)


class _Runner:
    """Holds the model, data and constrained layers shared by the phases of one run."""

    def __init__(self, cfg: TrainConfig, data: Dataset, progress: Progress | None) -> None:
        self.cfg = cfg
        self.device = _resolve_device(cfg.device)
        self.progress = progress
        torch.manual_seed(cfg.seed)
        # Built on the CPU under the seed so CPU and CUDA runs start from the same weights.
        self.model = build_model(cfg.model, data.input_shape, data.num_classes).to(self.device)
        state = self.model.state_dict()
        self.initial_state = {k: v.detach().cpu().clone() for k, v in state.items()}
        self.input_shape = data.input_shape
        train_x, train_y = data.train_x, data.train_y
        self.val_x: torch.Tensor | None = None
        self.val_y: torch.Tensor | None = None
        if cfg.validation > 0:  # a fixed held-out part of the training set (config docstring)
            keep, held = validation_split(train_x.shape[0], cfg.validation)
            self.val_x = train_x[held].to(self.device)
            self.val_y = train_y[held].to(self.device)
            train_x, train_y = train_x[keep], train_y[keep]
        self.train_x = train_x.to(self.device)
        self.train_y = train_y.to(self.device)
        self.test_x = data.test_x.to(self.device)
        self.test_y = data.test_y.to(self.device)
        self.layout = _fast_layout(self.device, self.model)
        if self.layout is not None:  # same logical shapes, other strides
            self.model.to(memory_format=self.layout)
            self.train_x = self.train_x.contiguous(memory_format=self.layout)
            self.test_x = self.test_x.contiguous(memory_format=self.layout)
            if self.val_x is not None:
                self.val_x = self.val_x.contiguous(memory_format=self.layout)
        self.params = dict(self.model.named_parameters())
        self.retrain_compacted: bool | None = None
        self.retrain_predicted: float | None = None
        self.retrain_realised: float | None = None
        self.losses: list[float] = []
        self.accuracies: list[float] = []
        self.phases: list[str] = []
        self.epoch_times: list[float] = []
        self._projector: Projector | None = None
        # How the training steps ran: "eager", "cuda-graph", or "eager (... failed: why)".
        self.step_mode = "eager"

    @property
    def projector(self) -> Projector:
        """The config's constraint on its layers (the public `Projector`, built once): attached
        to a phase's optimizer it projects after every step; `.project()` projects now. In
        "relative" radius mode each layer's radius is the fraction x its norm in the initial
        state (whatever phase first projects)."""
        if self._projector is None:
            cfg = self.cfg
            self._projector = Projector(
                self.model, cfg.constraint, cfg.radius, radius_mode=cfg.radius_mode,
                norms_of=self.initial_state, layers=cfg.layers, groups=cfg.groups,
                constrain_first=cfg.constrain_first, constrain_last=cfg.constrain_last,
            )
        return self._projector

    def rewind(self) -> None:
        self.model.load_state_dict(self.initial_state)

    def evaluate(self, split: str = "test") -> float:
        """Accuracy on the test set or (split="validation") on the held-out split."""
        x, y = (self.val_x, self.val_y) if split == "validation" else (self.test_x, self.test_y)
        self.model.eval()
        correct = torch.zeros((), dtype=torch.long, device=self.device)
        with torch.no_grad():
            for i in range(0, x.shape[0], EVAL_BATCH):
                logits = self.model(x[i : i + EVAL_BATCH])
                correct += (logits.argmax(dim=1) == y[i : i + EVAL_BATCH]).sum()
        return int(correct) / x.shape[0]

    def run_phase(
        self,
        phase: str,
        epochs: int,
        projected: bool = False,
        masks: dict[str, torch.Tensor] | None = None,
        compacted: bool = False,
    ) -> None:
        """`epochs` epochs of minibatch training; optional projection or fixed masks per step.

        `projected`: `self.projector` is attached to the phase's optimizer, so every
        `opt.step()` is followed by the projection (the splitting step of METHOD.md §3.2).
        `compacted` (with `masks`): train the compacted network where that gives the same steps
        (`projlib.training.compacted`), written back into `self.model` after every epoch.
        On CUDA (unless ``cuda_graph`` is off) the full-size steps replay one captured CUDA
        graph (see `_capture`); the short last batch of an epoch, and every step elsewhere,
        runs eagerly. Both run the same `_step`."""
        cfg = self.cfg
        torch.manual_seed(cfg.seed)  # dropout / any global-RNG use restarts identically
        shuffle = torch.Generator().manual_seed(cfg.seed)
        graphed = self._graphs_wanted()
        dev_masks = {n: m.to(self.device) for n, m in (masks or {}).items()}
        net = self._compact(dev_masks) if compacted and dev_masks else None
        model = self.model if net is None else net.model
        params = self.params if net is None else dict(model.named_parameters())
        if net is not None:
            dev_masks = net.masks
        opt = self._optimizer(model, graphed)
        if projected:
            self.projector.attach(opt)  # also inside a captured graph: it runs in opt.step()
        step = functools.partial(self._step, model, params, opt, dev_masks)
        n, batch = self.train_x.shape[0], cfg.batch_size
        loss_sum = torch.zeros((), device=self.device)
        model.train()
        graph = self._capture(model, step, opt, loss_sum) if graphed and n >= batch else None
        full = n - n % batch if graph is not None else 0
        for epoch in range(1, epochs + 1):
            model.train()
            loss_sum.zero_()
            epoch_start = time.perf_counter()
            order = torch.randperm(n, generator=shuffle).to(self.device)
            if graph is not None:
                cuda_graph, static_idx = graph
                for start in range(0, full, batch):
                    static_idx.copy_(order[start : start + batch])  # device to device
                    cuda_graph.replay()
            for start in range(full, n, batch):
                # With a graph the gradients stay the graph's own tensors (zeroed, not freed).
                opt.zero_grad(set_to_none=graph is None)
                step(order[start : start + batch], loss_sum)
            self.losses.append(float(loss_sum) / n)  # reads back: the epoch's steps are done
            if net is not None:
                net.write_back()  # evaluation and everything after see the full shape
            self.epoch_times.append(time.perf_counter() - epoch_start)
            # Per epoch: the held-out split when there is one (the test set is not looked at).
            split = "validation" if self.val_x is not None else "test"
            self.accuracies.append(self.evaluate(split))
            self.phases.append(phase)
            if self.progress is not None:
                self.progress({
                    "phase": phase, "epoch": epoch, "epochs": epochs,
                    "train_loss": self.losses[-1],
                    ("val_accuracy" if split == "validation" else "test_accuracy"):
                        self.accuracies[-1],
                })
        if projected:
            self.projector.remove()

    def _optimizer(self, model: nn.Module, graphed: bool) -> torch.optim.Optimizer:
        if self.cfg.optimizer == "adam":
            # capturable: Adam keeps its step count on the device, so a graph can replay it.
            capturable = graphed and self.device.type == "cuda"
            return torch.optim.Adam(model.parameters(), lr=self.cfg.lr, capturable=capturable)
        return torch.optim.SGD(model.parameters(), lr=self.cfg.lr, momentum=SGD_MOMENTUM)

    def _step(self, model: nn.Module, params: dict[str, nn.Parameter],
              opt: torch.optim.Optimizer, dev_masks: dict[str, torch.Tensor], idx: torch.Tensor,
              loss_sum: torch.Tensor) -> None:
        """One training step of `model` on the examples `idx` (gradients must be None or
        zero). Nothing in it reads a value back to the host, so it can be captured in a CUDA
        graph."""
        loss = F.cross_entropy(model(self.train_x[idx]), self.train_y[idx])
        loss.backward()
        for name, m in dev_masks.items():
            params[name].grad.mul_(m)  # masked weights get no gradient ...
        opt.step()  # in a projected phase the Projector hook projects here (splitting step)
        if dev_masks:
            # ... and stay exactly 0 whatever the optimizer's state does (the masks were
            # checked, and moved to the device, once at the start of the phase).
            with torch.no_grad():
                for name, m in dev_masks.items():
                    params[name].mul_(m)
        loss_sum.add_(loss.detach() * idx.numel())

    def _compact(self, dev_masks: dict[str, torch.Tensor]) -> CompactedNet | None:
        """The compacted network of the masked retrain, its predicted and measured speed-up
        (None where compacting could change the steps: Dropout, BatchNorm)."""
        self.retrain_compacted = self.device.type == "cpu" and compactable(self.model)
        if not self.retrain_compacted:
            return None
        net = compacted_net(self.model, dev_masks, self.input_shape)
        # dense MACCs of both (one 1-sample forward each; no rank or entropy analysis needed)
        full_maccs = torch_flop_maccs(self.model, self.input_shape)
        small_maccs = torch_flop_maccs(net.model, self.input_shape)
        self.retrain_predicted = full_maccs / small_maccs if small_maccs else None
        self.retrain_realised = self._probe(dev_masks, net)
        return net

    def _probe(self, dev_masks: dict[str, torch.Tensor], net: CompactedNet) -> float | None:
        """Median full-size masked step time / compacted step time, PROBE_ROUNDS interleaved
        rounds of PROBE_STEPS steps on copies of both networks (the run is unaffected)."""
        n = min(self.train_x.shape[0], self.cfg.batch_size)
        idx = torch.arange(n, device=self.device)
        steps = []
        for model, masks in ((self.model, dev_masks), (net.model, net.masks)):
            twin = copy.deepcopy(model)
            opt = self._optimizer(twin, graphed=False)
            steps.append(functools.partial(
                self._step, twin, dict(twin.named_parameters()), opt, masks, idx,
                torch.zeros((), device=self.device)))
        times: tuple[list[float], list[float]] = ([], [])
        for _ in range(PROBE_ROUNDS):
            for step, out in zip(steps, times, strict=True):
                start = time.perf_counter()
                for _ in range(PROBE_STEPS):
                    step()
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                out.append(time.perf_counter() - start)
        compact_s = statistics.median(times[1])
        return statistics.median(times[0]) / compact_s if compact_s > 0 else None

    def _graphs_wanted(self) -> bool:
        return self.device.type == "cuda" and self.cfg.cuda_graph

    def _capture(self, model: nn.Module, step: Callable[[torch.Tensor, torch.Tensor], None],
                 opt: torch.optim.Optimizer,
                 loss_sum: torch.Tensor) -> tuple[Any, torch.Tensor] | None:
        """Capture one full-batch `step` in a CUDA graph: (graph, its static index buffer), or
        None (eager steps) if it cannot be captured.

        Capturing needs warm-up steps that really train; the weights, buffers and optimizer
        state are put back afterwards, so the phase starts from the same state as an eager one
        (a zeroed SGD momentum buffer or Adam moment is the same as a fresh one). An operator
        that must read a value back (nuclear's SVD) cannot be captured: the phase then runs
        eagerly and `step_mode` says why."""
        state = list(model.state_dict().values())
        saved = [t.detach().clone() for t in state]
        idx = torch.arange(self.cfg.batch_size, device=self.device)
        graph: Any = None
        try:
            graph = self._record(functools.partial(step, idx, loss_sum), opt)
        except RuntimeError as exc:
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            text = " ".join(str(exc).split()) or type(exc).__name__
            self.step_mode = f"eager (CUDA graph capture failed: {text[:200]})"
        with torch.no_grad():
            for t, v in zip(state, saved, strict=True):
                t.copy_(v)
            for per_param in opt.state.values():
                for v in per_param.values():
                    if torch.is_tensor(v):
                        v.zero_()
        loss_sum.zero_()
        if graph is None:
            opt.state.clear()
            opt.zero_grad(set_to_none=True)
            return None
        opt.zero_grad(set_to_none=False)  # the graph's own gradient tensors, kept
        self.step_mode = "cuda-graph"
        return graph, idx

    def _record(self, run: Callable[[], None], opt: torch.optim.Optimizer) -> Any:
        """`run` captured in a `torch.cuda.CUDAGraph` after GRAPH_WARMUP_STEPS eager runs on a
        side stream (the PyTorch recipe for capturing a whole training step). Replaying it
        overwrites the gradients (they are None when capture starts, so backward writes them
        from the graph's memory pool rather than accumulating)."""
        device = self.device
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(GRAPH_WARMUP_STEPS):
                opt.zero_grad(set_to_none=True)
                run()
        torch.cuda.current_stream(device).wait_stream(side)
        opt.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            run()
        return graph


def _dense(r: _Runner, constrained: list[str]) -> dict[str, torch.Tensor] | None:
    r.run_phase("train", r.cfg.epochs)
    return None


def _projected(r: _Runner, constrained: list[str]) -> dict[str, torch.Tensor] | None:
    r.run_phase("train", r.cfg.epochs, projected=True)
    return None


def _lottery(r: _Runner, constrained: list[str]) -> dict[str, torch.Tensor] | None:
    r.run_phase("phase1", r.cfg.epochs, projected=True)
    # a no-op after projected training (which ends feasible); kept per docs/METHOD.md §3.3
    r.projector.project()
    masks = r.projector.masks()
    r.rewind()
    apply_masks(r.model, masks)
    r.run_phase("retrain", r.cfg.resolved_retrain_epochs, masks=masks,
                compacted=COMPACT_RETRAIN)
    return masks


def _magnitude(r: _Runner, constrained: list[str]) -> dict[str, torch.Tensor] | None:
    cfg = r.cfg
    if cfg.layer_sparsity is not None:
        target = dict(cfg.layer_sparsity)
        magnitude_masks(r.model, target)  # validates the names before spending any epoch
    else:
        r.run_phase("match", cfg.epochs, projected=True)
        target = {s.name: s.fraction_zero for s in layer_sparsity(r.model, constrained)
                  if s.constrained}
        r.rewind()
    r.run_phase("phase1", cfg.epochs)
    masks = magnitude_masks(r.model, target)
    r.rewind()
    apply_masks(r.model, masks)
    r.run_phase("retrain", cfg.resolved_retrain_epochs, masks=masks,
                compacted=COMPACT_RETRAIN)
    return masks


def _fast_layout(device: torch.device, model: nn.Module) -> torch.memory_format | None:
    """`CPU_CONV_LAYOUT` for a conv net on the CPU, None (default layout) otherwise."""
    has_conv = any(isinstance(m, nn.Conv2d) for m in model.modules())
    return CPU_CONV_LAYOUT if device.type == "cpu" and has_conv else None


def flush_denormal_enabled() -> bool:
    """Does this thread flush subnormal floats to zero (`torch.set_flush_denormal`)?"""
    tiny = torch.full((1,), 1e-40)  # a float32 subnormal, or 0 when flushing
    return bool((tiny * torch.ones(1)).item() == 0.0)


@contextlib.contextmanager
def flush_denormal() -> Iterator[None]:
    """Flush subnormals to zero inside the block (where the CPU supports it), then restore
    the previous setting, also when the block raises."""
    previous = flush_denormal_enabled()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(previous)


PROCEDURES: dict[str, Callable[[_Runner, list[str]], dict[str, torch.Tensor] | None]] = {
    "dense": _dense,
    "projected": _projected,
    "lottery": _lottery,
    "magnitude": _magnitude,
}


def train(
    config: TrainConfig, progress: Progress | None = None, dataset: Dataset | None = None
) -> TrainResult:
    """Run `config` and return its `TrainResult` (model in eval mode, on `config.device`).

    `dataset`: an already loaded `Dataset` of `config.dataset` (saves re-reading the files
    across the runs of a sweep); loaded from `config.data_dir` when None.
    Cost: epochs x (forward + backward + per-step projection of each constrained layer).
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if progress is not None and not callable(progress):
        raise TypeError("progress must be callable or None")
    if dataset is None:
        dataset = config.data_source.load(config.dataset)
    elif not isinstance(dataset, Dataset) or dataset.name != config.dataset:
        raise ValueError(f"dataset must be the loaded {config.dataset!r} Dataset")
    if config.data_fingerprint is not None and dataset.fingerprint != config.data_fingerprint:
        raise DatasetError(
            f"{config.dataset}: the data at {dataset.source} (fingerprint "
            f"{dataset.fingerprint[:12]}) is not the data this run was registered with "
            f"({config.data_fingerprint[:12]})"
        )
    current = None if config.model_source is None else source_hash(config.model)
    if current != config.model_source:
        raise PluginError(
            f"model {config.model!r}: its module file changed since this run was registered "
            f"(sha256 {current[:12]}, registered {config.model_source[:12]})"
        )
    device = _resolve_device(config.device)
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices), flush_denormal():
        start = time.perf_counter()
        runner = _Runner(config, dataset, progress)
        if config.procedure == "magnitude" and config.layer_sparsity is not None:
            constrained = [n for n, _ in config.layer_sparsity]
        else:
            constrained = select_layers(
                runner.model, config.layers, config.constrain_first, config.constrain_last
            )
        masks = PROCEDURES[config.procedure](runner, constrained)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        wall_time_s = time.perf_counter() - start
    runner.model.eval()
    if runner.layout is not None:
        runner.model.to(memory_format=torch.contiguous_format)  # the logical layout, stored

    split = runner.val_x is not None
    return TrainResult(
        config=config,
        # with a split, the test set is read once, here
        test_accuracy=runner.evaluate() if split else runner.accuracies[-1],
        train_loss_per_epoch=runner.losses,
        test_accuracy_per_epoch=[] if split else runner.accuracies,
        val_accuracy=runner.accuracies[-1] if split else None,
        val_accuracy_per_epoch=runner.accuracies if split else [],
        layer_radii={} if runner._projector is None else dict(runner._projector.radii),
        model=runner.model,
        initial_state=runner.initial_state,
        masks=None if masks is None else {k: v.cpu().contiguous() for k, v in masks.items()},
        layers=layer_sparsity(runner.model, constrained),
        wall_time_s=wall_time_s,
        device=str(device),
        input_shape=dataset.input_shape,
        num_classes=dataset.num_classes,
        epoch_phases=runner.phases,
        epoch_time_s=runner.epoch_times,
        constrained_layers=tuple(constrained),
        step_mode=runner.step_mode,
        retrain_compacted=runner.retrain_compacted,
        retrain_speedup_predicted=runner.retrain_predicted,
        retrain_speedup_realised=runner.retrain_realised,
    )
