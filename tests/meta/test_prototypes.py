"""Nearest-centroid logits and Ren et al.'s soft k-means refinement against closed forms on 2-D
points: one step on a symmetric two-class task, several steps against a numpy loop, the cosine
metric with a temperature (also the nearest-centroid baseline's), and queries that all sit near
one class (no class is made to take any share of them)."""

import math

import numpy as np
import pytest
import torch

from metahyper.meta.baselines import nearest_centroid_predictor
from metahyper.meta.prototypes import centroid_logits, centroid_scores, class_means, soft_kmeans

SUPPORT = torch.tensor([[0.0, 0.0], [2.0, 0.0]], dtype=torch.float64)
LABELS = torch.tensor([0, 1])


def test_one_soft_kmeans_step_on_a_symmetric_task_has_the_closed_form():
    """Prototypes (0, 0) and (2, 0), queries (0, 1) and (2, 1): each query's weight on its near class
    is a = 1 / (1 + e^-4) (squared distances 1 and 5), so c0' = (1 - a, 1/2) and c1' = (1 + a, 1/2)."""
    queries = torch.tensor([[0.0, 1.0], [2.0, 1.0]], dtype=torch.float64)
    a = 1 / (1 + math.exp(-4))
    refined = soft_kmeans(SUPPORT, LABELS, queries, 2, steps=1)
    torch.testing.assert_close(refined, torch.tensor([[1 - a, 0.5], [1 + a, 0.5]], dtype=torch.float64))
    logits = centroid_logits(SUPPORT, LABELS, queries, 2, refine_steps=1)
    near, far = -((1 - a) ** 2 + 0.25), -((1 + a) ** 2 + 0.25)
    torch.testing.assert_close(logits, torch.tensor([[near, far], [far, near]], dtype=torch.float64))
    torch.testing.assert_close(centroid_logits(SUPPORT, LABELS, queries, 2),
                               torch.tensor([[-1.0, -5.0], [-5.0, -1.0]], dtype=torch.float64))


def numpy_soft_kmeans(support, labels, queries, way, steps, metric, scale):
    """Ren et al.'s eq. 3, written out with loops."""
    protos = np.stack([support[labels == k].mean(axis=0) for k in range(way)])
    for _ in range(steps):
        if metric == "euclidean":
            scores = -np.array([[np.sum((q - p) ** 2) for p in protos] for q in queries])
        else:
            scores = np.array([[q @ p / np.linalg.norm(q) / np.linalg.norm(p) for p in protos] for q in queries])
        weights = np.exp(scale * scores - (scale * scores).max(axis=1, keepdims=True))
        weights /= weights.sum(axis=1, keepdims=True)
        protos = np.stack([(support[labels == k].sum(axis=0) + (weights[:, k:k + 1] * queries).sum(axis=0))
                           / ((labels == k).sum() + weights[:, k].sum()) for k in range(way)])
    return protos


@pytest.mark.parametrize("metric, scale, steps", [("euclidean", 1.0, 3), ("cosine", 10.0, 2), ("cosine", 1.0, 1)])
def test_soft_kmeans_matches_a_numpy_loop_for_stacked_tasks(metric, scale, steps):
    g = torch.Generator().manual_seed(0)
    support, queries = torch.randn(2, 6, 2, generator=g, dtype=torch.float64), torch.randn(2, 5, 2, generator=g,
                                                                                              dtype=torch.float64)
    labels = torch.tensor([[0, 0, 1, 1, 2, 2], [2, 1, 0, 0, 1, 2]])
    refined = soft_kmeans(support, labels, queries, 3, steps, metric, scale)
    for t in range(2):
        expected = numpy_soft_kmeans(support[t].numpy(), labels[t].numpy(), queries[t].numpy(), 3, steps, metric, scale)
        np.testing.assert_allclose(refined[t].numpy(), expected, rtol=1e-12, atol=1e-12)
    assert torch.equal(soft_kmeans(support, labels, queries, 3, 0, metric, scale), class_means(support, labels, 3))


def test_queries_that_all_sit_near_one_class_leave_the_other_prototype_where_it_was():
    """No assignment constraint: class 1 gets no share of queries that are all near class 0."""
    queries = torch.tensor([[-1.0, 0.5], [-1.0, -0.5], [-0.5, 0.0]], dtype=torch.float64)
    refined = soft_kmeans(SUPPORT, LABELS, queries, 2, steps=5)
    assert torch.allclose(refined[1], SUPPORT[1], atol=0.01)  # a balanced assignment would pull it to the queries
    assert torch.allclose(refined[0], torch.tensor([-2.5, 0.0], dtype=torch.float64) / 4, atol=0.01)


def test_cosine_scores_are_the_temperature_times_cosine_similarity():
    queries = torch.tensor([[3.0, 4.0]], dtype=torch.float64)
    centroids = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    torch.testing.assert_close(centroid_scores(centroids, queries, "cosine", 10.0),
                               torch.tensor([[6.0, 8.0]], dtype=torch.float64))
    with pytest.raises(ValueError, match="metric must be one of"):
        centroid_logits(SUPPORT, LABELS, queries, 2, metric="l1")
    with pytest.raises(ValueError, match="refine_steps"):
        centroid_logits(SUPPORT, LABELS, queries, 2, refine_steps=-1)


def test_the_nearest_centroid_scale_sharpens_soft_kmeans_but_not_the_inductive_prediction():
    class Identity(torch.nn.Module):  # features = the 2-D points themselves
        def features(self, x):
            return x.flatten(1)

    support, query = SUPPORT.view(2, 1, 1, 2), torch.tensor([[0.0, 1.0], [2.0, 1.0]], dtype=torch.float64)
    plain = nearest_centroid_predictor(Identity(), "cosine", "running")
    scaled = nearest_centroid_predictor(Identity(), "cosine", "running", scale=10.0)
    query = query.view(2, 1, 1, 2) + torch.tensor([1.0, 0.0], dtype=torch.float64).view(1, 1, 1, 2)
    support = support + torch.tensor([1.0, 0.0], dtype=torch.float64).view(1, 1, 1, 2)
    torch.testing.assert_close(scaled(support, LABELS, query), 10 * plain(support, LABELS, query))
    refined = nearest_centroid_predictor(Identity(), "cosine", "running", refine_steps=1, scale=10.0)
    f_s, f_q = support.flatten(1), query.flatten(1)
    protos = numpy_soft_kmeans(f_s.numpy(), LABELS.numpy(), f_q.numpy(), 2, 1, "cosine", 10.0)
    expected = 10 * centroid_scores(torch.from_numpy(protos), f_q, "cosine")
    torch.testing.assert_close(refined(support, LABELS, query), expected)
    assert refined.settings == {"metric": "cosine", "refine_steps": 1, "scale": 10.0}
    with pytest.raises(ValueError, match="scale"):
        nearest_centroid_predictor(Identity(), scale=0.0)
