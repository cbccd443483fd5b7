"""MAML with the fused MetaBatchNorm2d (``F.batch_norm``) gives the meta-gradients of the tensor-op
batch norm it replaced (``reference_forward`` below, the former implementation, kept as the
reference), in float64, first and second order, with the loop and the vmap backend, on plain and
hyper models."""

from __future__ import annotations

import pytest
import torch
from maml_toys import TinyConvNet, TinyHyperNet, grads_of, make_batch
from torch import Tensor

from metahyper.meta import MamlConfig, meta_forward
from metahyper.models import build_model
from metahyper.models.norm import MetaBatchNorm2d


def reference_forward(self: MetaBatchNorm2d, x: Tensor) -> Tensor:
    """The former ``MetaBatchNorm2d.forward`` in batch mode: mean, var and the affine map as
    separate tensor ops (MAML runs in batch mode only; no running statistics)."""
    assert self.stat_source == "batch"
    reference = x if self.stat_rows is None else x[: self.stat_rows]
    mean = reference.mean(dim=(0, 2, 3))
    var = reference.var(dim=(0, 2, 3), unbiased=False)
    scale = self.weight * torch.rsqrt(var + self.eps)
    shift = self.bias - mean * scale
    return x * scale[None, :, None, None] + shift[None, :, None, None]


def _meta_gradients(make_model, batch, backend: str, first_order: bool, steps: int, lr: float):
    torch.manual_seed(0)
    model = make_model().double()
    cfg = MamlConfig(backend=backend, first_order=first_order, inner_steps=steps, inner_lr=lr)
    out = meta_forward(model, batch, cfg)
    out.loss.backward()
    return out.loss.detach(), grads_of(model)


def _assert_same(make_model, batch, backend, first_order, steps, lr, monkeypatch):
    loss, grads = _meta_gradients(make_model, batch, backend, first_order, steps, lr)
    with monkeypatch.context() as patch:
        patch.setattr(MetaBatchNorm2d, "forward", reference_forward)
        ref_loss, ref_grads = _meta_gradients(make_model, batch, backend, first_order, steps, lr)
    torch.testing.assert_close(loss, ref_loss, rtol=1e-12, atol=0)
    scale = max(g.abs().max() for g in ref_grads.values() if g is not None)
    for name, ref in ref_grads.items():
        assert (ref is None) == (grads[name] is None), name
        if ref is not None:  # absolute to the largest gradient: a bias before BN has ~0 (1e-17) gradient
            torch.testing.assert_close(grads[name], ref, rtol=1e-10, atol=1e-12 * scale, msg=name)


ORDERS = pytest.mark.parametrize("first_order", [False, True], ids=["second_order", "first_order"])
BACKENDS = pytest.mark.parametrize("backend", ["loop", "vmap"])


@BACKENDS
@ORDERS
@pytest.mark.parametrize("model_cls", [TinyConvNet, TinyHyperNet])
def test_fused_norm_gives_the_reference_meta_gradients(model_cls, backend, first_order, monkeypatch):
    _assert_same(model_cls, make_batch(seed=2, tasks=3), backend, first_order, 3, 0.2, monkeypatch)


@BACKENDS
@pytest.mark.parametrize("name", ["conv4", "hyper_conv4"])
def test_fused_norm_gives_the_reference_second_order_meta_gradients_on_real_models(name, backend, monkeypatch):
    _assert_same(lambda: build_model(name, num_classes=3), make_batch(tasks=2, size=16), backend, False, 2, 0.1,
                 monkeypatch)
