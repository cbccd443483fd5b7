"""Every registered model: forward/backward at 32x32 and 84x84, role partition, config errors."""

import pytest
import torch
from torch import nn

from metahyper.models import MODELS, Backbone, ParamRole, build_model, conv, hyperize, model_options
from metahyper.models.norm import MetaBatchNorm2d

# The generic ``wrn`` entries need depth/width; use the smallest valid WideResNet for them.
OPTIONS = {name: {"depth": 10, "width": 1} for name in ("wrn", "hyper_wrn", "ha_wrn")}
# Measured on one CPU core (batch 2, both sizes): these take 3-17 s each.
SLOW = {"hyper_wrn28_10", "hyper_resnet34", "ha_wrn28_10", "wrn28_10"}


def registered(names=None):
    return [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in (names or MODELS.names())]


@pytest.mark.parametrize("name", registered())
def test_forward_backward_at_32_and_84(name):
    model = build_model(name, 5, **OPTIONS.get(name, {}))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert any(isinstance(m, MetaBatchNorm2d) for m in model.modules())
    for size in (32, 84):
        model.zero_grad(set_to_none=True)
        logits = model(torch.randn(2, 3, size, size))
        assert logits.shape == (2, 5) and torch.isfinite(logits).all()
        logits.square().mean().backward()
        missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
        assert not missing, f"{name} at {size}x{size}: no gradient for {missing[:5]}"


@pytest.mark.parametrize("name", registered())
def test_params_by_role_partitions_trainable_parameters(name):
    model = build_model(name, 5, **OPTIONS.get(name, {}))
    groups = model.params_by_role()
    assert set(groups) == set(ParamRole)
    names = [n for group in groups.values() for n in group]
    assert len(names) == len(set(names)), "a parameter has two roles"
    assert set(names) == {n for n, p in model.named_parameters() if p.requires_grad}
    assert set(groups[ParamRole.CLASSIFIER]) == {"classifier.weight", "classifier.bias"}
    assert all(n.endswith(".embedding") for n in groups[ParamRole.EMBEDDING])
    assert all(".hypernet" in n or n.startswith("hypernets.") for n in groups[ParamRole.HYPERNET])
    hyper_kind = name.split("_")[0] in ("hyper", "ha", "bayes")
    assert bool(groups[ParamRole.HYPERNET]) == hyper_kind
    assert bool(groups[ParamRole.EMBEDDING]) == name.startswith(("hyper_", "ha_"))


def test_reset_classifier_keeps_roles_and_names():
    model = build_model("hyper_conv4", 64)
    model.reset_classifier(5)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 5)
    assert set(model.params_by_role()[ParamRole.CLASSIFIER]) == {"classifier.weight", "classifier.bias"}


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("resnet50", {}, "unknown model 'resnet50'"),
        ("hyper_resnt12", {}, r"unknown model 'hyper_resnt12'; did you mean 'hyper_resnet12'\? \(known: .*conv4"),
        ("wrn28-4", {}, "did you mean 'wrn28_4'"),
        ("wrn28_4", {"widht": 2}, "no option 'widht'"),
        ("hyper_wrn28_4", {"varient": 2}, "no option 'varient'.*variant"),
        ("wrn", {"width": 2}, "needs option 'depth'"),
        ("wrn", {"depth": 27, "width": 2}, "depth"),
        ("wrn", {"depth": 28, "width": 0}, "width"),
        ("hyper_conv4", {"variant": 3}, "variant"),
        ("hyper_conv4", {"d": 0}, "option d"),
        ("hyper_conv4", {"d": -4}, "option d"),
        ("ha_conv4", {"shortcuts": "maybe"}, "shortcuts"),
        ("ha_conv4", {"z_dim": 0}, "z_dim"),
        ("bayes_conv4", {"prior": "cauchy"}, "prior"),
        ("bayes_conv4", {"strategy": "layer-wise"}, "strategy"),
        ("bayes_conv4", {"h_dim": 0}, "h_dim"),
        ("bayes_conv4", {"activation": "tanh"}, "activation"),
    ],
)
def test_bad_configuration_names_the_option(name, options, message):
    with pytest.raises(ValueError, match=message):
        build_model(name, 5, **options)


def test_bad_num_classes_is_refused():
    with pytest.raises(ValueError, match="num_classes"):
        build_model("conv4", 0)


def test_variant_that_does_not_fit_the_backbone():
    """A backbone whose only stage conv changes width has no [w, w, 3, 3] conv for variant 1."""
    stem = nn.Sequential(conv(3, 16), MetaBatchNorm2d(16))
    backbone = Backbone(3, stem, [nn.Sequential(conv(16, 32), MetaBatchNorm2d(32))], nn.Identity(), 32, 5)
    with pytest.raises(ValueError, match="variant=1 does not fit"):
        hyperize(backbone, variant=1)
    assert hyperize(backbone, variant=2)(torch.randn(2, 3, 8, 8)).shape == (2, 5)


def test_variant_options_are_listed():
    assert {"variant", "d", "bias", "in_channels"} <= set(model_options("hyper_resnet12"))
    assert {"depth", "width", "variant"} <= set(model_options("hyper_wrn"))
