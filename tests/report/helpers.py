"""Known rows for the summary tests, and a real db holding them (shared with the CLI tests)."""

from __future__ import annotations

from pathlib import Path

from projlib.sweep import ResultsStore

SEEDS = range(5)
DENSE_MACCS, DENSE_BYTES = 1000, 4000


def _row(model: str, procedure: str, constraint: str | None, radius: float | None, seed: int,
         acc: float, maccs_frac: float, bytes_frac: float | None = None,
         lowrank_frac: float | None = None) -> dict:
    bytes_frac = maccs_frac if bytes_frac is None else bytes_frac
    return {
        "status": "done", "dataset": "fashion-mnist", "model": model, "procedure": procedure,
        "constraint": constraint, "radius": radius, "groups": None if constraint is None
        else "columns", "seed": seed, "epochs": 3, "test_accuracy": acc,
        "maccs_dense": DENSE_MACCS, "maccs_structured": round(DENSE_MACCS * maccs_frac),
        "maccs_lowrank": None if lowrank_frac is None else round(DENSE_MACCS * lowrank_frac),
        "bytes_dense": DENSE_BYTES, "bytes_structured": round(DENSE_BYTES * bytes_frac),
    }


def known_rows() -> list[dict]:
    """lenet300: dense 90 %; l11 r=10 -0.4 points at 20 % MACCs; l1 r=10 -0.8 points at 30 %;
    l11 r=5 -3 points at 10 %; nuclear saves by rank only (40 % low-rank, no zeros).
    convnet: dense 91 %; l21 r=1 -0.9 points at 60 %."""
    rows = []
    for s in SEEDS:
        jitter = 0.01 * (s - 2)  # cost noise across seeds, the same sign for both entries
        rows += [
            _row("lenet300", "dense", None, None, s, 0.90, 1.0),
            _row("lenet300", "projected", "l11", 10.0, s, 0.896, 0.20 + jitter, 0.25),
            _row("lenet300", "projected", "l1", 10.0, s, 0.892, 0.30 + jitter, 0.35),
            _row("lenet300", "projected", "l11", 5.0, s, 0.870, 0.10),
            _row("lenet300", "projected", "nuclear", 3.0, s, 0.894, 1.0, 1.0, lowrank_frac=0.4),
            _row("convnet", "dense", None, None, s, 0.91, 1.0),
            _row("convnet", "projected", "l21", 1.0, s, 0.901, 0.60),
        ]
    return rows



def summary_db(tmp_path: Path) -> Path:
    """A real results db holding `known_rows()` (the store's own writes)."""
    db = tmp_path / "study.db"
    rows = known_rows()
    keys = ("dataset", "model", "procedure", "constraint", "radius", "groups", "seed", "epochs")
    with ResultsStore(db) as store:
        store.register_sweep("s", {}, [(f"p{i}", {k: r[k] for k in keys})
                                       for i, r in enumerate(rows)])
        for i, r in enumerate(rows):
            assert store.claim("s") == f"p{i}"
            store.complete(f"p{i}", {k: r[k] for k in ("test_accuracy", "maccs_dense",
                                                        "maccs_structured", "maccs_lowrank",
                                                        "bytes_dense", "bytes_structured")})
    return db
