"""greenbench: sparse networks trained with projections onto convex constraints, honestly measured.

The projection library is the stable public entry point::

    from projlib import project
    W2 = project(W, "l11", radius=5.0, groups="columns")

and, for any model and training loop, the paper's projected step as an optimizer hook::

    from projlib import Projector
    proj = Projector(model, "l11", radius=30.0).attach(optimizer)   # opt.step() projects
"""

from projlib.projections import REGISTRY, project, project_simplex
from projlib.training.projector import Projector

__version__ = "0.1.0"
__all__ = ["REGISTRY", "Projector", "project", "project_simplex", "__version__"]
