"""`projlib.Projector`: the paper's projected step as an optimizer step post-hook, in any loop.

What is proved here: the hook is the procedure `train` runs (a hand-written loop with it
reproduces `train(projected)` bit for bit, and the built-in procedures give the weights they
gave before the Projector existed), a step `GradScaler` skips projects nothing, a compiled model
trains with it, `remove()` detaches it, bad arguments fail at once naming the argument, and the
README's "Use it in your own loop" block runs as printed.
"""

from __future__ import annotations

import hashlib
import platform
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import projlib
from projlib import REGISTRY, Projector
from projlib.training import TrainConfig, build_model, load_dataset, train
from projlib.training.procedures import SGD_MOMENTUM

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 12), nn.ReLU(),
                         nn.Linear(12, 3))


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(20, 8, generator=g), torch.randint(0, 3, (20,), generator=g)


def l11_norm(w: torch.Tensor) -> float:
    return REGISTRY["l11"].norm(w.detach())


def state_digest(model: nn.Module) -> str:
    h = hashlib.sha256()
    sd = model.state_dict()
    for name in sorted(sd):
        h.update(name.encode())
        h.update(sd[name].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


# --- one implementation: the library's procedures are this hook ------------------------------

# sha256 of the final state_dict of each run, produced by the code *before* the Projector
# existed (commit 88531c2, `_Runner.project`), torch 2.14.1, x86_64, one intra-op thread (the
# autouse fixture of tests/training/conftest.py). Digits + mlp, 2 epochs of batch 32, seed 5.
GOLDEN_TORCH = "2.14.1"
GOLDEN_BASE = {"dataset": "digits", "model": "mlp", "epochs": 2, "batch_size": 32, "seed": 5}
GOLDEN = {
    "projected": (dict(procedure="projected", constraint="l11", radius=40.0, optimizer="sgd",
                       lr=0.02),
                  "5e1a7140ec99ebddf21853894109ed116651ccc78ab608e9f9db3b32b917bcfe"),
    "lottery": (dict(procedure="lottery", constraint="l21", radius=15.0, groups="rows",
                     optimizer="adam", lr=1e-3),
                "bcdc4c422400531378813b93d3de8390ac6c376ea7534425a9c11a6bfd58c864"),
    # its masks zero 60 % / 56 % of 1.weight / 3.weight: the matched projected run counts
    "magnitude": (dict(procedure="magnitude", constraint="l1", radius=30.0,
                       constrain_first=True, optimizer="sgd", lr=0.02),
                  "d7337ce644dd23460e6cd31336db025b004a4b6f128d610a4c4af4d001540f97"),
}


@pytest.mark.parametrize("case", list(GOLDEN))
def test_builtin_procedures_give_the_weights_they_gave_before_the_projector(digits, case):
    if torch.__version__.split("+")[0] != GOLDEN_TORCH or platform.machine() != "x86_64":
        pytest.skip(f"digests recorded with torch {GOLDEN_TORCH} on x86_64; this is torch "
                    f"{torch.__version__} on {platform.machine()} (float kernels may differ)")
    extra, digest = GOLDEN[case]
    result = train(TrainConfig(**GOLDEN_BASE, **extra), dataset=digits)
    assert state_digest(result.model) == digest


def test_a_hand_written_loop_with_the_projector_is_train_projected(digits):
    """The README's kind of loop, with `train`'s seeding and shuffling, gives bit for bit the
    weights of `train(procedure="projected")`: the procedure is this hook, nothing more."""
    cfg = TrainConfig(dataset="digits", model="mlp", procedure="projected", constraint="l11",
                      radius=40.0, epochs=2, batch_size=32, seed=7)
    expected = train(cfg, dataset=digits).model
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = build_model("mlp", digits.input_shape, digits.num_classes)
        torch.manual_seed(cfg.seed)
        shuffle = torch.Generator().manual_seed(cfg.seed)
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=SGD_MOMENTUM)
        proj = Projector(model, "l11", radius=cfg.radius).attach(opt)
        n = len(digits.train_y)
        for _ in range(cfg.epochs):
            for idx in torch.randperm(n, generator=shuffle).split(cfg.batch_size):
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(model(digits.train_x[idx]), digits.train_y[idx]).backward()
                opt.step()
        proj.remove()
    a, b = expected.state_dict(), model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --- the hook ---------------------------------------------------------------------------------

def test_every_step_projects_and_remove_detaches():
    torch.manual_seed(0)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    proj = Projector(model, "l11", radius=0.5)
    assert proj.names == ("2.weight",)  # the paper's default: the hidden weight only
    assert l11_norm(model[2].weight) > 0.5
    proj.attach(opt)
    x, y = batch()
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        assert l11_norm(model[2].weight) <= 0.5 * (1 + 1e-5)
    masks = proj.masks()
    assert list(masks) == ["2.weight"] and masks["2.weight"].dtype == torch.bool
    assert torch.equal(masks["2.weight"], model[2].weight != 0)
    assert not masks["2.weight"].all()  # the ball is small: zeros were made
    proj.remove()
    assert not opt._optimizer_step_post_hooks
    with torch.no_grad():
        model[2].weight.mul_(10.0)  # far outside the ball; a plain step leaves it there
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()
    assert l11_norm(model[2].weight) > 1.0
    proj.project()  # explicit, outside any step
    assert l11_norm(model[2].weight) <= 0.5 * (1 + 1e-5)


def test_context_manager_and_patterns_and_groups():
    torch.manual_seed(1)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with Projector(model, "l21", radius=0.3, layers=["0.*", "4.weight"], groups="rows") as p:
        p.attach(opt)
        assert p.names == ("0.weight", "4.weight")  # biases never (ndim < 2)
        x, y = batch()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        for name in p.names:
            w = dict(model.named_parameters())[name]
            assert REGISTRY["l21"].norm(w.detach(), "rows") <= 0.3 * (1 + 1e-5)
    assert not opt._optimizer_step_post_hooks
    assert Projector(model, "l1", 1.0, constrain_first=True, constrain_last=True).names == (
        "0.weight", "2.weight", "4.weight")
    assert Projector(model, "l1", 1.0, layers="2.weight").names == ("2.weight",)


def test_conv_kernels_are_chosen_by_default():
    model = build_model("convnet", (1, 28, 28), 10)
    # conv1, conv2, fc1, fc2: the hidden ones are conv2's kernel and fc1's matrix
    assert Projector(model, "l11", 1.0).names == ("3.weight", "7.weight")


def test_a_step_the_grad_scaler_skips_projects_nothing():
    torch.manual_seed(2)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    Projector(model, "l11", radius=0.5).attach(opt)
    scaler = torch.amp.GradScaler("cpu")
    x, y = batch()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert l11_norm(model[2].weight) > 0.5  # a projection would change it
    scaler.scale(F.cross_entropy(model(x), y)).backward()
    model[2].weight.grad[0, 0] = float("inf")  # an overflowed gradient
    scale = scaler.get_scale()
    scaler.step(opt)
    scaler.update()
    assert scaler.get_scale() < scale  # the scaler saw the inf and skipped the step ...
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # ... so nothing projected
    opt.zero_grad()
    scaler.scale(F.cross_entropy(model(x), y)).backward()
    scaler.step(opt)  # a finite step: gradient step, then projection
    scaler.update()
    assert l11_norm(model[2].weight) <= 0.5 * (1 + 1e-5)


@pytest.mark.slow
def test_a_compiled_model_trains_with_the_projector():
    """`torch.compile` (inductor, CPU) shares the parameters: the hook projects the weights the
    compiled forward reads; the run follows the eager one and ends feasible."""
    torch.manual_seed(3)
    eager = mlp()
    twin = mlp()
    twin.load_state_dict(eager.state_dict())
    compiled = torch.compile(twin)
    runs = []
    for model in (eager, compiled):
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        proj = Projector(model, "l11", radius=0.5).attach(opt)
        losses = []
        for step in range(4):
            x, y = batch(step)
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            losses.append(loss.detach())
        runs.append((proj, torch.stack(losses)))
    (p_eager, l_eager), (p_compiled, l_compiled) = runs
    assert p_compiled.names == p_eager.names == ("2.weight",)  # no "_orig_mod." prefix
    assert p_compiled.model is twin
    torch.testing.assert_close(l_compiled, l_eager, rtol=1e-5, atol=1e-6)
    assert l11_norm(twin[2].weight) <= 0.5 * (1 + 1e-5)
    torch.testing.assert_close(twin[2].weight, eager[2].weight, rtol=1e-4, atol=1e-6)
    assert torch.equal(p_compiled.masks()["2.weight"], twin[2].weight != 0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_model_in_a_captured_step():
    """On CUDA the hook runs inside `opt.step()`, so a captured CUDA graph of the whole step
    replays the projection; replays match eager steps."""
    torch.manual_seed(4)
    ref = mlp().cuda()
    model = mlp().cuda()
    model.load_state_dict(ref.state_dict())
    x, y = (t.cuda() for t in batch())
    pairs = [(m, torch.optim.SGD(m.parameters(), lr=0.1)) for m in (ref, model)]
    proj = [Projector(m, "l11", radius=0.5).attach(o) for m, o in pairs][1]

    def step(m, o):
        F.cross_entropy(m(x), y).backward()
        o.step()

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):  # warm-up steps, both models alike
            for m, o in pairs:
                o.zero_grad(set_to_none=True)
                step(m, o)
    torch.cuda.current_stream().wait_stream(side)
    pairs[1][1].zero_grad(set_to_none=True)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step(*pairs[1])
    for _ in range(3):
        pairs[0][1].zero_grad(set_to_none=True)
        step(*pairs[0])
        pairs[1][1].zero_grad(set_to_none=False)
        graph.replay()
    torch.cuda.synchronize()
    torch.testing.assert_close(model[2].weight, ref[2].weight)
    assert l11_norm(model[2].weight) <= 0.5 * (1 + 1e-5)
    assert proj.masks()["2.weight"].device.type == "cuda"


# --- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, match", [
    (dict(constraint="l3"), ValueError, r"^constraint must be one of l1, .*got 'l3'"),
    (dict(constraint=None), ValueError, r"^constraint must be"),
    (dict(radius=-1.0), ValueError, r"^radius must be a finite number >= 0"),
    (dict(radius=float("nan")), ValueError, r"^radius must be a finite number >= 0, got nan"),
    (dict(radius="5"), TypeError, r"^radius must be a number, got str"),
    (dict(radius=True), TypeError, r"^radius must be a number, got bool"),
    (dict(groups="cols"), ValueError, r"^groups must be"),
    (dict(constraint="l1", groups="rows"), ValueError, r"^groups does not apply"),
    (dict(layers=["9.weight"]), ValueError, r"^layers pattern '9.weight' matches no weight"),
    (dict(layers=[]), ValueError, r"^layers must hold at least one"),
    (dict(layers=[3]), ValueError, r"^layers must hold at least one"),
    (dict(layers=3), TypeError, r"^layers must be a pattern"),
    (dict(constrain_first=1), TypeError, r"^constrain_first must be a bool"),
])
def test_bad_arguments_are_one_error_naming_the_argument(kwargs, error, match):
    args = {"model": mlp(), "constraint": "l11", "radius": 1.0, **kwargs}
    with pytest.raises(error, match=match):
        Projector(**args)


def test_bad_model_selection_and_optimizer():
    with pytest.raises(TypeError, match=r"^model must be a torch.nn.Module"):
        Projector(torch.zeros(3, 3), "l11", 1.0)
    two = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))  # no hidden weight
    with pytest.raises(ValueError, match=r"^layers selects no weight .* 0.weight, 2.weight"):
        Projector(two, "l11", 1.0)
    model = mlp()
    proj = Projector(model, "l11", 1.0)
    with pytest.raises(TypeError, match=r"^optimizer must be a torch.optim.Optimizer"):
        proj.attach(model)
    head_only = torch.optim.SGD(model[4].parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"^optimizer does not update .*2.weight"):
        proj.attach(head_only)
    assert not head_only._optimizer_step_post_hooks


# --- the README ----------------------------------------------------------------------------------

def readme_block(heading: str) -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, f"README section {heading!r} must hold one python block"
    return blocks[0]


def test_the_readme_use_it_in_your_own_loop_block_runs_as_printed(capsys):
    code = readme_block("Use it in your own loop")
    namespace: dict = {"__name__": "__readme__"}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        exec(compile(code, str(README), "exec"), namespace)
    out = capsys.readouterr().out
    assert re.fullmatch(r"accuracy \d+\.\d%, 3\.weight keeps \d+%\n", out), out
    masks, model, opt = namespace["masks"], namespace["model"], namespace["opt"]
    assert list(masks) == ["3.weight"]
    assert float(namespace["accuracy"]) >= 0.85
    w = model[3].weight
    assert l11_norm(w) <= 60.0 * (1 + 1e-5)
    assert (w.abs().sum(0) == 0).any()  # whole input columns removed: structured sparsity
    assert not opt._optimizer_step_post_hooks  # proj.remove() detached it


def test_exported_from_the_package_root():
    assert projlib.Projector is Projector and "Projector" in projlib.__all__


def test_relative_radii_are_a_fraction_of_each_layers_norm():
    # "relative": each selected weight's radius is radius x its norm under the constraint
    # (of `norms_of` when given), and projecting uses each layer's own radius.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 5), nn.ReLU(),
                          nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2))
    names = ("2.weight", "4.weight")
    initial = {n: p.detach().clone() for n, p in model.named_parameters()}
    proj = Projector(model, "l11", 0.3, radius_mode="relative")
    spec = REGISTRY["l11"]
    assert proj.names == names
    for n in names:
        assert proj.radii[n] == pytest.approx(0.3 * spec.norm(initial[n], "columns"), rel=1e-12)
    assert proj.radii["2.weight"] != proj.radii["4.weight"]
    proj.project()
    params = dict(model.named_parameters())
    for n in names:
        assert spec.norm(params[n].detach(), "columns") <= proj.radii[n] * (1 + 1e-6)
    doubled = {n: 2 * t for n, t in initial.items()}
    other = Projector(model, "l11", 0.3, radius_mode="relative", norms_of=doubled)
    assert other.radii["2.weight"] == pytest.approx(2 * proj.radii["2.weight"], rel=1e-12)
    absolute = Projector(model, "l11", 0.3)
    assert absolute.radii == dict.fromkeys(names, 0.3)
    with pytest.raises(ValueError, match="radius_mode"):
        Projector(model, "l11", 0.3, radius_mode="fraction")
    with pytest.raises(ValueError, match="norms_of"):
        Projector(model, "l11", 0.3, radius_mode="relative", norms_of={})
