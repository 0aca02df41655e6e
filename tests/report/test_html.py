"""Structure, self-containment, escaping and provenance of the HTML report (no browser)."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projlib.report import ReportConfig, build_report, safe_json_for_script

XSS = "<script>alert(1)</script>"
PROVENANCE = {
    "country_iso_code": "FRA",
    "energy_backends": [
        {"name": "rapl", "available": False, "reason": "permission denied"},
        {"name": "nvml", "available": False, "reason": "no NVIDIA driver"},
    ],
    "command": "greenbench run",
}


def figures_of(page: str) -> dict[str, dict]:
    match = re.search(r"const figures = (.*?);\nconst config", page, re.S)
    assert match, "figure data block missing"
    return {f["id"]: f["figure"] for f in json.loads(match.group(1))}


def trace_names(figure: dict) -> list[str]:
    return [t.get("name") for t in figure["data"]]


@pytest.fixture
def page_unmeasured(rows_factory) -> str:
    return build_report(rows_factory(measured_energy=False), PROVENANCE)


@pytest.fixture
def page_measured(rows_factory) -> str:
    return build_report(rows_factory(measured_energy=True), PROVENANCE)


def test_structure_and_figures(page_measured):
    page = page_measured
    assert page.startswith("<!DOCTYPE html>")
    assert page.rstrip().endswith("</html>")
    figs = figures_of(page)
    assert set(figs) == {f"fig-0-{s}" for s in
                         ("maccs", "memory", "energy", "carbon", "radius", "layers")}
    for slug in ("maccs", "memory", "energy", "carbon"):
        names = trace_names(figs[f"fig-0-{slug}"])
        assert names[0] == "dense baseline" and names[-1] == "Pareto front"
        assert {"l1 · projected", "l21 · lottery", "l11 · projected"} <= set(names)
    assert "dense baseline" in trace_names(figs["fig-0-radius"])
    layers = figs["fig-0-layers"]["data"]
    assert "input columns removed" in trace_names(figs["fig-0-layers"])
    assert layers[0]["y"] == ["0.weight (free)", "2.weight", "4.weight (free)"]
    # l1 is the first panel (registry order); its best point is r=20: (10, 10, 0) removed.
    assert layers[0]["x"] == [10, 10, 0] and layers[1]["x"] == [54, 118, 64]
    for anchor in ('id="results-table"', 'id="provenance"', 'id="unfinished"', 'id="sec-0"'):
        assert anchor in page


def test_dense_marked_and_error_bars_on_both_axes(page_measured):
    fig = figures_of(page_measured)["fig-0-maccs"]
    dense = fig["data"][0]
    assert dense["marker"]["symbol"] == "star"
    l11 = next(t for t in fig["data"] if t["name"] == "l11 · projected")
    # Two seeds per cell in the fixture: std present on accuracy (seed jitter) ...
    assert all(v is not None and v > 0 for v in l11["error_y"]["array"])
    # ... and on the cost axis (identical costs across seeds give std 0, not None).
    assert all(v is not None for v in l11["error_x"]["array"])
    assert "seeds: 2 (0, 1)" in l11["hovertext"][0]
    for needle in ("constraint: l11", "radius: 1", "procedure: projected", "fraction nonzero"):
        assert needle in l11["hovertext"][0]


def test_pareto_line_is_the_non_dominated_set(page_measured):
    fig = figures_of(page_measured)["fig-0-energy"]
    front = fig["data"][-1]
    assert front["x"] == sorted(front["x"])
    points = [(x, y) for t in fig["data"][:-1] for x, y in zip(t["x"], t["y"], strict=True)]
    for fx, fy in zip(front["x"], front["y"], strict=True):
        assert not any(x <= fx and y >= fy and (x < fx or y > fy) for x, y in points)


def test_energy_not_measured_gives_a_note_not_a_plot(page_unmeasured):
    figs = figures_of(page_unmeasured)
    assert "fig-0-energy" not in figs and "fig-0-carbon" not in figs
    note = re.search(r'<p class="not-measured" id="fig-0-energy">(.*?)</p>', page_unmeasured)
    assert note and note.group(1).startswith("not measured: ")
    assert "permission denied" in note.group(1)
    assert 'id="fig-0-carbon">not measured: no energy was measured' in page_unmeasured
    # Not-measured energy is never shown as a number in the table.
    assert ">0 J<" not in page_unmeasured
    assert 'class="nm" title="not measured">—</td>' in page_unmeasured


def test_plotlyjs_inline_exactly_once_and_no_external_resources(page_measured):
    assert len(re.findall(r"plotly\.js v\d", page_measured)) == 1
    assert page_measured.count("<script") == 2  # plotly.js + our figure/table script
    # Our markup (plotly.js itself is excluded: it carries link strings for its modebar, and
    # the CSP plus the browser test check that nothing is fetched at run time).
    markup = re.sub(r"<script[^>]*>.*?</script>", "", page_measured, flags=re.S)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", markup)
    assert "<link" not in markup
    assert "cdn.plot.ly" not in markup
    assert "Content-Security-Policy" in page_measured and "default-src 'none'" in page_measured


def test_user_strings_are_escaped(rows_factory):
    rows = rows_factory(dataset=XSS, constraint_names=("l1", XSS))
    rows[-1]["error"] = "boom </script><script>alert(2)</script>"
    page = build_report(rows, {"command": XSS}, config=ReportConfig(title=XSS))
    assert XSS not in page and "alert(2)</script>" not in page
    assert page.count("<script") == 2
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # Inside the figure JSON the name is HTML-escaped (Plotly shows it literally) and the
    # JSON text has no raw '<' at all.
    figures_block = re.search(r"const figures = (.*?);\nconst config", page, re.S).group(1)
    assert "<" not in figures_block
    names = {n for f in figures_of(page).values() for n in trace_names(f)}
    assert "&lt;script&gt;alert(1)&lt;/script&gt; · projected" in names


def test_provenance_panel(page_measured, page_unmeasured):
    panel = page_measured[page_measured.index('id="provenance"'):]
    for needle in ("package-0:rapl", "RAPL powercap", "38 / 38", "FRA", "56", "estimate",
                   "codecarbon-offline", "2.14.1", "f1b6eed", "0.1.0", "greenbench run"):
        assert needle in panel, needle
    panel = page_unmeasured[page_unmeasured.index('id="provenance"'):]
    assert "Energy not measured for any of the 38 finished points" in panel
    assert "nvml: unavailable (no NVIDIA driver)" in panel
    assert "only a model-based estimate exists" in panel
    assert '<td>estimate <span class=badge>estimate</span>' in panel


def test_table_rows_and_failures(page_measured):
    table = page_measured[page_measured.index('id="results-table"'):]
    table = table[: table.index("</table>")]
    assert table.count("<tr") == 1 + 19  # header + 19 aggregated cells
    assert '<tr class="dense">' in table
    assert "SVD did not converge &lt;b&gt;bold&lt;/b&gt;" in page_measured


def test_done_rows_without_accuracy_are_counted_not_plotted(row_factory):
    page = build_report([row_factory(), row_factory(seed=1, accuracy=float("nan"))], {})
    assert "2 done; 1 done without a measured accuracy, not plotted" in page


def test_no_finished_points_still_renders(row_factory):
    page = build_report([row_factory(status="failed", error="x")], {})
    assert "No finished points to plot" in page and figures_of(page) == {}


@pytest.mark.parametrize(
    ("rows", "provenance", "config", "exc", "match"),
    [
        ("rows", {}, None, TypeError, "rows must be a list"),
        ([], [], None, TypeError, "provenance must be a dict"),
        ([], {}, {"title": "x"}, TypeError, "config must be a ReportConfig"),
    ],
)
def test_bad_arguments(rows, provenance, config, exc, match):
    with pytest.raises(exc, match=match):
        build_report(rows, provenance, config=config)


def test_report_config_validation():
    with pytest.raises(ValueError, match="accuracy_tolerance"):
        ReportConfig(accuracy_tolerance=-0.1)
    with pytest.raises(TypeError, match="accuracy_tolerance"):
        ReportConfig(accuracy_tolerance="0.1")
    with pytest.raises(ValueError, match="title"):
        ReportConfig(title=" ")


def test_safe_json_for_script_round_trips():
    value = {"s": "</script><!-- & \u2028 \u2029 >", "n": [1, 2.5, None]}
    text = safe_json_for_script(json.dumps(value))
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == value


def test_one_section_per_dataset_and_model(rows_factory):
    rows = rows_factory() + rows_factory(dataset="mnist")
    page = build_report(rows, {})
    figs = figures_of(page)
    assert {"fig-0-maccs", "fig-1-maccs"} <= set(figs)
    assert "digits · mlp" in page and "mnist · mlp" in page
    assert "digits" in figs["fig-0-maccs"]["layout"]["title"]["text"]
    assert "mnist" in figs["fig-1-maccs"]["layout"]["title"]["text"]


_METRIC_COLUMNS = ("test_accuracy", "fraction_nonzero", "removed_input_fraction",
                   "maccs_structured", "bytes_structured", "energy_j", "carbon_g", "radius",
                   "layers_json", "energy_json", "seed", "wall_time_s")


# rows_factory is a pure function, so sharing the fixture across examples is safe.
@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 37), st.sampled_from(_METRIC_COLUMNS),
                          st.sampled_from([None, float("nan"), float("inf"), "garbage"])),
                max_size=25))
def test_any_missing_or_broken_values_still_render(rows_factory, holes):
    """Schema-valid rows with arbitrary None/NaN/garbage cells: the report still builds, and
    its figure data is strict JSON (no NaN smuggled in as a number)."""
    rows = rows_factory(measured_energy=True)
    for index, column, value in holes:
        rows[index][column] = value
    page = build_report(rows, {})
    for figure in figures_of(page).values():
        json.dumps(figure, allow_nan=False)
    assert page.count("<script") == 2
