"""The backbone width options of issue 26 (Conv4 at 128 channels, ResNet-12 on 1-channel input with its
stage widths): parameter counts against the closed form, feature sizes at Omniglot resolutions, the
hyper variants, and errors naming the option."""

import pytest
import torch

from metahyper.models import build_model, model_options
from metahyper.models.hyperconv import GeneratedConv2d
from metahyper.models.roles import count_parameters


def conv4_parameters(width: int, channels: int, classes: int) -> int:
    """4 conv3x3 layers without bias, BN weight and bias per channel, a linear head with bias."""
    convs = 9 * channels * width + 3 * 9 * width * width
    return convs + 4 * 2 * width + width * classes + classes


@pytest.mark.parametrize("width", [64, 128])
def test_conv4_width_gives_the_closed_form_parameter_count(width):
    model = build_model("conv4", 20, in_channels=1, width=width)
    assert count_parameters(model) == conv4_parameters(width, 1, 20)
    assert model.feature_dim == width


@pytest.mark.parametrize("size", [28, 56, 84, 105])
def test_conv4_128_and_narrow_resnet12_take_every_omniglot_resolution(size):
    for name, options, dim in (("conv4", {"width": 128}, 128), ("resnet12", {"widths": [16, 24, 32, 40]}, 40)):
        model = build_model(name, 5, in_channels=1, **options)
        assert model.features(torch.randn(2, 1, size, size)).shape == (2, dim), (name, size)


def test_resnet12_widths_set_each_stage_and_the_hyper_variant_keeps_them():
    plain = build_model("resnet12", 5, in_channels=1, widths=[8, 16, 24, 32])
    assert [stage[0].conv1.out_channels for stage in plain.stages] == [8, 16, 24, 32]
    assert plain.stages[0][0].conv1.in_channels == 1
    hyper = build_model("hyper_resnet12", 5, in_channels=1, widths=[8, 16, 24, 32], variant=1)
    assert hyper.features(torch.randn(2, 1, 28, 28)).shape == (2, 32)
    assert "widths" in model_options("hyper_resnet12") and "width" in model_options("hyper_conv4")


def test_hyper_conv4_at_128_channels_generates_128x128_kernels():
    model = build_model("hyper_conv4", 5, in_channels=1, width=128, variant=1)
    kernels = [tuple(m.kernel().shape) for m in model.modules() if isinstance(m, GeneratedConv2d)]
    assert kernels == [(128, 128, 3, 3)] * 3  # the three 128 -> 128 convs of the stage; the stem stays plain
    assert model.features(torch.randn(2, 1, 28, 28)).shape == (2, 128)


@pytest.mark.parametrize("name, options, message", [
    ("conv4", {"width": 0}, "conv4 option width"),
    ("conv4", {"width": 1.5}, "conv4 option width"),
    ("resnet12", {"widths": [64, 160, 320]}, "resnet12 option widths must list 4"),
    ("resnet12", {"widths": [64, 0, 320, 640]}, "resnet12 option widths must be positive"),
    ("hyper_conv4", {"width": -1}, "conv4 option width"),
])
def test_bad_widths_name_the_option(name, options, message):
    with pytest.raises(ValueError, match=message):
        build_model(name, 5, **options)
