"""A real headless Chromium loads the report offline: no console errors, no network, no XSS
dialog, the expected traces rendered, the table sorts.

Needs Debian's chromium (`apt-get install -y chromium`); skipped with the reason otherwise.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from projlib.report import build_report

from .chromium_cdp import Browser, find_chromium

XSS = "<script>alert(1)</script>"
CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)"
)

TRACES_JS = """Array.from(document.querySelectorAll('.js-plotly-plot')).map(
  gd => [gd.id, gd.data.map(t => t.name), gd.querySelectorAll('.point, .bars path').length])"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Browser:
    profile = tmp_path_factory.mktemp("chromium-profile")
    with Browser(CHROMIUM, profile) as b:
        yield b


def _load(browser: Browser, path: Path, html_text: str, n_plots: int) -> dict:
    path.write_text(html_text, encoding="utf-8")
    browser.events.clear()
    browser.navigate(path.as_uri())
    browser.wait_for(
        f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {n_plots}")
    return {fig_id: (names, marks) for fig_id, names, marks in browser.evaluate(TRACES_JS)}


def test_report_renders_without_errors(browser, rows_factory, tmp_path):
    rows = rows_factory(measured_energy=True, dataset=XSS, constraint_names=("l1", "l11", XSS))
    page = build_report(rows, {"command": XSS, "country_iso_code": "FRA"})
    plots = _load(browser, tmp_path / "report.html", page, 6)
    assert browser.problems() == []  # console errors, exceptions, CSP/network errors, dialogs
    assert set(plots) == {f"fig-0-{s}" for s in
                          ("maccs", "memory", "energy", "carbon", "radius", "layers")}
    for fig_id, (_names, marks) in plots.items():
        assert marks > 0, f"{fig_id} drew nothing"
    names = plots["fig-0-maccs"][0]
    assert names[0] == "dense baseline" and names[-1] == "Pareto front"
    assert "l11 · projected" in names
    # The hostile name is shown literally (escaped), in markup and in Plotly's legend.
    assert XSS in browser.evaluate("document.querySelector('#sec-0 h2').textContent")
    legend = browser.evaluate("document.querySelector('#fig-0-maccs .legend').textContent")
    assert f"{XSS} · projected" in legend
    assert browser.evaluate("document.querySelectorAll('script').length") == 2

    # Hover a point: the hover label carries constraint, radius, procedure, sparsity, seeds.
    hover = browser.evaluate("""(() => {
        const gd = document.getElementById('fig-0-maccs');
        Plotly.Fx.hover(gd, [{curveNumber: 1, pointNumber: 0}]);
        return gd.querySelector('.hovertext') ? gd.querySelector('.hovertext').textContent : '';
    })()""")
    for needle in ("constraint:", "radius:", "procedure:", "fraction nonzero:", "seeds: 2"):
        assert needle in hover

    # Sortable table: accuracy ascending then descending; the dense baseline is the best.
    col = browser.evaluate("""Array.from(document.querySelectorAll('#results-table th'))
        .findIndex(th => th.textContent.startsWith('accuracy') &&
                         !th.textContent.includes('std'))""")
    first_acc = f"""(() => {{
        document.querySelectorAll('#results-table th')[{col}].click();
        return document.querySelector('#results-table tbody tr').cells[{col}].dataset.sort;
    }})()"""
    lowest, highest = float(browser.evaluate(first_acc)), float(browser.evaluate(first_acc))
    assert lowest < highest
    assert browser.evaluate("document.querySelector('#results-table tbody tr').className") \
        == "dense"
    assert browser.problems() == []

    shot = tmp_path / "report.png"
    browser.screenshot(shot)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000


def test_unmeasured_energy_shows_notes(browser, rows_factory, tmp_path):
    page = build_report(rows_factory(measured_energy=False), {})
    plots = _load(browser, tmp_path / "unmeasured.html", page, 4)
    assert browser.problems() == []
    assert set(plots) == {"fig-0-maccs", "fig-0-memory", "fig-0-radius", "fig-0-layers"}
    note = browser.evaluate("document.getElementById('fig-0-energy').textContent")
    assert note.startswith("not measured: ") and "permission denied" in note
    visible = browser.evaluate("document.getElementById('fig-0-energy').offsetHeight > 0")
    assert visible


def test_harness_sees_errors_dialogs_and_blocked_fetches(browser, tmp_path):
    """The checks above can fail: a page that misbehaves is reported."""
    csp = "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; " \
          "script-src 'unsafe-inline'\">"
    bad = (f"<!DOCTYPE html><html><head>{csp}</head><body><p>x</p>"
           '<img src="https://cdn.example.invalid/x.png">'
           "<script>console.error('boom'); alert(1);"
           "setTimeout(() => { throw new Error('late'); }, 0);</script></body></html>")
    path = tmp_path / "bad.html"
    path.write_text(bad, encoding="utf-8")
    browser.events.clear()
    browser.navigate(path.as_uri())
    browser.wait_for("document.readyState === 'complete'")
    browser.evaluate("new Promise(r => setTimeout(r, 200))")
    text = "\n".join(browser.problems())
    assert "boom" in text
    assert "dialog: alert" in text
    assert "late" in text
    assert "Content Security Policy" in text or "cdn.example.invalid" in text


def test_time_front_with_spread_renders(browser, rows_factory, tmp_path):
    # The time front (issue 25): the within-point spread overlay and the noisy outlines render
    # without a console error, and the error bars are drawn.
    from .test_spread_report import _timed

    page = build_report(_timed(rows_factory(measured_energy=True)), {})
    plots = _load(browser, tmp_path / "timed.html", page, 7)
    assert browser.problems() == []
    names, marks = plots["fig-0-time"]
    assert "within-point spread (± IQR / 2 over epochs)" in names and marks > 0
    bars = browser.evaluate(
        "document.querySelectorAll('#fig-0-time .errorbar path').length")
    assert bars > 0
