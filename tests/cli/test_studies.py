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
    assert sweep.options.optimizer == "sgd" and sweep.options.lr == 0.02


V2 = Path(__file__).resolve().parents[2] / "studies" / "v2"


@pytest.mark.parametrize("model", ["lenet300", "convnet"])
def test_v2_calibration_and_grid_files(model: str) -> None:
    # Study v2 (issue 23): relative radii, a validation split, the calibration in the same db
    # as the grid, the grid's budget equal to the calibration's.
    cal = resolve_run_options(load_toml(V2 / f"calibrate_{model}.toml"))
    grid = resolve_run_options(load_toml(V2 / f"grid_{model}.toml"))
    for opts in (cal, grid):
        shared = opts.sweep.options
        assert shared.radius_mode == "relative" and shared.validation == 0.1
        assert (shared.optimizer, shared.lr) == ("sgd", 0.02)
        assert opts.sweep.models == (model,)
        assert set(opts.sweep.constraints) == set(constraint_names())
        assert opts.db.resolve() == (V2.parent / "results" / "study_v2.db").resolve()
    assert cal.sweep.procedures == ("projected",) and len(cal.sweep.seeds) == 2
    assert all(len(cal.sweep.radii_for(c)) == 8 for c in cal.sweep.constraints)
    assert set(grid.sweep.procedures) == {"projected", "lottery", "magnitude"}
    assert len(grid.sweep.seeds) >= 5 and grid.sweep.epochs == cal.sweep.epochs
    assert all(len(grid.sweep.radii_for(c)) >= 5 for c in grid.sweep.constraints)
    # the dense baselines of the first two seeds are shared (same split, same budget)
    cal_dense = {p for p, c in zip(cal.sweep.point_ids(), cal.sweep.points(), strict=True)
                 if c.procedure == "dense"}
    assert len(cal_dense) == 2 and cal_dense <= set(grid.sweep.point_ids())


def test_v2_widened_conv_scan_continues_the_first_scan() -> None:
    # the conv net's scan widened past 0.5: same seeds, budget, split and db, so its points
    # join the first scan's curves (the dense baselines are the same points), at new radii only
    cal = resolve_run_options(load_toml(V2 / "calibrate_convnet.toml"))
    wide = resolve_run_options(load_toml(V2 / "calibrate_convnet_wide.toml"))
    assert wide.sweep.options == cal.sweep.options and wide.db == cal.db
    assert (wide.sweep.seeds, wide.sweep.epochs) == (cal.sweep.seeds, cal.sweep.epochs)
    assert wide.sweep.procedures == cal.sweep.procedures
    assert set(wide.sweep.constraints) == set(cal.sweep.constraints)
    assert min(wide.sweep.radii) > max(cal.sweep.radii)
    shared = set(wide.sweep.point_ids()) & set(cal.sweep.point_ids())
    dense = {p for p, c in zip(cal.sweep.point_ids(), cal.sweep.points(), strict=True)
             if c.procedure == "dense"}
    assert shared == dense and len(dense) == 2


def test_v2_primary_and_loose_files_extend_the_grid_with_their_own_points() -> None:
    # item 8: seeds 5-9 of the primary cells: the grid's seeds 0-4 of those cells are the same
    # points (same radii, budget, split), so only the new seeds run.
    grid = resolve_run_options(load_toml(V2 / "grid_lenet300.toml")).sweep
    loose = resolve_run_options(load_toml(V2 / "grid_lenet300_loose.toml")).sweep
    primary = resolve_run_options(load_toml(V2 / "grid_lenet300_primary.toml")).sweep
    assert primary.procedures == loose.procedures == ("projected",)
    assert len(primary.seeds) == 10 and loose.seeds == grid.seeds
    assert set(primary.constraints) == {"l1", "l11", "l21", "nuclear"}
    assert set(loose.constraints) == set(grid.constraints)
    for c in primary.constraints:
        assert primary.radii_for(c) == grid.radii_for(c) + loose.radii_for(c)
    shared = {pid for pid, cfg in zip(primary.point_ids(), primary.points(), strict=True)
              if cfg.seed < 5}
    assert shared and shared <= set(grid.point_ids()) | set(loose.point_ids())


def test_v2_convnet_lottery_cut_is_part_of_the_grid() -> None:
    # item 8's cut for the conv net: every point of grid_convnet_lottery.toml is a point of
    # grid_convnet.toml (a later grid run skips them and adds the rest), 3 of its 5 radii per
    # constraint (tightest, middle, loosest) at seeds 0-2, lottery and magnitude only.
    grid = resolve_run_options(load_toml(V2 / "grid_convnet.toml")).sweep
    cut = resolve_run_options(load_toml(V2 / "grid_convnet_lottery.toml")).sweep
    assert set(cut.point_ids()) <= set(grid.point_ids())
    assert cut.procedures == ("lottery", "magnitude") and cut.seeds == (0, 1, 2)
    assert set(cut.constraints) == set(grid.constraints) - {"nuclear"}
    for c in cut.constraints:
        full = grid.radii_for(c)
        assert cut.radii_for(c) == (full[0], full[2], full[4])


def test_claim_one_rule_needs_all_three_primary_pairs() -> None:
    verdicts = _verdicts_module()
    from projlib.report.isoacc import IsoPair

    def pair(other: str, low: float | None, high: float | None, n: int = 5) -> IsoPair:
        mean = None if low is None else (low + high) / 2
        return IsoPair("l11", other, "projected", True, n, mean, low, high)

    less = [pair("l1", 2, 9), pair("l21", 1, 4), pair("nuclear", 5, 30)]
    assert verdicts.claim_one(less) == "supported"
    assert verdicts.claim_one([*less[:2], pair("nuclear", -3, 8)]) == "not separable"
    # one pair against l11 outweighs the others, whatever their seeds
    assert verdicts.claim_one([*less[:2], pair("nuclear", -9, -1, n=2)]) == "not supported"
    assert verdicts.claim_one([*less[:2], pair("nuclear", None, None, n=1)]) == \
        "not enough seeds"
    assert verdicts.claim_one(less[:2]) == "not enough seeds"  # a pair missing
    assert verdicts.claim_one([*less[:2], pair("nuclear", 1, 2, n=2)]) == "not enough seeds"


def _verdicts_module():  # noqa: ANN202 - a studies/ script as a module
    return _script("v2/verdicts")


def _study_row(model: str, procedure: str, seed: int, acc: float, frac: float = 1.0,
               radius: float | None = None, dense_maccs: int = 1000, epochs: int = 16) -> dict:
    import json

    cfg = {"validation": 0.1}
    if procedure != "dense":
        cfg["radius_mode"] = "relative"
    return {"status": "done", "dataset": "fashion-mnist", "model": model, "epochs": epochs,
            "procedure": procedure, "seed": seed, "groups": None,
            "constraint": None if procedure == "dense" else "l11", "radius": radius,
            "test_accuracy": acc, "config_json": json.dumps(cfg),
            "maccs_dense": dense_maccs, "maccs_structured": round(dense_maccs * frac),
            "bytes_dense": 4 * dense_maccs, "bytes_structured": round(4 * dense_maccs * frac)}


def _two_networks(seeds: int = 4) -> list[dict]:
    # lenet300: dense 89 %, cheap in absolute terms; convnet: dense 90 %, 10x the MACCs
    rows = []
    for s in range(seeds):
        for model, dense_acc, dense_maccs in (("lenet300", 0.89, 1000),
                                              ("convnet", 0.90, 10_000)):
            rows.append(_study_row(model, "dense", s, dense_acc, dense_maccs=dense_maccs))
            for radius, drop, frac in ((0.1, 4.0, 0.05), (0.3, 1.5, 0.2), (1.0, 0.1, 0.9)):
                rows.append(_study_row(model, "projected", s, dense_acc - drop / 100,
                                       frac * (1 + 0.02 * s), radius, dense_maccs))
    return rows


def test_claim_two_compares_both_networks_at_the_same_absolute_accuracy() -> None:
    verdicts = _verdicts_module()
    rows = _two_networks()
    lines = verdicts.claim_two(rows, set())
    table = [line for line in lines if line.startswith("| structured MACCs | 88.00 %")]
    assert len(table) == 1  # level = the lower dense accuracy (89 %) - 1 point, for both nets
    cells = [c.strip() for c in table[0].strip(" |").split("|")]
    # 10x fewer MACCs at the same accuracy: the claim is supported by the absolute rule...
    assert cells[-3] == "fully connected costs less" and cells[-1] == "**supported**"
    # ...while by share of its own dense cost the conv net, 2 points below its dense, sheds more
    assert cells[-2] == "conv costs less"
    # one network only: no answer, said so
    only = verdicts.claim_two([r for r in rows if r["model"] == "lenet300"], set())
    assert only[0].startswith("Not answered")


def test_claim_two_keeps_each_budget_to_its_own_curves_and_baseline() -> None:
    # A db where lenet300 also ran at a second budget (4 epochs: dense 80 %, every point 30
    # points worse). Claim 2 compares one budget per network, so it says it cannot choose
    # instead of mixing the two budgets' points into one curve against whichever dense
    # baseline was read last (what it did when its curves were keyed by model and constraint).
    verdicts = _verdicts_module()
    rows = _two_networks()
    for s in range(4):
        rows.append(_study_row("lenet300", "dense", s, 0.80, epochs=4))
        for radius, frac in ((0.2, 0.1), (2.0, 0.95)):
            rows.append(_study_row("lenet300", "projected", s, 0.59, frac, radius, epochs=4))
    lines = verdicts.claim_two(rows, set())
    assert len(lines) == 1 and lines[0].startswith("Not answered: lenet300 was trained in 2")
    assert "16 epochs" in lines[0] and "4 epochs" in lines[0]
    # with the short budget's points alone gone, the answer is the one budget's
    kept = verdicts.claim_two([r for r in rows if r["epochs"] == 16], set())
    assert any(line.startswith("| structured MACCs | 88.00 %") for line in kept)


def test_lottery_lines_pair_each_seed_with_its_projected_and_magnitude_points() -> None:
    # Item 8: lottery against the same cell's projected run (same mask, retrained) and its
    # magnitude baseline (same per-layer count, other weights), paired by seed; costs on the
    # lottery points' seeds only.
    verdicts = _verdicts_module()
    rows = []
    for s in range(4):
        rows.append(_study_row("lenet300", "projected", s, 0.85 + 0.001 * s, 0.2, 0.1))
        rows.append(_study_row("lenet300", "lottery", s, 0.87 + 0.001 * s, 0.2, 0.1))
        # magnitude: +1 point on even seeds, -1 on odd ones: a mean of 0, not separable
        rows.append(_study_row("lenet300", "magnitude", s, 0.87 + 0.001 * s
                               + (0.01 if s % 2 == 0 else -0.01), 0.9, 0.1))
    rows.append(_study_row("lenet300", "projected", 9, 0.5, 0.99, 0.1))  # no lottery seed 9
    rows.append(_study_row("lenet300", "magnitude", 0, 0.5, 0.9, 0.3))  # no lottery at 0.3
    lines = verdicts.lottery_lines(rows)
    row = next(line for line in lines if line.startswith("| l11 | 0.1 |"))
    assert "+2.00 [+2.00, +2.00] (4): lottery more accurate" in row
    assert "(4): not separable" in row
    assert row.endswith("| 20.0 / 20.0 / 90.0 |")  # seed 9's 99 % is not averaged in
    assert not any(line.startswith("| l11 | 0.3 |") for line in lines)
    # lottery now 3 points below projected on every seed, and only 2 seeds
    worse = [dict(r, test_accuracy=r["test_accuracy"] - 0.05) if r["procedure"] == "lottery"
             else r for r in rows if r["seed"] < 2]
    row = next(line for line in verdicts.lottery_lines(worse) if line.startswith("| l11 |"))
    assert "not enough seeds (2)" in row
    three = [dict(r, test_accuracy=r["test_accuracy"] - 0.05) if r["procedure"] == "lottery"
             else r for r in rows if r["seed"] < 3]
    row = next(line for line in verdicts.lottery_lines(three) if line.startswith("| l11 |"))
    assert "-3.00 [-3.00, -3.00] (3): lottery less accurate" in row
    assert verdicts.lottery_lines([r for r in rows if r["procedure"] != "lottery"]) == [
        "No lottery point of the study's setting in this db."]


def test_calibration_rule_brackets_the_drops() -> None:
    calibrate = _script("calibrate")
    # drop 7 -> 0 points, halving per doubling of the radius
    curve = {0.01: 7.0, 0.02: 3.5, 0.04: 1.75, 0.08: 0.875, 0.16: 0.4375, 0.32: 0.0}
    radii, notes = calibrate.choose(curve)
    assert not notes and len(radii) == calibrate.COUNT == 5
    assert radii[0] == 0.02 and 0.16 < radii[-1] < 0.32  # 3.5 points .. 0.3 points
    assert radii == sorted(radii)
    # a scan that never loses 3.5 points starts at its tightest radius, and says so
    radii, notes = calibrate.choose({0.01: 2.0, 0.1: 0.1})
    assert radii[0] == 0.01 and "tightest radius loses less than 3.5" in notes[0]


def _script(name: str):  # noqa: ANN202 - a studies/ script as a module
    # e.g. "calibrate" or "v2/verdicts"; registered in sys.modules (a dataclass of the script
    # looks its module up there)
    import importlib.util
    import sys

    module_name = "study_" + name.replace("/", "_")
    spec = importlib.util.spec_from_file_location(module_name, V2.parent / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def test_plateau_budget_rule() -> None:
    plateau = _script("plateau")
    # two seeds rising 2 points an epoch to 90 % at epoch 5, then flat: plateau 90, budget 5
    rise = [0.82, 0.84, 0.86, 0.88, 0.90] + [0.90] * 10
    got = plateau.budget([rise, rise])
    assert got["plateau"] == pytest.approx(90.0) and got["budget"] == 5 and got["reached"]
    # still climbing 0.1 point an epoch at the end: reported as not reached
    climbing = [0.80 + 0.001 * e for e in range(15)]
    assert plateau.budget([climbing])["reached"] is False
    # fewer epochs than the moving window: no plateau claimed
    assert plateau.budget([[0.8, 0.85]])["plateau"] is None


def test_plateau_check_reads_the_study_budget_against_every_seed(tmp_path, monkeypatch) -> None:
    # `check`: the budget rule on all seeds run so far, the study's fixed budget read against
    # that plateau, and the study db's dense points beside the runs (same seed, same number).
    import json
    import sqlite3

    plateau = _script("plateau")
    monkeypatch.setattr(plateau, "OUT", tmp_path)
    monkeypatch.setitem(plateau.STUDY_BUDGET, "lenet300", 5)
    high = [0.82, 0.84, 0.86, 0.88, 0.90] + [0.90] * 10  # at its plateau by epoch 5
    low = [0.80, 0.82, 0.84, 0.86, 0.88] + [0.89] * 10  # 1 point short at epoch 5
    for seed, curve in [(0, high), (1, high), (2, high), (3, low)]:
        (tmp_path / f"lenet300_seed{seed}.json").write_text(json.dumps(
            {"seed": seed, "val_accuracy": curve, "complete": True, "epoch_wall_s": [1.0],
             "data_fingerprint": "f" * 64, "test_accuracy": 0.9}))
    (tmp_path / "lenet300_seed4.json").write_text(json.dumps(  # cut short: not counted
        {"seed": 4, "val_accuracy": [0.5], "complete": False}))
    db = tmp_path / "study.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE points (status, procedure, model, epochs, seed, val_accuracy, "
                "config_json)")
    rows = [("done", "dense", "lenet300", 5, 0, 0.90, '{"validation": 0.1}'),
            ("done", "dense", "lenet300", 5, 3, 0.87, '{"validation": 0.1}'),
            ("done", "dense", "lenet300", 5, 1, 0.50, '{"validation": 0.2}'),  # other split
            ("done", "dense", "lenet300", 6, 2, 0.50, '{"validation": 0.1}')]  # other budget
    con.executemany("INSERT INTO points VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    con.commit()
    con.close()
    out = plateau.check("lenet300", db)
    # seeds 0-2: plateau 90, mean at epoch 5 is 90: within; all 4: plateau 89.75 (flat tail
    # 0.9, 0.9, 0.9, 0.89), mean at epoch 5 is 89.50: 0.25 below, within
    assert "| 0-2 (the budget's) | 90.00 | 5 | 90.00 | 0.00 | yes |" in out
    assert "| all 4 | 89.75 | 5 | 89.50 | 0.25 | yes |" in out
    assert "| 0 | 90.00 | 90.00 | 90.00 |" in out
    assert "| 1 | 90.00 | not in the db | 90.00 |" in out  # its db row is another split
    assert "| 3 | 88.00 | 87.00 | 89.00 |" in out  # run and db differ: both shown
    assert "seed 4" not in out
    monkeypatch.setitem(plateau.STUDY_BUDGET, "lenet300", 4)  # one epoch earlier: outside
    assert "| all 4 | 89.75 | 5 | 87.50 | 2.25 | no |" in plateau.check("lenet300", db)
    # `table` still reads the budget from seeds 0-2 only (seed 3 is the check's)
    assert "seed 3" not in plateau.table() and "| 5 | 90.00 | 90.00 | 90.00 |" in plateau.table()
    # a db path that is not there: one line, exit 2 (not a table of "not in the db")
    assert plateau.main(["check", "--model", "lenet300", "--db", str(tmp_path / "no.db")]) == 2


def test_publish_regenerates_the_committed_v2_tables_from_the_committed_db(tmp_path) -> None:
    # Study v2, item 9: the db is the raw data and every published table is its output. Run
    # the script exactly as the README says (but writing into tmp_path) and compare.
    import os
    import subprocess
    import sys

    root = V2.parents[1]
    env = dict(os.environ, OUT=str(tmp_path), PYTHON=sys.executable,
               GREENBENCH=f"{sys.executable} -m projlib.cli")
    subprocess.run(["bash", str(root / "studies" / "publish.sh")], env=env, check=True,
                   capture_output=True, cwd=root)
    published = sorted(p.name for p in (root / "docs" / "results").glob("study_v2_*")
                       if p.name != "study_v2_plan.md")
    assert published == sorted(p.name for p in tmp_path.iterdir())
    for name in published:
        assert (tmp_path / name).read_text() == (root / "docs" / "results" / name).read_text(), \
            f"docs/results/{name} is not what studies/publish.sh makes of the committed db"


def test_backfill_fills_factorised_costs_only_when_the_identity_holds(tmp_path) -> None:
    import sqlite3

    backfill = _script("v2/backfill_lowrank")
    db = tmp_path / "s.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE points (point_id TEXT, model TEXT, status TEXT, "
                 "params_structured INT, maccs_structured INT, maccs_lowrank INT, "
                 "bytes_structured INT, params_lowrank INT, bytes_lowrank INT)")
    # a row that stored both (identity holds: 1100 - 1000 + 400 = 500 params, 4 bytes each)
    conn.execute("INSERT INTO points VALUES ('a', 'lenet300', 'done', 1100, 1000, 400, 4400, "
                 "500, 2000)")
    conn.execute("INSERT INTO points VALUES ('b', 'lenet300', 'done', 1100, 1000, 300, 4400, "
                 "NULL, NULL)")
    conn.commit()
    assert backfill.main(str(db), "convnet") == 2  # not all-Linear: refused
    assert backfill.main(str(db), "lenet300") == 0
    assert conn.execute("SELECT params_lowrank, bytes_lowrank FROM points WHERE point_id='b'"
                        ).fetchone() == (400, 1600)
    # one stored row that disagrees: nothing is written
    conn.execute("UPDATE points SET params_lowrank = 501 WHERE point_id = 'a'")
    conn.execute("UPDATE points SET params_lowrank = NULL, bytes_lowrank = NULL "
                 "WHERE point_id = 'b'")
    conn.commit()
    assert backfill.main(str(db), "lenet300") == 1
    assert conn.execute("SELECT bytes_lowrank FROM points WHERE point_id='b'").fetchone() == (None,)
    conn.close()
