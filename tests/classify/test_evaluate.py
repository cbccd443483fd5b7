"""Test-time pieces: BN recomputation, Ukai's model averaging and quadruple faults, data helpers."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.optim.swa_utils import update_bn

from metahyper.classify import bayesian_metrics, quadruple_faults, recompute_bn
from metahyper.classify.data import split_holdout
from metahyper.data import ImageStore
from metahyper.data.presets import channel_stats
from metahyper.models import MetaBatchNorm2d, build_model


def test_quadruple_faults_hand_made():
    labels = torch.tensor([0, 1, 2, 3, 4, 5])
    predictions = torch.tensor([
        [1, 1, 0, 0, 4, 0],  # wrong on 0, 2, 3, 5
        [2, 1, 1, 0, 0, 0],  # wrong on 0, 2, 3, 4, 5
        [3, 0, 1, 3, 0, 0],  # wrong on 0, 1, 2, 4, 5
        [4, 0, 2, 0, 0, 0],  # wrong on 0, 1, 3, 4, 5
    ])
    assert quadruple_faults(predictions, labels) == 2  # images 0 and 5
    assert quadruple_faults(labels.repeat(4, 1), labels) == 0
    with pytest.raises(ValueError, match=r"\[K, N\]"):
        quadruple_faults(predictions, labels[:5])


def test_recompute_bn_equals_torch_update_bn():
    """MetaBatchNorm2d statistics recomputed as update_bn does for nn.BatchNorm2d."""
    g = torch.Generator().manual_seed(0)
    meta = nn.Sequential(nn.Conv2d(3, 4, 3), MetaBatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1), MetaBatchNorm2d(2))
    plain = nn.Sequential(copy.deepcopy(meta[0]), nn.BatchNorm2d(4), nn.ReLU(), copy.deepcopy(meta[3]), nn.BatchNorm2d(2))
    batches = [torch.randn(n, 3, 6, 6, generator=g) * 3 + 1 for n in (5, 8, 3)]
    for m in (meta[1], meta[4]):
        m.running_mean.fill_(7.0)  # stale statistics that must be reset
    meta.eval()
    recompute_bn(meta, batches)
    update_bn(batches, plain)
    assert not meta.training and meta[1].momentum == 0.1
    for mine, torchs in ((meta[1], plain[1]), (meta[4], plain[4])):
        torch.testing.assert_close(mine.running_mean, torchs.running_mean)
        torch.testing.assert_close(mine.running_var, torchs.running_var)


@pytest.fixture(scope="module")
def bayes_model():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build_model("bayes_conv4", 3, z_dim=4, h_dim=4)


def test_model_averaging_is_the_mean_of_softmax_outputs(bayes_model):
    x = torch.randn(5, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    bayes_model.eval()
    averaged = bayes_model.predict_averaged(x, 4, torch.Generator().manual_seed(7))
    hand_g = torch.Generator().manual_seed(7)
    hand = torch.stack([bayes_model(x, noise=bayes_model.sample_noise(hand_g)).softmax(-1) for _ in range(4)]).mean(0)
    torch.testing.assert_close(averaged, hand)


def test_bayesian_metrics_by_hand(bayes_model):
    g = torch.Generator().manual_seed(3)
    store = ImageStore(torch.randint(0, 256, (12, 3, 16, 16), dtype=torch.uint8, generator=g),
                       torch.arange(12) % 3, ["a", "b", "c"])
    transform = lambda x, _: x.float() / 255  # noqa: E731
    metrics = bayesian_metrics(bayes_model, store, transform, 12, (1, 3), torch.Generator().manual_seed(5))
    hand_g = torch.Generator().manual_seed(5)
    x, y = transform(store.images, None), store.labels
    bayes_model.eval()
    with torch.no_grad():
        networks = [bayes_model.sample_noise(hand_g) for _ in range(4)]
        expected = {}
        for n in (1, 3):
            probs = sum(bayes_model(x, noise=bayes_model.sample_noise(hand_g)).softmax(-1) for _ in range(n)) / n
            expected[f"accuracy_x{n}"] = (probs.argmax(-1) == y).float().mean().item()
        predictions = torch.stack([bayes_model(x, noise=z).argmax(-1) for z in networks])
    expected["quadruple_faults"] = int((predictions != y).all(0).sum())
    assert metrics == pytest.approx(expected)


def test_channel_stats():
    images = torch.randint(0, 256, (7, 3, 5, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(4))
    mean, std = channel_stats(images, chunk=3)
    x = images.double() / 255
    torch.testing.assert_close(torch.tensor(mean, dtype=torch.float64), x.mean((0, 2, 3)))
    torch.testing.assert_close(torch.tensor(std, dtype=torch.float64), x.transpose(0, 1).reshape(3, -1).std(1, unbiased=False))


def test_split_holdout_takes_the_first_images_of_each_class():
    labels = torch.tensor([1, 0, 1, 0, 1, 0, 1])
    images = torch.arange(7, dtype=torch.uint8).view(7, 1, 1, 1)
    train, test = split_holdout(ImageStore(images, labels, ["a", "b"]), 1)
    assert test.images.flatten().tolist() == [0, 1] and test.labels.tolist() == [1, 0]
    assert train.images.flatten().tolist() == [2, 3, 4, 5, 6]
    with pytest.raises(ValueError, match="holdout_per_class=3"):
        split_holdout(ImageStore(images, labels, ["a", "b"]), 3)
