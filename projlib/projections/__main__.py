"""``python -m projlib.projections``: print the constraint table of docs/METHOD.md §2.8."""

from projlib.projections.registry import constraints_markdown

print(constraints_markdown(), end="")
