"""Test-time augmentation of the support set: the copies are those of the training augmentation
on the [0, 1] images, drawn per episode from its content (the same in any batch and any model),
and a support feature is the mean of the model's features over the image and its copies, with
batch norm treating each copy of the support set as the support set."""

from __future__ import annotations

import pytest
import torch
from maml_toys import TinyConvNet

from metahyper.data import presets
from metahyper.meta.baselines import FeatureCache, extract_features, nearest_centroid_predictor
from metahyper.meta.prototypes import centroid_logits
from metahyper.meta.support_augment import SupportAugment
from metahyper.models.norm import norm_statistics


def _support(seed=0, n=4):
    images = torch.randint(0, 256, (n, 1, 10, 10), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))
    return presets.test_transform(1)(images)


def test_views_are_the_image_then_its_copies_augmented_in_zero_one_units():
    support, augment = _support(), SupportAugment(copies=3, augment="stroke")
    views = augment.views(support)
    assert views.shape == (4, 4, 1, 10, 10) and torch.equal(views[0], support)
    for copy in views[1:]:  # a stroke-width change never lightens and darkens one image at once
        moved = copy * 0.25 + 0.5 - (support * 0.25 + 0.5)
        assert all(bool((d <= 1e-6).all() or (d >= -1e-6).all()) for d in moved)
    assert not torch.allclose(views[1], views[2])


def test_views_are_keyed_on_the_episode_content_and_the_seed():
    a, b = _support(0), _support(1)
    augment = SupportAugment(copies=2, augment="elastic+erase")
    assert torch.equal(augment.views(a), augment.views(a.clone()))  # any batch, any order, any model
    reseeded = SupportAugment(copies=2, augment="elastic+erase", seed=1)
    assert not torch.allclose(augment.views(a)[1:], reseeded.views(a)[1:])
    elastic = SupportAugment(copies=1, augment="elastic")  # another episode: other displacement fields
    assert not torch.allclose(elastic.views(a)[1] - a, elastic.views(b)[1] - b)


@pytest.mark.parametrize("bn_mode", ["running", "transductive", "inductive"])
def test_support_features_are_averaged_over_the_views_and_queries_are_left_alone(bn_mode):
    torch.manual_seed(0)
    model = TinyConvNet(way=2, channels=1).double()
    support, query = _support(2).double(), _support(3).double()
    augment = SupportAugment(copies=2, augment="affine")
    support_f, query_f = extract_features(model, support, query, bn_mode, augment)
    plain_s, plain_q = extract_features(model, support, query, bn_mode)
    torch.testing.assert_close(query_f, plain_q)
    views = augment.views(support)
    each = [extract_features(model, view, query, bn_mode)[0] for view in views]
    torch.testing.assert_close(support_f, torch.stack(each).mean(dim=0))
    if bn_mode != "running":  # each copy normalised with its own batch statistics
        with torch.no_grad(), norm_statistics(model, "batch"):
            torch.testing.assert_close(each[1], model.features(views[1]))


def test_a_tta_nearest_centroid_predictor_uses_the_averaged_features():
    torch.manual_seed(1)
    model = TinyConvNet(way=2, channels=1).double()
    support, labels, query = _support(4).double(), torch.tensor([0, 0, 1, 1]), _support(5, n=3).double()
    augment = SupportAugment(copies=3, augment="stroke+affine")
    predictor = nearest_centroid_predictor(model, bn_mode="transductive", cache=FeatureCache(augment))
    support_f, query_f = extract_features(model, support, query, "transductive", augment)
    torch.testing.assert_close(predictor(support, labels, query), centroid_logits(support_f, labels, query_f, 2))


@pytest.mark.parametrize("options, message", [
    ({"copies": 0}, "copies must be an int >= 1"),
    ({"copies": 2, "augment": "crop_flip"}, "augment: augment 'crop_flip': crop_flip works on uint8"),
    ({"copies": 2, "augment": "blur"}, "augment: augment must be true, false, or one of"),
])
def test_bad_support_augment_settings_name_the_field(options, message):
    with pytest.raises(ValueError, match=message):
        SupportAugment(**options)
