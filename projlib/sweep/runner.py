"""One sweep point: prepare it, train it inside an energy window, then measure what it saves.

`run_point` returns the metric columns of a results row (`projlib.schema.metric_columns()`).
It writes nothing and prints nothing; the executor stores what it returns. Exceptions
propagate: the executor records them as a failed point.

Order of work for one point (only step 4 is inside the training window):
1. the dataset (cached across points);
2. the thread policy (`warmup.choose_threads`) and the warm-up (`warmup.warm_up`): one-off
   costs, timed into `warmup_time_s` / `warmup_energy_j`, never into the point's figures;
3. the idle baseline of every measuring device (re-measured when older than
   `PointSettings.idle_max_age_s`), so the window can report energy above idle;
4. training and the final evaluation, in the window: `wall_time_s`, the per-epoch times
   (median, IQR and count of the first phase, every phase in `epoch_time_json`, the noise
   flag), `energy_j`, `energy_above_idle_j`, carbon. Where a backend measures and one
   training run is shorter than it can read (`EnergyMeter.readable_window_s`), the training is
   repeated in the same window and the energy stored per run (`energy_runs`);
5. costs (MACCs, bytes) and, when `PointSettings.inference`, measured inference of the trained
   model and of its `compact()` version: latency at batch 1, throughput, energy per 1,000.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections.abc import Callable
from typing import Any

from projlib import schema
from projlib.checks import check_bool, check_number
from projlib.measure import EnergyMeter, compact, cost_report, inference_comparison
from projlib.measure.spread import phase_spreads
from projlib.sweep.provenance import software_provenance
from projlib.sweep.warmup import AUTO, choose_threads, parse_threads, thread_limit, warm_up
from projlib.training import Dataset, DataSource, TrainConfig, TrainResult, train

__all__ = [
    "PointRunner", "PointSettings", "ProgressFn", "cached_dataset", "result_metrics",
    "run_point", "timing_metrics",
]

ProgressFn = Callable[[dict[str, Any]], None]
# Signature every executor calls; tests substitute their own to make a point fail or stall.
PointRunner = Callable[..., dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class PointSettings:
    """How points are measured (not what they compute: nothing here is in a point's identity).

    threads: torch intra-op threads, an int or "auto" (measured per model, see `warmup`).
    inference: measure the trained model's inference (dense and compacted) after training.
    idle_max_age_s / idle_duration_s: the idle baseline is re-measured when older than this,
    over a quiet window this long (only where a backend measures energy).
    """

    threads: int | str = AUTO
    inference: bool = True
    idle_max_age_s: float = 600.0
    idle_duration_s: float = 2.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "threads", parse_threads(self.threads))
        check_bool("inference", self.inference)
        for name in ("idle_max_age_s", "idle_duration_s"):
            check_number(name, getattr(self, name), 0, low_open=True, finite=False)


def run_point(
    config: TrainConfig,
    country_iso_code: str | None = None,
    progress: ProgressFn | None = None,
    meter: Any | None = None,
    settings: PointSettings | None = None,
) -> dict[str, Any]:
    """Prepare, train inside an `EnergyMeter` window, and measure `config`; returns the row's
    metric columns. `meter` may be passed to reuse one meter (its probed backends and idle
    baseline) across the points of a sweep."""
    settings = settings or PointSettings()
    if meter is None:
        meter = EnergyMeter(country_iso_code) if country_iso_code else EnergyMeter()
    dataset = cached_dataset(config.dataset, config.data_source)
    choice = choose_threads(config, dataset, settings.threads)
    with thread_limit(choice.threads):
        warmup_time_s, warmup_energy_j = _warm_up(config, dataset, meter)
        # Cheap where nothing measures (no sleep; the baseline then says why it is None).
        meter.ensure_idle_baseline(settings.idle_max_age_s, settings.idle_duration_s)
        runs = 0

        def once() -> tuple[TrainResult, float]:
            # Only the first run reports progress; a repeat exists to make the window readable.
            nonlocal runs
            runs += 1
            start = time.perf_counter()
            res = train(config, progress=progress if runs == 1 else None, dataset=dataset)
            return res, time.perf_counter() - start

        (result, wall_time_s), energy = meter.measure_runs(once)
        metrics = result_metrics(result)
        metrics.update(timing_metrics(result))
        if settings.inference:
            metrics.update(inference_metrics(result, meter, metrics))
    baseline = meter.idle_baseline
    metrics.update(
        energy_runs=energy.runs if meter.can_measure() else None,
        energy_j=energy.energy_j,
        energy_method=energy.methods,
        energy_json=json.dumps(energy.to_dict(), sort_keys=True),
        energy_above_idle_j=energy.energy_above_idle_j,
        idle_power_w=energy.idle_power_w,
        idle_json=json.dumps(
            {"baseline": baseline.to_dict() if baseline is not None else None,
             "note": energy.idle_note}, sort_keys=True),
        carbon_g=energy.carbon_g,
        carbon_method=energy.carbon_method,
        country_iso_code=energy.country_iso_code or country_iso_code,
        wall_time_s=wall_time_s,
        warmup_time_s=warmup_time_s,
        warmup_energy_j=warmup_energy_j,
        threads=choice.threads,
        data_variant=dataset.variant,
    )
    metrics["threads_json"] = json.dumps(choice.to_dict(), sort_keys=True)
    metrics.update(software_provenance(result.device))
    return metrics


def _warm_up(config: TrainConfig, dataset: Dataset, meter: Any) -> tuple[float, float | None]:
    # A window of its own only where a backend measures: CodeCarbon's estimate of a warm-up
    # would be a model, not a measurement, and costs a tracker task per point.
    if not meter.can_measure():
        return warm_up(config, dataset), None
    # A one-off cost cannot be repeated to widen its window (a second warm-up is warm), but a
    # reading shorter than a counter's update period is still not stored: None, not noise.
    seconds, energy = meter.measure_runs(lambda: warm_up(config, dataset), max_runs=1)
    return seconds, energy.energy_j


def inference_metrics(result: TrainResult, meter: Any, costs: dict[str, Any]
                      ) -> dict[str, Any]:
    """Measured inference of the trained model and of its compacted version, next to the
    speed-up the MACC count predicts."""
    small = compact(result.model, result.input_shape)
    cmp = inference_comparison(result.model, small, result.input_shape, result.device,
                               meter=meter)
    dense, comp = cmp["dense"], cmp["compact"]
    predicted = None
    if costs.get("maccs_structured"):
        predicted = costs["maccs_dense"] / costs["maccs_structured"]
    return {
        "infer_latency_b1_s": dense["latency_b1_s"],
        "infer_throughput_per_s": dense["throughput_per_s"],
        "infer_energy_per_1000_j": dense["energy_per_1000_j"],
        "infer_energy_above_idle_per_1000_j": dense["energy_above_idle_per_1000_j"],
        "compact_latency_b1_s": comp["latency_b1_s"],
        "compact_throughput_per_s": comp["throughput_per_s"],
        "compact_energy_per_1000_j": comp["energy_per_1000_j"],
        "compact_energy_above_idle_per_1000_j": comp["energy_above_idle_per_1000_j"],
        "speedup_predicted_maccs": predicted,
        "speedup_realised_latency": cmp["realised_speedup_latency"],
        "speedup_realised_throughput": cmp["realised_speedup_throughput"],
        "inference_method": dense["energy_method"],
        **_timing_spread("infer", dense),
        **_timing_spread("compact", comp),
        "inference_json": json.dumps(cmp, sort_keys=True),
    }


def _timing_spread(prefix: str, measured: dict[str, Any]) -> dict[str, Any]:
    return {
        f"{prefix}_latency_b1_iqr_s": measured.get("latency_iqr_s"),
        f"{prefix}_latency_b1_repeats": measured.get("latency_repeats"),
        f"{prefix}_throughput_iqr_per_s": measured.get("throughput_iqr_per_s"),
        f"{prefix}_throughput_repeats": measured.get("throughput_repeats"),
    }


def timing_metrics(result: TrainResult) -> dict[str, Any]:
    """Median, IQR and count of the epoch times of the run's first phase, the noise flag over
    every phase, and per-phase spreads with every epoch's seconds as JSON (None where the run
    recorded no epoch time)."""
    times, phases = list(result.epoch_time_s), list(result.epoch_phases)
    if not times:
        return dict.fromkeys(("epoch_time_median_s", "epoch_time_iqr_s", "epochs_timed",
                              "epoch_time_noisy", "epoch_time_json"))
    spreads = phase_spreads(times, phases)
    main = next(iter(spreads))
    flags = [sp.noisy for sp in spreads.values() if sp.noisy is not None]
    detail = {
        "main_phase": main, "noise_fraction": schema.NOISE_FRACTION,
        "phases": {name: sp.to_dict() for name, sp in spreads.items()},
        "epoch_time_s": times, "epoch_phases": phases,
    }
    return {
        "epoch_time_median_s": spreads[main].median,
        "epoch_time_iqr_s": spreads[main].iqr,
        "epochs_timed": spreads[main].n,
        "epoch_time_noisy": int(any(flags)) if flags else None,
        "epoch_time_json": json.dumps(detail, sort_keys=True),
    }


@functools.lru_cache(maxsize=1)
def cached_dataset(name: str, source: DataSource = DataSource()) -> Dataset:
    """`source.load(name)`, remembering the last one: a sweep's points share their dataset
    (reading it took ~1 s a point, longer than training a digits point), and one entry bounds
    memory."""
    return source.load(name)


def result_metrics(result: TrainResult) -> dict[str, Any]:
    """Accuracy, sparsity and cost columns of a finished training run (no energy)."""
    cost = cost_report(result.model, result.input_shape)
    layers = []
    for layer in result.layers:
        d = dataclasses.asdict(layer)
        d["shape"] = list(d["shape"])
        layers.append(d)
    return {
        "test_accuracy": float(result.test_accuracy),
        "fraction_nonzero": result.fraction_nonzero,
        "removed_input_fraction": result.removed_input_fraction,
        "layers_json": json.dumps(layers),
        "train_step": result.step_mode,
        "retrain_time_s": result.retrain_time_s,
        "retrain_speedup_predicted": result.retrain_speedup_predicted,
        "retrain_speedup_realised": result.retrain_speedup_realised,
        "val_accuracy": result.val_accuracy,
        "layer_radii_json": json.dumps(result.layer_radii) if result.layer_radii else None,
        # The cost columns are the `CostReport` totals of the same names.
        **{name: getattr(cost, name) for name in schema.cost_columns()},
    }
