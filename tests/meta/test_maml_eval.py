"""Evaluation adaptation: no outer graph, and inductive batch norm does not leak across queries
(on every device)."""

from __future__ import annotations

import torch
from maml_toys import TinyHyperNet, make_batch

from metahyper.meta import MamlConfig, adapt, adapt_and_predict
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
