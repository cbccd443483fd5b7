"""Your own nn.Module under MAML: ``as_meta_model`` against torchvision's own forward, a few MAML
iterations of a wrapped torchvision ResNet-18, and plain modules refused with what to provide."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models import resnet18

import metahyper
from metahyper.meta import MamlConfig, default_roles
from metahyper.meta.maml import PLAIN_ROLES
from metahyper.models.norm import MetaBatchNorm2d
from metahyper.models.roles import ParamRole


def _resnet() -> nn.Module:
    torch.manual_seed(0)
    net = resnet18(num_classes=5)
    with torch.no_grad():  # non-trivial running statistics, so that eval mode shows which ones are used
        for bn in (m for m in net.modules() if isinstance(m, nn.BatchNorm2d)):
            bn.running_mean.uniform_(-0.1, 0.1), bn.running_var.uniform_(0.5, 1.5)
    return net


def _head_input(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What torchvision's ResNet feeds its ``fc`` (a forward hook: the reference for ``features``)."""
    seen = []
    handle = net.fc.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    net(x)
    handle.remove()
    return seen[0]


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_wrapped_resnet_computes_what_torchvision_computes(mode):
    # float64: MetaBatchNorm2d and torch's batch norm round differently, which 20 layers amplify in float32
    net, x = _resnet().double(), torch.randn(6, 3, 32, 32, dtype=torch.float64)
    model = metahyper.as_meta_model(net, classifier="fc")
    getattr(net, mode)(), getattr(model, mode)()
    with torch.no_grad():
        features, expected_features = model.features(x), _head_input(net, x)
        logits, expected = model(x), net(x)
    torch.testing.assert_close(features, expected_features)
    torch.testing.assert_close(logits, expected)
    running = [m.running_var for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    converted = [m.running_var for m in model.modules() if isinstance(m, MetaBatchNorm2d)]
    assert len(converted) == len(running) == 20
    for ours, theirs in zip(converted, running):  # train mode updated both the same way
        torch.testing.assert_close(ours, theirs)


def test_the_wrapped_module_is_left_as_it_was_and_roles_are_plain():
    net = _resnet()
    model = metahyper.as_meta_model(net, classifier="fc")
    assert isinstance(net.fc, nn.Linear) and isinstance(net.bn1, nn.BatchNorm2d)
    assert model.classifier is not net.fc and model.feature_dim == 512
    roles = model.params_by_role()
    assert set(roles[ParamRole.CLASSIFIER]) == {"classifier.weight", "classifier.bias"}
    assert len(roles[ParamRole.BODY]) == len(list(net.parameters())) - 2
    assert default_roles(model) == PLAIN_ROLES
    model.reset_classifier(3)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 3)


def test_a_wrapped_torchvision_resnet_meta_trains_and_evaluates(tmp_path):
    store = metahyper.load_store("synthetic", None, "train", family="source", num_classes=6, images_per_class=6)
    model = metahyper.as_meta_model(_resnet(), classifier="fc")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    sampler = metahyper.EpisodeSampler(store, way=5, shot=1, query=1, seed=0)
    cfg = metahyper.MetaTrainConfig(iterations=2, meta_batch=2, maml=MamlConfig(inner_steps=1, first_order=True))
    record = metahyper.meta_train(model, sampler, metahyper.transforms.ToFloat(), cfg, tmp_path, progress=False)
    assert record["iteration"] == 2 and torch.isfinite(torch.tensor(record["loss"]))
    moved = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
    assert "classifier.weight" in moved and "body.conv1.weight" in moved
    assert (tmp_path / "checkpoint.pt").is_file()
    # Inductive evaluation needs the converted batch norms: a query's logits ignore the other queries.
    predict = metahyper.maml_predictor(model, cfg.maml, steps=1, bn_mode="inductive")
    batch = sampler.sample(1).map_images(metahyper.transforms.ToFloat())
    sx, sy, qx = batch.support_x[0], batch.support_y[0], batch.query_x[0]
    changed = torch.cat([qx[:1], torch.rand_like(qx[1:])])
    torch.testing.assert_close(predict(sx, sy, changed)[0], predict(sx, sy, qx)[0])


def test_a_sequential_is_wrapped_and_checked():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    model = metahyper.as_meta_model(net, classifier="4")
    x = torch.randn(3, 3, 8, 8)
    torch.testing.assert_close(model(x), net(x))
    with pytest.raises(ValueError, match=r"without its head 'fc' the module returned shape \(3, 192, 1\)"):
        metahyper.as_meta_model(_HeadNotLast(), classifier="fc").features(x)


class _HeadNotLast(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(192, 2)

    def forward(self, x):
        return self.fc(x.flatten(1)).unsqueeze(-1)


@pytest.mark.parametrize(("net", "classifier", "error", "message"), [
    (resnet18(num_classes=5), "head", ValueError, r"no submodule classifier='head' \(its nn.Linear layers: 'fc'\)"),
    (resnet18(num_classes=5), "layer4", ValueError, r"'layer4' is a Sequential, not an nn.Linear"),
    (nn.Sequential(nn.Flatten(), nn.Linear(3, 2), nn.Softmax(-1)), "1", ValueError,
     r"classifier='1' is not the last layer of its nn.Sequential"),
    (nn.Sequential(nn.Flatten(), nn.BatchNorm1d(3), nn.Linear(3, 2)), "2", ValueError,
     r"layer '1' is a BatchNorm1d; only nn.BatchNorm2d is converted"),
    (nn.Sequential(nn.BatchNorm2d(3, affine=False), nn.Flatten(), nn.Linear(3, 2)), "2", ValueError,
     r"batch norm '0' needs affine=True"),
    (nn.Sequential(nn.Flatten(), nn.Linear(3, 2)), 1, TypeError, "classifier must be the head's name"),
    ("resnet", "fc", TypeError, "module must be a torch.nn.Module"),
])
def test_as_meta_model_names_what_is_wrong(net, classifier, error, message):
    with pytest.raises(error, match=message):
        metahyper.as_meta_model(net, classifier=classifier)


class _NoHead(metahyper.MetaModel):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def features(self, x):
        return x.flatten(1)


class _NoFeatures(metahyper.MetaModel):
    def __init__(self):
        super().__init__()
        self.classifier = nn.Linear(3, 2)


@pytest.mark.parametrize(("model", "message"), [
    (nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 5)),
     r"meta_train: model is a Sequential, not a metahyper.MetaModel.*metahyper.as_meta_model\(model, "
     r"classifier='4'\).*nn.Linear layers: '2', '4'"),
    (nn.Sequential(nn.Conv2d(3, 4, 3)), r"model is a Sequential.*give it an nn.Linear head"),
    (_NoHead(), r"_NoHead is a MetaModel without a `classifier` nn.Linear"),
    (_NoFeatures(), r"_NoFeatures does not implement features\(x\)"),
    ("a model", "model must be a metahyper.MetaModel"),
])
def test_meta_train_refuses_what_is_not_a_meta_model_up_front(model, message, tmp_path):
    cfg = metahyper.MetaTrainConfig(iterations=1)
    with pytest.raises(TypeError, match=message):
        metahyper.meta_train(model, None, None, cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_evaluation_refuses_a_plain_module_up_front():
    with pytest.raises(TypeError, match=r"maml_predictor: model is a Sequential.*as_meta_model"):
        metahyper.maml_predictor(nn.Sequential(nn.Flatten(), nn.Linear(3, 2)), MamlConfig())
