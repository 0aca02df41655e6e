"""Inline CSS and the small table-sorting script of the HTML report (no external resources)."""

from __future__ import annotations

__all__ = ["PAGE_CSS", "TABLE_JS"]

PAGE_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0;
       background: #f4f5f7; color: #1d1f23; }
header { background: #1d3b2a; color: #fff; padding: 14px 24px; }
header h1 { margin: 0 0 4px 0; font-size: 1.5em; }
header a { color: #cfe8d6; }
.panel { background: #fff; margin: 16px 24px; padding: 12px 18px; border-radius: 6px;
         box-shadow: 0 1px 3px rgba(0,0,0,0.12); }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap: 12px; }
.figure.wide { grid-column: 1 / -1; }
.figure h3 { font-size: 1em; margin: 8px 0; }
.caption { color: #555; font-size: 0.85em; margin: 2px 0 8px 0; }
.not-measured { background: #fff6e0; border-left: 4px solid #e0a000; padding: 10px 12px;
                color: #5a4300; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border-bottom: 1px solid #e3e5e8; padding: 4px 8px; text-align: left;
         vertical-align: top; }
table.sortable th { cursor: pointer; user-select: none; background: #eef1f4;
                    position: sticky; top: 0; }
table.sortable th[aria-sort="ascending"]::after { content: " \\25B2"; }
table.sortable th[aria-sort="descending"]::after { content: " \\25BC"; }
tr.dense td { font-weight: 600; }
td.nm { color: #999; }
td.err { font-family: monospace; white-space: pre-wrap; max-width: 50em; }
table.kv th { width: 16em; background: #f7f8fa; }
.scroll { overflow-x: auto; max-height: 70vh; }
.badge { background: #e0a000; color: #fff; border-radius: 3px; padding: 0 5px;
         font-size: 0.8em; }
pre { margin: 0; white-space: pre-wrap; }
"""

# Sort on click; numbers by data-sort, empty (not measured) cells always last.
TABLE_JS = """
(function () {
  for (const table of document.querySelectorAll("table.sortable")) {
    const heads = table.tHead.rows[0].cells;
    for (let col = 0; col < heads.length; col++) {
      heads[col].addEventListener("click", function () {
        const th = heads[col];
        const asc = th.getAttribute("aria-sort") !== "ascending";
        for (const h of heads) h.removeAttribute("aria-sort");
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        const numeric = th.dataset.type === "num";
        const key = function (row) {
          const cell = row.cells[col];
          const raw = cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent;
          if (raw === "" || raw === "\\u2014") return null;
          return numeric ? parseFloat(raw) : raw.toLowerCase();
        };
        const body = table.tBodies[0];
        const rows = Array.from(body.rows);
        rows.sort(function (a, b) {
          const ka = key(a), kb = key(b);
          if (ka === null || kb === null) return (ka === null) - (kb === null);
          const c = ka < kb ? -1 : ka > kb ? 1 : 0;
          return asc ? c : -c;
        });
        for (const r of rows) body.appendChild(r);
      });
    }
  }
})();
"""
