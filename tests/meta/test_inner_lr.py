"""Per-role inner-loop learning rates: one SGD step per role, by hand; validation names the role."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from maml_toys import TinyHyperNet, make_batch

from metahyper.config import ConfigError, from_dict
from metahyper.meta import MamlConfig, meta_loss
from metahyper.meta.maml import adapt, meta_forward
from metahyper.models.roles import ParamRole

LRS = {"embedding": 0.05, "classifier": 0.7}


def _model() -> TinyHyperNet:
    torch.manual_seed(3)
    return TinyHyperNet().double()


def _hand_step(model: TinyHyperNet, x, y) -> dict[str, torch.Tensor]:
    """p - lr_role(p) * dL/dp for the embeddings and the classifier (train-mode batch norm)."""
    model.train()
    roles = {n: model.param_role(n) for n, _ in model.named_parameters()}
    params = {n: p for n, p in model.named_parameters() if roles[n] in (ParamRole.EMBEDDING, ParamRole.CLASSIFIER)}
    grads = torch.autograd.grad(F.cross_entropy(model(x), y), list(params.values()))
    return {n: (p - LRS[roles[n].value] * g).detach() for (n, p), g in zip(params.items(), grads)}


def test_one_step_per_role_matches_hand_sgd():
    model, batch = _model(), make_batch(tasks=1)
    x, y = batch.support_x[0], batch.support_y[0]
    expected = _hand_step(model, x, y)
    adapted = adapt(model, x, y, 1, LRS)
    for name, value in expected.items():
        torch.testing.assert_close(adapted[name], value)


@pytest.mark.parametrize("backend", ["loop", "vmap"])
def test_movement_per_role_is_lr_times_gradient_norm(backend):
    model, batch = _model(), make_batch(tasks=2)
    moved = meta_forward(model, batch, MamlConfig(inner_steps=1, inner_lr=LRS, backend=backend),
                         track_movement=True).movement
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    for name in ("emb1", "classifier.weight"):
        steps = []
        for t in range(2):
            after = _hand_step(model, batch.support_x[t], batch.support_y[t])
            steps.append((after[name] - start[name]).norm())
        assert moved[f"param/{name}"] == pytest.approx(torch.stack(steps).mean().item(), rel=1e-9)


@pytest.mark.parametrize("backend", ["loop", "vmap"])
def test_equal_mapping_equals_the_number(backend):
    batch = make_batch(tasks=2)
    results = []
    for lr in (0.1, {"embedding": 0.1, "classifier": 0.1}):
        model = _model()
        loss, _ = meta_loss(model, batch, MamlConfig(inner_steps=2, inner_lr=lr, backend=backend))
        loss.backward()
        results.append((loss.detach(), [p.grad for p in model.parameters() if p.grad is not None]))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=0, atol=0)
    for a, b in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize(("lr", "message"), [
    ({"embedding": 0.1}, "no lr for inner role 'classifier'"),
    ({"embedding": 0.1, "classifier": 0.1, "hypernet": 0.1}, "role 'hypernet', which is not an inner role"),
])
def test_mapping_must_name_the_model_inner_roles(lr, message):
    model, batch = _model(), make_batch(tasks=1)
    with pytest.raises(ValueError, match=message):
        adapt(model, batch.support_x[0], batch.support_y[0], 1, lr)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"inner_lr": {"embeding": 0.1}}, "unknown parameter role 'embeding'"),
    ({"inner_lr": {"embedding": 0.0, "classifier": 0.1}}, "lr of 'embedding' must be a number > 0"),
    ({"inner_lr": {"embedding": 0.1}, "inner_roles": ("embedding", "classifier")}, "no lr for inner role 'classifier'"),
])
def test_config_errors_name_the_role(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MamlConfig(**kwargs)


def test_yaml_mapping_and_number_are_both_accepted():
    assert from_dict(MamlConfig, {"inner_lr": 1}).inner_lr == 1.0
    assert from_dict(MamlConfig, {"inner_lr": {"Embedding": 0.01, "classifier": 0.1}}).inner_lr == {
        "embedding": 0.01, "classifier": 0.1}
    with pytest.raises(ConfigError, match=r"inner_lr\.embedding: expected float, got str"):
        from_dict(MamlConfig, {"inner_lr": {"embedding": "fast"}}, where="suite.yaml")
