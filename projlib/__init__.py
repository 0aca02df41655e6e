"""greenbench: sparse networks trained with projections onto convex constraints, honestly measured.

The projection library is the stable public entry point::

    from projlib import project
    W2 = project(W, "l11", radius=5.0, groups="columns")
"""

from projlib.projections import REGISTRY, project, project_simplex

__version__ = "0.1.0"
__all__ = ["REGISTRY", "project", "project_simplex", "__version__"]
