"""Rows in the results schema (`projlib.schema`), built by hand for the report tests.

The numbers are synthetic but shaped like a digits/mlp sweep (64 -> 128 -> 64 -> 10), so the
report code sees exactly the columns, types and None conventions the results store produces.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest

from projlib import schema

# Every column of the results row, as the store's `rows()` returns them.
SCHEMA_COLUMNS = schema.column_names()

_LAYERS = (("0.weight", 128, 64), ("2.weight", 64, 128), ("4.weight", 10, 64))


def make_row(
    *, dataset: str = "digits", model: str = "mlp", procedure: str = "projected",
    constraint: str | None = "l11", radius: float | None = 5.0, seed: int = 0,
    accuracy: float = 0.9, removed_cols: tuple[int, int, int] = (20, 30, 0),
    energy_j: float | None = None, status: str = "done", error: str | None = None,
    measured_energy: bool = False,
) -> dict[str, Any]:
    """One schema-complete row; costs follow from ``removed_cols`` like the real analyser's."""
    config = {"dataset": dataset, "model": model, "procedure": procedure,
              "constraint": constraint, "radius": radius, "seed": seed, "epochs": 5}
    layers = []
    kept_in = []
    for (name, out_f, in_f), removed in zip(_LAYERS, removed_cols, strict=True):
        kept_in.append(in_f - removed)
        layers.append({"name": name, "shape": [out_f, in_f], "numel": out_f * in_f,
                       "nonzero": out_f * (in_f - removed), "fraction_zero": removed / in_f,
                       "columns_total": in_f, "columns_removed": removed,
                       "rows_total": out_f, "rows_removed": 0,
                       "constrained": name == "2.weight"})
    dense = sum(o * i for _, o, i in _LAYERS)
    structured = sum(o * k for (_, o, _i), k in zip(_LAYERS, kept_in, strict=True))
    # Device dicts as projlib.measure's DeviceEnergy.to_dict(); CodeCarbon's model-based
    # "estimate" device is present either way and must never count as measured energy.
    estimate = {"name": "machine", "kind": "machine", "energy_j": 25.0, "method": "estimate",
                "samples": 1, "window_s": 3.5, "short_window": False,
                "note": "CodeCarbon offline, TDP model", "idle_power_w": None,
                "energy_above_idle_j": None}
    if measured_energy:
        devices = [{"name": "package-0", "kind": "cpu", "energy_j": energy_j, "method": "rapl",
                    "samples": 2, "window_s": 3.5, "short_window": False, "note": "",
                    "idle_power_w": None, "energy_above_idle_j": None}, estimate]
        energy_method = "package-0:rapl, machine:estimate"
        carbon = None if energy_j is None else energy_j / 3.6e6 * 56.0
        carbon_method = "codecarbon-offline"
    else:
        devices = [{"name": "package-0", "kind": "cpu", "energy_j": None,
                    "method": "unavailable", "samples": 0, "window_s": 3.5,
                    "short_window": False,
                    "note": "RAPL not readable: /sys/class/powercap permission denied",
                    "idle_power_w": None, "energy_above_idle_j": None}, estimate]
        energy_method, carbon, carbon_method = "machine:estimate", None, "unavailable"
    energy_detail = {"duration_s": 3.5, "devices": devices, "energy_j": energy_j,
                     "carbon_g": carbon, "carbon_intensity_g_per_kwh": 56.0,
                     "country_iso_code": "FRA"}
    done = status == "done"
    row = {
        "point_id": hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest(),
        "status": status, "error": error, "dataset": dataset, "model": model,
        "procedure": procedure, "constraint": constraint, "radius": radius,
        "groups": None if constraint is None else "columns", "seed": seed, "epochs": 5,
        "config_json": json.dumps(config), "test_accuracy": accuracy if done else None,
        "fraction_nonzero": structured / dense, "removed_input_fraction": removed_cols[0] / 64,
        "layers_json": json.dumps(layers), "maccs_dense": dense, "maccs_structured": structured,
        "maccs_nonzero": structured, "maccs_lowrank": None, "params_dense": dense + 202,
        "params_structured": structured + 202, "params_nonzero": structured + 202,
        "bytes_dense": 4 * (dense + 202), "bytes_structured": 4 * (structured + 202),
        "bytes_csr": 8 * structured, "bytes_entropy": 3 * structured,
        "energy_j": energy_j, "energy_method": energy_method,
        "energy_json": json.dumps(energy_detail), "carbon_g": carbon,
        "carbon_method": carbon_method, "country_iso_code": "FRA", "wall_time_s": 3.5 + seed,
        "started_at": "2026-11-26T08:00:00Z", "finished_at": "2026-11-26T08:00:04Z",
        "package_version": "0.1.0", "git_sha": "f1b6eed", "torch_version": "2.14.1",
        "cuda_version": None, "device_name": "cpu",
    }
    unknown = set(row) - set(SCHEMA_COLUMNS)
    assert not unknown, f"not result columns: {sorted(unknown)}"
    # The columns not set above (the version-2 figures, the store's bookkeeping) are None,
    # as the store returns them for a point that did not measure them.
    return dict(dict.fromkeys(SCHEMA_COLUMNS), **row)


def sweep_rows(*, measured_energy: bool = False, dataset: str = "digits",
               constraint_names: tuple[str, ...] = ("l1", "l21", "l11")) -> list[dict[str, Any]]:
    """A small sweep: dense + constraints x radii x procedures x 2 seeds, plus a failure."""
    rows = []
    for seed in (0, 1):
        jitter = 0.004 * seed
        rows.append(make_row(dataset=dataset, procedure="dense", constraint=None, radius=None,
                             seed=seed, accuracy=0.96 + jitter, removed_cols=(0, 0, 0),
                             energy_j=40.0 + seed if measured_energy else None,
                             measured_energy=measured_energy))
        for c_index, constraint in enumerate(constraint_names):
            for r_index, radius in enumerate((1.0, 5.0, 20.0)):
                for procedure in ("projected", "lottery"):
                    removed = (max(0, 40 - 15 * r_index - 5 * c_index),
                               max(0, 60 - 25 * r_index), 0)
                    acc = 0.80 + 0.05 * r_index + 0.01 * c_index + jitter
                    rows.append(make_row(
                        dataset=dataset, procedure=procedure, constraint=constraint,
                        radius=radius, seed=seed, accuracy=acc, removed_cols=removed,
                        energy_j=(30.0 + r_index + seed) if measured_energy else None,
                        measured_energy=measured_energy))
    rows.append(make_row(dataset=dataset, constraint="nuclear", radius=2.0, status="failed",
                         error="RuntimeError: SVD did not converge <b>bold</b>"))
    return rows


@pytest.fixture
def rows_factory() -> Callable[..., list[dict[str, Any]]]:
    return sweep_rows


@pytest.fixture
def row_factory() -> Callable[..., dict[str, Any]]:
    return make_row


_CONFIG_KEYS = ("dataset", "model", "procedure", "constraint", "radius", "groups", "seed",
                "epochs")


def write_db(path: Any, rows: list[dict[str, Any]], metrics: tuple[str, ...]) -> Any:
    """A results db holding ``rows`` as finished points (their ``metrics`` columns)."""
    from projlib.sweep import ResultsStore

    with ResultsStore(path) as store:
        store.register_sweep("s", {}, [(f"p{i}", {k: r[k] for k in _CONFIG_KEYS})
                                       for i, r in enumerate(rows)])
        for i, r in enumerate(rows):
            assert store.claim("s") == f"p{i}"
            store.complete(f"p{i}", {k: r[k] for k in metrics})
    return path


@pytest.fixture
def db_writer() -> Callable[..., Any]:
    return write_db
