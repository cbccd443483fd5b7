"""Role-split MAML: which parameters the outer loss reaches, configuration and diagnostics."""

from __future__ import annotations

import pytest
import torch
from maml_toys import TinyConvNet, TinyHyperNet, grads_of, make_batch

from metahyper.data.episodes import TaskBatch
from metahyper.meta import (
    MamlConfig,
    default_roles,
    meta_backward,
    meta_forward,
    meta_loss,
    norm_grad_ratios,
    outer_parameters,
    weight_norms,
)
from metahyper.models import build_model
from metahyper.models.roles import ParamRole

ORDERS = pytest.mark.parametrize("first_order", [False, True], ids=["second_order", "first_order"])
BACKENDS = pytest.mark.parametrize("backend", ["loop", "vmap"])


def _hyper() -> TinyHyperNet:
    torch.manual_seed(0)
    return TinyHyperNet().double()


@ORDERS
@BACKENDS
def test_hyper_outer_gradient_reaches_hypernets_only(first_order, backend):
    model = _hyper()
    cfg = MamlConfig(first_order=first_order, backend=backend, inner_steps=2, inner_lr=0.1)
    meta_loss(model, make_batch(tasks=2), cfg)[0].backward()
    grads, roles = grads_of(model), model.params_by_role()
    for name in [*roles[ParamRole.HYPERNET], *roles[ParamRole.CLASSIFIER]]:
        assert grads[name] is not None and grads[name].abs().sum() > 0, name
    for name in [*roles[ParamRole.EMBEDDING], *roles[ParamRole.BODY]]:
        assert grads[name] is None, name


def test_outer_step_keeps_pretrained_embeddings():
    model = _hyper()
    cfg = MamlConfig(inner_steps=2, inner_lr=0.1)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.Adam(outer_parameters(model, cfg), lr=0.01)
    meta_backward(model, make_batch(tasks=2), cfg)
    opt.step()
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert moved == {"hyper", "classifier.weight", "classifier.bias"}


def test_default_and_configured_roles():
    assert default_roles(_hyper()) == (("embedding", "classifier"), ("hypernet", "classifier"))
    assert default_roles(TinyConvNet()) == (("body", "classifier"), ("body", "classifier"))
    model = _hyper()
    cfg = MamlConfig(outer_roles=("HYPERNET", "classifier", "body"), inner_steps=1)
    assert cfg.outer_roles == ("hypernet", "classifier", "body")
    meta_loss(model, make_batch(tasks=2), cfg)[0].backward()
    assert model.stem.weight.grad is not None and model.emb1.grad is None


def test_plain_model_outer_gradient_reaches_every_weight():
    torch.manual_seed(0)
    model = TinyConvNet().double()
    meta_loss(model, make_batch(tasks=2), MamlConfig(inner_steps=2))[0].backward()
    assert all(p.grad is not None for p in model.parameters())
    assert len(outer_parameters(model, MamlConfig())) == len(list(model.parameters()))


@BACKENDS
def test_meta_backward_equals_backward_of_meta_loss(backend):
    batch, cfg = make_batch(tasks=3), MamlConfig(backend=backend, inner_steps=2, inner_lr=0.1)
    reference = _hyper()
    loss, accuracy = meta_loss(reference, batch, cfg)
    loss.backward()
    model = _hyper()
    out = meta_backward(model, batch, cfg)
    assert out.loss.grad_fn is None and torch.allclose(out.loss, loss.detach()) and out.accuracy == accuracy
    for name, grad in grads_of(model).items():
        expected = grads_of(reference)[name]
        assert (grad is None) == (expected is None), name
        if grad is not None:
            torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-15)


def test_movement_of_params_and_generated_kernels():
    torch.manual_seed(0)
    model, batch = build_model("hyper_conv4", num_classes=3).double(), make_batch(tasks=2, size=16)
    out = meta_forward(model, batch, MamlConfig(inner_steps=2, inner_lr=0.1), track_movement=True)
    kernels = {f"generated/stages.0.{i}.0" for i in range(3)}
    embeddings = {f"param/stages.0.{i}.0.embedding" for i in range(3)}
    assert set(out.movement) == kernels | embeddings | {"param/classifier.weight", "param/classifier.bias"}
    assert all(v > 0 for v in out.movement.values())
    unmoved = meta_forward(model, batch, MamlConfig(inner_steps=0), track_movement=True).movement
    assert unmoved["generated/stages.0.0.0"] == 0


def test_weight_norms_cover_every_layer_with_the_movement_keys():
    """||W|| of each generated kernel is that of conv2d(E, H) computed here; plain weights are
    the parameters' norms; the not-adapted layers (stem, batch norm) are there too."""
    torch.manual_seed(0)
    model = build_model("hyper_conv4", num_classes=3).double()
    norms = weight_norms(model)
    named = dict(model.named_parameters())
    for i in range(3):
        kernel = torch.nn.functional.conv2d(named[f"stages.0.{i}.0.embedding"], named["hypernets.stage0.filter"],
                                            padding=1)
        assert norms[f"generated/stages.0.{i}.0"] == pytest.approx(kernel.norm().item(), rel=1e-12)
    plain = {n for n in named if n.endswith(".weight")}
    assert {k for k in norms if k.startswith("param/")} == {f"param/{n}" for n in plain}
    assert norms["param/stem.0.weight"] == pytest.approx(named["stem.0.weight"].norm().item(), rel=1e-12)
    moved = meta_forward(model, make_batch(tasks=2, size=16), MamlConfig(inner_steps=1, inner_lr=0.1),
                         track_movement=True).movement
    assert {k for k in moved if k.startswith("generated/")} <= set(norms)
    assert "param/stem.0.weight" in norms and "param/stem.0.weight" not in moved  # not adapted


def test_real_hyper_model_outer_gradient_reaches_hypernets_only():
    torch.manual_seed(0)
    model = build_model("hyper_conv4", num_classes=3).double()
    meta_loss(model, make_batch(tasks=2, size=16), MamlConfig(inner_steps=1, inner_lr=0.1))[0].backward()
    roles = model.params_by_role()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in roles[ParamRole.HYPERNET].values())
    assert all(p.grad is None for role in (ParamRole.EMBEDDING, ParamRole.BODY) for p in roles[role].values())


def test_norm_grad_ratios_per_role():
    model = _hyper()
    meta_backward(model, make_batch(tasks=2), MamlConfig(inner_steps=1))
    ratios = norm_grad_ratios(model)
    assert set(ratios) == {"hypernet", "classifier"}
    expected = model.hyper.norm() / model.hyper.grad.norm()
    assert ratios["hypernet"] == pytest.approx(expected.item())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"inner_steps": -1}, "steps"),
        ({"inner_lr": 0.0}, "lr"),
        ({"backend": "jit"}, "backend"),
        ({"inner_roles": ("weights",)}, "unknown parameter role"),
        ({"outer_roles": "hypernet"}, "outer_roles"),
    ],
)
def test_config_errors_name_the_setting(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MamlConfig(**kwargs)


def test_uint8_batch_is_refused_before_work():
    batch = make_batch(tasks=2)
    raw = TaskBatch(batch.support_x.to(torch.uint8), batch.support_y, batch.query_x, batch.query_y)
    with pytest.raises(ValueError, match="batch.support_x must be float"):
        meta_loss(_hyper(), raw, MamlConfig())
    with pytest.raises(ValueError, match="inner_roles"):
        meta_loss(TinyConvNet().double(), batch, MamlConfig(inner_roles=("embedding",)))
