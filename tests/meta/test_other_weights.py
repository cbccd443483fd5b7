"""``MamlConfig.other_weights``: which tensors of a hyper model get gradients in each loop.

A hyper model's BODY weights (here TinyHyperNet's stem and batch norms) are in neither loop
(``frozen``), in the outer loop (``outer``) or in both (``both``); a plain model adapts and
meta-trains every weight whatever the setting. The inner step is checked against one step of
gradient descent computed by hand with ``torch.autograd.grad`` on the model's own forward.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from maml_toys import TinyConvNet, TinyHyperNet, grads_of, make_batch

from metahyper.meta import MamlConfig, meta_loss, outer_parameters
from metahyper.meta.maml import adapt, inner_roles_of
from metahyper.models.roles import ParamRole

BODY = {"stem.weight", "bn0.weight", "bn0.bias", "bn1.weight", "bn1.bias", "bn2.weight", "bn2.bias"}
EMBEDDINGS, HYPERNET, HEAD = {"emb1", "emb2"}, {"hyper"}, {"classifier.weight", "classifier.bias"}
EXPECTED = {  # other_weights -> (adapted in the inner loop, reached by the meta-gradient)
    "frozen": (EMBEDDINGS | HEAD, HYPERNET | HEAD),
    "outer": (EMBEDDINGS | HEAD, HYPERNET | HEAD | BODY),
    "both": (EMBEDDINGS | HEAD | BODY, HYPERNET | HEAD | BODY),
}


def _hyper() -> TinyHyperNet:
    torch.manual_seed(0)
    return TinyHyperNet().double()


def test_the_toy_models_body_is_what_the_test_names():
    assert set(_hyper().params_by_role()[ParamRole.BODY]) == BODY


@pytest.mark.parametrize("other", list(EXPECTED))
@pytest.mark.parametrize("first_order", [False, True], ids=["second_order", "first_order"])
def test_meta_gradient_reaches_exactly_the_outer_tensors(other, first_order):
    model = _hyper()
    cfg = MamlConfig(inner_steps=2, inner_lr=0.1, first_order=first_order, other_weights=other)
    meta_loss(model, make_batch(tasks=2), cfg)[0].backward()
    reached = {name for name, grad in grads_of(model).items() if grad is not None and grad.abs().sum() > 0}
    assert reached == EXPECTED[other][1]
    assert {n for n, p in model.named_parameters() if any(p is q for q in outer_parameters(model, cfg))} == reached


@pytest.mark.parametrize("other", list(EXPECTED))
def test_inner_loop_adapts_exactly_the_inner_tensors_by_one_gradient_step(other):
    model, batch, lr = _hyper(), make_batch(tasks=1), 0.1
    cfg = MamlConfig(inner_steps=1, inner_lr=lr, other_weights=other)
    support_x, support_y = batch.support_x[0], batch.support_y[0]
    fast = adapt(model, support_x, support_y, 1, lr, roles=inner_roles_of(model, cfg), create_graph=False)
    assert set(fast) == EXPECTED[other][0]
    named = dict(model.named_parameters())
    loss = F.cross_entropy(model(support_x), support_y)  # training-mode BN: the batch's statistics, as MAML
    grads = torch.autograd.grad(loss, [named[n] for n in fast])
    for (name, adapted), grad in zip(fast.items(), grads):
        torch.testing.assert_close(adapted, named[name] - lr * grad, msg=name)


@pytest.mark.parametrize("other", list(EXPECTED))
def test_a_plain_model_adapts_and_meta_trains_every_weight_whatever_the_setting(other):
    torch.manual_seed(0)
    model = TinyConvNet().double()
    cfg = MamlConfig(inner_steps=1, other_weights=other)
    assert set(inner_roles_of(model, cfg)) == {"body", "classifier"}
    assert len(outer_parameters(model, cfg)) == len(list(model.parameters()))


def test_anils_outer_loop_follows_other_weights():
    model = _hyper()
    cfg = MamlConfig(inner_roles=("classifier",), inner_steps=1, other_weights="outer")
    assert {n for n, p in model.named_parameters() if any(p is q for q in outer_parameters(model, cfg))} == \
        HYPERNET | HEAD | BODY


def test_an_unknown_value_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match="other_weights must be one of .*'frozen', 'outer', 'both'"):
        MamlConfig(other_weights="all")
