"""Layer names in the paper's words on the named modules of every built-in backbone, and the
layers of the paper's Figure 4 (expected values written out by hand from the architectures)."""

import pytest
from torch import nn

from metahyper.models import build_model
from metahyper.models.hyperize import generated_convs
from metahyper.models.layer_names import backbone_of, layer_label, paper_layers
from metahyper.models.norm import MetaBatchNorm2d


def labelled_layers(model_name: str, **options) -> dict[str, str]:
    """Module path -> label of every conv, batch norm and linear layer of a built model."""
    model = build_model(model_name, num_classes=5, in_channels=1, **options)
    kinds = (nn.Conv2d, MetaBatchNorm2d, nn.Linear)
    return {name: layer_label(name, model_name) for name, module in model.named_modules()
            if isinstance(module, kinds) and name}


@pytest.mark.parametrize("model, expected", [
    ("conv4", {"stem.0": "conv 1", "stem.1": "BN 1", "stages.0.0.0": "conv 2", "stages.0.0.1": "BN 2",
               "stages.0.2.0": "conv 4", "stages.0.2.1": "BN 4", "classifier": "classifier"}),
    ("resnet12", {"stages.0.0.conv1": "block 1, conv 1", "stages.1.0.bn3": "block 2, BN 3",
                  "stages.3.0.conv3": "block 4, conv 3", "stages.2.0.shortcut.0": "block 3, shortcut conv",
                  "stages.2.0.shortcut.1": "block 3, shortcut BN"}),
    ("wrn16_4", {"stem": "stem conv", "stages.0.0.conv1": "stage 1, block 1, conv 1",
                 "stages.0.0.bn2": "stage 1, block 1, BN 2", "stages.1.0.shortcut": "stage 2, block 1, shortcut conv",
                 "stages.2.1.conv2": "stage 3, block 2, conv 2", "head.0": "final BN"}),
    ("resnet18", {"stem.0": "stem conv", "stem.1": "stem BN", "stages.3.1.conv2": "stage 4, block 2, conv 2",
                  "stages.1.0.shortcut.0": "stage 2, block 1, shortcut conv",
                  "stages.1.0.shortcut.1": "stage 2, block 1, shortcut BN"}),
])
def test_every_layer_of_a_backbone_gets_a_unique_label_in_the_papers_words(model, expected):
    labels = labelled_layers(model)
    assert {name: labels[name] for name in expected} == expected
    assert len(set(labels.values())) == len(labels)  # no two layers share a label
    assert not any("stages." in label for label in labels.values())


def test_hyper_models_keep_their_backbones_labels():
    plain, hyper = labelled_layers("wrn16_4"), labelled_layers("hyper_wrn16_4", variant=1)
    # a generated conv is a HyperConv2d module, not nn.Conv2d: it is labelled by its path
    assert layer_label("stages.0.1.conv1", "hyper_wrn16_4") == plain["stages.0.1.conv1"] == "stage 1, block 2, conv 1"
    assert hyper["stages.0.0.conv1"] == "stage 1, block 1, conv 1"  # the ungenerated first conv
    assert layer_label("stages.0.1.0.weight", "hyper_conv4") == "conv 3"
    assert (backbone_of("ha_wrn28_4"), backbone_of("bayes_conv4"), backbone_of("my_net")) == ("wrn28_4", "conv4", None)
    assert layer_label("stages.1.2.conv1", "my_net") == "stage 2, block 3, conv 1"  # a user's backbone
    assert layer_label("encoder.layer1", "my_net") == "encoder.layer1"


def shared_convs(model_name: str, **options) -> list[str]:
    """The convs the hyper model generates (its plain pair has every conv), in module order."""
    return list(generated_convs(build_model(f"hyper_{model_name}", num_classes=5, in_channels=3, **options)))


def test_figure_4_layers_of_wrn_28_4_are_the_papers_three():
    # Babu et al., Figure 4: HyperWRN-28-4's first conv of block 2 of stage 1, second conv of
    # block 2 of stage 2, second conv of block 4 of stage 3 (4 blocks per stage: (28 - 4) / 6)
    chosen = paper_layers(shared_convs("wrn28_4", variant=1))
    assert chosen == ["stages.0.1.conv1", "stages.1.1.conv2", "stages.2.3.conv2"]
    assert [layer_label(name, "hyper_wrn28_4") for name in chosen] == [
        "stage 1, block 2, conv 1", "stage 2, block 2, conv 2", "stage 3, block 4, conv 2"]


@pytest.mark.parametrize("model, options, expected", [
    ("wrn16_4", {"variant": 1}, ["stage 1, block 2, conv 1", "stage 2, block 2, conv 2", "stage 3, block 2, conv 2"]),
    # ResNet-12: conv 1 of each block is not generated in variant 1, so block 1's next conv
    ("resnet12", {"variant": 1}, ["block 1, conv 2", "block 3, conv 2", "block 4, conv 3"]),
    ("conv4", {"variant": 1}, ["conv 2", "conv 3", "conv 4"]),  # its three generated convs
])
def test_figure_4_layers_of_other_backbones_are_the_analogous_ones(model, options, expected):
    chosen = paper_layers(shared_convs(model, **options))
    assert [layer_label(name, model) for name in chosen] == expected


def test_figure_4_layers_of_a_model_outside_the_layout_are_its_first_middle_and_last():
    layers = [f"layer{i}.0.conv1" for i in range(1, 6)]  # e.g. a wrapped torchvision ResNet
    assert paper_layers(layers) == ["layer1.0.conv1", "layer3.0.conv1", "layer5.0.conv1"]
    assert paper_layers(layers[:2]) == ["layer1.0.conv1", "layer2.0.conv1"] and paper_layers([]) == []
