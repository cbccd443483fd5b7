"""The grouped backend (all tasks in one pass, ``groups = T`` convolutions) gives the loop's numbers
in float64, first and second order, on plain and hyper models; layers it cannot split per task are
refused by name; ``backend: auto`` follows the measured choice per device kind."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from maml_toys import TinyConvNet, TinyHyperNet, grads_of, make_batch
from torch import nn

from metahyper.meta import MamlConfig, meta_forward, predict
from metahyper.meta.backend_choice import CHOICE_FILE, choose_backend, recorded, resolve_backend
from metahyper.meta.inner import call_with
from metahyper.models import build_model
from metahyper.models.backbones import Conv4, ResNet12
from metahyper.models.grouped import group_images, grouped_layers, ungroup
from metahyper.models.hyperize import hyperize
from metahyper.models.norm import norm_statistics

ALL_ROLES = ("embedding", "hypernet", "classifier", "body")


def _conv4() -> nn.Module:
    return Conv4(3, width=8)  # the built-in conv4 (width 64) at test width


def _resnet12() -> nn.Module:
    return ResNet12(3, widths=(4, 8, 8, 16))  # the built-in layout (3 convs + 1x1 shortcut per stage) at test width


MODELS = {
    "tiny (conv bias)": (TinyConvNet, None),
    "conv4": (_conv4, None),
    "conv4 anil": (_conv4, ("classifier",)),
    "resnet12": (_resnet12, None),
    "hyper_conv4": (lambda: hyperize(_conv4()), None),
    "hyper_conv4 all roles": (lambda: hyperize(_conv4()), ALL_ROLES),
    "hyper_resnet12": (lambda: hyperize(_resnet12()), None),
    "hyper_resnet12 v2": (lambda: hyperize(_resnet12(), variant=2), None),
}


def _run(build, roles, backend: str, first_order: bool, device: torch.device = torch.device("cpu")):
    torch.manual_seed(0)
    model = build().double().to(device)
    cfg = MamlConfig(backend=backend, first_order=first_order, inner_steps=2, inner_lr=0.3, inner_roles=roles,
                     outer_roles=roles)
    out = meta_forward(model, make_batch(seed=3, tasks=3, size=16).to(device), cfg, track_movement=True)
    out.loss.backward()
    return out, grads_of(model)


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("first_order", [False, True], ids=["second_order", "first_order"])
def test_grouped_equals_loop(name, first_order):
    build, roles = MODELS[name]
    loop, loop_grads = _run(build, roles, "loop", first_order)
    grouped, grouped_grads = _run(build, roles, "grouped", first_order)
    torch.testing.assert_close(grouped.loss, loop.loss, rtol=1e-12, atol=0)
    assert grouped.accuracy == loop.accuracy
    assert grouped.movement == pytest.approx(loop.movement, rel=1e-10, abs=1e-14)
    assert any(g is not None for g in loop_grads.values())
    for param, grad in loop_grads.items():
        assert (grad is None) == (grouped_grads[param] is None), param
        if grad is not None:
            torch.testing.assert_close(grouped_grads[param], grad, rtol=1e-9, atol=1e-13, msg=param)


def test_grouped_equals_loop_on_the_device(device):
    build, roles = MODELS["hyper_conv4"]
    loop, loop_grads = _run(build, roles, "loop", False)
    grouped, grouped_grads = _run(build, roles, "grouped", False, device)
    torch.testing.assert_close(grouped.loss.cpu(), loop.loss, rtol=1e-10, atol=0)
    for param, grad in loop_grads.items():
        if grad is not None:
            torch.testing.assert_close(grouped_grads[param].cpu(), grad, rtol=1e-8, atol=1e-13, msg=param)


@pytest.mark.parametrize("bn_mode", ["transductive", "inductive"])
def test_grouped_pass_predicts_each_task_as_its_own_model(bn_mode):
    """Per-task weights (perturbed copies) and batch statistics per task, against ``predict`` on
    each task alone; ``inductive`` takes each task's statistics from its own support rows."""
    torch.manual_seed(1)
    model = hyperize(_resnet12(), variant=1).double()
    batch, tasks = make_batch(seed=4, tasks=3, size=16), 3
    named = dict(model.named_parameters())
    stacked = {n: p.detach() + 0.1 * torch.randn(tasks, *p.shape, dtype=p.dtype)
               for n, p in named.items() if n.endswith("embedding") or n.startswith(("classifier", "stages.0.0.bn"))}
    expected = torch.stack([predict(model, {n: p[t] for n, p in stacked.items()}, batch.support_x[t], batch.query_x[t],
                                    bn_mode) for t in range(tasks)])
    rows = batch.support_x.shape[1] if bn_mode == "inductive" else None
    images = torch.cat([batch.support_x, batch.query_x], dim=1) if rows else batch.query_x
    with torch.no_grad(), grouped_layers(model, tasks, stacked), norm_statistics(model, "batch", rows=rows):
        logits = ungroup(call_with(model, stacked, group_images(images)), tasks)[:, rows or 0:]
    torch.testing.assert_close(logits, expected, rtol=1e-10, atol=1e-12)


class _WithDropout(TinyConvNet):
    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.5)

    def features(self, x):
        return self.drop(super().features(x))


class _WithTorchBatchNorm(TinyConvNet):
    def __init__(self):
        super().__init__()
        self.bn2 = nn.BatchNorm2d(4)


@pytest.mark.parametrize("model_cls, named", [(TinyHyperNet, "'TinyHyperNet' (TinyHyperNet: its own parameters)"),
                                              (_WithDropout, "'drop' (Dropout: a layer)"),
                                              (_WithTorchBatchNorm, "'bn2' (BatchNorm2d: its own parameters)")])
def test_grouped_backend_refuses_layers_it_cannot_split_per_task(model_cls, named):
    model = model_cls().double()
    with pytest.raises(ValueError, match="cannot run " + named.replace("(", r"\(").replace(")", r"\)")):
        meta_forward(model, make_batch(tasks=2), MamlConfig(backend="grouped", inner_steps=1))
    assert all(p.grad is None for p in model.parameters())
    assert all("forward" not in m.__dict__ for m in model.modules())  # nothing left patched


def test_grouped_layers_are_restored_after_an_error():
    model = build_model("conv4", num_classes=3).double()
    with pytest.raises(RuntimeError, match="batch statistics only"), grouped_layers(model, 2, []):
        model(group_images(make_batch(tasks=2, size=16).support_x))  # running statistics: refused
    assert all("forward" not in m.__dict__ for m in model.modules())
    assert model(make_batch(tasks=1, size=16).support_x[0]).shape == (6, 3)


def test_choose_backend_replaces_the_loop_only_where_faster_in_every_row():
    rows = [{"seconds": {"loop": 10.0, "vmap": 12.0, "grouped": 9.0}},
            {"seconds": {"loop": 5.0, "vmap": 4.0, "grouped": 4.5}}]
    assert choose_backend(rows)[0] == "grouped"  # vmap lost the first row
    assert choose_backend([*rows, {"seconds": {"loop": 1.0, "vmap": 0.5, "grouped": 1.5}}])[0] == "loop"
    assert choose_backend([{"seconds": {"loop": 2.0, "vmap": 1.0, "grouped": 1.5}}])[0] == "vmap"
    assert choose_backend([{"seconds": {"vmap": 1.0}}])[0] == "loop"


def test_auto_follows_the_recorded_choice_per_device_kind(caplog):
    entries = json.loads(CHOICE_FILE.read_text(encoding="utf-8"))
    assert resolve_backend("auto", "cpu") == entries["cpu"]["backend"]
    assert entries["cpu"]["measured"]["rows"], "the CPU choice names the rows it came from"
    assert resolve_backend("grouped", "cpu") == "grouped"
    with caplog.at_level(logging.INFO, logger="metahyper"):
        assert resolve_backend("auto", "no-such-device") == "loop"
    assert "no measured rows for this device kind" in caplog.text
    with pytest.raises(ValueError, match="backend must be one of"):
        resolve_backend("fast", "cpu")


def test_recorded_choice_with_an_unknown_backend_is_an_error_naming_the_file(tmp_path):
    bad = tmp_path / "choice.json"
    bad.write_text(json.dumps({"cuda": {"backend": "warp"}}))
    with pytest.raises(ValueError, match=r"choice.json: entry 'cuda' has backend 'warp'"):
        recorded(bad)
