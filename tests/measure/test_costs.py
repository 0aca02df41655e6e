"""cost_report against counts computed by hand, and against thop / torch's FlopCounterMode."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from projlib.measure import cost_report, torch_flop_maccs
from projlib.measure.memory import csr_bytes, empirical_entropy_bits, entropy_bytes

from .helpers import MNIST, convnet, lenet300, mlp, sparse_lenet


def test_lenet_hand_counts() -> None:
    r = cost_report(sparse_lenet(), MNIST)
    l1, l2, l3 = r.layers
    assert (l1.in_kept, l1.out_kept, l2.in_kept, l2.out_kept, l3.in_kept) == (684, 259, 259, 92, 92)
    assert (l1.outputs_zero, l1.outputs_folded, l1.outputs_unused) == (20, 10, 11)
    assert (l2.outputs_zero, l2.outputs_folded, l2.outputs_unused) == (5, 0, 3)
    assert r.maccs_dense == 784 * 300 + 300 * 100 + 100 * 10 == 266200
    assert r.maccs_structured == 684 * 259 + 259 * 92 + 92 * 10 == 201904
    assert r.maccs_nonzero == 201904 - 7
    assert r.maccs_lowrank == r.maccs_structured  # random blocks have full rank: no saving
    assert r.params_dense == 266200 + 300 + 100 + 10
    assert r.params_structured == 201904 + 259 + 92 + 10
    assert r.bytes_dense == 4 * r.params_dense
    assert r.bytes_structured == 4 * r.params_structured
    nnz = 201904 - 7
    rows = 259 + 92 + 10
    assert r.bytes_csr == nnz * 8 + (rows + 3) * 4 + rows * 4  # int32 indices + dense biases


def test_convnet_channels_across_flatten() -> None:
    torch.manual_seed(1)
    m = convnet().eval()
    c1, c2, f1, f2 = m[0], m[3], m[7], m[9]
    with torch.no_grad():
        c1.weight[2] = 0  # conv1 filter 2: zero weights and bias -> zero channel
        c1.bias[2] = 0
        c1.weight[3] = 0  # conv1 filter 3: constant 0.2, folded into conv2's bias
        c1.bias[3] = 0.2
        c2.weight[:, 7] = 0  # conv2 ignores input channel 7 -> conv1 filter 7 unused
        c2.weight[0:4] = 0  # conv2 filters 0-3: zero channels
        c2.bias[0:4] = 0
        f1.weight[:, 160:176] = 0  # channel 10's 4x4 flattened block: conv2 filter 10 unused
        f1.weight[:, 16 * 12 + 5] = 0  # one position of kept channel 12
        f1.weight[0:10] = 0
        f1.bias[0:10] = 0
        f2.weight[:, 49] = 0
    r = cost_report(m, MNIST)
    kept = [(lc.in_kept, lc.out_kept) for lc in r.layers]
    assert kept == [(1, 7), (7, 15), (239, 39), (39, 10)]
    assert r.layers[0].outputs_zero == 1 and r.layers[0].outputs_folded == 1
    assert r.layers[0].outputs_unused == 1 and r.layers[1].outputs_unused == 1
    assert r.maccs_dense == 1 * 10 * 25 * 576 + 10 * 20 * 25 * 64 + 320 * 50 + 50 * 10 == 480500
    assert r.maccs_structured == 7 * 25 * 576 + 7 * 15 * 25 * 64 + 239 * 39 + 39 * 10 == 278511


@pytest.mark.parametrize("build,shape", [(lenet300, MNIST), (convnet, MNIST), (mlp, (1, 8, 8))])
def test_dense_maccs_match_thop_and_flop_counter(build, shape) -> None:
    m = build().eval()
    r = cost_report(m, shape)
    assert r.maccs_dense == r.thop_maccs == torch_flop_maccs(m, shape)
    assert r.maccs_structured == r.maccs_dense
    assert r.params_dense == sum(p.numel() for p in m.parameters())


def test_lowrank_counts_rank() -> None:
    torch.manual_seed(2)
    m = nn.Sequential(nn.Linear(40, 30), nn.ReLU(), nn.Linear(30, 5))
    with torch.no_grad():
        m[0].weight.copy_(torch.randn(30, 3) @ torch.randn(3, 40))
    r = cost_report(m, (40,))
    assert r.layers[0].rank == 3 and r.layers[0].maccs_lowrank == 3 * (40 + 30)
    assert r.layers[1].maccs_lowrank == 30 * 5  # rank 5: factorising would cost more
    assert r.maccs_lowrank == 3 * 70 + 150
    # parameters and bytes factorised where the MACCs are; biases (30 + 5) kept as they are
    assert r.params_lowrank == 3 * 70 + 30 + 150 + 5 < r.params_structured
    assert r.bytes_lowrank == 4 * r.params_lowrank
    assert r.layers[1].params_lowrank == r.layers[1].params_structured


def test_tolerance_treats_small_weights_as_zero() -> None:
    m = mlp().eval()
    with torch.no_grad():
        m[1].weight[:, :10] = 1e-9
    assert cost_report(m, (64,)).layers[0].in_kept == 64
    assert cost_report(m, (64,), tolerance=1e-6).layers[0].in_kept == 54


def test_batchnorm_params_and_bytes() -> None:
    m = nn.Sequential(nn.Linear(6, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2)).eval()
    with torch.no_grad():
        m[3].weight[:, 1] = 0
    r = cost_report(m, (6,))
    bn = r.layers[1]
    assert bn.kind == "BatchNorm1d" and bn.params_dense == 8 and bn.params_structured == 6
    assert r.maccs_structured == 6 * 3 + 3 * 2


def test_memory_helpers() -> None:
    t = torch.tensor([[0.0, 1.0, 0.0], [2.0, 0.0, 3.0]])
    assert csr_bytes(t) == 3 * (4 + 4) + 3 * 4
    assert csr_bytes(t, index_bytes=8) == 3 * (4 + 8) + 3 * 8
    assert empirical_entropy_bits(torch.tensor([0.0, 0.0, 1.0, 1.0])) == pytest.approx(1.0)
    probs = [3 / 6, 2 / 6, 1 / 6]
    h = -sum(p * math.log2(p) for p in probs)
    v = torch.tensor([0.0, 0.0, 0.0, 5.0, 5.0, 7.0])
    assert entropy_bytes(v) == math.ceil(h * 6 / 8)
    assert entropy_bytes(torch.zeros(100)) == 0
    half = torch.tensor([1.0, 1.0 + 1e-5])  # distinct in float32, equal in float16
    assert entropy_bytes(half) == 1 and entropy_bytes(half, torch.float16) == 0


def test_entropy_of_model_sums_tensors() -> None:
    m = sparse_lenet()
    expected = sum(entropy_bytes(p) for p in m.parameters())
    assert cost_report(m, MNIST).bytes_entropy == expected < cost_report(m, MNIST).bytes_dense


@pytest.mark.parametrize("bad,err", [
    (lambda x: x, TypeError),  # any nn.Module is analysed (projlib.measure.graph), nothing else
    ("mlp", TypeError),
    (nn.Sequential(nn.Linear(3, 2)), ValueError),  # the shape does not fit it: said, not traced
    (nn.Linear(3, 2), ValueError),
])
def test_rejects_unsupported_models(bad, err) -> None:
    with pytest.raises(err, match="model"):
        cost_report(bad, (4,))


@pytest.mark.parametrize("shape", [(3, 3), (0,), "abc", (5,)])
def test_rejects_bad_input_shape(shape) -> None:
    with pytest.raises(ValueError, match="input_shape"):
        cost_report(nn.Sequential(nn.Linear(4, 2)), shape)


def test_rejects_bad_options() -> None:
    m = nn.Sequential(nn.Linear(4, 2))
    with pytest.raises(ValueError, match="tolerance"):
        cost_report(m, (4,), tolerance=-1.0)
    with pytest.raises(ValueError, match="csr_index_bytes"):
        cost_report(m, (4,), csr_index_bytes=2)
