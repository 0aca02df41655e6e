"""The results row schema, defined once: one row per sweep point, one `Column` per field.

Everything that lists result columns derives its list from `COLUMNS` here: the SQLite store
(table layout, migration, which keys a finished point may write), the report (which columns it
averages over seeds, table headers, figure axis titles), `greenbench runs` (CSV header, table)
and the tests. Adding a result column is one `Column` entry below.

Rules kept by `validate` (run at import):
* the order of `COLUMNS` is the order of the `points` table; never reorder or rename a column
  (existing databases hold them in this order), append new ones before the store's own
  bookkeeping (`claimed_by`, `attempts`) with `version` = the schema version that adds them;
* None in Python <-> NULL in SQL <-> "not measured": a missing figure is never a zero.

Only the standard library is imported: the measuring, training and report code all read it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "BOOKKEEPING", "COLUMNS", "CONFIG", "DETAIL", "ENERGY_METHODS", "COLUMN_GROUPS", "IDENTITY",
    "KINDS", "METRIC", "NOISE_FRACTION", "NO_UNIT", "PROVENANCE", "REPORT_TABLE", "RUNS_TABLE",
    "SCHEMA_VERSION",
    "STATUSES", "Column", "axis_title", "column", "column_names", "config_columns",
    "cost_columns", "label", "metric_columns", "names", "sql_columns", "summary_metrics",
    "validate",
]

#: `PRAGMA user_version` of a results db. 1: the first, unversioned layout; 2: application_id,
#: data fingerprint in the point identity, warm-up / idle / inference / thread columns;
#: 3: train_step (how the training steps were launched); 4: the spread of every timed figure
#: (per-epoch median / IQR / count, the noise flag, inference repeats and IQR, energy repeats),
#: the masked retrain's time and speed-up (retrain_*); val_accuracy and layer_radii_json
#: (validation split, per-layer radii); 5: the factorised (low-rank) parameters and bytes.
SCHEMA_VERSION = 5

#: A timed figure is flagged noisy when its interquartile range exceeds this fraction of its
#: median (`epoch_time_noisy`; `projlib.measure.spread`): its centre then says little.
NOISE_FRACTION = 0.20

#: Values of the `status` column, in lifecycle order.
STATUSES: tuple[str, ...] = ("pending", "running", "done", "failed", "interrupted")

#: Python kinds: how a value is held (json = a JSON document in a TEXT column).
KINDS: tuple[str, ...] = ("text", "int", "real", "json")
_SQL_OF_KIND = {"text": "TEXT", "json": "TEXT", "int": "INTEGER", "real": "REAL"}

# Column groups.
IDENTITY = "identity"  # what identifies the point: its key and its full config
CONFIG = "config"  # the config values copied into their own columns at registration
BOOKKEEPING = "bookkeeping"  # the point's lifecycle, written by the store
METRIC = "metric"  # what a finished point measured (numbers, or their per-layer detail)
DETAIL = "detail"  # how the metrics were got: methods, per-device JSON, data variant, country
PROVENANCE = "provenance"  # the software and hardware that ran the point
# The groups of columns of the row schema (not to be confused with a constraint's `groups`).
COLUMN_GROUPS: tuple[str, ...] = (IDENTITY, CONFIG, BOOKKEEPING, METRIC, DETAIL, PROVENANCE)

#: The unit of a column that is not a quantity (names, ids, JSON, timestamps).
NO_UNIT = "-"
# Units of the static cost of the trained network (`projlib.measure.cost_report` totals).
_COST_UNITS = ("MACCs", "params", "bytes")

#: `DeviceEnergy.method` values (see `energy_json`) and what each means.
ENERGY_METHODS: dict[str, str] = {
    "counter": "hardware energy counter (NVML total energy)",
    "rapl": "hardware energy counter (RAPL powercap)",
    "power-integral": "power sampled in a thread, integrated (trapezoid rule)",
    "estimate": "model-based estimate (CodeCarbon load × TDP); not summed into energy_j",
    "unavailable": "not measured",
}


@dataclass(frozen=True)
class Column:
    """One column of the results row.

    name: the column name (SQL and dict key). sql_type: its SQL declaration in the `points`
    table. kind: one of `KINDS`. unit: e.g. "J", "s", "bytes", "MACCs", "fraction", or `NO_UNIT`.
    label: the human label the report and `greenbench runs` show. lower_is_better: True/False
    for a figure of merit, None where neither is better. group: one of `COLUMN_GROUPS`. version: the
    schema version that added it. description: one line, what a value (and a None) means.
    axis_label: the longer title where the column is a figure axis ("": the label).
    """

    name: str
    sql_type: str
    kind: str
    unit: str
    label: str
    lower_is_better: bool | None
    group: str
    version: int
    description: str
    axis_label: str = ""

    @property
    def numeric(self) -> bool:
        return self.kind in ("int", "real")


_NONE_ENERGY = "None: no device was measured (a model-based estimate is never stored here)"
_NONE_INFER = "None: inference not measured (greenbench run --measure-inference)"


def _inference_spread(prefix: str, model: str) -> tuple[Column, ...]:
    """Schema 4: the repeats and IQR behind one model's inference latency and throughput."""
    label = "" if prefix == "infer" else ", compacted"
    return (
        Column(f"{prefix}_latency_b1_iqr_s", "REAL", "real", "s",
               f"inference latency b1 IQR{label} (s)", None, METRIC, 4,
               f"interquartile range of the timed batch-1 latencies, {model}; {_NONE_INFER} "
               "or fewer than 3 repeats"),
        Column(f"{prefix}_latency_b1_repeats", "INTEGER", "int", "count",
               f"inference latency repeats{label}", None, DETAIL, 4,
               f"timed batch-1 passes behind {prefix}_latency_b1_s"),
        Column(f"{prefix}_throughput_iqr_per_s", "REAL", "real", "1/s",
               f"inference throughput IQR{label} (/s)", None, METRIC, 4,
               f"interquartile range of the per-pass throughputs, {model}; {_NONE_INFER} "
               "or fewer than 3 repeats"),
        Column(f"{prefix}_throughput_repeats", "INTEGER", "int", "count",
               f"inference throughput repeats{label}", None, DETAIL, 4,
               f"timed large-batch passes behind {prefix}_throughput_per_s"),
    )


COLUMNS: tuple[Column, ...] = (
    Column("point_id", "TEXT PRIMARY KEY", "text", NO_UNIT, "point id", None, IDENTITY, 1,
           "sha256 hex of the canonical config JSON: the point's key"),
    Column("status", "TEXT NOT NULL", "text", NO_UNIT, "status", None, BOOKKEEPING, 1,
           "one of pending, running, done, failed, interrupted"),
    Column("error", "TEXT", "text", NO_UNIT, "error", None, BOOKKEEPING, 1,
           "why the point failed or was interrupted; None when it did not"),
    Column("dataset", "TEXT", "text", NO_UNIT, "dataset", None, CONFIG, 1,
           "dataset name (a sweep axis)"),
    Column("model", "TEXT", "text", NO_UNIT, "model", None, CONFIG, 1,
           "model name (a sweep axis)"),
    Column("procedure", "TEXT", "text", NO_UNIT, "procedure", None, CONFIG, 1,
           "training procedure: dense, projected, lottery, ... (a sweep axis)"),
    Column("constraint", "TEXT", "text", NO_UNIT, "constraint", None, CONFIG, 1,
           "projection constraint name; None for the dense baseline"),
    Column("radius", "REAL", "real", NO_UNIT, "radius", None, CONFIG, 1,
           "radius of the constraint ball; None for the dense baseline"),
    Column("groups", "TEXT", "text", NO_UNIT, "groups", None, CONFIG, 1,
           "what the constraint groups (e.g. columns); None for the dense baseline"),
    Column("seed", "INTEGER", "int", NO_UNIT, "seed", None, CONFIG, 1,
           "random seed; the report averages over it"),
    Column("epochs", "INTEGER", "int", "epochs", "epochs", None, CONFIG, 1,
           "training epochs"),
    Column("config_json", "TEXT", "json", NO_UNIT, "config", None, IDENTITY, 1,
           "the canonical config the point id hashes, as JSON"),
    Column("test_accuracy", "REAL", "real", "fraction", "accuracy", False, METRIC, 1,
           "test-set accuracy (0..1) after training"),
    Column("fraction_nonzero", "REAL", "real", "fraction", "fraction nonzero", True, METRIC, 1,
           "fraction of nonzero weights in the constrained layers"),
    Column("removed_input_fraction", "REAL", "real", "fraction", "removed inputs", False,
           METRIC, 1, "fraction of columns (inputs) removed in the first constrained layer"),
    Column("layers_json", "TEXT", "json", NO_UNIT, "layers", None, METRIC, 1,
           "per-layer sparsity (shape, nonzeros, rows/columns removed) as a JSON list"),
    Column("maccs_dense", "INTEGER", "int", "MACCs", "dense MACCs", True, METRIC, 1,
           "multiply-accumulates per inference of the dense network"),
    Column("maccs_structured", "INTEGER", "int", "MACCs", "structured MACCs", True, METRIC, 1,
           "MACCs per inference of the network with removed rows/columns cut out",
           axis_label="structured MACCs (per inference)"),
    Column("maccs_nonzero", "INTEGER", "int", "MACCs", "nonzero MACCs", True, METRIC, 1,
           "MACCs per inference of an ideal sparse kernel (nonzero weights only)"),
    Column("maccs_lowrank", "INTEGER", "int", "MACCs", "low-rank MACCs", True, METRIC, 1,
           "MACCs per inference with each kept matrix factorised where that is cheaper"),
    Column("params_dense", "INTEGER", "int", "params", "dense parameters", True, METRIC, 1,
           "learnable parameters of the dense network"),
    Column("params_structured", "INTEGER", "int", "params", "structured parameters", True,
           METRIC, 1, "learnable parameters after cutting out removed rows/columns"),
    Column("params_nonzero", "INTEGER", "int", "params", "nonzero parameters", True, METRIC, 1,
           "nonzero learnable parameters"),
    Column("bytes_dense", "INTEGER", "int", "bytes", "dense bytes", True, METRIC, 1,
           "storage of the dense parameters"),
    Column("bytes_structured", "INTEGER", "int", "bytes", "structured bytes", True, METRIC, 1,
           "storage of the structured (compacted) parameters",
           axis_label="memory, structured (bytes)"),
    Column("bytes_csr", "INTEGER", "int", "bytes", "CSR bytes", True, METRIC, 1,
           "storage of the weights in CSR (values, column indices, row pointers)"),
    Column("bytes_entropy", "INTEGER", "int", "bytes", "entropy bytes", True, METRIC, 1,
           "entropy-coded storage estimate, ceil(H * numel / 8)"),
    Column("params_lowrank", "INTEGER", "int", "params", "low-rank parameters", True, METRIC, 5,
           "learnable parameters with each kept matrix factorised where maccs_lowrank does; "
           "None: measured before schema 5"),
    Column("bytes_lowrank", "INTEGER", "int", "bytes", "low-rank bytes", True, METRIC, 5,
           "storage of the parameters with each kept matrix factorised where maccs_lowrank "
           "does; None: measured before schema 5"),
    Column("energy_j", "REAL", "real", "J", "training energy (J)", True, METRIC, 1,
           f"training energy, summed over the measured devices, idle included; {_NONE_ENERGY}",
           axis_label="training energy, total incl. idle (J)"),
    Column("energy_method", "TEXT", "text", NO_UNIT, "energy method", None, DETAIL, 1,
           "device:method pairs of the training window (methods: see ENERGY_METHODS)"),
    Column("energy_json", "TEXT", "json", NO_UNIT, "energy detail", None, DETAIL, 1,
           "the training window's EnergyResult (per-device energy, samples, notes) as JSON"),
    Column("carbon_g", "REAL", "real", "g CO2eq", "carbon (g)", True, METRIC, 1,
           "estimated emissions: energy x grid carbon intensity; None: no estimate",
           axis_label="carbon (g CO2eq, estimate)"),
    Column("carbon_method", "TEXT", "text", NO_UNIT, "carbon method", None, DETAIL, 1,
           "how carbon_g was estimated, or why it is None"),
    Column("country_iso_code", "TEXT", "text", NO_UNIT, "country", None, DETAIL, 1,
           "ISO 3166 alpha-3 code whose grid carbon intensity was used"),
    Column("wall_time_s", "REAL", "real", "s", "wall time (s)", True, METRIC, 1,
           "wall-clock time of training and final evaluation"),
    Column("started_at", "TEXT", "text", NO_UNIT, "started at", None, BOOKKEEPING, 1,
           "UTC timestamp when the point was last claimed"),
    Column("finished_at", "TEXT", "text", NO_UNIT, "finished at", None, BOOKKEEPING, 1,
           "UTC timestamp when the point last finished, failed or was interrupted"),
    Column("package_version", "TEXT", "text", NO_UNIT, "greenbench version", None,
           PROVENANCE, 1, "greenbench version that ran the point"),
    Column("git_sha", "TEXT", "text", NO_UNIT, "git sha", None, PROVENANCE, 1,
           "git commit of the checkout that ran the point; None outside a checkout"),
    Column("torch_version", "TEXT", "text", NO_UNIT, "torch version", None, PROVENANCE, 1,
           "torch version"),
    Column("cuda_version", "TEXT", "text", NO_UNIT, "CUDA version", None, PROVENANCE, 1,
           "CUDA version torch was built with; None for a CPU-only build"),
    Column("device_name", "TEXT", "text", NO_UNIT, "device", None, PROVENANCE, 1,
           "name of the CPU or GPU that trained the point"),
    Column("data_fingerprint", "TEXT", "text", NO_UNIT, "data fingerprint", None, CONFIG, 2,
           "fingerprint of the data files the point must train on (part of its identity)"),
    Column("data_variant", "TEXT", "text", NO_UNIT, "data variant", None, DETAIL, 2,
           "which data were read, e.g. verified against published checksums or not"),
    Column("threads", "INTEGER", "int", "threads", "threads", None, METRIC, 2,
           "torch intra-op threads the point ran with"),
    Column("threads_json", "TEXT", "json", NO_UNIT, "thread policy", None, DETAIL, 2,
           "how the thread count was chosen (candidates, timings, reason) as JSON"),
    Column("train_step", "TEXT", "text", NO_UNIT, "training step", None, DETAIL, 3,
           "how the training steps were launched: eager, cuda-graph (full batches replayed "
           "from one captured CUDA graph), or eager with the reason capture failed"),
    Column("warmup_time_s", "REAL", "real", "s", "warm-up (s)", True, METRIC, 2,
           "one-off warm-up before the training window (not in wall_time_s)"),
    Column("warmup_energy_j", "REAL", "real", "J", "warm-up energy (J)", True, METRIC, 2,
           f"energy of the warm-up (not in energy_j); {_NONE_ENERGY}"),
    Column("energy_above_idle_j", "REAL", "real", "J", "training energy above idle (J)", True,
           METRIC, 2, "energy_j minus idle power x window, not clipped at 0; None: no "
           "measured energy or no idle baseline"),
    Column("idle_power_w", "REAL", "real", "W", "idle power (W)", None, METRIC, 2,
           "idle power summed over the measured devices; None: no idle baseline"),
    Column("idle_json", "TEXT", "json", NO_UNIT, "idle detail", None, DETAIL, 2,
           "the idle baseline (per device) and why it is missing, as JSON"),
    Column("infer_latency_b1_s", "REAL", "real", "s", "inference latency b1 (s)", True,
           METRIC, 2, f"median latency of one batch-1 inference, trained model; {_NONE_INFER}"),
    Column("infer_throughput_per_s", "REAL", "real", "1/s", "inference throughput (/s)", False,
           METRIC, 2, f"samples per second at a large batch, trained model; {_NONE_INFER}"),
    Column("infer_energy_per_1000_j", "REAL", "real", "J", "inference J / 1,000", True,
           METRIC, 2, "energy per 1,000 inferences, trained model; None: not measured"),
    Column("infer_energy_above_idle_per_1000_j", "REAL", "real", "J",
           "inference J above idle / 1,000", True, METRIC, 2,
           "energy above idle per 1,000 inferences, trained model; None: not measured"),
    Column("compact_latency_b1_s", "REAL", "real", "s", "inference latency b1, compacted (s)",
           True, METRIC, 2, f"as infer_latency_b1_s, compacted model; {_NONE_INFER}",
           axis_label="measured inference latency at batch 1, compacted model (s)"),
    Column("compact_throughput_per_s", "REAL", "real", "1/s",
           "inference throughput, compacted (/s)", False, METRIC, 2,
           f"as infer_throughput_per_s, compacted model; {_NONE_INFER}"),
    Column("compact_energy_per_1000_j", "REAL", "real", "J", "inference J / 1,000, compacted",
           True, METRIC, 2, "as infer_energy_per_1000_j, compacted model; None: not measured",
           axis_label="measured inference energy per 1,000, compacted model (J)"),
    Column("compact_energy_above_idle_per_1000_j", "REAL", "real", "J",
           "inference J above idle / 1,000, compacted", True, METRIC, 2,
           "as infer_energy_above_idle_per_1000_j, compacted model; None: not measured"),
    Column("speedup_predicted_maccs", "REAL", "real", "ratio", "speed-up predicted (MACCs)",
           False, METRIC, 2, "maccs_dense / maccs_structured; None: inference not measured"),
    Column("speedup_realised_latency", "REAL", "real", "ratio", "speed-up realised (latency)",
           False, METRIC, 2, f"infer / compact batch-1 latency; {_NONE_INFER}"),
    Column("speedup_realised_throughput", "REAL", "real", "ratio",
           "speed-up realised (throughput)", False, METRIC, 2,
           f"compact / infer throughput; {_NONE_INFER}"),
    Column("inference_method", "TEXT", "text", NO_UNIT, "inference energy method", None,
           DETAIL, 2, "energy method of the inference measurement, or unavailable"),
    Column("inference_json", "TEXT", "json", NO_UNIT, "inference detail", None, DETAIL, 2,
           "the dense vs compacted inference comparison as JSON"),
    # Schema 4: the spread of every timed figure (issue 25). Epoch times are the training
    # steps of each epoch, evaluation excluded (`TrainResult.epoch_time_s`).
    Column("epoch_time_median_s", "REAL", "real", "s", "epoch time, median (s)", True, METRIC,
           4, "median seconds of training steps per epoch over the epochs of the point's first "
           "phase (train: dense, projected; phase1: lottery; match, else phase1: magnitude), "
           "evaluation excluded; other phases in epoch_time_json; None: not recorded",
           axis_label="training time per epoch, median over epochs (s)"),
    Column("epoch_time_iqr_s", "REAL", "real", "s", "epoch time IQR (s)", None, METRIC, 4,
           "interquartile range of those epoch times; None: fewer than 3 epochs (no spread) "
           "or not recorded"),
    Column("epochs_timed", "INTEGER", "int", "epochs", "epochs timed", None, DETAIL, 4,
           "how many epochs epoch_time_median_s and epoch_time_iqr_s are over"),
    Column("epoch_time_noisy", "INTEGER", "int", "flag", "noisy timing", None, DETAIL, 4,
           "1 when the epoch-time IQR of any phase exceeds NOISE_FRACTION (20 %) of its "
           "median (the point's time figures are mostly noise), else 0; None: no phase has "
           "3 epochs"),
    Column("epoch_time_json", "TEXT", "json", NO_UNIT, "epoch times", None, DETAIL, 4,
           "per phase {n, median, q1, q3, iqr, noisy} and every epoch's seconds, as JSON"),
    Column("energy_runs", "INTEGER", "int", "runs", "training runs in the energy window", None,
           DETAIL, 4, "training runs inside the energy window, energy_j being per run: more "
           "than 1 where one run was too short for a backend to read (READABLE_PERIODS update "
           "periods); None: no backend measures energy"),
    *_inference_spread("infer", "trained model"),
    *_inference_spread("compact", "compacted model"),
    # Schema 4 (issue 21): lottery / magnitude retrain the compacted network.
    Column("retrain_time_s", "REAL", "real", "s", "retrain time (s)", True, METRIC, 4,
           "seconds of training steps of the masked retrain (evaluation excluded); None: the "
           "procedure has no retrain"),
    Column("retrain_speedup_predicted", "REAL", "real", "ratio",
           "retrain speed-up predicted (MACCs)", False, METRIC, 4,
           "MACCs of the full-size / of the compacted network the retrain trained; None: not "
           "compacted (no retrain, Dropout / BatchNorm in the network, or CUDA)"),
    Column("retrain_speedup_realised", "REAL", "real", "ratio", "retrain speed-up realised",
           False, METRIC, 4,
           "full-size masked / compacted training step time, measured interleaved before the "
           "retrain; None: not compacted"),
    # Validation split and per-layer radii (TrainConfig.validation / radius_mode).
    Column("val_accuracy", "REAL", "real", "fraction", "validation accuracy", False, METRIC, 4,
           "accuracy on the held-out validation split of the training set after the last "
           "epoch; None: the point has no split (validation = 0)"),
    Column("layer_radii_json", "TEXT", "json", NO_UNIT, "layer radii", None, DETAIL, 4,
           "the absolute radius each constrained layer was projected with, as JSON {layer: "
           "radius} (radius_mode relative: fraction x the layer's initial norm); None: no "
           "projection ran"),
    # The store's own bookkeeping: always last (new columns go above).
    Column("claimed_by", "TEXT", "text", NO_UNIT, "claimed by", None, BOOKKEEPING, 1,
           "'host:pid' of the runner that last claimed the point"),
    Column("attempts", "INTEGER NOT NULL DEFAULT 0", "int", "count", "attempts", None,
           BOOKKEEPING, 1, "how many times the point was claimed"),
)

#: The columns of `greenbench runs`' table, in display order.
RUNS_TABLE: tuple[str, ...] = (
    "point_id", "status", "dataset", "model", "procedure", "constraint", "radius", "seed",
    "test_accuracy", "fraction_nonzero", "maccs_structured", "energy_j", "wall_time_s", "error",
)
#: The metric columns of the report's results table (means over seeds), in display order;
#: test_accuracy first (its standard deviation follows it).
REPORT_TABLE: tuple[str, ...] = (
    "test_accuracy", "fraction_nonzero", "removed_input_fraction", "maccs_structured",
    "maccs_dense", "bytes_structured", "bytes_csr", "energy_j", "energy_above_idle_j",
    "carbon_g", "wall_time_s", "epoch_time_median_s", "epoch_time_iqr_s", "warmup_time_s",
    "threads", "compact_latency_b1_s",
    "compact_energy_per_1000_j", "speedup_predicted_maccs", "speedup_realised_latency",
)


# Every selection below reads `COLUMNS` when called, so a column added there is seen everywhere.
def column(name: str) -> Column:
    """The column called `name` (KeyError for an unknown name)."""
    for col in COLUMNS:
        if col.name == name:
            return col
    raise KeyError(f"no result column {name!r}")


def names(*groups: str, version: int | None = None,
          kinds: Iterable[str] | None = None) -> tuple[str, ...]:
    """Column names in table order, of the given groups (all when none), schema version and
    kinds."""
    kinds = None if kinds is None else tuple(kinds)
    return tuple(
        c.name for c in COLUMNS
        if (not groups or c.group in groups)
        and (version is None or c.version == version)
        and (kinds is None or c.kind in kinds)
    )


def column_names() -> tuple[str, ...]:
    """Every column name, in table order."""
    return names()


def sql_columns() -> tuple[tuple[str, str], ...]:
    """(name, SQL type) of every column, in table order: the `points` table."""
    return tuple((c.name, c.sql_type) for c in COLUMNS)


def config_columns() -> tuple[str, ...]:
    """Columns filled from the canonical config when a point is registered."""
    return names(CONFIG)


def metric_columns() -> tuple[str, ...]:
    """Columns a finished point fills in: what was measured, how, and on what software."""
    return names(METRIC, DETAIL, PROVENANCE)


def summary_metrics() -> tuple[str, ...]:
    """The numeric metric columns: what the report averages over seeds."""
    return names(METRIC, kinds=("int", "real"))


def cost_columns() -> tuple[str, ...]:
    """The static costs of the trained network: the metric columns counted in MACCs,
    parameters or bytes. Each is a total of `projlib.measure.cost_report` of the same name."""
    return tuple(c.name for c in COLUMNS if c.group == METRIC and c.unit in _COST_UNITS)


def label(name: str) -> str:
    """The human label of a column."""
    return column(name).label


def axis_title(name: str) -> str:
    """The title of a column as a figure axis."""
    col = column(name)
    return col.axis_label or col.label


def validate(columns: Iterable[Column] | None = None) -> None:
    """Check the schema's own rules; ValueError naming the first column that breaks one."""
    columns = tuple(COLUMNS if columns is None else columns)
    seen: set[str] = set()
    for c in columns:
        where = f"result column {c.name!r}"
        if not c.name.isidentifier() or c.name in seen:
            raise ValueError(f"{where}: empty, not an identifier or defined twice")
        seen.add(c.name)
        if c.kind not in KINDS:
            raise ValueError(f"{where}: kind {c.kind!r} is not one of {KINDS}")
        if c.sql_type.split()[0] != _SQL_OF_KIND[c.kind]:
            raise ValueError(f"{where}: SQL type {c.sql_type!r} does not hold kind {c.kind!r}")
        if c.group not in COLUMN_GROUPS:
            raise ValueError(f"{where}: group {c.group!r} is not one of {COLUMN_GROUPS}")
        if not 1 <= c.version <= SCHEMA_VERSION:
            raise ValueError(f"{where}: version {c.version} outside 1..{SCHEMA_VERSION}")
        if not (c.unit and c.label and c.description):
            raise ValueError(f"{where}: needs a unit, a label and a description")
        if c.numeric and c.group == METRIC and c.unit == NO_UNIT:
            raise ValueError(f"{where}: a numeric metric needs a unit")
        if c.lower_is_better is not None and not c.numeric:
            raise ValueError(f"{where}: lower_is_better is only for numbers")
    for view, members in (("RUNS_TABLE", RUNS_TABLE), ("REPORT_TABLE", REPORT_TABLE)):
        unknown = [n for n in members if n not in seen]
        if unknown:
            raise ValueError(f"{view} names unknown column(s) {unknown}")
    if REPORT_TABLE[:1] != ("test_accuracy",):
        raise ValueError("REPORT_TABLE must start with test_accuracy")


def reference_markdown() -> str:
    """The column reference (docs/COLUMNS.md), generated from `COLUMNS`: one table per group,
    in table order.  Regenerate with ``python -m projlib.schema > docs/COLUMNS.md``."""
    lines = [
        "# Result columns",
        "",
        "Generated from `projlib/schema.py` by `python -m projlib.schema > docs/COLUMNS.md`;",
        "a test keeps this file in step. One row per sweep point, table `points`; an empty",
        "cell in the db (NULL, None in Python) means *not measured*, never zero. `better`:",
        "which way a figure of merit improves. `since`: the schema version that added it",
        f"(now {SCHEMA_VERSION}).",
    ]
    better = {True: "lower", False: "higher", None: ""}
    for group in COLUMN_GROUPS:
        lines += ["", f"## {group}", "", "| column | unit | better | since | meaning |",
                  "|---|---|---|---|---|"]
        lines += [
            f"| `{c.name}` | {c.unit} | {better[c.lower_is_better]} | {c.version} | "
            + c.description.replace("|", "\\|") + " |"
            for c in COLUMNS if c.group == group
        ]
    return "\n".join(lines) + "\n"


validate()

if __name__ == "__main__":
    print(reference_markdown(), end="")
