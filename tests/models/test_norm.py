"""MetaBatchNorm2d against independent references: torch's nn.BatchNorm2d (train and eval, with
running statistics), the batch-norm formula written out by hand (batch and inductive ``rows``
modes, fused and tensor-op paths), and finite differences (gradcheck / gradgradcheck)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.autograd import gradcheck, gradgradcheck

from metahyper.models.norm import MetaBatchNorm2d, norm_statistics

F64 = torch.float64


def _layer(channels: int = 3) -> MetaBatchNorm2d:
    layer = MetaBatchNorm2d(channels).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([1.5, -0.5, 2.0], dtype=F64)[:channels])
        layer.bias.copy_(torch.tensor([0.25, 1.0, -0.75], dtype=F64)[:channels])
    return layer


def _by_hand(x: torch.Tensor, reference: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float):
    """(x - mean) / sqrt(var + eps) * weight + bias, statistics of ``reference`` per channel,
    summed element by element (no torch reduction over the batch)."""
    out = torch.empty_like(x)
    for c in range(x.shape[1]):
        values = reference[:, c].flatten().tolist()
        mean = sum(values) / len(values)
        var = sum((v - mean) ** 2 for v in values) / len(values)
        out[:, c] = (x[:, c] - mean) / (var + eps) ** 0.5 * weight[c] + bias[c]
    return out


def test_matches_nn_batchnorm_in_train_and_eval_mode():
    torch.manual_seed(0)
    mine, torchs = _layer(), nn.BatchNorm2d(3).double()
    torchs.load_state_dict(mine.state_dict(), strict=False)
    for step in range(3):
        x = torch.randn(4, 3, 5, 5, dtype=F64) * (step + 1) + step
        torch.testing.assert_close(mine(x), torchs(x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(mine.running_mean, torchs.running_mean, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(mine.running_var, torchs.running_var, rtol=1e-12, atol=1e-14)
    mine.eval(), torchs.eval()
    x = torch.randn(2, 3, 5, 5, dtype=F64)
    torch.testing.assert_close(mine(x), torchs(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "tensor_ops"])
@pytest.mark.parametrize("rows", [None, 2])
def test_batch_and_rows_modes_match_the_formula_and_leave_running_stats(fused, rows):
    torch.manual_seed(1)
    layer, x = _layer(), torch.randn(5, 3, 4, 4, dtype=F64) * 2 + 1
    layer.eval()  # source="batch" must override eval mode
    with norm_statistics(layer, "batch", rows=rows, fused=fused):
        out = layer(x)
    reference = x if rows is None else x[:rows]
    torch.testing.assert_close(out, _by_hand(x, reference, layer.weight.detach(), layer.bias.detach(), layer.eps),
                               rtol=1e-12, atol=1e-12)
    assert torch.equal(layer.running_mean, torch.zeros(3)) and torch.equal(layer.running_var, torch.ones(3))
    assert (layer.stat_source, layer.stat_rows, layer.stat_fused) == ("auto", None, True)


def test_rows_in_training_update_running_stats_from_the_reference_rows():
    """source="auto" with rows: statistics and the running update come from the first rows only,
    with nn.BatchNorm2d's unbiased running variance."""
    torch.manual_seed(2)
    layer, torchs, x = _layer(), nn.BatchNorm2d(3).double(), torch.randn(6, 3, 3, 3, dtype=F64)
    with norm_statistics(layer, "auto", rows=4):
        layer(x)
    torchs(x[:4])
    torch.testing.assert_close(layer.running_mean, torchs.running_mean, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(layer.running_var, torchs.running_var, rtol=1e-12, atol=1e-14)


MODES = {
    "batch_fused": dict(source="batch"),
    "batch_tensor_ops": dict(source="batch", fused=False),
    "rows": dict(source="batch", rows=3),
    "running": None,  # eval mode: running statistics
}


@pytest.mark.parametrize("mode", list(MODES))
def test_gradcheck_and_gradgradcheck(mode):
    """First and second derivatives in x, weight and bias agree with finite differences."""
    torch.manual_seed(3)
    layer = _layer(2)
    if MODES[mode] is None:
        layer.eval()
        layer.running_mean.copy_(torch.tensor([0.3, -0.2]))
        layer.running_var.copy_(torch.tensor([1.7, 0.6]))
    x = torch.randn(4, 2, 3, 3, dtype=F64, requires_grad=True)
    weight = layer.weight.detach().clone().requires_grad_()
    bias = layer.bias.detach().clone().requires_grad_()

    def f(x, weight, bias):
        return torch.func.functional_call(layer, {"weight": weight, "bias": bias}, (x,))

    settings = MODES[mode] or {}
    with norm_statistics(layer, **settings) if settings else torch.enable_grad():
        assert gradcheck(f, (x, weight, bias))
        assert gradgradcheck(f, (x, weight, bias))
