"""The report and `greenbench summary` show the spread of timed figures (issue 25): the time
front plots each point's median epoch time with its within-point spread next to the spread
over seeds, noisy points are outlined and said so on the time and energy fronts, and the
summary's cells carry the median, its spread and the noise count."""

from __future__ import annotations

import re

import pytest

from projlib import schema
from projlib.report import build_report
from projlib.report.claims import cell_rows, cells_markdown, summarise, to_markdown

from .test_html import PROVENANCE, figures_of, trace_names


def _timed(rows: list[dict]) -> list[dict]:
    # l11 at radius 1 (projected and lottery) is noisy in seed 1 (IQR 40 % of its median);
    # everything else quiet.
    for row in rows:
        if row["status"] != "done":
            continue
        base = 0.02 if row["procedure"] == "dense" else 0.03 + 0.001 * (row["radius"] or 0)
        noisy = row["constraint"] == "l11" and row["radius"] == 1.0 and row["seed"] == 1
        row.update(epoch_time_median_s=base + 0.001 * row["seed"],
                   epoch_time_iqr_s=(0.4 if noisy else 0.05) * base, epochs_timed=5,
                   epoch_time_noisy=int(noisy))
    return rows


@pytest.fixture
def timed_rows(rows_factory) -> list[dict]:
    return _timed(rows_factory(measured_energy=True))


def test_time_front_shows_median_seed_spread_and_within_point_spread(timed_rows) -> None:
    page = build_report(timed_rows, PROVENANCE)
    fig = figures_of(page)["fig-0-time"]
    names = trace_names(fig)
    assert names[-1] == "Pareto front" and names[0] == "dense baseline"
    within = fig["data"][names.index("within-point spread (± IQR / 2 over epochs)")]
    l1 = next(t for t in fig["data"] if t["name"] == "l1 · projected")
    # x: the mean over seeds of the medians; seed bars on the series, IQR / 2 on the overlay.
    assert l1["x"][0] == pytest.approx(0.0315)
    assert l1["error_x"]["array"][0] == pytest.approx(0.000707, rel=1e-3)
    i = within["x"].index(l1["x"][0])
    assert within["error_x"]["array"][i] == pytest.approx(0.05 * 0.031 / 2, rel=1e-6)
    assert fig["layout"]["xaxis"]["title"]["text"] == schema.axis_title("epoch_time_median_s")
    assert "grey bars: within-point spread" in page


def _outline(fig: dict, name: str) -> list[str] | str:
    trace = next(t for t in fig["data"] if t["name"] == name)
    return trace["marker"]["line"]["color"]


def test_noisy_points_are_outlined_and_said_on_time_and_energy_fronts(timed_rows) -> None:
    page = build_report(timed_rows, PROVENANCE)
    figs = figures_of(page)
    for slug in ("time", "energy"):
        colours = _outline(figs[f"fig-0-{slug}"], "l11 · projected")
        assert colours[0] == "#d62728" and set(colours[1:]) == {"white"}, slug
        l11 = next(t for t in figs[f"fig-0-{slug}"]["data"] if t["name"] == "l11 · projected")
        assert "noisy timing</b> in 1 of 2 seeds" in l11["hovertext"][0]
        assert "noisy timing" not in l11["hovertext"][1]
    # A static cost is not a timing: no outline, no timing line.
    assert _outline(figs["fig-0-maccs"], "l11 · projected") == "white"
    assert "epoch time" not in figs["fig-0-maccs"]["data"][1]["hovertext"][0]
    assert "2 of 19 points" in page and "no within-point spread" in page


def test_rows_without_epoch_times_give_a_note_not_a_time_front(rows_factory) -> None:
    page = build_report(rows_factory(measured_energy=True), PROVENANCE)
    assert "fig-0-time" not in figures_of(page)
    note = re.search(r'<p class="not-measured" id="fig-0-time">(.*?)</p>', page)
    assert note and "schema 4" in note.group(1)


def test_summary_cells_carry_median_spread_and_noise(timed_rows) -> None:
    summary = summarise(timed_rows)
    (cell,) = [c for c in summary.cells
               if (c.constraint, c.procedure, c.radius) == ("l11", "projected", 1.0)]
    assert cell.epoch_time[0] == pytest.approx(0.0315) and cell.noisy == (1, 2)
    assert cell.epoch_iqr == pytest.approx((0.05 + 0.4) * 0.031 / 2)
    text = cells_markdown(summary)
    assert "epoch time, median ± seeds (IQR within)" in text
    assert "0.0315 ± 0.0007 s (IQR 0.0070), noisy 1/2" in text
    row = next(r for r in cell_rows(summary) if r["constraint"] == "l11"
               and r["procedure"] == "projected" and r["radius"] == 1.0)
    assert row["epoch_time_noisy_seeds"] == 1 and row["epoch_time_s_mean"] == cell.epoch_time[0]
    assert "2 of 38 timed points have noisy epoch times" in to_markdown(summary)


def test_summary_of_untimed_rows_says_nothing_about_noise(rows_factory) -> None:
    summary = summarise(rows_factory())
    assert all(c.epoch_time is None and c.noisy == (0, 0) for c in summary.cells)
    assert "noisy" not in to_markdown(summary)
    assert all(r["epoch_time_noisy_seeds"] is None for r in cell_rows(summary))
