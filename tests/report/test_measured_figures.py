"""Energy above idle (default) or total, measured inference, predicted vs realised speed-up,
and the idle/warm-up/threads provenance in the HTML report."""

from __future__ import annotations

import json

import pytest

from projlib.report import ReportConfig, build_report


def _with_measurements(rows: list[dict], *, above_idle: bool, inference: bool) -> list[dict]:
    for r in rows:
        if r["status"] != "done":
            continue
        if above_idle and r["energy_j"] is not None:
            r["energy_above_idle_j"] = r["energy_j"] - 20.0
            r["idle_power_w"] = 5.7
        r["idle_json"] = json.dumps({"baseline": None, "note": "no device measured energy"})
        r["threads"] = 1
        r["threads_json"] = json.dumps({"threads": 1, "policy": "auto",
                                        "reason": "measured: 2 threads 0.40x the speed of 1"})
        r["warmup_time_s"] = 0.3
        if inference:
            ratio = r["maccs_dense"] / r["maccs_structured"]
            r["speedup_predicted_maccs"] = ratio
            r["speedup_realised_latency"] = 1 + (ratio - 1) / 2
            r["compact_latency_b1_s"] = 1e-4 / r["speedup_realised_latency"]
    return rows


def test_energy_front_plots_above_idle_by_default_and_total_on_request(rows_factory) -> None:
    rows = _with_measurements(rows_factory(measured_energy=True), above_idle=True,
                              inference=True)
    html = build_report(rows, {})
    assert "training energy above idle (J)" in html
    assert "training energy, total incl. idle (J)" not in html
    total = build_report(rows, {}, config=ReportConfig(energy="total"))
    assert "training energy, total incl. idle (J)" in total
    with pytest.raises(ValueError, match="energy"):
        ReportConfig(energy="idle")


def test_without_an_idle_baseline_the_total_is_plotted_and_labelled(rows_factory) -> None:
    rows = _with_measurements(rows_factory(measured_energy=True), above_idle=False,
                              inference=False)
    html = build_report(rows, {})
    assert "training energy, total incl. idle (J)" in html


def test_inference_figures(rows_factory) -> None:
    rows = _with_measurements(rows_factory(), above_idle=False, inference=True)
    html = build_report(rows, {})
    # No inference energy anywhere: latency stands in, and says so.
    assert "measured inference latency at batch 1, compacted model (s)" in html
    assert 'id="fig-0-speedup"' in html and "realised = predicted" in html
    bare = build_report(_with_measurements(rows_factory(), above_idle=False,
                                           inference=False), {})
    assert "not measured: no constrained point measured its inference" in bare


def test_provenance_panel_shows_idle_warm_up_and_threads(rows_factory) -> None:
    rows = _with_measurements(rows_factory(measured_energy=True), above_idle=True,
                              inference=False)
    html = build_report(rows, {})
    panel = html[html.index('id="provenance"'):]
    assert "Idle baseline, warm-up and threads" in panel
    assert "5.7" in panel and "measured: 2 threads 0.40x the speed of 1" in panel
    none = build_report(_with_measurements(rows_factory(), above_idle=False, inference=False),
                        {})
    assert "not measured: no device measured energy" in none[none.index('id="provenance"'):]
