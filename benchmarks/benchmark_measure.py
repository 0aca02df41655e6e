"""asv measure suite: what honest accounting costs, and what compaction buys.

``MeasureSuite`` (parameter ``model``: the paper's LeNet-300-100 and MNIST conv net, half of the
groups zeroed): ``time_energy_window`` (an empty window of an ``EnergyMeter`` with every backend
this machine has; the CodeCarbon tracker is built in setup), ``time_cost_report``,
``time_compact``; ``track_meter_cpu_share``: CPU seconds used by the meter's background threads
(NVML sampler, CodeCarbon monitor) per wall second, a load-independent bound on its overhead.

``CompactionSuite`` (parameter ``removed``: fraction of LeNet-300-100's neurons cut out, applied
alike to the 784 input pixels and to both hidden layers, the way a column-wise l1,1 projection
removes them; batch 256, one thread): ``time_dense_inference`` / ``time_compact_inference``;
``track_compacted_latency_fraction`` = compacted / dense latency measured in the same process,
alternating, median of REPEATS (realised speedup = 1 / value); ``track_structured_maccs_fraction``
= maccs_structured / maccs_dense (theoretical speedup = 1 / value). Both are "lower is better"
because asv flags every increase as a regression.

``track_meter_overhead`` (in CompactionSuite, removed=0.5 only): wall time of a training-epoch-
like workload (STEPS Adam steps of LeNet-300-100 on batch 128) inside an energy window over the
same workload without one, in ABBA order, median of 2 x REPEATS. Target: <= 1.01.
``track_meter_overhead_cpu``: the same with process CPU time (includes the meter's threads,
excludes other processes): on a loaded shared machine wall-time A/A noise exceeds 1%.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

try:  # asv >= 0.6: skip a parameter combination without running setup
    from asv_runner.benchmarks.mark import skip_for_params
except ImportError:  # direct import outside asv: no skipping needed

    def skip_for_params(skip_params_list):  # type: ignore[no-redef]
        return lambda fn: fn


REPEATS = 5
STEPS = 150
BATCH = 256
MNIST = (1, 28, 28)


def _lenet() -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100),
                         nn.ReLU(), nn.Linear(100, 10))


def _convnet() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 10, 5), nn.MaxPool2d(2), nn.ReLU(), nn.Conv2d(10, 20, 5),
                         nn.MaxPool2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(320, 50), nn.ReLU(),
                         nn.Linear(50, 10))


def _remove(model: nn.Sequential, fraction: float, seed: int = 0) -> nn.Sequential:
    """Zero the input columns of a random ``fraction`` of each weight layer's inputs (the last
    layer's outputs are never removed), as a column-wise projection would."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model:
            if isinstance(m, (nn.Linear, nn.Conv2d)) and m.weight.shape[1] > 1:
                n_in = m.weight.shape[1]
                cols = torch.randperm(n_in, generator=gen)[: round(fraction * n_in)]
                m.weight[:, cols] = 0
    return model.eval()


def _meter():
    from projlib.measure import EnergyMeter

    meter = EnergyMeter(country_iso_code="FRA")
    with meter.window():  # probes the backends and builds the CodeCarbon tracker once
        pass
    return meter


class MeasureSuite:
    params = [["lenet300", "convnet"]]
    param_names = ["model"]
    timeout = 300

    def setup(self, model: str) -> None:
        torch.manual_seed(0)
        self.model = _remove(_lenet() if model == "lenet300" else _convnet(), 0.5)
        self.meter = _meter()

    def teardown(self, model: str) -> None:
        self.meter.close()

    def time_energy_window(self, model: str) -> None:
        with self.meter.window():
            pass

    @skip_for_params([("convnet",)])  # independent of the model
    def track_meter_cpu_share(self, model: str) -> float:
        """CPU seconds the meter's own threads use per wall second of an idle 3 s window."""
        c0, w0 = time.process_time(), time.perf_counter()
        with self.meter.window():
            time.sleep(3.0)
        return (time.process_time() - c0) / (time.perf_counter() - w0)

    track_meter_cpu_share.unit = "ratio"

    def time_cost_report(self, model: str) -> None:
        from projlib.measure import cost_report

        cost_report(self.model, MNIST)

    def time_compact(self, model: str) -> None:
        from projlib.measure import compact

        compact(self.model, MNIST)


def _median_s(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


class CompactionSuite:
    params = [[0.5, 0.9]]
    param_names = ["removed"]
    timeout = 600

    def setup(self, removed: float) -> None:
        from projlib.measure import compact, cost_report

        # One thread: the measurement should not depend on what else shares the cores.
        self._threads = torch.get_num_threads()
        torch.set_num_threads(1)
        torch.manual_seed(0)
        self.dense = _remove(_lenet(), removed)
        self.small = compact(self.dense, MNIST)
        report = cost_report(self.dense, MNIST)
        self.maccs_fraction = report.maccs_structured / report.maccs_dense
        self.x = torch.rand(BATCH, *MNIST, generator=torch.Generator().manual_seed(1))

    def teardown(self, removed: float) -> None:
        torch.set_num_threads(self._threads)

    def _infer(self, model: nn.Module) -> None:
        with torch.no_grad():
            for _ in range(20):
                model(self.x)

    def time_dense_inference(self, removed: float) -> None:
        self._infer(self.dense)

    def time_compact_inference(self, removed: float) -> None:
        self._infer(self.small)

    # asv flags every increase as a regression, so both figures are "lower is better": the
    # fraction of the dense latency / MACCs left after compaction (speedup = 1 / value).
    def track_compacted_latency_fraction(self, removed: float) -> float:
        dense, small = [], []
        for _ in range(REPEATS):  # alternate so drifts in machine load hit both equally
            dense.append(_median_s(lambda: self._infer(self.dense), 3))
            small.append(_median_s(lambda: self._infer(self.small), 3))
        return statistics.median(small) / statistics.median(dense)

    track_compacted_latency_fraction.unit = "ratio"

    def track_structured_maccs_fraction(self, removed: float) -> float:
        return self.maccs_fraction

    track_structured_maccs_fraction.unit = "ratio"

    def _overhead(self, removed: float, clock) -> float:
        model = _lenet()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        gen = torch.Generator().manual_seed(2)
        xs = torch.rand(8, 128, *MNIST, generator=gen)
        ys = torch.randint(0, 10, (8, 128), generator=gen)

        def epoch() -> None:
            for step in range(STEPS):
                opt.zero_grad()
                loss = nn.functional.cross_entropy(model(xs[step % 8]), ys[step % 8])
                loss.backward()
                opt.step()

        def timed(fn) -> float:
            t0 = clock()
            fn()
            return clock() - t0

        meter = _meter()

        def metered() -> None:
            with meter.window():
                epoch()

        plain, with_meter = [], []
        try:
            for _ in range(REPEATS):  # ABBA order: a linear drift in machine speed cancels
                plain.append(timed(epoch))
                with_meter.append(timed(metered))
                with_meter.append(timed(metered))
                plain.append(timed(epoch))
        finally:
            meter.close()
        return statistics.median(with_meter) / statistics.median(plain)

    @skip_for_params([(0.9,)])  # measured once: it does not depend on the removal fraction
    def track_meter_overhead(self, removed: float) -> float:
        return self._overhead(removed, time.perf_counter)

    track_meter_overhead.unit = "ratio"

    @skip_for_params([(0.9,)])
    def track_meter_overhead_cpu(self, removed: float) -> float:
        # process CPU time includes the meter's own threads (NVML sampler, CodeCarbon monitor)
        # but not other processes: the less noisy estimate on a shared machine
        return self._overhead(removed, time.process_time)

    track_meter_overhead_cpu.unit = "ratio"
