"""`greenbench summary` on a small synthetic db whose answers are known by construction."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from projlib.cli import app
from projlib.report.claims import BAND_COLUMNS, CELL_COLUMNS, to_markdown
from projlib.report.claims import summarise as summarise_rows

from .helpers import DENSE_MACCS, known_rows, summary_db

runner = CliRunner()


def summarise(rows, bands):
    # What the CLI passes from the registries: nuclear saves by rank; lenet300 has no conv.
    return summarise_rows(rows, bands, low_rank={"nuclear"}, fully_connected={"lenet300"})


def _table(summary, model: str, band: float, cost: str = "structured MACCs"):
    return next(t for t in summary.tables
                if (t.model, t.band, t.cost) == (model, band, cost))


def test_bands_rank_entries_by_cost_with_seed_matched_accuracy() -> None:
    s = summarise(known_rows(), bands=(0.5, 1.0, 3.0))
    half = _table(s, "lenet300", 0.5)
    assert [e.label for e in half.entries] == ["l11 · projected"]  # l1 is 0.8 points down
    assert half.gap is None
    one = _table(s, "lenet300", 1.0)
    assert [e.label for e in one.entries] == ["l11 · projected", "l1 · projected",
                                              "nuclear (rank) · projected"]
    first = one.entries[0]
    assert first.radius == 10.0 and len(first.seeds) == 5
    assert first.accuracy_diff_mean == pytest.approx(-0.4)
    assert first.cost_fraction_mean == pytest.approx(0.20)
    assert one.entries[2].cost_fraction_mean == pytest.approx(0.40)  # rank, not zeros
    assert one.gap is not None and one.gap.mean == pytest.approx(0.10)
    assert one.gap.ci_low == pytest.approx(0.10) and one.gap.verdict == "separable"
    three = _table(s, "lenet300", 3.0)
    assert three.entries[0].radius == 5.0 and three.entries[0].cost_fraction_mean == 0.10
    bytes_one = _table(s, "lenet300", 1.0, "structured bytes")
    assert bytes_one.entries[0].cost_fraction_mean == pytest.approx(0.25)
    assert _table(s, "convnet", 0.5).entries == ()
    assert _table(s, "convnet", 1.0).entries[0].label == "l21 · projected"


def test_rank_and_architecture_come_from_the_caller() -> None:
    # Without being told, the summary counts nuclear by its zeros (none here) and does not
    # guess an architecture; the CLI tells it from ProjectionSpec.low_rank / ModelSpec.
    plain = summarise_rows(known_rows(), (1.0,))
    nuclear = [e for e in _table(plain, "lenet300", 1.0).entries if e.constraint == "nuclear"]
    assert nuclear[0].label == "nuclear · projected" and nuclear[0].cost_fraction_mean == 1.0
    assert "| fashion-mnist · lenet300 | ? | 1 |" in to_markdown(plain)


def test_markdown_has_the_claim_two_comparison() -> None:
    text = to_markdown(summarise(known_rows(), bands=(1.0,)))
    assert "| fashion-mnist · lenet300 | fully connected | 1 | 80.0 % | 75.0 % |" in text
    assert "| fashion-mnist · convnet | convolutional | 1 | 40.0 % | 40.0 % |" in text
    assert "separable" in text and "no constrained cell reaches" not in text


def test_unpaired_or_noisy_gaps_are_not_called_separable() -> None:
    rows = [r for r in known_rows() if r["model"] == "lenet300"]
    for r in rows:  # l1 as cheap as l11 on average, but noisy: no real gap
        if r["constraint"] == "l1":
            r["maccs_structured"] = round(DENSE_MACCS * (0.20 + (0.05 if r["seed"] % 2 else -0.05)))
    gap = _table(summarise(rows, bands=(1.0,)), "lenet300", 1.0).gap
    assert gap is not None and gap.verdict == "not separable"


def test_cli_summary_formats(tmp_path: Path) -> None:
    db = summary_db(tmp_path)
    md = runner.invoke(app, ["summary", "--db", str(db), "--band", "1"])
    assert md.exit_code == 0, md.output
    assert "### fashion-mnist · lenet300: within 1 accuracy points of dense" in md.output
    got = runner.invoke(app, ["summary", "--db", str(db), "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(got.output)))
    assert {r["band_points"] for r in rows} == {"0.5", "1.0", "2.0"}
    js = json.loads(runner.invoke(app, ["summary", "--db", str(db), "--format",
                                        "json"]).output)
    assert js[0]["rank"] == 1 and "gap_verdict" in js[0]
    out = tmp_path / "summary.md"
    assert runner.invoke(app, ["summary", "--db", str(db), "-o", str(out)]).exit_code == 0
    assert out.read_text().startswith("### fashion-mnist")


def test_cli_summary_procedure_filter_keeps_dense(tmp_path: Path) -> None:
    db = summary_db(tmp_path)
    md = runner.invoke(app, ["summary", "--db", str(db), "--band", "1",
                             "--procedure", "lottery"])
    assert md.exit_code == 0, md.output
    assert "nothing to compare" in md.output  # no lottery rows in this db
    everything = runner.invoke(app, ["summary", "--db", str(db), "--band", "1"])
    projected = runner.invoke(app, ["summary", "--db", str(db), "--band", "1",
                                    "--procedure", "projected"])
    assert projected.output == everything.output and "l11 · projected" in projected.output


def test_gap_is_to_the_best_other_constraint() -> None:
    rows = known_rows()
    extra = [dict(r, procedure="lottery", maccs_structured=round(DENSE_MACCS * 0.22))
             for r in rows if r["constraint"] == "l11" and r["radius"] == 10.0]
    one = _table(summarise(rows + extra, (1.0,)), "lenet300", 1.0)
    # l11 · lottery is second, but the same constraint is no rival: the gap is to l1
    assert [e.label for e in one.entries][:3] == ["l11 · projected", "l11 · lottery",
                                                  "l1 · projected"]
    assert one.gap is not None and one.gap.rival == "l1 · projected"
    assert one.gap.mean == pytest.approx(0.10)
    assert "vs l1 · projected: 10.0 points of dense cost" in to_markdown(
        summarise(rows + extra, (1.0,)))


@pytest.mark.parametrize(("args", "needle"), [
    (["--procedure", "pruned"], "--procedure: unknown name(s) pruned"),
    (["--format", "xml"], "--format: 'xml'"),
    (["--band", "-1"], "--band must be in [0, 100], got -1.0"),
    (["--band", "100.5"], "--band must be in [0, 100], got 100.5"),
    (["--db", "missing.db"], "does not exist"),
])
def test_cli_summary_bad_input(tmp_path: Path, args: list[str], needle: str,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    db = summary_db(tmp_path)
    result = runner.invoke(app, ["summary", "--db", str(db), *args])
    assert result.exit_code == 2 and needle in result.stderr


def test_cells_view_lists_every_cell_seed_matched(tmp_path: Path) -> None:
    s = summarise(known_rows(), (1.0,))
    cells = {(c.model, c.constraint, c.radius): c for c in s.cells}
    assert len(cells) == len(s.cells) == 5  # 4 lenet300 cells + 1 convnet
    l11 = cells["lenet300", "l11", 10.0]
    assert l11.seeds == 5 and l11.accuracy_diff[0] == pytest.approx(-0.4)
    assert l11.maccs[0] == pytest.approx(0.20) and l11.nbytes[0] == pytest.approx(0.25)
    assert cells["lenet300", "nuclear", 3.0].maccs[0] == pytest.approx(0.40)  # by rank
    db = summary_db(tmp_path)
    md = runner.invoke(app, ["summary", "--db", str(db), "--cells"])
    assert md.exit_code == 0, md.output
    assert ("| l11 | projected | 10 | 5 | -0.40 ± 0.00 | 20.0 % ± 1.6 | 25.0 % ± 0.0 | — |"
            in md.output)
    assert "| nuclear (rank) | projected | 3 |" in md.output
    rows = list(csv.DictReader(io.StringIO(runner.invoke(
        app, ["summary", "--db", str(db), "--cells", "--format", "csv"]).output)))
    assert len(rows) == 5 and rows[0]["constraint"] == "l21"  # convnet sorts first


def test_summary_csv_and_json_columns_are_those_the_summary_writes(tmp_path: Path) -> None:
    # The columns `summary -o` recognises its CSV / JSON files by are the writer's own.
    synthetic = summary_db(tmp_path)
    for args, columns in (([], BAND_COLUMNS), (["--cells"], CELL_COLUMNS)):
        out = runner.invoke(app, ["summary", "--db", str(synthetic), "--format", "json", *args])
        rows = json.loads(out.output)
        assert rows and all(tuple(r) == columns for r in rows)
