"""Plotly figures of aggregated sweep points.

Every user string (dataset, model, constraint, procedure, layer names) is HTML-escaped before
it goes into a Plotly label: Plotly renders a subset of HTML in text, and decodes entities, so
an escaped ``<script>`` is shown literally and can never become markup.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from projlib import schema
from projlib.report.aggregate import AggregatePoint, Stat, parse_json_field, to_number
from projlib.report.constraints import (
    RANK_COUNTED,
    ConstraintInfo,
    counted_cost,
    low_rank_names,
)
from projlib.report.pareto import pareto_front

__all__ = [
    "CostAxis",
    "COST_AXES",
    "FigureSpec",
    "cost_axes",
    "speedup_figure",
    "pareto_figure",
    "radius_figure",
    "layers_figure",
    "best_points",
    "constraint_colours",
    "constraint_label",
    "timing_line",
]

# Constraint labels and colours come from `ConstraintInfo` records (`projlib.report.constraints`,
# read from ``provenance["constraints"]``, written from the projection registry by the CLI): the
# report does not import projections. Constraints without a record follow in sorted order, with
# the palette colours no recorded one uses.
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
            "#17becf", "#bcbd22", "#7f7f7f")
_SYMBOLS = {"projected": "circle", "lottery": "square", "magnitude": "diamond"}
_EXTRA_SYMBOLS = ("triangle-up", "cross", "x", "pentagon", "hexagon", "triangle-down")
_DENSE_COLOUR = "#111111"
_RANK = " (rank)"  # after a low-rank constraint's MACCs, counted by rank
_LAYOUT = dict(
    template="plotly_white",
    height=460,
    margin=dict(l=70, r=20, t=60, b=60),
    legend=dict(font=dict(size=11)),
    hoverlabel=dict(align="left"),
)


@dataclass(frozen=True)
class CostAxis:
    """A cost column of the row schema and how to label it."""

    metric: str
    title: str
    slug: str


def _axis(metric: str, slug: str) -> CostAxis:
    return CostAxis(metric, schema.axis_title(metric), slug)


COST_AXES: tuple[CostAxis, ...] = (
    _axis("maccs_structured", "maccs"),
    _axis("bytes_structured", "memory"),
    _axis("epoch_time_median_s", "time"),
    _axis("energy_above_idle_j", "energy"),
    _axis("carbon_g", "carbon"),
    _axis("compact_energy_per_1000_j", "inference"),
)
# Stand-ins when the preferred figure was not measured: the total (idle included) where no idle
# baseline exists, and latency where no backend measures inference energy. Labels say which.
_FALLBACKS = {
    "energy_above_idle_j": _axis("energy_j", "energy"),
    "compact_energy_per_1000_j": _axis("compact_latency_b1_s", "inference"),
}


def cost_axes(points: Sequence[AggregatePoint], energy: str = "above_idle"
              ) -> tuple[CostAxis, ...]:
    """The cost axes to plot: `COST_AXES`, with each preferred figure replaced by its labelled
    stand-in when no point measured it. `energy="total"` plots training energy incl. idle."""
    out = []
    for axis in COST_AXES:
        if axis.metric == "energy_above_idle_j" and energy == "total":
            axis = _FALLBACKS[axis.metric]
        elif axis.metric in _FALLBACKS and not any(p.mean(axis.metric) is not None
                                                   for p in points):
            fallback = _FALLBACKS[axis.metric]
            if any(p.mean(fallback.metric) is not None for p in points):
                axis = fallback
        out.append(axis)
    return tuple(out)


@dataclass(frozen=True)
class FigureSpec:
    """A figure, or the reason there is none (``note`` starts with "not measured:")."""

    fig_id: str
    title: str  # plain text; escaped when rendered
    figure: go.Figure | None
    note: str | None = None
    caption: str | None = None


Styles = Mapping[str, ConstraintInfo]  # name -> its record (`read_constraints(provenance)`)


def constraint_label(constraint: str, styles: Styles | None = None) -> str:
    """The constraint's label from its record (unescaped), else its name."""
    info = styles.get(constraint) if styles else None
    return info.label if info is not None else constraint


def constraint_colours(points: Sequence[AggregatePoint],
                       styles: Styles | None = None) -> dict[str, str]:
    """A colour per constraint of ``points``, in legend order: the order and colours of the
    records in ``styles``, then the others sorted, coloured from the palette."""
    names = {p.constraint for p in points if p.constraint is not None}
    ordered = [c for c in (styles or {}) if c in names]
    ordered += sorted(names - set(ordered))
    fixed = {c: colour for c in ordered if styles and c in styles
             and (colour := styles[c].colour) is not None}
    free = [c for c in _PALETTE if c not in {v.lower() for v in fixed.values()}] or _PALETTE
    spare = itertools.cycle(free)
    return {c: fixed.get(c) or next(spare) for c in ordered}


def _symbols(points: Sequence[AggregatePoint]) -> dict[str, str]:
    out = dict(_SYMBOLS)
    extra = sorted({p.procedure for p in points} - set(out) - {"dense"})
    for i, proc in enumerate(extra):
        out[proc] = _EXTRA_SYMBOLS[i % len(_EXTRA_SYMBOLS)]
    out["dense"] = "star"
    return out


def _fmt(value: float | None, std: float | None = None, digits: int = 4) -> str:
    if value is None:
        return "not measured"
    text = f"{value:.{digits}g}"
    return f"{text} ± {std:.2g}" if std is not None else text


def hover_text(point: AggregatePoint, cost: CostAxis | None = None,
               stat: Stat | None = None) -> str:
    """Plotly hover text (escaped user strings, Plotly's <br> for line breaks); ``stat``: the
    cost as plotted (`cost_stat`), else the point's ``cost.metric``."""
    seeds = ", ".join(str(s) for s in point.seeds) or "not recorded"
    lines = [
        f"<b>{escape(point.label)}</b>",
        f"constraint: {escape(str(point.constraint or 'none (dense)'))}",
        f"radius: {_fmt(point.radius) if point.radius is not None else 'n/a'}",
        f"procedure: {escape(point.procedure)}",
        f"groups: {escape(str(point.groups or 'n/a'))}",
        f"accuracy: {_fmt(point.mean('test_accuracy'), point.std('test_accuracy'))}",
    ]
    if cost is not None:
        stat = stat or point.stats[cost.metric]
        value = _fmt(stat.mean, stat.std)
        rank = _RANK if stat is not point.stats[cost.metric] else ""
        lines.append(f"{escape(cost.title)}{rank}: {value}")
        if cost.metric in _TIMED:
            lines.append(timing_line(point))
    lines += [
        f"fraction nonzero: {_fmt(point.mean('fraction_nonzero'), point.std('fraction_nonzero'))}",
        f"removed inputs: {_fmt(point.mean('removed_input_fraction'))}",
        f"seeds: {len(point.seeds)} ({seeds})",
    ]
    return "<br>".join(lines)


# The fronts whose cost is a measured time or energy: their hover says how noisy the point's
# timing was and a noisy point is outlined (issue 25: noise said, not hidden).
_TIMED = ("epoch_time_median_s", "energy_j", "energy_above_idle_j")
_NOISY_OUTLINE = "#d62728"


def timing_line(point: AggregatePoint) -> str:
    """The point's epoch-time median and spread, and its noise flag, for a hover label."""
    median, iqr = point.mean("epoch_time_median_s"), point.mean("epoch_time_iqr_s")
    if median is None:
        return "epoch time: not recorded"
    spread = "no spread (under 3 epochs)" if iqr is None else f"IQR {iqr:.2g} s"
    noisy, judged = point.timing_noise()
    text = f"epoch time: median {median:.4g} s, {spread}"
    if noisy:
        text += (f"<br><b>noisy timing</b> in {noisy} of {judged} seeds (epoch-time IQR > "
                 f"{schema.NOISE_FRACTION:.0%} of the median)")
    return text


def _noise_outline(points: Sequence[AggregatePoint], timed: bool) -> dict[str, Any]:
    noisy = [timed and p.timing_noise()[0] > 0 for p in points]
    if not any(noisy):
        return dict(width=1, color="white")
    return dict(color=[_NOISY_OUTLINE if n else "white" for n in noisy],
                width=[3 if n else 1 for n in noisy])


def _within_point_trace(usable: Sequence[AggregatePoint]) -> go.Scatter:
    """Bars of the within-point spread of the epoch time (± half the IQR over epochs, mean
    over seeds), drawn over the seed error bars; markers hidden, no hover of its own."""
    return go.Scatter(
        x=[p.mean("epoch_time_median_s") for p in usable],
        y=[p.mean("test_accuracy") for p in usable],
        error_x=_errors([None if p.mean("epoch_time_iqr_s") is None
                         else p.mean("epoch_time_iqr_s") / 2 for p in usable])
        | dict(color="#999999", thickness=5, width=0),
        mode="markers", marker=dict(size=1, opacity=0), hoverinfo="skip",
        name="within-point spread (± IQR / 2 over epochs)",
    )


def _use_log(values: Sequence[float]) -> bool:
    # Log scale only when all positive and spanning a decade: MACC/byte savings are ratios.
    return bool(values) and min(values) > 0 and max(values) / min(values) >= 10


def _errors(values: Sequence[float | None]) -> dict[str, Any]:
    # null entries draw no bar (one seed gives no spread), they are not zero-width claims.
    return dict(type="data", array=list(values), visible=any(v is not None for v in values))


def cost_stat(point: AggregatePoint, metric: str, styles: Styles | None = None) -> Stat:
    """The cost ``metric`` of ``point`` over its seeds as plotted: each row's cost as
    `counted_cost` counts it (by rank for a constraint whose record says ``low_rank``), so the
    report and the summary count the same; the point's own statistic where nothing differs."""
    low = low_rank_names(styles or {})
    if point.constraint not in low or metric not in RANK_COUNTED:
        return point.stats[metric]
    return Stat.of([counted_cost(r, metric, low) for r in point.rows])


def pareto_figure(
    points: Sequence[AggregatePoint], cost: CostAxis, fig_id: str, title: str, why_missing: str,
    styles: Styles | None = None,
) -> FigureSpec:
    """Accuracy vs one cost: one colour per constraint, one symbol per procedure, the dense
    baseline as a black star, the non-dominated set (over all points) joined by a line. A
    low-rank constraint's MACCs and bytes are counted by rank (`cost_stat`), as
    `greenbench summary` counts them."""
    stats = {id(p): cost_stat(p, cost.metric, styles) for p in points}
    by_rank = cost.metric in RANK_COUNTED
    usable = [p for p in points if stats[id(p)].mean is not None]
    if not usable:
        return FigureSpec(fig_id, title, None, note=f"not measured: {why_missing}")
    colours, symbols = constraint_colours(points, styles), _symbols(points)
    fig = go.Figure()
    series: dict[tuple[str, str], list[AggregatePoint]] = {}
    for p in usable:
        key = ("dense", "dense") if p.is_dense else (str(p.constraint), p.procedure)
        series.setdefault(key, []).append(p)
    order = {c: i for i, c in enumerate(colours)}
    for (constraint, procedure), members in sorted(
        series.items(), key=lambda kv: (kv[0][0] != "dense", order.get(kv[0][0], 99), kv[0])
    ):
        dense = constraint == "dense" and procedure == "dense"
        fig.add_trace(go.Scatter(
            x=[stats[id(p)].mean for p in members],
            y=[p.mean("test_accuracy") for p in members],
            error_x=_errors([stats[id(p)].std for p in members]),
            error_y=_errors([p.std("test_accuracy") for p in members]),
            mode="markers",
            name="dense baseline" if dense
            else f"{escape(constraint_label(constraint, styles))}"
                 f"{_RANK if constraint in low_rank_names(styles or {}) and by_rank else ''}"
                 f" · {escape(procedure)}",
            legendgroup="dense" if dense else escape(constraint),
            marker=dict(
                color=_DENSE_COLOUR if dense else colours.get(constraint, "#7f7f7f"),
                symbol=symbols.get(procedure, "circle"),
                size=16 if dense else 10,
                line=_noise_outline(members, cost.metric in _TIMED),
            ),
            hovertext=[hover_text(p, cost, stats[id(p)]) for p in members],
            hoverinfo="text",
        ))
    if cost.metric == "epoch_time_median_s":
        fig.add_trace(_within_point_trace(usable))
    front = pareto_front([stats[id(p)].mean for p in usable],
                         [p.mean("test_accuracy") for p in usable])
    fig.add_trace(go.Scatter(
        x=[stats[id(usable[i])].mean for i in front],
        y=[usable[i].mean("test_accuracy") for i in front],
        mode="lines+markers",
        name="Pareto front",
        line=dict(color="#555555", dash="dash", width=1.5, shape="hv"),
        marker=dict(symbol="circle-open", size=18, color="#555555"),
        hovertext=[hover_text(usable[i], cost, stats[id(usable[i])]) for i in front],
        hoverinfo="text",
    ))
    fig.update_layout(
        title=dict(text=escape(title)),
        xaxis=dict(title=dict(text=escape(cost.title)),
                   type="log" if _use_log([stats[id(p)].mean for p in usable]) else "linear"),
        yaxis=dict(title=dict(text="test accuracy"), tickformat=".0%"),
        **_LAYOUT,
    )
    caption = (f"{len(front)} of {len(usable)} points are non-dominated (means over seeds; "
               "error bars: sample std over seeds, absent for a single seed).")
    if cost.metric in _TIMED:
        caption += " " + _timing_caption(cost, usable)
    return FigureSpec(fig_id, title, fig, caption=caption)


def _timing_caption(cost: CostAxis, usable: Sequence[AggregatePoint]) -> str:
    noisy = sum(1 for p in usable if p.timing_noise()[0])
    flagged = (f"Outlined in red: noisy timing (epoch-time IQR > "
               f"{schema.NOISE_FRACTION:.0%} of the median in a seed), {noisy} of "
               f"{len(usable)} points.")
    if cost.metric == "epoch_time_median_s":
        return ("Time: each seed's median training-step time per epoch (evaluation excluded; "
                "first phase), averaged over seeds; grey bars: within-point spread, ± half "
                "the IQR over epochs. " + flagged)
    return ("Energy is one window per point (training repeated in it where one run is too "
            "short for the counter), so it has no within-point spread; the point's epoch-time "
            "spread is in its hover. " + flagged)


def speedup_figure(points: Sequence[AggregatePoint], fig_id: str, title: str,
                   styles: Styles | None = None) -> FigureSpec:
    """Predicted (dense / structured MACCs) vs realised (dense / compacted latency at batch
    1) inference speed-up, a colour per constraint, with the y = x line of a perfect
    prediction."""
    usable = [p for p in points if not p.is_dense
              and p.mean("speedup_predicted_maccs") is not None
              and p.mean("speedup_realised_latency") is not None]
    if not usable:
        return FigureSpec(fig_id, title, None,
                          note="not measured: no constrained point measured its inference "
                               "(greenbench run --measure-inference)")
    colours, symbols = constraint_colours(points, styles), _symbols(points)
    fig = go.Figure()
    series: dict[tuple[str, str], list[AggregatePoint]] = {}
    for p in usable:
        series.setdefault((str(p.constraint), p.procedure), []).append(p)
    order = {c: i for i, c in enumerate(colours)}
    for (constraint, procedure), members in sorted(
        series.items(), key=lambda kv: (order.get(kv[0][0], 99), kv[0])
    ):
        fig.add_trace(go.Scatter(
            x=[p.mean("speedup_predicted_maccs") for p in members],
            y=[p.mean("speedup_realised_latency") for p in members],
            error_y=_errors([p.std("speedup_realised_latency") for p in members]),
            mode="markers",
            name=f"{escape(constraint_label(constraint, styles))} · {escape(procedure)}",
            marker=dict(color=colours.get(constraint, "#7f7f7f"),
                        symbol=symbols.get(procedure, "circle"), size=10),
            hovertext=[hover_text(p) + "<br>realised throughput speed-up: "
                       + _fmt(p.mean("speedup_realised_throughput"), digits=3)
                       for p in members],
            hoverinfo="text",
        ))
    xs = [p.mean("speedup_predicted_maccs") or 1.0 for p in usable]
    ys = [p.mean("speedup_realised_latency") or 1.0 for p in usable]
    lo, hi = min(min(xs), min(ys), 1.0), max(max(xs), max(ys))
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="realised = predicted",
                             line=dict(color="#555555", dash="dash", width=1)))
    fig.update_layout(
        title=dict(text=escape(title)),
        xaxis=dict(title=dict(text="predicted speed-up (dense / structured MACCs)"),
                   type="log" if _use_log(xs) else "linear"),
        yaxis=dict(title=dict(text="realised speed-up (latency at batch 1, compacted)"),
                   type="log" if _use_log(ys) else "linear"),
        **_LAYOUT,
    )
    caption = ("Points below the dashed line realise less of the MACC saving than predicted "
               "(fixed per-call overheads dominate small models at batch 1).")
    return FigureSpec(fig_id, title, fig, caption=caption)


def radius_figure(points: Sequence[AggregatePoint], fig_id: str, title: str,
                  styles: Styles | None = None) -> FigureSpec:
    """Accuracy vs radius, a line per (constraint, procedure); dense baseline as a dashed line."""
    constrained = [p for p in points if not p.is_dense and p.radius is not None]
    if not constrained:
        return FigureSpec(fig_id, title, None, note="no constrained points finished")
    colours, symbols = constraint_colours(points, styles), _symbols(points)
    fig = go.Figure()
    series: dict[tuple[str, str], list[AggregatePoint]] = {}
    for p in constrained:
        series.setdefault((str(p.constraint), p.procedure), []).append(p)
    order = {c: i for i, c in enumerate(colours)}
    for (constraint, procedure), members in sorted(
        series.items(), key=lambda kv: (order.get(kv[0][0], 99), kv[0])
    ):
        members = sorted(members, key=lambda p: p.radius or 0.0)
        fig.add_trace(go.Scatter(
            x=[p.radius for p in members],
            y=[p.mean("test_accuracy") for p in members],
            error_y=_errors([p.std("test_accuracy") for p in members]),
            mode="lines+markers",
            name=f"{escape(constraint_label(constraint, styles))} · {escape(procedure)}",
            line=dict(color=colours.get(constraint, "#7f7f7f")),
            marker=dict(symbol=symbols.get(procedure, "circle"), size=9),
            hovertext=[hover_text(p) for p in members],
            hoverinfo="text",
        ))
    radii = [p.radius for p in constrained if p.radius is not None]
    for dense in (p for p in points if p.is_dense):
        acc = dense.mean("test_accuracy")
        fig.add_trace(go.Scatter(
            x=[min(radii), max(radii)], y=[acc, acc], mode="lines", name="dense baseline",
            line=dict(color=_DENSE_COLOUR, dash="dot"),
            hovertext=[hover_text(dense)] * 2, hoverinfo="text",
        ))
    fig.update_layout(
        title=dict(text=escape(title)),
        xaxis=dict(title=dict(text="radius η"), type="log" if _use_log(radii) else "linear"),
        yaxis=dict(title=dict(text="test accuracy"), tickformat=".0%"),
        **_LAYOUT,
    )
    return FigureSpec(fig_id, title, fig)


def best_points(
    points: Sequence[AggregatePoint], accuracy_tolerance: float
) -> dict[str, AggregatePoint]:
    """Per constraint, the cheapest point (fewest structured MACCs) whose mean accuracy is
    within ``accuracy_tolerance`` of the dense baseline's; without a baseline or a qualifying
    point, the most accurate one (ties: fewer MACCs)."""
    dense_acc = max((p.mean("test_accuracy") or 0.0 for p in points if p.is_dense), default=None)
    by_constraint: dict[str, list[AggregatePoint]] = {}
    for p in points:
        if not p.is_dense and p.constraint is not None:
            by_constraint.setdefault(p.constraint, []).append(p)

    def maccs(p: AggregatePoint) -> float:
        value = p.mean("maccs_structured")
        return math.inf if value is None else value

    out = {}
    for constraint, members in by_constraint.items():
        ok = [] if dense_acc is None else [
            p for p in members if (p.mean("test_accuracy") or 0.0) >= dense_acc - accuracy_tolerance
        ]
        if ok:
            out[constraint] = min(ok, key=lambda p: (maccs(p), -(p.mean("test_accuracy") or 0)))
        else:
            out[constraint] = max(members, key=lambda p: (p.mean("test_accuracy") or 0, -maccs(p)))
    return out


def _layer_entries(row: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    data = parse_json_field(row.get("layers_json"))
    if isinstance(data, Mapping):  # tolerate {"layers": [...]}
        data = data.get("layers")
    return [d for d in data if isinstance(d, Mapping)] if isinstance(data, list) else []


def layers_figure(
    points: Sequence[AggregatePoint], accuracy_tolerance: float, fig_id: str, title: str,
    styles: Styles | None = None,
) -> FigureSpec:
    """Removed vs kept groups per layer (input columns, or output rows for groups="rows") for
    the best point of each constraint, one panel per constraint, from the lowest seed."""
    best = best_points(points, accuracy_tolerance)
    order = {c: i for i, c in enumerate(constraint_colours(points, styles))}
    panels = [(c, p, _layer_entries(p.representative_row()))
              for c, p in sorted(best.items(), key=lambda kv: order.get(kv[0], 99))]
    panels = [t for t in panels if t[2]]
    if not panels:
        return FigureSpec(fig_id, title, None,
                          note="not measured: no finished point recorded per-layer sparsity")
    cols = min(3, len(panels))
    nrows = math.ceil(len(panels) / cols)
    fig = make_subplots(
        rows=nrows, cols=cols, horizontal_spacing=0.12, vertical_spacing=0.18,
        subplot_titles=[
            f"<b>{escape(constraint_label(c, styles))}</b><br>r={_fmt(p.radius)}, "
            f"{escape(p.procedure)}, "
            f"acc {_fmt(p.mean('test_accuracy'), digits=3)}" for c, p, _ in panels
        ],
    )
    for i, (_constraint, point, layers) in enumerate(panels):
        by_rows = point.groups == "rows"
        unit = "output rows" if by_rows else "input columns"
        total_key, removed_key = ("rows_total", "rows_removed") if by_rows else (
            "columns_total", "columns_removed")
        # Layers the run left unconstrained (paper default: first and last) are flagged so a
        # full "kept" bar is not read as the constraint failing to sparsify them.
        names = [escape(str(d.get("name", f"layer {j}")))
                 + (" (free)" if d.get("constrained") is False else "")
                 for j, d in enumerate(layers)]
        removed = [to_number(d.get(removed_key)) for d in layers]
        total = [to_number(d.get(total_key)) for d in layers]
        kept = [None if t is None or r is None else t - r for t, r in zip(total, removed,
                                                                          strict=True)]
        hover = [
            f"<b>{n}</b><br>shape: {escape(str(d.get('shape')))}<br>"
            f"{unit} removed: {_fmt(r)} of {_fmt(t)}<br>"
            f"weights zero: {_fmt(to_number(d.get('fraction_zero')), digits=3)}"
            for n, d, r, t in zip(names, layers, removed, total, strict=True)
        ]
        row, col = i // cols + 1, i % cols + 1
        for label, values, colour in ((f"{unit} removed", removed, "#d62728"),
                                      (f"{unit} kept", kept, "#2ca02c")):
            fig.add_trace(go.Bar(
                y=names, x=values, orientation="h", name=label, marker_color=colour,
                legendgroup=label, showlegend=i == 0, hovertext=hover, hoverinfo="text",
            ), row=row, col=col)
    fig.update_layout(
        barmode="stack", title=dict(text=escape(title)),
        **{**_LAYOUT, "height": 220 + 260 * nrows, "margin": dict(l=90, r=20, t=110, b=50)},
    )
    fig.update_yaxes(autorange="reversed")
    caption = (f"Best point per constraint: the fewest structured MACCs within "
               f"{accuracy_tolerance:.1%} (absolute) of the dense accuracy, else the most "
               "accurate. Layers from the lowest seed; (free) = layer not constrained.")
    return FigureSpec(fig_id, title, fig, caption=caption)
