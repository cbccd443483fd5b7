"""The vmap backend gives the loop's numbers (float64, first and second order) on every device,
and the loop on CUDA gives the CPU's numbers."""

from __future__ import annotations

import json

import pytest
import torch
from maml_toys import TinyConvNet, TinyHyperNet, grads_of, make_batch

from metahyper.meta import MamlConfig, meta_forward
from metahyper.meta.backend_choice import CHOICE_FILE
from metahyper.models import build_model


def _run(model_cls, backend: str, first_order: bool, device: torch.device = torch.device("cpu")):
    torch.manual_seed(0)
    model = model_cls().double().to(device)
    cfg = MamlConfig(backend=backend, first_order=first_order, inner_steps=3, inner_lr=0.2)
    out = meta_forward(model, make_batch(seed=2, tasks=3).to(device), cfg, track_movement=True)
    out.loss.backward()
    return out, grads_of(model)


@pytest.mark.parametrize("model_cls", [TinyConvNet, TinyHyperNet])
@pytest.mark.parametrize("first_order", [False, True], ids=["second_order", "first_order"])
def test_vmap_equals_loop(model_cls, first_order, device):
    loop, loop_grads = _run(model_cls, "loop", first_order, device)
    vmap, vmap_grads = _run(model_cls, "vmap", first_order, device)
    cpu, cpu_grads = _run(model_cls, "loop", first_order)
    torch.testing.assert_close(loop.loss.cpu(), cpu.loss, rtol=1e-10, atol=0)
    for name, grad in cpu_grads.items():
        if grad is not None:
            torch.testing.assert_close(loop_grads[name].cpu(), grad, rtol=1e-8, atol=1e-13, msg=name)
    torch.testing.assert_close(vmap.loss, loop.loss, rtol=1e-12, atol=0)
    assert vmap.accuracy == loop.accuracy
    assert vmap.movement == pytest.approx(loop.movement, rel=1e-10, abs=1e-14)
    for name, grad in loop_grads.items():
        assert (grad is None) == (vmap_grads[name] is None), name
        if grad is not None:
            torch.testing.assert_close(vmap_grads[name], grad, rtol=1e-9, atol=1e-14, msg=name)


def test_vmap_second_order_gives_no_gradient_to_bias_before_batch_norm():
    """docs/architecture.md section 8: nn.BatchNorm2d under vmap gave this bias a spurious gradient."""
    _, grads = _run(TinyConvNet, "vmap", first_order=False)
    assert grads["conv1.bias"].abs().max() < 1e-14


def test_auto_backend_runs_the_backend_recorded_for_the_cpu():
    chosen = json.loads(CHOICE_FILE.read_text(encoding="utf-8"))["cpu"]["backend"]
    auto, auto_grads = _run(TinyConvNet, "auto", False)
    reference, reference_grads = _run(TinyConvNet, chosen, False)
    assert torch.equal(auto.loss, reference.loss)
    assert all(torch.equal(auto_grads[n], g) for n, g in reference_grads.items())


@pytest.mark.parametrize("name", ["conv4", "hyper_conv4"])
@pytest.mark.parametrize("first_order", [False, True], ids=["second_order", "first_order"])
def test_vmap_equals_loop_on_real_models(name, first_order, device):
    grads = {}
    for backend in ("loop", "vmap"):
        torch.manual_seed(0)
        model = build_model(name, num_classes=3).double().to(device)
        cfg = MamlConfig(backend=backend, first_order=first_order, inner_steps=2, inner_lr=0.1)
        meta_forward(model, make_batch(tasks=2, size=16).to(device), cfg).loss.backward()
        grads[backend] = grads_of(model)
    for param, grad in grads["loop"].items():
        if grad is not None:
            torch.testing.assert_close(grads["vmap"][param], grad, rtol=1e-9, atol=1e-13, msg=param)
