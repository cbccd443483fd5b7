"""The compute settings (metahyper.models.compute): channels-last weights give the NCHW features up to
rounding; bfloat16 autocast computes the features in bfloat16 and hands float32 to every head, close
to the float32 features; a model that cannot autocast is refused naming the setting."""

import pytest
import torch

from metahyper.models import build_model
from metahyper.models.compute import ComputeConfig
from metahyper.models.norm import norm_statistics


@pytest.mark.parametrize("name", ["conv4", "hyper_conv4", "resnet12"])
def test_channels_last_gives_the_same_features_and_bfloat16_close_ones_in_float32(name):
    model = build_model(name, 5, in_channels=1, **({"widths": [8, 16, 24, 32]} if name == "resnet12" else {}))
    x = torch.randn(6, 1, 28, 28)
    with torch.no_grad(), norm_statistics(model, "batch"):
        plain = model.features(x)
        ComputeConfig(channels_last=True).apply(model)
        assert all(p.is_contiguous(memory_format=torch.channels_last) for p in model.parameters() if p.dim() == 4)
        torch.testing.assert_close(model.features(x), plain, rtol=1e-4, atol=1e-5)
        ComputeConfig(autocast="bfloat16").apply(model)
        low = model.features(x)
    assert low.dtype == torch.float32 and not torch.equal(low, plain)
    assert (low - plain).norm() / plain.norm() < 0.03  # bfloat16 keeps 8 bits of mantissa


def test_autocast_features_backpropagate_into_float32_parameters():
    model = ComputeConfig(autocast="bfloat16").apply(build_model("conv4", 5, in_channels=1))
    model.features(torch.randn(4, 1, 28, 28)).square().mean().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for n, p in model.named_parameters()
               if not n.startswith("classifier"))


def test_settings_are_hashed_only_when_set_and_checked():
    assert ComputeConfig().hashed() == {}
    assert ComputeConfig(autocast="bfloat16").hashed() == {"compute": {"autocast": "bfloat16"}}
    with pytest.raises(ValueError, match="autocast must be null or one of"):
        ComputeConfig(autocast="int8")
    with pytest.raises(ValueError, match="autocast: model Linear does not run its features under autocast"):
        ComputeConfig(autocast="bfloat16").apply(torch.nn.Linear(2, 2))
