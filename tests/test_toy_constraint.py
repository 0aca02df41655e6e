"""A constraint added from outside the package is one spec and one `register` call.

The toy is the l-infinity ball {W : max |w| <= r} (clip every entry to [-r, r]: the exact
Euclidean projection, neither structured nor grouped).  Registered, it gets the generic
property checks of the registry, trains through `greenbench run`, lands in the results store
and shows in the report with its own label and colour; unregistered, nothing knows it any more.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hypothesis import given, settings
from projections.helpers import (
    check_feasible_and_on_boundary,
    check_fixed_point_inside,
    check_idempotent,
    check_radius_zero_gives_zeros,
    check_shape_dtype_device_and_input,
    constraint_norm,
    projection_cases,
)
from typer.testing import CliRunner

from projlib.cli import app
from projlib.cli.common import report_provenance
from projlib.cli.options import RunFlags, default_radii, resolve_run_options
from projlib.projections import (
    REGISTRY,
    ProjectionSpec,
    constraint_names,
    project,
    register,
    unregister,
)
from projlib.report.constraints import read_constraints
from projlib.report.figures import constraint_colours, constraint_label
from projlib.sweep import SweepConfig
from projlib.training import TrainConfig

NAME = "linf"
LABEL = "linf ball (toy clip)"
COLOUR = "#00a5a5"
RADII = (0.05, 0.1, 0.3)


def project_linf(W: torch.Tensor, radius: float, groups: str = "columns") -> torch.Tensor:
    """Clip every entry of ``W`` to [-radius, radius] (a new tensor)."""
    if not isinstance(W, torch.Tensor) or W.dtype not in (torch.float32, torch.float64):
        raise TypeError("W must be a float32/float64 torch.Tensor")
    r = float(radius)
    if not (math.isfinite(r) and r >= 0):
        raise ValueError(f"radius must be finite and >= 0, got {radius!r}")
    if groups != "columns":
        raise ValueError(f"groups does not apply to {NAME!r}, got {groups!r}")
    X = W.detach()
    if X.numel() and not bool(torch.isfinite(X).all()):
        raise ValueError("W contains NaN or infinite entries")
    return X.clamp(-r, r)


def linf_norm(X: torch.Tensor, groups: str) -> float:
    return float(X.abs().amax()) if X.numel() else 0.0


def toy_spec() -> ProjectionSpec:
    return ProjectionSpec(NAME, project_linf, exact=True, structured=False, groups=(),
                          summary="toy: l-infinity ball, entries clipped to [-r, r]",
                          norm_fn=linf_norm, colour=COLOUR, label=LABEL,
                          default_radii={"mlp": RADII})


@pytest.fixture(scope="module")
def toy():
    spec = register(toy_spec())
    try:
        yield spec
    finally:
        unregister(NAME)
        assert NAME not in REGISTRY


# ------------------------------------------------------------------ registry and properties


def test_registered_spec_is_visible_and_reads_its_norm(toy):
    assert constraint_names()[-1] == NAME and REGISTRY[NAME] is toy
    assert not toy.grouped and toy.label == LABEL and toy.colour == COLOUR
    assert toy.radii_for("mlp") == RADII and toy.radii_for("convnet") == ()
    W = torch.tensor([[1e-300, -3e-300], [2e-300, 0.0]], dtype=torch.float64)
    assert toy.norm(W) == 3e-300  # through the spec's power-of-two rescaling, exactly
    assert constraint_norm(W * 1e300 * 1e300, NAME) == pytest.approx(3e300)
    with pytest.raises(ValueError, match="groups does not apply"):
        project(W, NAME, 1.0, "rows")


def test_method_table_is_the_registry_and_shows_the_toy(toy):
    # METHOD.md §2.8 is generated from the registry: the built-in rows are what the docs hold
    # (a stale table fails here), and a registered constraint gets its row with no other edit.
    from projlib.projections.registry import constraints_markdown

    text = constraints_markdown()
    assert f"| `{NAME}` | {toy.summary} | " in text
    method = (Path(__file__).resolve().parents[1] / "docs" / "METHOD.md").read_text("utf-8")
    start = method.index("<!-- constraint table: generated, do not edit -->\n")
    table = method[start:method.index("<!-- end of constraint table -->")].split("\n", 1)[1]
    builtin = "".join(line + "\n" for line in text.splitlines() if f"`{NAME}`" not in line)
    assert table == builtin, "docs/METHOD.md §2.8 is stale: python -m projlib.projections"


@settings(max_examples=80, deadline=None)
@given(projection_cases((NAME,)))
def test_generic_properties_hold_for_the_toy(toy, case):
    check_feasible_and_on_boundary(*case)
    check_shape_dtype_device_and_input(*case)
    name, W, radius, groups = case
    check_fixed_point_inside(name, W, groups)
    check_idempotent(*case)


@pytest.mark.parametrize("shape", [(6,), (4, 5), (3, 2, 2, 2)])
def test_radius_zero_gives_zeros(toy, shape):
    check_radius_zero_gives_zeros(NAME, shape)


def test_configs_validate_against_the_live_registry(toy):
    cfg = TrainConfig(procedure="projected", constraint=NAME, radius=0.5)
    assert cfg.constraint == NAME
    with pytest.raises(ValueError, match="groups does not apply"):
        TrainConfig(procedure="projected", constraint=NAME, radius=0.5, groups="rows")
    # a sweep with groups="rows" keeps it for l21 and drops it for the ungrouped toy
    sweep = SweepConfig(constraints=(NAME, "l21"), radii=(0.5,), epochs=1,
                        options=(("groups", "rows"),))
    groups = {p.constraint: p.groups for p in sweep.points() if p.constraint}
    assert groups == {NAME: "columns", "l21": "rows"}
    # no radius given: the spec's default radii for the swept model
    assert default_radii(NAME) == RADII
    options = resolve_run_options(RunFlags(constraint=(NAME,), procedure=("projected",)))
    assert options.sweep.radii_for(NAME) == RADII
    info = read_constraints(report_provenance(Path("x.db")))[NAME]
    assert (info.label, info.colour, info.low_rank) == (LABEL, COLOUR, False)


def test_spec_validation_and_registration_errors(toy):
    with pytest.raises(ValueError, match="already registered"):
        register(toy_spec())
    with pytest.raises(ValueError, match="built-in"):
        unregister("l1")
    with pytest.raises(KeyError):
        unregister("no_such_constraint")
    base = dict(name="toy2", fn=project_linf, exact=True, structured=False, groups=(),
                summary="s", norm_fn=linf_norm, colour="#123456")
    ProjectionSpec(**base)
    for bad, error, match in (
        ({"colour": "teal"}, ValueError, "colour"),
        ({"colour": "#12345"}, ValueError, "colour"),
        ({"groups": ("rows",)}, ValueError, "groups"),
        ({"groups": ("columns", "cols")}, ValueError, "groups"),
        ({"groups": "columns"}, TypeError, "groups"),
        ({"fn": None}, TypeError, "fn"),
        ({"norm_fn": 3}, TypeError, "norm_fn"),
        ({"name": "a=b"}, ValueError, "name"),
        ({"name": NAME.upper() + " "}, ValueError, "name"),
        ({"summary": ""}, ValueError, "summary"),
        ({"exact": 1}, TypeError, "exact"),
        ({"default_radii": {"mlp": (1.0, -2.0)}}, ValueError, "default_radii"),
        ({"default_radii": {"mlp": ()}}, ValueError, "default_radii"),
    ):
        with pytest.raises(error, match=match):
            ProjectionSpec(**{**base, **bad})
    with pytest.raises(TypeError, match="ProjectionSpec"):
        register("linf")  # type: ignore[arg-type]


def test_unregister_leaves_no_stale_name_behind():
    name = "linf_again"
    spec = register(replace(toy_spec(), name=name))
    try:
        assert TrainConfig(procedure="projected", constraint=name, radius=0.5).constraint == name
        assert default_radii(name) == RADII
    finally:
        assert unregister(name) is spec
    assert name not in REGISTRY and default_radii(name) == ()
    with pytest.raises(ValueError, match="name must be one of"):
        project(torch.ones(3), name, 1.0)
    with pytest.raises(ValueError, match="constraint"):
        TrainConfig(procedure="projected", constraint=name, radius=0.5)
    with pytest.raises(ValueError, match="constraint"):
        SweepConfig(constraints=(name,), radii=(0.5,))


# ------------------------------------------------------------------------- CLI and report


def _figures(page: str) -> list[dict]:
    match = re.search(r"const figures = (.*?);\nconst config", page, re.S)
    assert match, "figure data block missing"
    return [f["figure"] for f in json.loads(match.group(1))]


def test_greenbench_run_trains_stores_and_reports_the_toy(toy, tmp_path):
    db, report = tmp_path / "g.db", tmp_path / "g.html"
    result = CliRunner().invoke(app, [
        "run", "--constraint", NAME, "--radius", "0.5", "--procedure", "projected",
        "--epochs", "1", "--db", str(db), "--report", str(report), "--country", "FRA",
    ])
    assert result.exit_code == 0, result.output
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    rows = [dict(r) for r in conn.execute("SELECT * FROM points")]
    conn.close()
    toy_rows = [r for r in rows if r["constraint"] == NAME]
    assert len(toy_rows) == 1 and toy_rows[0]["status"] == "done", toy_rows
    assert toy_rows[0]["radius"] == 0.5 and toy_rows[0]["groups"] == "columns"
    page = report.read_text(encoding="utf-8")
    assert LABEL in page and COLOUR in page
    traces = [t for fig in _figures(page) for t in fig["data"]
              if t.get("name") == f"{LABEL} · projected"]
    assert traces, "no figure trace carries the toy's label"
    for t in traces:
        colour = (t.get("marker") or {}).get("color") or (t.get("line") or {}).get("color")
        assert colour == COLOUR
    # greenbench summary reads the same records: the toy's cell, not counted by rank
    result = CliRunner().invoke(app, ["summary", "--db", str(db), "--cells", "--format", "json"])
    assert result.exit_code == 0, result.output
    (cell,) = [c for c in json.loads(result.stdout) if c["constraint"] == NAME]
    assert cell["radius"] == 0.5 and cell["maccs_by_rank"] is False


def test_report_colours_and_labels_come_from_provenance_styles():
    """Records given: their colours and labels (escaped, invalid colours ignored); names they
    lack get the palette colours no recorded constraint uses. None given: sorted, palette."""
    points = [SimpleNamespace(constraint=c) for c in ("l11", "l1", "mystery", None)]
    styles = read_constraints({"constraints": {"l1": {"label": "L-one", "colour": "#ABCDEF"},
                                               "l11": {"label": "<b>x</b>", "colour": "bad"}}})
    colours = constraint_colours(points, styles)
    assert list(colours) == ["l1", "l11", "mystery"]
    assert colours["l1"] == "#ABCDEF" and colours["l11"] == "#1f77b4"
    assert colours["mystery"] == "#ff7f0e"
    assert constraint_label("l11", styles) == "<b>x</b>"
    assert constraint_label("l21", styles) == "l21"
    assert constraint_colours(points) == {"l1": "#1f77b4", "l11": "#ff7f0e",
                                          "mystery": "#2ca02c"}
    unstyled = read_constraints({"constraints": {"l1": "not a mapping"}})
    assert constraint_colours(points, unstyled) == constraint_colours(points)
