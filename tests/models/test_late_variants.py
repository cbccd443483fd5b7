"""Variants resolved at lookup: a backbone registered after ``metahyper.models`` was imported
(a user's, here ``tests/plugin_pkg/toy.py``) gets ``hyper_``, ``ha_`` and ``bayes_`` models,
with parameter counts checked against a hand count of the paper's rules."""

import importlib

import pytest
import torch

from metahyper.models import MODELS, ParamRole, build_model, count_parameters
from metahyper.models.bayesian import BAYESIAN_BACKBONES


@pytest.fixture
def toy(isolated_registries):
    assert "toy_convnet" not in MODELS and "hyper_toy_convnet" not in MODELS
    importlib.import_module("plugin_pkg.toy")


def test_a_late_backbone_is_listed_with_its_variants(toy):
    names = MODELS.names()
    assert {"toy_convnet", "hyper_toy_convnet", "ha_toy_convnet", "bayes_toy_convnet"} <= set(names)
    assert len(names) == len(set(names))
    # the built-in large backbones still have no Bayesian variant; variants of variants do not exist
    assert "bayes_resnet12" not in MODELS and "hyper_ha_conv4" not in MODELS
    assert {f"bayes_{name}" for name in BAYESIAN_BACKBONES} <= set(names)


def test_hyper_variant_of_a_late_backbone_has_the_hand_counted_parameters(toy):
    # width 16, 5 classes. Plain: stem conv 3*16*9 = 432, three BNs 3*2*16 = 96, two stage convs
    # 2*16*16*9 = 4608, classifier 16*5+5 = 85.
    plain = 432 + 96 + 4608 + 85
    # Babu et al.: each [16, 16, 3, 3] stage conv becomes an embedding E [16, d=16, 3, 3]
    # (2304 each) made into W by a hypernetwork H [16, 16, 3, 3] (2304): one per stage in
    # variant 1, one per conv in variant 2; the stem conv reads the image and stays plain.
    assert count_parameters(build_model("toy_convnet", 5)) == plain
    assert count_parameters(build_model("hyper_toy_convnet", 5, variant=1)) == plain + 2304
    assert count_parameters(build_model("hyper_toy_convnet", 5, variant=2)) == plain + 2 * 2304
    # d = 4: E [16, 4, 3, 3] = 576 per conv, H [16, 4, 3, 3] = 576; width option passes through
    assert count_parameters(build_model("hyper_toy_convnet", 5, variant=1, d=4)) == plain - 4608 + 2 * 576 + 576
    small = build_model("hyper_toy_convnet", 5, width=8)
    assert small.metahyper_spec == {"name": "hyper_toy_convnet", "num_classes": 5, "options": {"width": 8}}
    assert count_parameters(small) == 216 + 48 + 1152 + 45 + 576


@pytest.mark.parametrize("name", ["hyper_toy_convnet", "ha_toy_convnet", "bayes_toy_convnet"])
def test_variants_of_a_late_backbone_train(toy, name):
    model = build_model(name, 5)
    roles = model.params_by_role()
    assert roles[ParamRole.HYPERNET]
    model(torch.randn(2, 3, 16, 16)).square().mean().backward()
    assert all(p.grad is not None for p in roles[ParamRole.HYPERNET].values())


def test_a_name_that_clashes_with_a_variant_is_refused(toy):
    with pytest.raises(ValueError, match="'hyper_conv4'"):
        MODELS.register("hyper_conv4")(lambda num_classes: None)
    MODELS.register("hyper_mine")(lambda num_classes: None)
    with pytest.raises(ValueError, match="'hyper_mine' would have two builders"):
        MODELS.register("mine")(lambda num_classes: None)
