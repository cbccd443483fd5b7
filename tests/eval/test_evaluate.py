"""Tests for metahyper.eval.evaluate: per-episode accuracy, metadata, errors, the MAML predictor."""

from __future__ import annotations

import logging

import pytest
import torch

from metahyper.data import ImageStore, fixed_episodes, make_synthetic, transforms
from metahyper.eval.evaluate import evaluate, evaluate_all
from metahyper.meta.predictors import Predictor, maml_predictor
from metahyper.meta.maml import MamlConfig
from metahyper.models import hyperize
from metahyper.models.backbones import Conv4

WAY, SHOT, QUERY = 3, 2, 4


def _class_store(classes: int = 5, per_class: int = 8) -> ImageStore:
    """Images of class k are all grey level 20*k (+ per-image noise < 5): the class is readable."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(classes).repeat_interleave(per_class)
    noise = torch.randint(0, 5, (len(labels), 1, 1, 1), generator=generator)
    images = (20 * labels.view(-1, 1, 1, 1) + noise).expand(-1, 1, 4, 4).to(torch.uint8).contiguous()
    return ImageStore(images, labels, [f"c{k}" for k in range(classes)], "grey levels")


def _oracle(support_x, support_y, query_x):
    """Reads each query's class from its grey level: one-hot logits of the right task label."""
    level = lambda x: (x.mean(dim=(1, 2, 3)) * 255 / 20).round()  # noqa: E731  (the store's class id)
    match = level(query_x)[:, None] == level(support_x)[None, :]
    label = support_y[match.int().argmax(dim=1)]
    return torch.nn.functional.one_hot(label, int(support_y.max()) + 1).float()


def _right_on_first(k_of_call):
    """Oracle that is right on the first k queries of the i-th call only (k = k_of_call(i))."""
    calls = []

    def predict(support_x, support_y, query_x):
        logits = _oracle(support_x, support_y, query_x)
        k = k_of_call(len(calls))
        calls.append(k)
        logits[k:] = logits[k:].roll(1, dims=1)  # a wrong label for every later query
        return logits

    return predict


@pytest.fixture(scope="module")
def grey():
    store = _class_store()
    return store, fixed_episodes(store, WAY, SHOT, QUERY, n=7, seed=3)


def test_oracle_scores_one_on_every_episode(grey):
    store, episodes = grey
    result = evaluate(_oracle, episodes, store, transforms.ToFloat(), metadata={"bn_mode": "inductive"})
    assert result.per_episode == (1.0,) * 7 and result.mean == 1.0 and result.n == 7


@pytest.mark.parametrize("batch_tasks", [1, 3, 16])
def test_k_right_gives_k_over_n_per_episode_in_order(grey, batch_tasks):
    store, episodes = grey
    n_query = WAY * QUERY
    predict = _right_on_first(lambda i: i % (n_query + 1))
    result = evaluate(predict, episodes, store, transforms.ToFloat(), batch_tasks=batch_tasks,
                      metadata={"bn_mode": "inductive"})
    assert result.per_episode == tuple(i / n_query for i in range(7))


def test_metadata_names_the_episodes_and_the_predictor(grey):
    store, episodes = grey
    predictor = Predictor(_oracle, "oracle", "transductive", {"alpha": 1})
    result = evaluate(predictor, episodes, store, transforms.ToFloat(), metadata={"target": "grey"})
    meta = result.metadata
    assert meta["episodes_hash"] == episodes.hash and meta["bn_mode"] == "transductive"
    assert (meta["predictor"], meta["alpha"], meta["target"]) == ("oracle", 1, "grey")
    assert (meta["way"], meta["shot"], meta["query"], meta["episodes"], meta["episode_seed"]) == (WAY, SHOT, QUERY, 7, 3)


def test_errors_are_clear(grey):
    store, episodes = grey
    to_float = transforms.ToFloat()
    with pytest.raises(ValueError, match="bn_mode"):
        evaluate(_oracle, episodes, store, to_float)
    with pytest.raises(ValueError, match="batch_tasks"):
        evaluate(_oracle, episodes, store, to_float, batch_tasks=0, metadata={"bn_mode": "inductive"})
    with pytest.raises(ValueError, match=r"reset_classifier\(3\)"):
        evaluate(lambda sx, sy, qx: torch.zeros(len(qx), 64), episodes, store, to_float, metadata={"bn_mode": "inductive"})
    with pytest.raises(ValueError, match="not the store"):
        evaluate(_oracle, episodes, _class_store(per_class=9), to_float, metadata={"bn_mode": "inductive"})
    with pytest.raises(ValueError, match=">= 2 episodes"):
        evaluate(_oracle, fixed_episodes(store, WAY, SHOT, QUERY, n=1, seed=0), store, to_float,
                 metadata={"bn_mode": "inductive"})


def _seeded(build, seed: int = 0):
    """``build()`` with the global RNG seeded for the weight init, restored afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _double_conv4():
    return _seeded(lambda: Conv4(WAY, in_channels=3, width=4).double())


def test_maml_predictor_inductive_does_not_leak_across_queries():
    model, generator = _double_conv4(), torch.Generator().manual_seed(1)
    sx = torch.randn(WAY * SHOT, 3, 16, 16, generator=generator, dtype=torch.float64)
    sy = torch.arange(WAY).repeat_interleave(SHOT)
    qx = torch.randn(WAY * QUERY, 3, 16, 16, generator=generator, dtype=torch.float64)
    changed = qx.clone()
    changed[1:] = 3 * torch.randn(changed[1:].shape, generator=generator, dtype=torch.float64)
    cfg = MamlConfig(inner_lr=0.1)
    inductive, transductive = maml_predictor(model, cfg, 3, bn_mode="inductive"), maml_predictor(model, cfg, 3)
    assert inductive.bn_mode == "inductive" and transductive.bn_mode == "transductive"
    torch.testing.assert_close(inductive(sx, sy, qx)[0], inductive(sx, sy, changed)[0], rtol=1e-12, atol=1e-13)
    assert not torch.allclose(transductive(sx, sy, qx)[0], transductive(sx, sy, changed)[0])


def test_maml_predictor_checks_its_arguments():
    model = _double_conv4()
    with pytest.raises(ValueError, match="bn_mode"):
        maml_predictor(model, MamlConfig(), bn_mode="running")
    with pytest.raises(ValueError, match="steps"):
        maml_predictor(model, MamlConfig(), steps=-1)
    assert maml_predictor(model, MamlConfig(), 7).settings["inner_steps"] == 7
    assert maml_predictor(model, MamlConfig()).settings["inner_steps"] == 10  # Babu et al.'s test-time steps


@pytest.mark.parametrize("hyper", [False, True], ids=["conv4", "hyper_conv4"])
def test_end_to_end_on_a_synthetic_store_is_deterministic(hyper):
    store = make_synthetic("target", "test", num_classes=5, images_per_class=10, image_size=16)
    episodes = fixed_episodes(store, WAY, SHOT, QUERY, n=4, seed=0)
    model = _seeded(lambda: Conv4(WAY, width=8))
    model = _seeded(lambda: hyperize(model)) if hyper else model
    transform = transforms.Compose([transforms.ToFloat(), transforms.Normalize([0.5] * 3, [0.25] * 3)])
    predictor = maml_predictor(model, MamlConfig(), steps=2, bn_mode="inductive")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    first = evaluate(predictor, episodes, store, transform, batch_tasks=3)
    second = evaluate(predictor, episodes, store, transform, batch_tasks=4)
    assert len(first.per_episode) == 4 and first.per_episode == second.per_episode
    assert first.metadata["episodes_hash"] == episodes.hash and first.metadata["bn_mode"] == "inductive"
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())



def test_evaluation_logs_status_lines_naming_what_it_evaluates(grey, caplog):
    store, episodes = grey
    predictors = {"oracle": Predictor(_oracle, "oracle", "inductive", {})}
    with caplog.at_level(logging.INFO, logger="metahyper"):
        evaluate_all(predictors, episodes, store, transforms.ToFloat(), batch_tasks=3, progress=False)
        assert caplog.messages == []  # no status name (validation inside meta-training): quiet
        evaluate_all(predictors, episodes, store, transforms.ToFloat(), batch_tasks=3, progress=False,
                     status="conv4 on grey, 3-way 2-shot")
    # 7 episodes: every step is a reporting step (total // 10 < 1), one line per batch of 3, 3, 1
    counts = [message.split(": episode ")[1].split(",")[0] for message in caplog.messages]
    assert counts == ["3/7", "6/7", "7/7"]
    assert all(m.startswith("evaluate conv4 on grey, 3-way 2-shot: episode ") and "ETA" in m
               for m in caplog.messages)
