"""Results rows -> Plotly figures -> one self-contained HTML report.

Reads only the row schema of docs/ARCHITECTURE.md (no training, measurement or projection
imports), so a report can be rebuilt from a results database alone::

    from projlib.report import build_report
    html_text = build_report(rows, provenance={"country_iso_code": "FRA"})
"""

from projlib.report.aggregate import AggregatePoint, Stat, aggregate_rows
from projlib.report.html import (
    REPORT_GENERATOR,
    ReportConfig,
    build_report,
    is_greenbench_report,
    safe_json_for_script,
)
from projlib.report.pareto import dominates, pareto_front

__all__ = [
    "REPORT_GENERATOR",
    "is_greenbench_report",
    "AggregatePoint",
    "ReportConfig",
    "Stat",
    "aggregate_rows",
    "build_report",
    "dominates",
    "pareto_front",
    "safe_json_for_script",
]
