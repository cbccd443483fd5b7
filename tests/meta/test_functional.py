"""The functional API (``metahyper.adapt`` / ``metahyper.forward_with``): an outer loop written
with it gives the meta-gradients of the package's own meta-training step and of ``higher``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from maml_toys import TinyConvNet, TinyHyperNet, grads_of, make_batch
from torch import nn

import metahyper
from metahyper.data.episodes import TaskBatch
from metahyper.meta import MamlConfig, meta_backward, outer_parameters
from metahyper.meta.peers import higher_maml
from metahyper.models.norm import MetaBatchNorm2d

ORDERS = pytest.mark.parametrize("first_order", [False, True], ids=["second_order", "first_order"])
STEPS, LR = 2, 0.3


def _user_outer_loop(model: nn.Module, batch: TaskBatch, first_order: bool, roles=None) -> None:
    """What a README reader writes: adapt per task, query loss with the adapted weights, backward."""
    for sx, sy, qx, qy in zip(*batch):
        fast = metahyper.adapt(model, sx, sy, STEPS, LR, roles=roles, create_graph=not first_order)
        loss = F.cross_entropy(metahyper.forward_with(model, fast, qx), qy) / len(batch.support_x)
        loss.backward()


def _outer_grads(model: nn.Module, cfg: MamlConfig) -> dict[str, torch.Tensor]:
    outer, grads = {id(p) for p in outer_parameters(model, cfg)}, grads_of(model)
    return {n: grads[n] for n, p in model.named_parameters() if id(p) in outer}


def _seeded(cls: type[nn.Module]) -> nn.Module:
    torch.manual_seed(5)
    return cls().double()


@ORDERS
@pytest.mark.parametrize("cls", [TinyHyperNet, TinyConvNet], ids=["hyper", "plain"])
def test_user_outer_loop_equals_the_package_meta_training_step(cls, first_order):
    batch = make_batch(seed=2, tasks=3)
    cfg = MamlConfig(inner_steps=STEPS, inner_lr=LR, first_order=first_order)
    ours = _seeded(cls)
    meta_backward(ours, batch, cfg)
    user = _seeded(cls)
    _user_outer_loop(user, batch, first_order, roles=cfg.inner_roles)
    expected, got = _outer_grads(ours, cfg), _outer_grads(user, cfg)
    assert expected.keys() == got.keys() and expected
    for name, grad in expected.items():
        assert grad is not None and grad.abs().sum() > 0, name
        torch.testing.assert_close(got[name], grad, rtol=1e-10, atol=1e-13, msg=name)


def test_first_and_second_order_differ_through_adapt():
    """Guards the parity test above against a setting where both orders coincide."""
    batch = make_batch(seed=2, tasks=2)
    grads = []
    for first_order in (False, True):
        model = _seeded(TinyHyperNet)
        _user_outer_loop(model, batch, first_order)
        grads.append(model.hyper.grad)
    assert not torch.allclose(*grads)


def _plain_sequential() -> nn.Module:
    torch.manual_seed(7)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(4, 3))
    return metahyper.as_meta_model(net, classifier="5").double()


@ORDERS
def test_user_outer_loop_on_a_wrapped_module_equals_higher(first_order):
    pytest.importorskip("higher")
    batch = make_batch(seed=4, tasks=2)
    user, peer = _plain_sequential(), _plain_sequential()
    _user_outer_loop(user, batch, first_order)
    higher_maml(peer, batch, STEPS, LR, first_order)
    for name, grad in grads_of(peer).items():
        assert grad is not None, name
        torch.testing.assert_close(grads_of(user)[name], grad, rtol=1e-10, atol=1e-13, msg=name)


def test_adapt_returns_the_inner_roles_and_runs_under_no_grad():
    model, batch = _seeded(TinyHyperNet), make_batch(tasks=1)
    with torch.no_grad():
        fast = metahyper.adapt(model, batch.support_x[0], batch.support_y[0], 1, LR, create_graph=False)
    assert set(fast) == {"emb1", "emb2", "classifier.weight", "classifier.bias"}
    only_head = metahyper.adapt(model, batch.support_x[0], batch.support_y[0], 1, {"classifier": LR},
                                roles=["classifier"])
    assert set(only_head) == {"classifier.weight", "classifier.bias"}
    assert only_head["classifier.weight"].requires_grad


def test_forward_with_uses_batch_statistics_and_leaves_running_statistics_alone():
    model, x = _seeded(TinyConvNet), make_batch(tasks=1).query_x[0]
    model.eval()  # running statistics (0, 1) differ from the batch's: the result shows which were used
    with torch.no_grad():
        own = metahyper.forward_with(model, {}, x)
        bn = model.bn1
        hand = F.relu(F.batch_norm(model.conv1(x), None, None, bn.weight, bn.bias, training=True, eps=bn.eps))
        hand = F.relu(F.batch_norm(model.conv2(hand), None, None, model.bn2.weight, model.bn2.bias, training=True,
                                   eps=model.bn2.eps))
        torch.testing.assert_close(own, model.classifier(hand.mean(dim=(2, 3))))
        bumped = {"classifier.bias": model.classifier.bias + 1.0}
        torch.testing.assert_close(metahyper.forward_with(model, bumped, x), own + 1.0)
    for layer in (m for m in model.modules() if isinstance(m, MetaBatchNorm2d)):
        assert layer.running_mean.abs().sum() == 0 and torch.all(layer.running_var == 1)


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"roles": ["embeding"]}, ValueError, r"adapt \(roles=\['embeding'\].*unknown parameter role 'embeding'"),
    ({"roles": ["hypernet"], "lr": {"classifier": 0.1}}, ValueError, "no lr for inner role 'hypernet'"),
    ({"steps": -1}, ValueError, "steps must be an int >= 0"),
    ({"create_graph": "yes"}, TypeError, "create_graph must be a bool"),
])
def test_adapt_names_the_bad_argument(kwargs, error, message):
    model, batch = _seeded(TinyHyperNet), make_batch(tasks=1)
    args = {"steps": 1, "lr": 0.1, **kwargs}
    with pytest.raises(error, match=message):
        metahyper.adapt(model, batch.support_x[0], batch.support_y[0], args.pop("steps"), args.pop("lr"), **args)


def test_adapt_refuses_a_plain_module_saying_how_to_wrap_it():
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 6 * 6, 3))
    batch = make_batch(tasks=1, dtype=torch.float32)
    with pytest.raises(TypeError, match=r"adapt: model is a Sequential.*as_meta_model\(model, classifier='1'\)"):
        metahyper.adapt(net, batch.support_x[0], batch.support_y[0], 1, 0.1)
