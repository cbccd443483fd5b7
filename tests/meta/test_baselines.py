"""Tests for metahyper.meta.baselines: heads against hand computations and scipy, feature BN modes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import optimize
from scipy.special import log_softmax, softmax
from torch import nn
from torch.nn import functional as F

from metahyper.data import fixed_episodes, make_synthetic, transforms
from metahyper.eval.evaluate import evaluate
from metahyper.meta.baselines import (
    centroid_logits,
    extract_features,
    fit_linear_head,
    fit_logistic_regression,
    linear_head_logits,
    linear_head_predictor,
    logistic_objective,
    logistic_regression_logits,
    logistic_regression_predictor,
    nearest_centroid_predictor,
    support_way,
)
from metahyper.models.backbones import Conv4
from metahyper.models.roles import MetaModel


class Flat(MetaModel):
    """features(x) = x flattened, so a test chooses the feature vectors directly."""

    def __init__(self, dim: int, way: int):
        super().__init__()
        self.classifier = nn.Linear(dim, way)

    def features(self, x):
        return x.flatten(1)


def _images(rows) -> torch.Tensor:
    """Feature vectors [N, F] as 'images' [N, 1, 1, F] for the Flat model."""
    return torch.tensor(rows, dtype=torch.float64)[:, None, None, :]


SUPPORT = [[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [0.0, 2.0]]  # class means (1, 0) and (0, 3)
SUPPORT_Y = torch.tensor([0, 0, 1, 1])
QUERY = [[1.0, 1.0], [2.0, 1.0]]


def test_nearest_centroid_matches_hand_computed_distances():
    model = Flat(2, 2)
    euclid = nearest_centroid_predictor(model)(_images(SUPPORT), SUPPORT_Y, _images(QUERY))
    # (1,1): |(0,1)|^2 = 1, |(1,-2)|^2 = 5;  (2,1): |(1,1)|^2 = 2, |(2,-2)|^2 = 8
    torch.testing.assert_close(euclid, torch.tensor([[-1.0, -5.0], [-2.0, -8.0]], dtype=torch.float64))
    cosine = nearest_centroid_predictor(model, metric="cosine")(_images(SUPPORT), SUPPORT_Y, _images(QUERY))
    r2, r5 = 2**0.5, 5**0.5  # cos((1,1),(1,0)) = cos((1,1),(0,1)) = 1/sqrt2; (2,1): 2/sqrt5 and 1/sqrt5
    torch.testing.assert_close(cosine, torch.tensor([[1 / r2, 1 / r2], [2 / r5, 1 / r5]], dtype=torch.float64))


def test_linear_head_one_plain_step_matches_the_hand_gradient():
    x = torch.tensor(SUPPORT, dtype=torch.float64)
    weight, bias = fit_linear_head(x, SUPPORT_Y, 2, steps=1, lr=0.5, momentum=0.0, weight_decay=0.0)
    # at W = 0, b = 0 every softmax is 1/way, so the step is lr * (Y - 1/way)^T X / n
    residual = torch.nn.functional.one_hot(SUPPORT_Y, 2).double() - 0.5
    torch.testing.assert_close(weight, 0.5 * residual.T @ x / 4)
    torch.testing.assert_close(bias, 0.5 * residual.mean(dim=0))


SEPARABLE = [[1.0, 0.1], [1.0, -0.1], [-1.0, 0.1], [-1.0, -0.2]]
SEPARABLE_Y = torch.tensor([0, 0, 1, 1])
SEPARABLE_QUERY, SEPARABLE_QUERY_Y = [[2.0, 0.5], [0.5, -0.3], [-3.0, 1.0], [-0.2, 0.05]], torch.tensor([0, 0, 1, 1])


@pytest.mark.parametrize("make", [linear_head_predictor, logistic_regression_predictor, nearest_centroid_predictor])
def test_separable_two_class_toy_is_classified_perfectly(make):
    logits = make(Flat(2, 2))(_images(SEPARABLE), SEPARABLE_Y, _images(SEPARABLE_QUERY))
    assert torch.equal(logits.argmax(dim=1), SEPARABLE_QUERY_Y)


def _numpy_objective(theta: np.ndarray, x: np.ndarray, y: np.ndarray, way: int, c: float):
    """scikit-learn's multinomial objective and its gradient, written independently in numpy."""
    weight, bias = theta[: way * x.shape[1]].reshape(way, -1), theta[way * x.shape[1]:]
    z = x @ weight.T + bias
    residual = softmax(z, axis=1) - np.eye(way)[y]
    value = 0.5 * (weight**2).sum() - c * log_softmax(z, axis=1)[np.arange(len(y)), y].sum()
    return value, np.concatenate([(weight + c * residual.T @ x).ravel(), c * residual.sum(axis=0)])


def _toy_task(seed: int = 0, way: int = 3, shot: int = 4, dim: int = 6):
    generator = np.random.default_rng(seed)
    y = np.repeat(np.arange(way), shot)
    x = generator.normal(size=(way, dim))[y] + 0.8 * generator.normal(size=(len(y), dim))
    return x, y


def _probabilities(weight, bias, x):
    return torch.softmax(torch.as_tensor(x) @ weight.T + bias, dim=1)


@pytest.mark.parametrize(("dtype", "weight_atol", "probability_atol"),
                         [(torch.float64, 1e-5, 1e-6), (torch.float32, 1e-5, 2e-6)])
def test_logistic_regression_matches_scipy_on_the_same_objective(dtype, weight_atol, probability_atol):
    x, y = _toy_task()
    weight, bias = fit_logistic_regression(torch.as_tensor(x).to(dtype), torch.as_tensor(y), 3, c=2.0)
    weight, bias = weight.double(), bias.double()
    reference = optimize.minimize(_numpy_objective, np.zeros(3 * 6 + 3), args=(x, y, 3, 2.0), jac=True,
                                  method="L-BFGS-B", options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 10_000})
    assert reference.success
    ours = logistic_objective(weight, bias, torch.as_tensor(x), torch.as_tensor(y), 2.0).item()
    assert ours == pytest.approx(reference.fun, rel=1e-10 if dtype == torch.float64 else 1e-7)
    ref_weight = torch.as_tensor(reference.x[:18].reshape(3, 6))
    torch.testing.assert_close(weight, ref_weight, rtol=0, atol=weight_atol)
    torch.testing.assert_close(_probabilities(weight, bias, x), _probabilities(ref_weight, torch.as_tensor(reference.x[18:]), x),
                               rtol=0, atol=probability_atol)


def test_logistic_regression_matches_scikit_learn_when_installed():
    linear_model = pytest.importorskip("sklearn.linear_model")
    x, y = _toy_task(seed=1)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    reference = linear_model.LogisticRegression(C=1.0, max_iter=10_000, tol=1e-12).fit(x, y)
    query = np.random.default_rng(2).normal(size=(5, 6))
    logits = logistic_regression_logits(torch.as_tensor(x), torch.as_tensor(y), torch.as_tensor(query), 3)
    expected = reference.predict_proba(query / np.linalg.norm(query, axis=1, keepdims=True))
    torch.testing.assert_close(torch.softmax(logits, dim=1), torch.as_tensor(expected), rtol=0, atol=1e-5)


@pytest.mark.parametrize(("dtype", "atol"), [(torch.float64, 1e-12), (torch.float32, 2e-6)])
def test_logistic_regression_ignores_feature_scale(dtype, atol):
    x, y = (torch.as_tensor(a) for a in _toy_task(seed=3))
    query = x[::2] + 0.1
    scale = torch.linspace(0.5, 4.0, len(x))[:, None].double()
    torch.testing.assert_close(logistic_regression_logits(x * scale, y, query * 7, 3, dtype=dtype),
                               logistic_regression_logits(x, y, query, 3, dtype=dtype), rtol=0, atol=atol)


def _tasks(n: int = 5, way: int = 4, shot: int = 3, dim: int = 8):
    """n toy tasks stacked: support features [n, way*shot, dim], labels [n, way*shot], queries [n, 6, dim]."""
    tasks = [_toy_task(seed, way, shot, dim) for seed in range(n)]
    query = torch.randn(n, 6, dim, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    return torch.as_tensor(np.stack([x for x, _ in tasks])), torch.as_tensor(np.stack([y for _, y in tasks])), query


@pytest.mark.parametrize(("head", "atol"), [(centroid_logits, 1e-12), (linear_head_logits, 1e-12),
                                            (logistic_regression_logits, 1e-6)])  # the last solves in float32
def test_batched_heads_equal_the_heads_fitted_task_by_task(head, atol):
    support, labels, query = _tasks()
    batched = head(support, labels, query, 4)
    one_by_one = torch.stack([head(s, y, q, 4) for s, y, q in zip(support, labels, query)])
    assert batched.dtype == torch.float64
    torch.testing.assert_close(batched, one_by_one, rtol=0, atol=atol)


def test_batched_float32_logistic_regression_matches_scipy_task_by_task():
    support, labels, query = _tasks(n=6, way=5, shot=2, dim=16)
    support, query = F.normalize(support, dim=-1), F.normalize(query, dim=-1)
    ours = logistic_regression_logits(support, labels, query, 5)
    for s, y, q, logits in zip(support.numpy(), labels.numpy(), query, ours):
        reference = optimize.minimize(_numpy_objective, np.zeros(5 * 17), args=(s, y, 5, 1.0), jac=True,
                                      method="L-BFGS-B", options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 10_000})
        weight, bias = (torch.as_tensor(a) for a in (reference.x[:80].reshape(5, 16), reference.x[80:]))
        torch.testing.assert_close(logits, q @ weight.T + bias, rtol=0, atol=2e-5)


def _conv4():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # weight init of a throwaway test model
        model = Conv4(3, width=4).double()
    generator = torch.Generator().manual_seed(0)
    for bn in (m for m in model.modules() if hasattr(m, "running_mean")):
        bn.running_mean.copy_(0.1 * torch.randn(bn.num_features, generator=generator))
        bn.running_var.copy_(1 + torch.rand(bn.num_features, generator=generator))
    return model


def _support_query(seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(6, 3, 16, 16, generator=generator, dtype=torch.float64),
            torch.randn(9, 3, 16, 16, generator=generator, dtype=torch.float64))


def test_running_mode_uses_pretraining_statistics_and_changes_nothing():
    model, (sx, qx) = _conv4(), _support_query()
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    fs, fq = extract_features(model, sx, qx)
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    model.eval()
    torch.testing.assert_close(fq, model.features(qx))
    torch.testing.assert_close(fq[:1], extract_features(model, sx, qx[:1])[1])  # one query alone: same


@pytest.mark.parametrize("bn_mode", ["running", "inductive"])
def test_query_features_do_not_depend_on_other_queries(bn_mode):
    model, (sx, qx) = _conv4(), _support_query()
    changed = qx.clone()
    changed[1:] = 3 * torch.randn(changed[1:].shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    first, second = (extract_features(model, sx, q, bn_mode)[1][0] for q in (qx, changed))
    torch.testing.assert_close(first, second, rtol=1e-12, atol=1e-13)
    transductive = [extract_features(model, sx, q, "transductive")[1][0] for q in (qx, changed)]
    assert not torch.allclose(*transductive)


def test_bad_arguments_raise_naming_them():
    model, (sx, qx) = _conv4(), _support_query()
    with pytest.raises(ValueError, match="bn_mode"):
        extract_features(model, sx, qx, "batch")
    with pytest.raises(ValueError, match="bn_mode"):
        nearest_centroid_predictor(model, bn_mode="batch")
    with pytest.raises(ValueError, match="metric"):
        nearest_centroid_predictor(model, metric="manhattan")
    with pytest.raises(ValueError, match="metric"):
        centroid_logits(sx[:, 0, 0], torch.tensor([0, 0, 1, 1, 2, 2]), qx[:, 0, 0], 3, metric="l1")
    with pytest.raises(ValueError, match="lr"):
        linear_head_predictor(model, lr=0)
    with pytest.raises(ValueError, match="max_iter"):
        logistic_regression_predictor(model, max_iter=0)
    with pytest.raises(ValueError, match="c "):
        logistic_regression_predictor(model, c=-1.0)
    with pytest.raises(ValueError, match="every label"):
        support_way(torch.tensor([0, 0, 2, 2]))
    assert support_way(torch.tensor([1, 0, 2, 1])) == 3


@pytest.mark.parametrize("make", [nearest_centroid_predictor, linear_head_predictor, logistic_regression_predictor])
def test_each_baseline_runs_under_evaluate_on_synthetic_episodes(make):
    store = make_synthetic("target", "test", num_classes=5, images_per_class=10, image_size=16)
    episodes = fixed_episodes(store, 3, 2, 3, n=4, seed=0)
    model = _conv4().float()
    result = evaluate(make(model), episodes, store, transforms.ToFloat(), batch_tasks=3)
    assert len(result.per_episode) == 4 and 0 <= result.mean <= 1
    assert result.metadata["episodes_hash"] == episodes.hash and result.metadata["bn_mode"] == "running"
    assert result.metadata["predictor"] in {"nearest_centroid", "linear_head", "logistic_regression"}
    assert evaluate(make(model), episodes, store, transforms.ToFloat()).per_episode == result.per_episode
    task_by_task = evaluate(make(model).fn, episodes, store, transforms.ToFloat(), metadata={"bn_mode": "running"})
    assert task_by_task.per_episode == result.per_episode

