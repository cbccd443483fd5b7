"""Chen et al.'s Meta-Baseline and its pretraining: logits are the temperature times cosine
similarity to hand-computed class means, the temperature is trained, saved and restored, the method
is way-agnostic, and the cosine pretraining head computes scale * cos and ends in a linear way head."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from maml_toys import FakeSampler, TinyConvNet, TinyHyperNet, make_batch, to_float

from metahyper.checkpoint import load_checkpoint
from metahyper.meta.methods import MetaBaseline, make_method
from metahyper.meta.pretrain import PretrainConfig, pretrain
from metahyper.meta.train import MetaTrainConfig, meta_train
from metahyper.models.heads import CosineClassifier, add_metric_scale, restore_metric_scale
from metahyper.models.norm import norm_statistics


def _model(build=TinyHyperNet):
    torch.manual_seed(0)
    return build().double()


def test_logits_are_the_temperature_times_cosine_similarity_to_the_class_means():
    model, batch, method = _model(), make_batch(tasks=1, shot=3, query=2), MetaBaseline()
    method.prepare(model)
    with torch.no_grad():
        model.metric_scale.fill_(7.0)
    sx, sy, qx = batch.support_x[0], batch.support_y[0], batch.query_x[0]
    with torch.no_grad(), norm_statistics(model, "batch"):
        fs, fq = model.features(sx).numpy(), model.features(qx).numpy()
    means = np.stack([fs[sy.numpy() == k].mean(axis=0) for k in range(3)])
    expected = 7.0 * np.array([[q @ c / np.linalg.norm(q) / np.linalg.norm(c) for c in means] for q in fq])
    predictor = method.predictor(model, 0, "transductive")
    np.testing.assert_allclose(predictor(sx, sy, qx).numpy(), expected, rtol=1e-10, atol=1e-12)
    assert predictor.name == "meta_baseline" and predictor.settings == {"metric": "cosine"}
    assert make_method("meta_baseline", MetaTrainConfig()).way_agnostic


def test_a_step_trains_the_temperature_with_the_features_and_not_the_head():
    model, batch, method = _model(), make_batch(tasks=2, shot=2), MetaBaseline()
    method.prepare(model)
    params = method.outer_parameters(model)
    assert any(p is model.metric_scale for p in params) and all(p is not model.classifier.weight for p in params)
    out = method.step(model, batch)
    assert model.metric_scale.grad is not None and model.metric_scale.grad.abs() > 0
    assert model.classifier.weight.grad is None and np.isfinite(out.loss.item())


def test_the_temperature_is_needed_and_comes_back_from_the_checkpoint(tmp_path):
    with pytest.raises(ValueError, match="metric_scale"):
        MetaBaseline().predictor(_model(), 0, "transductive")
    cfg = MetaTrainConfig(iterations=3, meta_batch=2, checkpoint_every=3, outer_lr=0.05, min_lr=0.05)
    model = _model(TinyConvNet)
    meta_train(model, FakeSampler(), lambda x, generator: to_float(x), cfg, tmp_path, progress=False,
               method="meta_baseline")
    state = load_checkpoint(tmp_path / "checkpoint.pt")["model"]
    assert state["metric_scale"].item() != pytest.approx(10.0)  # init 10, trained
    fresh = _model(TinyConvNet)
    restore_metric_scale(fresh, state)
    fresh.load_state_dict(state)
    assert fresh.metric_scale.item() == state["metric_scale"].item()
    assert add_metric_scale(fresh) is fresh.metric_scale  # not replaced


def test_cosine_head_is_scale_times_cosine_and_pretraining_ends_with_a_linear_way_head(tmp_path):
    head = CosineClassifier(2, 2, scale=5.0).double()
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
    x = torch.tensor([[0.0, 3.0]], dtype=torch.float64)
    torch.testing.assert_close(head(x), torch.tensor([[0.0, 5.0 / np.sqrt(2)]], dtype=torch.float64))
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (48, 3, 6, 6), dtype=torch.uint8, generator=gen)
    labels = torch.arange(4).repeat_interleave(12)
    images[labels == 1] //= 2  # classes a head can tell apart
    images[labels == 2] = images[labels == 2] // 2 + 128
    torch.manual_seed(1)
    model = TinyConvNet(way=5)
    cfg = PretrainConfig(epochs=6, batch_size=16, optimizer="adam", lr=0.02, weight_decay=0.0, head="cosine")
    history = pretrain(model, images, labels, lambda x, g: to_float(x, torch.float32), cfg, tmp_path, way=5,
                       progress=False)
    assert history[-1]["loss"] < history[0]["loss"]
    assert type(model.classifier) is torch.nn.Linear and model.classifier.out_features == 5
    saved = load_checkpoint(tmp_path / "pretrain_checkpoint.pt")["model"]
    assert "classifier.scale" in saved and saved["classifier.weight"].shape == (4, 4)
    with pytest.raises(ValueError, match="PretrainConfig.head must be one of"):
        PretrainConfig(head="arcface")
