"""Sweeps: the sweep config, the SQLite results store and the executors.

    from projlib.sweep import SweepConfig, ResultsStore, prepare_sweep, run_local
    sweep = SweepConfig(constraints=("l1", "l11"), radii=(5.0, 20.0), epochs=5)
    with ResultsStore("greenbench.db") as store:
        sweep_id, configs, _ = prepare_sweep(store, sweep)
        run_local(store, sweep_id, configs)
"""

from projlib.sweep.config import (
    NON_IDENTITY_FIELDS,
    TRAIN_OPTION_NAMES,
    SweepConfig,
    canonical_config,
    point_id,
    resolve_device,
)
from projlib.sweep.executors import (
    SweepObserver,
    SweepOutcome,
    format_error,
    prepare_sweep,
    run_local,
    run_ray,
)
from projlib.sweep.provenance import software_provenance
from projlib.sweep.runner import PointSettings, result_metrics, run_point
from projlib.sweep.store import ResultsStore, StoreError, owner_token

__all__ = [
    "NON_IDENTITY_FIELDS",
    "PointSettings",
    "TRAIN_OPTION_NAMES",
    "ResultsStore",
    "StoreError",
    "SweepConfig",
    "SweepObserver",
    "SweepOutcome",
    "canonical_config",
    "format_error",
    "owner_token",
    "point_id",
    "prepare_sweep",
    "resolve_device",
    "result_metrics",
    "run_local",
    "run_point",
    "run_ray",
    "software_provenance",
]
