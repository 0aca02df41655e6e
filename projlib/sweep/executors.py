"""Executors: run a registered sweep's pending points and write their results to the store.

Both executors claim points through `ResultsStore.claim` (atomic), so any number of executors,
local or Ray, in any number of processes, can work on one store without running a point twice.
The store is only ever written by the process that owns it (the Ray driver, not the workers).

Point outcomes: metrics stored and status "done"; an exception -> "failed" with its traceback
text, and the sweep continues; KeyboardInterrupt (Ctrl-C) -> the in-flight points "interrupted",
then the KeyboardInterrupt propagates so the CLI can exit with code 130.
"""

from __future__ import annotations

import dataclasses
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from projlib.sweep.config import SweepConfig, canonical_config, point_id, sweep_id_of
from projlib.sweep.runner import PointRunner, PointSettings, cached_dataset, run_point
from projlib.sweep.store import ResultsStore, owner_token
from projlib.training import TrainConfig
from projlib.training.plugins import is_plugin, source_hash

__all__ = [
    "SweepObserver",
    "SweepOutcome",
    "prepare_sweep",
    "run_local",
    "run_ray",
    "format_error",
]

_MAX_ERROR_CHARS = 4000


class SweepObserver:
    """Hooks an executor calls as points start, progress and finish. The base class ignores
    them; the CLI subclasses it to drive the progress bars."""

    def point_started(self, point_id: str, config: TrainConfig) -> None:  # noqa: B027
        pass

    def point_progress(self, point_id: str, event: dict[str, Any]) -> None:  # noqa: B027
        pass

    def point_finished(  # noqa: B027
        self, point_id: str, config: TrainConfig, status: str, info: dict[str, Any]
    ) -> None:
        pass


@dataclass(frozen=True)
class SweepOutcome:
    """What one executor run did (counts of the points *this* executor handled)."""

    done: int
    failed: int
    interrupted: int


def format_error(exc: BaseException) -> str:
    """'Type: message' first (what `greenbench runs` shows), then the traceback, capped."""
    head = f"{type(exc).__name__}: {exc}"
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    text = f"{head}\n{tb}"
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 3] + "..."


def prepare_sweep(
    store: ResultsStore,
    sweep: SweepConfig,
    retry_failed: bool = True,
    fingerprints: Mapping[str, str] | None = None,
) -> tuple[str, dict[str, TrainConfig], int]:
    """Register `sweep` in the store and requeue its interrupted / failed / orphaned points.

    Each point's identity includes the fingerprint of its data (`Dataset.fingerprint`):
    `fingerprints` maps dataset name -> fingerprint; datasets it leaves out are loaded here (the
    local process must see the data: a Ray driver as well as its workers). A worker that finds
    other data under the same name fails the point instead of storing results for it.

    A `package.module:factory` model's points also carry the sha256 of its module file
    (`TrainConfig.model_source`), read here.

    Returns (sweep_id, {point_id: TrainConfig}, number of points already done)."""
    prints = dict(fingerprints or {})
    for name in sweep.datasets:
        if name not in prints:
            prints[name] = cached_dataset(name, sweep.options.data_source).fingerprint
    # A model of your own is identified by its module file too: an edit gives new points.
    sources = {m: source_hash(m) for m in sweep.models if is_plugin(m)}
    points = [dataclasses.replace(c, data_fingerprint=prints[c.dataset],
                                  model_source=sources.get(c.model)) for c in sweep.points()]
    configs = {point_id(c): c for c in points}
    sweep_id = sweep_id_of(configs)
    store.register_sweep(
        sweep_id, sweep.to_dict(), [(pid, canonical_config(c)) for pid, c in configs.items()]
    )
    store.requeue(sweep_id, retry_failed=retry_failed)
    return sweep_id, configs, store.counts(sweep_id)["done"]


def _record(store: ResultsStore, observer: SweepObserver, outcome: dict[str, int], pid: str,
            config: TrainConfig, status: str, payload: Any) -> None:
    # One point's end, as every executor records it: written to the store, counted in
    # ``outcome``, told to the observer. payload: the metrics ("done"), the error text
    # ("failed"), unused ("interrupted").
    if status == "done":
        store.complete(pid, payload)
        observer.point_finished(pid, config, "done", payload)
    elif status == "failed":
        store.fail(pid, payload)
        observer.point_finished(pid, config, "failed", {"error": payload})
    else:
        store.interrupt([pid])
        observer.point_finished(pid, config, "interrupted", {})
    outcome[status] = outcome.get(status, 0) + 1


def run_local(
    store: ResultsStore,
    sweep_id: str,
    configs: Mapping[str, TrainConfig],
    *,
    country_iso_code: str | None = None,
    observer: SweepObserver | None = None,
    runner: PointRunner | None = None,
    meter: Any | None = None,
    owner: str | None = None,
    settings: PointSettings | None = None,
) -> SweepOutcome:
    """Run pending points one after another in this process until none is left.

    `runner(config, country_iso_code=..., progress=..., meter=...)` returns the metric columns
    (default: this module's `run_point`, looked up at call time so tests can patch it);
    `meter` (an EnergyMeter) is shared across points so backends are probed once; `settings`
    (threads, inference, idle baseline) is passed on as `settings=` when given."""
    extra = {"settings": settings} if settings is not None else {}
    runner = runner if runner is not None else run_point
    observer = observer or SweepObserver()
    owner = owner or owner_token()
    outcome: dict[str, int] = {}
    while True:
        pid = store.claim(sweep_id, owner)
        if pid is None:
            break
        config = configs[pid]
        observer.point_started(pid, config)
        try:
            metrics = runner(
                config,
                country_iso_code=country_iso_code,
                progress=lambda event, _pid=pid: observer.point_progress(_pid, event),
                meter=meter,
                **extra,
            )
        except KeyboardInterrupt:
            _record(store, observer, outcome, pid, config, "interrupted", None)
            raise
        except Exception as exc:  # any failure of one point is recorded, not fatal
            _record(store, observer, outcome, pid, config, "failed", format_error(exc))
            continue
        _record(store, observer, outcome, pid, config, "done", metrics)
    return SweepOutcome(outcome.get("done", 0), outcome.get("failed", 0),
                        outcome.get("interrupted", 0))


def _ray_point(config: TrainConfig, country_iso_code: str | None,
               settings: PointSettings | None = None) -> tuple[str, Any]:
    # Runs on a Ray worker. Exceptions become ("failed", text) so the driver records the
    # point's own error rather than Ray's wrapper around it.
    try:
        return "done", run_point(config, country_iso_code=country_iso_code, settings=settings)
    except Exception as exc:
        return "failed", format_error(exc)


def _ray_slots(resources: Mapping[str, float], cpus_per_task: float,
               gpus_per_task: float) -> int:
    # Tasks the cluster can run at once: its CPUs (and GPUs, when tasks take any) per task.
    slots = int(resources.get("CPU", 1) // cpus_per_task)
    if gpus_per_task > 0:
        slots = min(slots, int(resources.get("GPU", 0) // gpus_per_task))
    return max(1, slots)


def run_ray(
    store: ResultsStore,
    sweep_id: str,
    configs: Mapping[str, TrainConfig],
    *,
    country_iso_code: str | None = None,
    observer: SweepObserver | None = None,
    address: str | None = None,
    gpus_per_task: float = 0.0,
    cpus_per_task: float = 1.0,
    max_in_flight: int | None = None,
    init_kwargs: Mapping[str, Any] | None = None,
    owner: str | None = None,
    settings: PointSettings | None = None,
) -> SweepOutcome:
    """Run pending points as Ray tasks (`num_gpus=gpus_per_task` each); the driver claims
    points, keeps at most `max_in_flight` tasks running (default: what the cluster's CPUs/GPUs
    allow), and writes every result itself.

    Joins the cluster at `address` (None: start a local instance, or reuse an initialised one).
    Per-epoch progress is not forwarded from workers; points are reported as they finish.

    Raises:
        RuntimeError: when ray is not installed.
        ValueError: for negative resources.
    """
    if gpus_per_task < 0 or cpus_per_task <= 0:
        raise ValueError("gpus_per_task must be >= 0 and cpus_per_task > 0")
    try:
        import ray  # noqa: PLC0415 - optional dependency (the ray extra)
    except ImportError as exc:
        raise RuntimeError("executor ray needs ray: pip install 'greenbench[ray]'") from exc
    observer = observer or SweepObserver()
    owner = owner or owner_token()
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, **dict(init_kwargs or {}))
    outcome: dict[str, int] = {}
    inflight: dict[Any, str] = {}
    try:
        task = ray.remote(num_cpus=cpus_per_task, num_gpus=gpus_per_task)(_ray_point)
        if max_in_flight is None:
            max_in_flight = _ray_slots(ray.cluster_resources(), cpus_per_task, gpus_per_task)
        while True:
            while len(inflight) < max_in_flight:
                pid = store.claim(sweep_id, owner)
                if pid is None:
                    break
                inflight[task.remote(configs[pid], country_iso_code, settings)] = pid
                observer.point_started(pid, configs[pid])
            if not inflight:
                break
            ready, _ = ray.wait(list(inflight), num_returns=1)
            for ref in ready:
                pid = inflight.pop(ref)
                try:
                    status, payload = ray.get(ref)
                except Exception as exc:  # worker crash, OOM kill, ...
                    status, payload = "failed", format_error(exc)
                _record(store, observer, outcome, pid, configs[pid], status, payload)
    except KeyboardInterrupt:
        for ref in inflight:
            ray.cancel(ref, force=True)
        for pid in inflight.values():
            _record(store, observer, outcome, pid, configs[pid], "interrupted", None)
        raise
    finally:
        if started_here:
            ray.shutdown()
    return SweepOutcome(outcome.get("done", 0), outcome.get("failed", 0),
                        outcome.get("interrupted", 0))
