"""Meta-learning methods: ANIL against MAML and a hand-computed head step, ProtoNet against hand-computed
distances to class means, one ProtoNet step lowering its loss, and meta-training by method name."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from maml_toys import FakeSampler, TinyConvNet, TinyHyperNet, grads_of, make_batch, to_float

from metahyper.checkpoint import load_checkpoint
from metahyper.config import config_hash
from metahyper.meta.maml import MamlConfig, meta_backward
from metahyper.meta.methods import ProtoNet, make_method, prototype_logits
from metahyper.meta.train import MetaTrainConfig, meta_train
from metahyper.models.norm import norm_statistics


def _seeded(build):
    torch.manual_seed(0)
    return build().double()


@pytest.mark.parametrize("first_order", [True, False])
def test_anil_equals_maml_with_the_classifier_as_only_inner_role(first_order):
    maml = MamlConfig(inner_steps=2, inner_lr=0.1, first_order=first_order)
    batch, anil_model = make_batch(tasks=2), _seeded(TinyHyperNet)
    maml_model = copy.deepcopy(anil_model)
    out = make_method("anil", MetaTrainConfig(maml=maml)).step(anil_model, batch)
    expected = meta_backward(maml_model, batch, MamlConfig(**{**maml.__dict__, "inner_roles": ("classifier",)}))
    assert out.loss.item() == pytest.approx(expected.loss.item(), rel=1e-12)
    got, want = grads_of(anil_model), grads_of(maml_model)
    assert {n for n, g in want.items() if g is not None} == {"hyper", "classifier.weight", "classifier.bias"}
    for name, grad in want.items():
        assert (grad is None and got[name] is None) or torch.allclose(got[name], grad, rtol=1e-12, atol=1e-14), name


def test_anil_query_loss_matches_a_hand_computed_head_step():
    """One inner step on the head of fixed features: W' = W - lr (p - y)^T f / S, b' = b - lr mean(p - y)."""
    model, batch, lr = _seeded(TinyConvNet), make_batch(tasks=1), 0.5
    sx, sy, qx, qy = batch.support_x[0], batch.support_y[0], batch.query_x[0], batch.query_y[0]
    with torch.no_grad(), norm_statistics(model, "batch"):
        fs, fq = model.features(sx).numpy(), model.features(qx).numpy()
    w, b = model.classifier.weight.detach().numpy(), model.classifier.bias.detach().numpy()
    onehot = np.eye(3)[sy.numpy()]
    p = np.exp(fs @ w.T + b)
    p /= p.sum(axis=1, keepdims=True)
    w2, b2 = w - lr * (p - onehot).T @ fs / len(fs), b - lr * (p - onehot).mean(axis=0)
    logits = fq @ w2.T + b2
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = -log_p[np.arange(len(qy)), qy.numpy()].mean()
    out = make_method("anil", MetaTrainConfig(maml=MamlConfig(inner_steps=1, inner_lr=lr))).step(model, batch)
    assert out.loss.item() == pytest.approx(expected, rel=1e-10)


def test_anil_refuses_other_inner_roles_and_names_itself_in_reports():
    with pytest.raises(ValueError, match="inner_roles"):
        make_method("anil", MetaTrainConfig(maml=MamlConfig(inner_roles=("embedding", "classifier"))))
    predictor = make_method("anil", MetaTrainConfig()).predictor(_seeded(TinyHyperNet), 3, "transductive")
    assert predictor.name == "anil" and predictor.settings["inner_roles"] == ("classifier",)


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown method 'reptile' \(known: anil, maml, meta_baseline, protonet\)"):
        make_method("reptile", MetaTrainConfig())
    with pytest.raises(ValueError, match=r"unknown method 'mamll'; did you mean 'maml'\? \(known: anil, maml, "):
        make_method("mamll", MetaTrainConfig())


def test_protonet_logits_are_minus_squared_distances_to_the_support_class_means():
    model, batch = _seeded(TinyHyperNet), make_batch(tasks=1, shot=3, query=2)
    sx, sy, qx = batch.support_x[0], batch.support_y[0], batch.query_x[0]
    with torch.no_grad(), norm_statistics(model, "batch"):
        fs, fq = model.features(sx).numpy(), model.features(qx).numpy()
    labels = sy.numpy()
    expected = np.array([[-sum((q[i] - fs[labels == k][:, i].mean()) ** 2 for i in range(len(q))) for k in range(3)]
                         for q in fq])
    with torch.no_grad():
        logits = prototype_logits(model, sx, sy, qx)
    np.testing.assert_allclose(logits.numpy(), expected, rtol=1e-10, atol=1e-12)
    predicted = ProtoNet().predictor(model, 0, "transductive")(sx, sy, qx)
    np.testing.assert_allclose(predicted.numpy(), expected, rtol=1e-10, atol=1e-12)


def test_one_protonet_step_lowers_the_episode_loss_and_leaves_the_head_alone():
    model, batch, method = _seeded(TinyHyperNet), make_batch(tasks=2, shot=3), ProtoNet()
    params = method.outer_parameters(model)
    assert {n for n, p in model.named_parameters() if any(p is q for q in params)} == {
        "stem.weight", "bn0.weight", "bn0.bias", "emb1", "emb2", "hyper", "bn1.weight", "bn1.bias", "bn2.weight",
        "bn2.bias"}
    before = method.step(model, batch)
    assert model.classifier.weight.grad is None and all(p.grad is not None for p in params)
    with torch.no_grad():
        for p in params:
            p -= 0.05 * p.grad
            p.grad = None
    after = method.step(model, batch)
    assert after.loss.item() < before.loss.item()
    by_hand = np.mean([F.cross_entropy(prototype_logits(model, *task), qy).item() for *task, qy in
                       zip(batch.support_x, batch.support_y, batch.query_x, batch.query_y)])
    assert after.loss.item() == pytest.approx(by_hand, rel=1e-12) and after.movement == {}


def test_meta_train_by_method_name_hashes_the_method_unless_maml(tmp_path):
    cfg = MetaTrainConfig(iterations=2, meta_batch=2, checkpoint_every=2, diagnostics_every=1,
                          maml=MamlConfig(inner_steps=1, inner_lr=0.1))
    for method in ("maml", "protonet"):
        model = _seeded(TinyConvNet)
        record = meta_train(model, FakeSampler(), lambda x, generator: to_float(x), cfg, tmp_path / method,
                            progress=False, method=method)
        assert record["iteration"] == 2 and np.isfinite(record["loss"])
    assert load_checkpoint(tmp_path / "maml" / "checkpoint.pt")["config_hash"] == config_hash(cfg)
    protonet_hash = load_checkpoint(tmp_path / "protonet" / "checkpoint.pt")["config_hash"]
    assert protonet_hash == config_hash({**cfg.__dict__, "maml": cfg.maml.__dict__, "method": "protonet"})
