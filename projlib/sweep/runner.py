"""One sweep point: train it inside an energy-measurement window, then measure its costs.

`run_point` returns the metric columns of a results row (see `store.METRIC_COLUMNS`). It writes
nothing and prints nothing; the executor stores what it returns. Exceptions propagate: the
executor records them as a failed point.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections.abc import Callable
from typing import Any

from projlib.sweep.provenance import software_provenance
from projlib.training import Dataset, TrainConfig, TrainResult, load_dataset, train

__all__ = ["run_point", "result_metrics", "cached_dataset", "PointRunner", "ProgressFn"]

ProgressFn = Callable[[dict[str, Any]], None]
# Signature every executor calls; tests substitute their own to make a point fail or stall.
PointRunner = Callable[..., dict[str, Any]]


def run_point(
    config: TrainConfig,
    country_iso_code: str | None = None,
    progress: ProgressFn | None = None,
    meter: Any | None = None,
) -> dict[str, Any]:
    """Train `config` inside an `EnergyMeter` window and return the row's metric columns.

    The window covers training and the final evaluation only: the dataset is loaded (or taken
    from `cached_dataset`) before it, and the cost analysis runs after it. `meter` may be
    passed to reuse one meter (and its lazily probed backends) across the points of a sweep.
    """
    from projlib.measure import EnergyMeter

    if meter is None:
        meter = EnergyMeter(country_iso_code) if country_iso_code else EnergyMeter()
    dataset = cached_dataset(config.dataset, config.data_dir, config.download,
                             config.verify_data)
    with meter.window() as win:
        # Timed inside the window: the meter's one-off backend probing is not the point's time.
        start = time.perf_counter()
        result = train(config, progress=progress, dataset=dataset)
        wall_time_s = time.perf_counter() - start
    metrics = result_metrics(result)
    energy = win.result
    metrics.update(
        energy_j=energy.energy_j,
        energy_method=energy.methods,
        energy_json=json.dumps(energy.to_dict(), sort_keys=True),
        carbon_g=energy.carbon_g,
        carbon_method=energy.carbon_method,
        country_iso_code=energy.country_iso_code or country_iso_code,
        wall_time_s=wall_time_s,
    )
    metrics.update(software_provenance(result.device))
    metrics["data_variant"] = dataset.variant
    return metrics


@functools.lru_cache(maxsize=1)
def cached_dataset(
    name: str, data_dir: str | None = None, download: bool = False, verify: bool = True
) -> Dataset:
    """`load_dataset`, remembering the last one: a sweep's points share their dataset (reading
    it took ~1 s a point, longer than training a digits point), and one entry bounds memory."""
    return load_dataset(name, data_dir=data_dir, download=download, verify=verify)


def result_metrics(result: TrainResult) -> dict[str, Any]:
    """Accuracy, sparsity and cost columns of a finished training run (no energy)."""
    from projlib.measure import cost_report

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
        "maccs_dense": cost.maccs_dense,
        "maccs_structured": cost.maccs_structured,
        "maccs_nonzero": cost.maccs_nonzero,
        "maccs_lowrank": cost.maccs_lowrank,
        "params_dense": cost.params_dense,
        "params_structured": cost.params_structured,
        "params_nonzero": cost.params_nonzero,
        "bytes_dense": cost.bytes_dense,
        "bytes_structured": cost.bytes_structured,
        "bytes_csr": cost.bytes_csr,
        "bytes_entropy": cost.bytes_entropy,
    }
