"""Self-contained HTML report: results rows -> Plotly figures -> one offline HTML page.

Security/offline contract: plotly.js is inlined exactly once (no CDN); a Content-Security-Policy
forbids every network fetch; user strings are HTML-escaped in markup, and the figure JSON has
``<``, ``>`` and ``&`` written as ``\\u003c``-style escapes so no string can close the
``<script>`` element that carries it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

import plotly.io as pio
from plotly.offline import get_plotlyjs

from projlib import schema
from projlib.checks import check_number
from projlib.report.aggregate import AggregatePoint, aggregate_rows, validate_rows
from projlib.report.constraints import read_constraints
from projlib.report.figures import (
    CostAxis,
    FigureSpec,
    cost_axes,
    layers_figure,
    pareto_figure,
    radius_figure,
    speedup_figure,
)
from projlib.report.pareto import pareto_front
from projlib.report.provenance_panel import render_provenance_html, summarise_energy
from projlib.report.static import PAGE_CSS, TABLE_JS

__all__ = [
    "REPORT_GENERATOR", "ReportConfig", "build_report", "is_greenbench_report",
    "safe_json_for_script",
]

_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "img-src data: blob:; font-src data:")
_PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}
# Marks a file as a greenbench report: the CLI overwrites an existing file only when its head
# carries this (or the head every report had before the marker existed).
REPORT_GENERATOR = '<meta name="generator" content="greenbench report">'
_HEAD = '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
_LEGACY_HEAD = f'{_HEAD}<meta http-equiv="Content-Security-Policy" content="{_CSP}">'


def is_greenbench_report(path: Any) -> bool:
    """True when the file at `path` starts like a report this package wrote. Reads 4 KiB."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096).decode("utf-8", errors="replace")
    except OSError:
        return False
    return head.startswith(_HEAD) and (REPORT_GENERATOR in head or head.startswith(_LEGACY_HEAD))


@dataclass(frozen=True)
class ReportConfig:
    """Report options. ``accuracy_tolerance``: absolute accuracy (0..1) a constrained point may
    lose against the dense baseline and still be the "best point" of its constraint."""

    title: str = "greenbench report"
    accuracy_tolerance: float = 0.01
    energy: str = "above_idle"  # or "total": which training energy the energy front plots

    def __post_init__(self) -> None:
        if self.energy not in ("above_idle", "total"):
            raise ValueError(f"energy must be 'above_idle' or 'total', got {self.energy!r}")
        if not isinstance(self.title, str) or not self.title.strip():
            raise ValueError("title must be a non-empty string")
        check_number("accuracy_tolerance", self.accuracy_tolerance, 0, 1)


def safe_json_for_script(text: str) -> str:
    """Make JSON text safe inside an inline <script>: ``<``, ``>`` and ``&`` occur only inside
    JSON strings, where their \\u escapes decode to the same characters; U+2028/2029 are
    escaped for pre-ES2019 parsers."""
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _why_missing(cost: CostAxis, rows: Sequence[Mapping[str, Any]],
                 provenance: Mapping[str, Any]) -> str:
    summary = summarise_energy(rows, provenance)
    if cost.metric in ("energy_j", "energy_above_idle_j"):
        return "; ".join(summary.reasons) or "no energy backend reported a reading"
    if cost.metric == "carbon_g":
        methods = ", ".join(summary.carbon_methods) or "not recorded"
        if summary.points_with_energy == 0:
            return f"no energy was measured, so there is no carbon estimate (method: {methods})"
        return f"carbon estimate unavailable (method: {methods})"
    if cost.metric == "epoch_time_median_s":
        return ("no finished point recorded its epoch times (rows written before schema 4: "
                "run the sweep again to time them)")
    if cost.slug == "inference":
        return ("no finished point measured its inference (greenbench run "
                "--measure-inference)")
    return f"the cost analyser reported no {cost.metric} for the finished points"


def _figure_block(spec: FigureSpec, slug: str, figures: list[dict[str, Any]]) -> str:
    title = f"<h3>{escape(spec.title)}</h3>"
    # Pareto plots pair up two per row; the radius and per-layer pictures need the full width.
    wide = "" if slug.startswith("pareto-") else " wide"
    if spec.figure is None:
        note = escape(spec.note or "not available")
        return (f'<div class="figure{wide}" data-figure="{slug}">{title}'
                f'<p class="not-measured" id="{spec.fig_id}">{note}</p></div>')
    figures.append({"id": spec.fig_id, "figure": json.loads(pio.to_json(spec.figure))})
    caption = f'<p class="caption">{escape(spec.caption)}</p>' if spec.caption else ""
    return (f'<div class="figure{wide}" data-figure="{slug}">'
            f'<div class="plot" id="{spec.fig_id}"></div>{caption}</div>')


def _fmt_cell(value: float | None, digits: int = 4) -> str:
    if value is None:
        return '<td data-sort="" class="nm" title="not measured">—</td>'
    return f'<td data-sort="{value!r}">{value:.{digits}g}</td>'


def _table(points: Sequence[AggregatePoint]) -> str:
    fronts: dict[int, bool] = {}
    by_section: dict[tuple[str, str], list[int]] = {}
    for i, p in enumerate(points):
        by_section.setdefault((p.dataset, p.model), []).append(i)
    for members in by_section.values():
        front = pareto_front([points[i].mean("maccs_structured") for i in members],
                             [points[i].mean("test_accuracy") for i in members])
        fronts.update({members[j]: True for j in front})
    text_cols = ("dataset", "model", "procedure", "constraint", "radius", "groups", "seeds")
    # (label, metric); accuracy first: its std column follows it.
    num_cols = tuple((schema.label(name), name) for name in schema.REPORT_TABLE)
    head = "".join(
        f'<th data-type="{"num" if c in ("radius", "seeds") else "text"}">{c}</th>'
        for c in text_cols
    )
    head += "".join(f'<th data-type="num">{escape(label)}</th>' for label, _ in num_cols[:1])
    head += '<th data-type="num">accuracy std</th>'
    head += "".join(f'<th data-type="num">{escape(label)}</th>' for label, _ in num_cols[1:])
    head += '<th data-type="text">Pareto (MACCs)</th>'
    body = []
    for i, p in enumerate(points):
        cells = [
            f"<td>{escape(p.dataset)}</td>", f"<td>{escape(p.model)}</td>",
            f"<td>{escape(p.procedure)}</td>", f"<td>{escape(p.constraint or '—')}</td>",
            _fmt_cell(p.radius), f"<td>{escape(p.groups or '—')}</td>",
            f'<td data-sort="{len(p.seeds)}" title="seeds '
            f'{escape(", ".join(map(str, p.seeds)))}">{len(p.seeds)}</td>',
            _fmt_cell(p.mean("test_accuracy")),
            _fmt_cell(p.std("test_accuracy"), 2),
        ]
        cells += [_fmt_cell(p.mean(metric)) for _, metric in num_cols[1:]]
        cells.append(f"<td>{'yes' if fronts.get(i) else ''}</td>")
        cls = ' class="dense"' if p.is_dense else ""
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return (
        '<section class="panel" id="results"><h2>All points (mean over seeds)</h2>'
        '<p class="caption">Click a column header to sort; — = not measured.</p>'
        f'<div class="scroll"><table class="sortable" id="results-table"><thead><tr>{head}'
        f'</tr></thead><tbody>{"".join(body)}</tbody></table></div></section>'
    )


def _failures(rows: Sequence[Mapping[str, Any]]) -> str:
    bad = [r for r in rows if r.get("status") != "done"]
    if not bad:
        return ""
    body = "".join(
        "<tr>" + "".join(
            f"<td>{escape(str(r.get(k) if r.get(k) is not None else '—'))}</td>"
            for k in ("status", "dataset", "model", "procedure", "constraint", "radius", "seed")
        ) + f'<td class="err">{escape(str(r.get("error") or "")[:500])}</td></tr>'
        for r in bad
    )
    head = "".join(f"<th>{c}</th>" for c in ("status", "dataset", "model", "procedure",
                                              "constraint", "radius", "seed", "error"))
    return ('<section class="panel" id="unfinished"><h2>Points not finished</h2>'
            f'<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></section>')


def _status_text(rows: Sequence[Mapping[str, Any]], points: Sequence[AggregatePoint]) -> str:
    # The header's count of points by status, and why some finished ones are not plotted.
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[str(r.get("status"))] = statuses.get(str(r.get("status")), 0) + 1
    status_text = ", ".join(f"{n} {escape(s)}" for s, n in sorted(statuses.items())) or "none"
    plotted = sum(len(p.rows) for p in points)
    skipped = statuses.get("done", 0) - plotted
    if skipped:
        status_text += f"; {skipped} done without a measured accuracy, not plotted"
    running = statuses.get("running", 0)
    if running:
        # A report is written after its own sweep's points finish, so a point still "running"
        # belongs to another process sharing the db: its figures are not in this report yet.
        status_text += (f"; {running} point{'s' if running > 1 else ''} still running in "
                        "another process (rerun `greenbench report` when it finishes)")
    return status_text


def _section(s: int, where: str, members: Sequence[AggregatePoint],
             rows: Sequence[Mapping[str, Any]], provenance: Mapping[str, Any],
             config: ReportConfig, styles: Mapping[str, Any], figures: list[dict[str, Any]]
             ) -> str:
    # The figures of one (dataset, model), number s; their data is appended to ``figures``.
    blocks = [
        _figure_block(
            pareto_figure(members, cost, f"fig-{s}-{cost.slug}",
                          f"{where}: accuracy vs {cost.title}",
                          _why_missing(cost, rows, provenance), styles),
            f"pareto-{cost.slug}", figures)
        for cost in cost_axes(members, config.energy)
    ]
    blocks.append(_figure_block(
        speedup_figure(members, f"fig-{s}-speedup",
                       f"{where}: predicted vs realised inference speed-up", styles),
        "speedup", figures))
    blocks.append(_figure_block(
        radius_figure(members, f"fig-{s}-radius", f"{where}: accuracy vs radius", styles),
        "radius", figures))
    blocks.append(_figure_block(
        layers_figure(members, config.accuracy_tolerance, f"fig-{s}-layers",
                      f"{where}: removed groups per layer, best point per constraint",
                      styles),
        "layers", figures))
    return (f'<section class="panel" id="sec-{s}"><h2>{escape(where)}</h2>'
            f'<div class="grid">{"".join(blocks)}</div></section>')


def build_report(
    rows: list[dict], provenance: dict, *, config: ReportConfig | None = None
) -> str:
    """Render the results rows (row schema of docs/ARCHITECTURE.md) as one self-contained HTML
    page: Pareto plots of accuracy vs structured MACCs, memory, energy and carbon per
    (dataset, model), accuracy vs radius, per-layer removed groups, a sortable table and a
    provenance panel. Only rows with status "done" and a measured accuracy are plotted.

    Raises:
        TypeError / ValueError: naming ``rows``, ``provenance`` or ``config``.
    """
    rows = validate_rows(rows)
    if not isinstance(provenance, Mapping):
        raise TypeError(f"provenance must be a dict, got {type(provenance).__name__}")
    if config is None:
        config = ReportConfig()
    elif not isinstance(config, ReportConfig):
        raise TypeError(f"config must be a ReportConfig, got {type(config).__name__}")
    points = aggregate_rows(rows)
    status_text = _status_text(rows, points)
    figures: list[dict[str, Any]] = []
    sections: list[str] = []
    nav: list[str] = []
    keys = sorted({(p.dataset, p.model) for p in points})
    styles = read_constraints(provenance)  # name -> ConstraintInfo (from the registry)
    for s, (dataset, model) in enumerate(keys):
        members = [p for p in points if (p.dataset, p.model) == (dataset, model)]
        where = f"{dataset} · {model}"
        nav.append(f'<a href="#sec-{s}">{escape(where)}</a>')
        sections.append(_section(s, where, members, rows, provenance, config, styles, figures))
    if not sections:
        sections.append('<section class="panel"><p class="not-measured">No finished points '
                        "to plot.</p></section>")

    figures_json = safe_json_for_script(json.dumps(figures, allow_nan=False))
    config_json = safe_json_for_script(json.dumps(_PLOTLY_CONFIG))
    nav.append('<a href="#results">table</a>')
    nav.append('<a href="#provenance">provenance</a>')
    return "".join([
        _HEAD,
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        REPORT_GENERATOR,
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(config.title)}</title><style>{PAGE_CSS}</style></head><body>",
        f"<header><h1>{escape(config.title)}</h1>",
        f"<p>{len(rows)} sweep points ({status_text}); {len(points)} aggregated cells "
        "(mean ± sample std over seeds).</p>",
        f'<nav>{" | ".join(nav)}</nav></header>',
        *sections,
        _table(points),
        _failures(rows),
        render_provenance_html(rows, provenance),
        f'<script type="text/javascript">{get_plotlyjs()}</script>',
        f'<script type="text/javascript">(function () {{\n'
        f"const figures = {figures_json};\nconst config = {config_json};\n"
        "for (const f of figures) {\n"
        "  Plotly.newPlot(f.id, f.figure.data, f.figure.layout, config);\n}\n"
        f"}})();\n{TABLE_JS}</script>",
        "</body></html>\n",
    ])
