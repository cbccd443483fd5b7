"""The full Omniglot archives under Lake's and the MAML protocol, on generated archives with
the real alphabet names; within-alphabet episodes; the omniglot-lake/-maml suites at toy size."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from metahyper.data import DataFormatError, EpisodeSampler, fixed_episodes, load_store
from metahyper.data.groupings import alphabet_groups
from metahyper.data.splits import split_info

from .archives import omniglot_zip

LAKE = split_info("omniglot")["protocols"]["lake"]
OPTS = {"images_per_class": 2, "characters": 0}


@pytest.fixture(scope="module")
def full_root(tmp_path_factory):
    """images_background.zip (30 alphabets) and images_evaluation.zip (20), 2 characters of
    2 images each; plus a small set, whose alphabets must not disturb the full protocols."""
    root = tmp_path_factory.mktemp("omniglot_full")
    omniglot_zip(root / "images_background.zip", {a: 2 for a in LAKE["train"]})
    omniglot_zip(root / "images_evaluation.zip", {a: 2 for a in LAKE["test"]})
    omniglot_zip(root / "images_background_small1.zip", {"Greek": 2})
    return root


def names(alphabets):
    return [f"{a}/character{c:02d}" for a in alphabets for c in (1, 2)]


def test_split_file_lists_the_real_alphabet_counts():
    assert (len(LAKE["train"]), len(LAKE["test"])) == (30, 20)
    assert not set(LAKE["train"]) & set(LAKE["test"])
    assert LAKE["characters"] == {"train": 964, "test": 659}
    assert split_info("omniglot")["protocols"]["maml"]["train_characters"] == 1200


def test_lake_protocol(full_root):
    train = load_store("omniglot_full", full_root, "train", protocol="lake", **OPTS)
    test = load_store("omniglot_full", full_root, "test", protocol="lake", **OPTS)
    assert train.class_names == names(LAKE["train"]) and test.class_names == names(LAKE["test"])
    # image j of character c has a black (c+1) x (j+1) corner (28x28 after resizing 105x105)
    native = load_store("omniglot_full", full_root, "test", protocol="lake", image_size=105, **OPTS)
    first = native.images[native.labels == 1][1, 0].numpy()  # character02, second image
    assert (first[:2, :2] == 0).all() and first[2, 0] == 255 and first[0, 2] == 255
    with pytest.raises(DataFormatError, match="Lake train alphabets: 60 characters, expected 964"):
        load_store("omniglot_full", full_root, "train", protocol="lake", images_per_class=2)
    with pytest.raises(ValueError, match="no validation split"):
        load_store("omniglot_full", full_root, "val", protocol="lake", **OPTS)
    with pytest.raises(ValueError, match="protocol must be one of"):
        load_store("omniglot_full", full_root, "train", protocol="finn", **OPTS)


def test_maml_protocol_rule_rotations_and_hash(full_root):
    listing = sorted(names(LAKE["train"] + LAKE["test"]))
    digest = hashlib.sha256("\n".join(listing).encode()).hexdigest()
    order = np.random.default_rng(0).permutation(100)  # the rule in data_splits/omniglot.json
    expected_train = sorted(listing[i] for i in order[:60])
    train = load_store("omniglot_full", full_root, "train", protocol="maml", train_characters=60, **OPTS)
    test = load_store("omniglot_full", full_root, "test", protocol="maml", train_characters=60, **OPTS)
    assert train.class_names[:60] == expected_train
    assert train.class_names[60:120] == [f"{n}/rot90" for n in expected_train] and train.num_classes == 240
    assert test.class_names == sorted(set(listing) - set(expected_train))
    rows = train.labels == 60  # rot90 of class 0
    expected = np.rot90(train.images[train.labels == 0].numpy(), 1, axes=(2, 3))
    np.testing.assert_array_equal(train.images[rows].numpy(), expected)
    assert digest in test.source
    pinned = load_store("omniglot_full", full_root, "test", protocol="maml", train_characters=60,
                        listing_sha256=digest, **OPTS)
    assert pinned.class_names == test.class_names
    with pytest.raises(DataFormatError, match=f"sha256 is {digest}, expected {'0' * 64}"):
        load_store("omniglot_full", full_root, "test", protocol="maml", train_characters=60,
                   listing_sha256="0" * 64, **OPTS)
    with pytest.raises(DataFormatError, match="both archives: 100 characters, expected 1623"):
        load_store("omniglot_full", full_root, "test", protocol="maml", images_per_class=2)


def test_within_alphabet_episodes(full_root):
    store = load_store("omniglot_full", full_root, "train", protocol="lake", **OPTS)
    groups = alphabet_groups(store)
    groups[0] = "Lonely"  # now Lonely and Alphabet_of_the_Magi have 1 class: never in 2-way tasks
    sampler = EpisodeSampler(store, way=2, shot=1, query=1, seed=3, groups=groups)
    seen = set()
    for index in range(300):
        rows = sampler.episode_rows(index)
        alphabets = {groups[int(store.labels[r])] for r in rows}
        assert len(alphabets) == 1
        seen |= alphabets
    assert seen == set(LAKE["train"]) - {"Alphabet_of_the_Magi"}
    again = fixed_episodes(store, 2, 1, 1, n=5, seed=3, split_name="train", groups=groups)
    assert torch.equal(again.rows, torch.stack([sampler.episode_rows(i) for i in range(5)]))
    with pytest.raises(ValueError, match="way=3 exceeds the classes of every group"):
        EpisodeSampler(store, way=3, shot=1, query=1, seed=0, groups=alphabet_groups(store))
    with pytest.raises(ValueError, match="groups names 2 classes"):
        EpisodeSampler(store, way=2, shot=1, query=1, seed=0, groups=["a", "b"])
