"""Issue 20, K1 and K2: a radius past the float range names `radius`; the nuclear ball keeps
its feasibility promise (1e-6 relative) when the radius is tiny next to the nuclear norm."""

from __future__ import annotations

import pytest
import torch

from projlib import REGISTRY, project


@pytest.mark.parametrize("name", list(REGISTRY))
def test_radius_past_the_float_range_is_a_value_error_naming_radius(name: str) -> None:
    with pytest.raises(ValueError, match="radius"):
        project(torch.randn(6, 4), name, radius=10**400)


@pytest.mark.parametrize(("scale", "radius"), [(1e-100, 1e-110), (1.0, 1e-10), (1.0, 1e-12),
                                                (1e100, 1e90)])
def test_nuclear_stays_feasible_when_the_radius_is_tiny_next_to_the_norm(
    scale: float, radius: float
) -> None:
    torch.manual_seed(0)
    W = torch.randn(30, 20, dtype=torch.float64) * scale
    P = project(W, "nuclear", radius=radius)
    assert torch.linalg.svdvals(P).sum().item() <= radius * (1 + 1e-6)
