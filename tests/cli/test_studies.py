"""The study files stay valid: each resolves, covers every registered constraint with the three
procedures and at least 5 seeds, and writes into studies/results/ (git-ignored)."""

from __future__ import annotations

from pathlib import Path

import pytest

from projlib.cli.options import load_toml, resolve_run_options
from projlib.projections import constraint_names

STUDIES = sorted((Path(__file__).resolve().parents[2] / "studies").glob("*.toml"))


def test_there_is_a_study_per_network() -> None:
    assert {p.stem for p in STUDIES} >= {"fashion_mnist_lenet300", "fashion_mnist_convnet"}


@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_study_file_resolves_and_covers_the_claims(path: Path) -> None:
    options = resolve_run_options(load_toml(path))
    sweep = options.sweep
    assert sweep.datasets == ("fashion-mnist",)
    assert set(sweep.constraints) == set(constraint_names())
    assert set(sweep.procedures) == {"projected", "lottery", "magnitude"}
    assert len(sweep.seeds) >= 5
    assert all(len(sweep.radii_for(c)) >= 3 for c in sweep.constraints)
    assert options.db.parent == path.parent / "results"
    assert dict(sweep.options)["optimizer"] == "sgd" and dict(sweep.options)["lr"] == 0.02
