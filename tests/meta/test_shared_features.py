"""Baselines sharing one FeatureCache under evaluate_all: features extracted once per batch, and
the same per-episode accuracies as a hand nearest-centroid and as each baseline evaluated alone."""

from __future__ import annotations

import copy

import pytest
import torch

from metahyper.data import fixed_episodes, make_synthetic, transforms
from metahyper.eval.evaluate import evaluate, evaluate_all
from metahyper.meta.baselines import (
    FeatureCache,
    logistic_regression_predictor,
    nearest_centroid_predictor,
    task_features,
)
from metahyper.models.backbones import Conv4

WAY, SHOT, QUERY, EPISODES = 3, 2, 4, 5


@pytest.fixture(scope="module")
def setting():
    store = make_synthetic("target", "test", num_classes=6, images_per_class=10, image_size=16)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # weight init of a throwaway test model
        model = Conv4(3, width=4).double()
    generator = torch.Generator().manual_seed(0)
    for bn in (m for m in model.modules() if hasattr(m, "running_mean")):
        bn.running_var.copy_(1 + torch.rand(bn.num_features, generator=generator))
    return store, fixed_episodes(store, WAY, SHOT, QUERY, n=EPISODES, seed=0), model


def _to_double(images, generator):
    return transforms.ToFloat()(images, generator).double()


def _hand_centroid_accuracies(model, store, episodes, bn_mode):
    """Per-episode accuracy of the nearest class mean, task by task with explicit loops: features
    by the model's own forward (eval mode = running statistics; train mode on a copy = batch
    statistics of the support set, then of the queries)."""
    accuracies = []
    for batch in episodes.batches(store, 1):
        sx, qx = (_to_double(x[0], None) for x in (batch.support_x, batch.query_x))
        net = copy.deepcopy(model).train(bn_mode == "transductive")
        with torch.no_grad():
            fs, fq = net.features(sx), net.features(qx)
        centroids = [fs[batch.support_y[0] == k].mean(dim=0) for k in range(WAY)]
        predicted = [min(range(WAY), key=lambda k: float(((q - centroids[k]) ** 2).sum())) for q in fq]
        accuracies.append(sum(int(p == y) for p, y in zip(predicted, batch.query_y[0].tolist())) / len(fq))
    return tuple(accuracies)


@pytest.mark.parametrize("bn_mode", ["running", "transductive"])
def test_shared_features_give_the_hand_nearest_centroid_and_the_unshared_results(setting, bn_mode):
    store, episodes, model = setting
    cache = FeatureCache()
    shared = {"nc": nearest_centroid_predictor(model, bn_mode=bn_mode, cache=cache),
              "lr": logistic_regression_predictor(model, bn_mode=bn_mode, cache=cache)}
    results = evaluate_all(shared, episodes, store, _to_double, batch_tasks=2)
    assert results["nc"].per_episode == _hand_centroid_accuracies(model, store, episodes, bn_mode)
    alone = {"nc": nearest_centroid_predictor(model, bn_mode=bn_mode),
             "lr": logistic_regression_predictor(model, bn_mode=bn_mode)}
    for name, predictor in alone.items():
        result = evaluate(predictor, episodes, store, _to_double, batch_tasks=3)
        assert result.per_episode == results[name].per_episode
        assert result.metadata == results[name].metadata


def _counting(model):
    """A copy of ``model`` whose ``features`` counts its calls."""
    counted, calls = copy.deepcopy(model), []
    features = counted.features
    counted.features = lambda x: calls.append(len(x)) or features(x)
    return counted, calls


def test_each_batch_is_extracted_once_for_all_baselines_sharing_a_cache(setting):
    store, episodes, model = setting
    counted, calls = _counting(model)
    cache = FeatureCache()
    shared = {m.__name__: m(counted, cache=cache) for m in (nearest_centroid_predictor, logistic_regression_predictor)}
    evaluate_all(shared, episodes, store, _to_double, batch_tasks=2)
    assert len(calls) == 2 * EPISODES  # support and query set of each episode, once
    calls.clear()
    unshared = {m.__name__: m(counted) for m in (nearest_centroid_predictor, logistic_regression_predictor)}
    evaluate_all(unshared, episodes, store, _to_double, batch_tasks=2)
    assert len(calls) == 2 * 2 * EPISODES


def test_the_cache_extracts_again_for_new_tensors_in_place_changes_and_other_bn_modes(setting):
    _, _, model = setting
    counted, calls = _counting(model)
    generator = torch.Generator().manual_seed(1)
    sx, qx = (torch.randn(2, n, 3, 16, 16, generator=generator, dtype=torch.float64) for n in (3, 5))
    cache = FeatureCache()
    first = cache(counted, sx, qx, "running")
    assert cache(counted, sx, qx, "running") is first and len(calls) == 4
    torch.testing.assert_close(first, task_features(model, sx, qx, "running"), rtol=0, atol=0)
    cache(counted, sx, qx, "transductive")
    cache(counted, sx.clone(), qx, "running")
    assert len(calls) == 12
    sx.mul_(2)  # same tensor object, new content
    torch.testing.assert_close(cache(counted, sx, qx, "running"), task_features(model, sx, qx, "running"))
    assert len(calls) == 16


def test_bad_cache_and_missing_bn_mode_raise_naming_them(setting):
    store, episodes, model = setting
    with pytest.raises(TypeError, match="cache"):
        nearest_centroid_predictor(model, cache={})
    with pytest.raises(ValueError, match="bn_mode"):
        evaluate_all({"nc": nearest_centroid_predictor(model), "bare": lambda sx, sy, qx: None},
                     episodes, store, _to_double)
