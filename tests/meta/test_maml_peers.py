"""Meta-gradients and adapted parameters equal higher's and learn2learn's (float64, 1st/2nd order)."""

from __future__ import annotations

import warnings

import pytest
import torch
from maml_toys import TinyConvNet, grads_of, make_batch

from metahyper.data.episodes import TaskBatch
from metahyper.meta import MamlConfig, inner_loop, meta_loss
from metahyper.meta.peers import higher_maml, learn2learn_maml

pytestmark = pytest.mark.peers
STEPS, LR = 3, 0.4


def _model() -> TinyConvNet:
    torch.manual_seed(3)
    return TinyConvNet().double()


def _ours(batch: TaskBatch, first_order: bool) -> tuple[dict, list[list[torch.Tensor]]]:
    model = _model()
    loss, _ = meta_loss(model, batch, MamlConfig(inner_steps=STEPS, inner_lr=LR, first_order=first_order))
    loss.backward()
    start = dict(model.named_parameters())
    adapted = [
        list(inner_loop(model, start, batch.support_x[t], batch.support_y[t], STEPS, LR, create_graph=False).values())
        for t in range(len(batch.support_x))
    ]
    order = list(start)
    return grads_of(model), [[a[order.index(n)] for n in order] for a in adapted]


def _higher(batch: TaskBatch, first_order: bool) -> tuple[dict, list[list[torch.Tensor]]]:
    pytest.importorskip("higher")
    model = _model()
    adapted = higher_maml(model, batch, STEPS, LR, first_order)
    return grads_of(model), adapted


def _learn2learn(batch: TaskBatch, first_order: bool) -> tuple[dict, list[list[torch.Tensor]]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pytest.importorskip("learn2learn")
    model = _model()
    adapted = learn2learn_maml(model, batch, STEPS, LR, first_order)
    return grads_of(model), adapted


@pytest.mark.parametrize("peer", [_higher, _learn2learn], ids=["higher", "learn2learn"])
@pytest.mark.parametrize("first_order", [False, True], ids=["second_order", "first_order"])
def test_meta_gradients_and_adapted_params_match_peer(peer, first_order):
    batch = make_batch(seed=1, tasks=3)
    our_grads, our_adapted = _ours(batch, first_order)
    peer_grads, peer_adapted = peer(batch, first_order)
    assert our_grads.keys() == peer_grads.keys()
    for name, grad in our_grads.items():
        assert grad is not None and peer_grads[name] is not None, name
        torch.testing.assert_close(grad, peer_grads[name], rtol=1e-9, atol=1e-12, msg=name)
    for ours, theirs in zip(our_adapted, peer_adapted, strict=True):
        for a, b in zip(ours, theirs, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-13)


def test_first_and_second_order_differ():
    """Guards the comparison above against a setting where both orders coincide."""
    batch = make_batch(seed=1, tasks=3)
    first, second = _ours(batch, True)[0], _ours(batch, False)[0]
    assert not torch.allclose(first["conv2.weight"], second["conv2.weight"])
