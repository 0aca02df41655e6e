"""Rich progress bars for a sweep: one bar for the sweep, one for the point in flight.

The point bar is fed by `train()`'s progress callback (phase, epoch/epochs, test accuracy), so
its ETA is per phase; the sweep bar counts finished points. Each finished point also prints one
permanent line, so a log of a non-interactive run still says what happened.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from projlib.sweep import SweepObserver
from projlib.training import TrainConfig

__all__ = ["RichSweepObserver", "describe"]


def describe(config: TrainConfig) -> str:
    """Short human label of a point, e.g. 'digits/mlp projected l11 r=40 seed 0'."""
    label = f"{config.dataset}/{config.model} {config.procedure}"
    if config.constraint is not None:
        label += f" {config.constraint} r={config.radius:g}"
    return f"{label} seed {config.seed}"


def _fmt(value: Any, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


class RichSweepObserver(SweepObserver):
    """Drives a `rich.progress.Progress`; use as a context manager around the executor."""

    def __init__(self, console: Console, total_points: int) -> None:
        self.console = console
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.sweep_task = self.progress.add_task("sweep", total=total_points)
        self.point_task = self.progress.add_task("waiting", total=None, visible=False)
        self.finished = 0
        self.total = total_points

    def __enter__(self) -> RichSweepObserver:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def point_started(self, point_id: str, config: TrainConfig) -> None:
        self.progress.reset(
            self.point_task, total=None, completed=0, visible=True,
            description=escape(describe(config)),
        )
        self._label = describe(config)

    def point_progress(self, point_id: str, event: dict[str, Any]) -> None:
        acc = event.get("val_accuracy", event.get("test_accuracy"))
        self.progress.update(
            self.point_task,
            total=event.get("epochs"),
            completed=event.get("epoch", 0),
            description=escape(
                f"{self._label} [{event.get('phase', '')}] acc {_fmt(acc, '.3f')}"
            ),
        )

    def point_finished(
        self, point_id: str, config: TrainConfig, status: str, info: dict[str, Any]
    ) -> None:
        self.finished += 1
        self.progress.advance(self.sweep_task)
        self.progress.update(self.point_task, visible=False)
        head = f"[{self.finished}/{self.total}] {status:<11} {describe(config)}"
        if status == "done":
            energy = info.get("energy_j")
            tail = (
                f"acc {_fmt(info.get('test_accuracy'), '.3f')}  "
                f"nonzero {_fmt(info.get('fraction_nonzero'), '.3f')}  "
                f"MACCs {_fmt(info.get('maccs_structured'), ',')}  "
                f"energy {_fmt(energy, '.2f')}{' J' if energy is not None else ''}  "
                f"{_fmt(info.get('wall_time_s'), '.1f')} s  "
                f"epoch {_fmt(info.get('epoch_time_median_s'), '.4f')} s "
                f"(IQR {_fmt(info.get('epoch_time_iqr_s'), '.4f')})"
                f"{'  noisy timing' if info.get('epoch_time_noisy') else ''}"
            )
        elif status == "failed":
            tail = str(info.get("error", "")).splitlines()[0][:200]
        else:
            tail = ""
        self.progress.console.print(escape(f"{head}  {tail}".rstrip()), highlight=False)
