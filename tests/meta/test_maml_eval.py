"""Evaluation adaptation: no outer graph, inductive batch norm does not leak across queries (on
every device), and adapting all tasks of a batch at once gives the task-by-task predictions."""

from __future__ import annotations

import pytest
import torch
from maml_toys import TinyConvNet, TinyHyperNet, make_batch

from metahyper.eval.evaluate import correct_counts
from metahyper.meta import MamlConfig, adapt, adapt_and_predict
from metahyper.meta.maml import adapt_and_predict_tasks
from metahyper.meta.predictors import maml_predictor
from metahyper.models import build_model
from metahyper.models.norm import MetaBatchNorm2d


def _episode(device: torch.device = torch.device("cpu")):
    torch.manual_seed(0)
    batch = make_batch(seed=4, tasks=1, query=4).to(device)
    return TinyHyperNet().double().to(device), batch.support_x[0], batch.support_y[0], batch.query_x[0]


def _logits_with_other_queries_changed(bn_mode: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    model, sx, sy, qx = _episode(device)
    cfg = MamlConfig(inner_lr=0.1)
    changed = qx.clone()
    changed[1:] = torch.randn_like(changed[1:]) * 3
    return tuple(adapt_and_predict(model, sx, sy, x, cfg, 3, bn_mode)[0] for x in (qx, changed))


def test_inductive_query_logits_ignore_other_queries(device):
    first, second = _logits_with_other_queries_changed("inductive", device)
    torch.testing.assert_close(first, second, rtol=1e-12, atol=1e-14)
    alone, _ = _logits_with_other_queries_changed("inductive", torch.device("cpu"))
    torch.testing.assert_close(first.cpu(), alone, rtol=1e-10, atol=1e-13)


def test_transductive_query_logits_depend_on_other_queries(device):
    first, second = _logits_with_other_queries_changed("transductive", device)
    assert not torch.allclose(first, second)


def test_evaluation_builds_no_outer_graph_and_restores_norm_settings():
    model, sx, sy, qx = _episode()
    logits = adapt_and_predict(model, sx, sy, qx, MamlConfig(), 10, "inductive")
    assert logits.shape == (len(qx), 3) and logits.grad_fn is None
    assert all(p.grad is None for p in model.parameters())
    norms = [m for m in model.modules() if isinstance(m, MetaBatchNorm2d)]
    assert all(m.stat_source == "auto" and m.stat_rows is None for m in norms)


def test_adapt_moves_inner_roles_only_and_uses_eval_steps():
    model, sx, sy, _ = _episode()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    assert all(torch.equal(p, before[n]) for n, p in adapt(model, sx, sy, 0, 0.01).items())
    params = adapt(model, sx, sy, 2, 0.01)
    assert set(params) == {"emb1", "emb2", "classifier.weight", "classifier.bias"}
    assert not torch.equal(params["emb1"], model.emb1)
    assert not torch.equal(params["classifier.weight"], model.classifier.weight)
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())


@pytest.mark.parametrize("bn_mode", ["transductive", "inductive"])
@pytest.mark.parametrize("model_cls", [TinyConvNet, TinyHyperNet])
def test_batched_adaptation_gives_the_task_by_task_logits(model_cls, bn_mode):
    """float64: adapting all tasks at once (vmap) gives each task's own logits to 1e-10."""
    torch.manual_seed(0)
    model, batch, cfg = model_cls().double(), make_batch(seed=5, tasks=4, query=3), MamlConfig(inner_lr=0.3)
    one_by_one = torch.stack([adapt_and_predict(model, sx, sy, qx, cfg, 4, bn_mode)
                              for sx, sy, qx in zip(batch.support_x, batch.support_y, batch.query_x)])
    together = adapt_and_predict_tasks(model, batch.support_x, batch.support_y, batch.query_x, cfg, 4, bn_mode)
    torch.testing.assert_close(together, one_by_one, rtol=1e-10, atol=1e-12)
    assert together.grad_fn is None and all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("name", ["conv4", "hyper_conv4"])
def test_batched_evaluation_counts_the_same_correct_queries_in_float32(name):
    """A vmap-backend predictor's ``batch_fn`` is used by ``evaluate`` and classifies every query
    of every task as the task-by-task predictor does (float32, a real model)."""
    torch.manual_seed(0)
    model = build_model(name, num_classes=3)
    batch = make_batch(seed=6, tasks=5, size=16, dtype=torch.float32)
    loop = maml_predictor(model, MamlConfig(inner_lr=0.1), steps=3)
    batched = maml_predictor(model, MamlConfig(inner_lr=0.1, backend="vmap"), steps=3)
    assert loop.batch_fn is None and batched.batch_fn is not None
    one_by_one = torch.stack([loop(sx, sy, qx) for sx, sy, qx in zip(batch.support_x, batch.support_y, batch.query_x)])
    together = batched.batch_fn(batch.support_x, batch.support_y, batch.query_x)
    assert torch.equal(together.argmax(dim=-1), one_by_one.argmax(dim=-1))
    torch.testing.assert_close(together, one_by_one, rtol=1e-4, atol=1e-5)
    assert correct_counts(batched, batch, 3) == correct_counts(loop, batch, 3)
