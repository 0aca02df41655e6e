"""greenbench: sparse networks trained with projections onto convex constraints, honestly measured.

The projection library is the stable public entry point::

    from projlib import project
    W2 = project(W, "l11", radius=5.0, groups="columns")

and, for any model and training loop, the paper's projected step as an optimizer hook::

    from projlib import Projector
    proj = Projector(model, "l11", radius=30.0).attach(optimizer)   # opt.step() projects

The names below are loaded on first use (PEP 562), so importing `projlib` itself, as the
`greenbench` console script does before its `main` runs, loads nothing heavy: a Ctrl-C while
torch is still loading then reaches `main`, which reports it in one line.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["REGISTRY", "Projector", "project", "project_simplex", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("REGISTRY", "project", "project_simplex"):
        from projlib import projections  # noqa: PLC0415 - deliberately lazy (see above)

        return getattr(projections, name)
    if name == "Projector":
        from projlib.training.projector import Projector  # noqa: PLC0415 - lazy (see above)

        return Projector
    raise AttributeError(f"module 'projlib' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
