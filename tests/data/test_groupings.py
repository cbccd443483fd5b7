"""Groupings by name (``metahyper.data.groupings``): the ``alphabet`` grouping, within-group
episodes drawn by name, and episode sets that record and hash their grouping."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from metahyper.data import EpisodeSampler, EpisodeSet, ImageStore, fixed_episodes
from metahyper.data.groupings import GROUPINGS, alphabet_groups, group_names

from .helpers import row_store

# alphabet -> characters; Gamma is too small for 3-way tasks
ALPHABETS = {"Alpha": 4, "Beta": 3, "Gamma": 2}


def omniglot_like(rotations: bool = False, per_class: int = 3) -> ImageStore:
    """A store named like the Omniglot readers name classes: ``alphabet/characterNN[/rotN]``."""
    names = [f"{a}/character{c:02d}" for a, n in ALPHABETS.items() for c in range(1, n + 1)]
    if rotations:
        names += [f"{name}/rot{angle}" for angle in (90, 180) for name in names]
    labels = torch.arange(len(names)).repeat_interleave(per_class)
    return ImageStore(torch.zeros(len(labels), 1, 2, 2, dtype=torch.uint8), labels, names, "omniglot-like")


def test_alphabet_is_the_first_path_component_and_keeps_rotations_in_their_alphabet():
    store = omniglot_like(rotations=True)
    groups = group_names(store, "alphabet")
    expected = (["Alpha"] * 4 + ["Beta"] * 3 + ["Gamma"] * 2) * 3  # the characters, then rot90, then rot180
    assert groups == expected == alphabet_groups(store)


def test_unknown_grouping_and_a_store_without_alphabets_are_refused():
    with pytest.raises(ValueError, match="unknown grouping 'script'; known groupings: alphabet"):
        group_names(omniglot_like(), "script")
    with pytest.raises(ValueError, match="grouping 'alphabet' needs class names 'alphabet/character'.*'class0'"):
        EpisodeSampler(row_store([4, 4]), 2, 1, 1, seed=0, groups="alphabet")
    with pytest.raises(ValueError, match="way=5 exceeds the classes of every group .largest: 4 classes. of "
                                         "'omniglot-like'"):
        fixed_episodes(omniglot_like(), 5, 1, 1, n=2, seed=0, groups="alphabet")


def test_episodes_by_name_are_those_of_the_explicit_list_and_lie_in_one_eligible_alphabet():
    store = omniglot_like()
    by_name = EpisodeSampler(store, 3, 1, 2, seed=5, groups="alphabet")
    by_list = EpisodeSampler(store, 3, 1, 2, seed=5, groups=[n.split("/")[0] for n in store.class_names])
    seen = set()
    for index in range(200):
        rows = by_name.episode_rows(index)
        assert torch.equal(rows, by_list.episode_rows(index))
        alphabets = {store.class_names[int(store.labels[r])].split("/")[0] for r in rows}
        assert len(alphabets) == 1
        seen |= alphabets
    assert seen == {"Alpha", "Beta"}  # Gamma has 2 characters: never in a 3-way task
    listing = json.dumps([n.split("/")[0] for n in store.class_names])
    digest = hashlib.sha256(listing.encode()).hexdigest()[:16]
    assert (by_name.grouping, by_list.grouping) == ("alphabet", f"classes-{digest}")
    assert EpisodeSampler(store, 3, 1, 2, seed=5).grouping is None


def _hash(episodes: EpisodeSet, header: list) -> str:
    """The episode-set hash written out: sha256 of the JSON header, then rows and labels as <i8."""
    digest = hashlib.sha256(json.dumps(header).encode())
    digest.update(episodes.rows.numpy().astype("<i8").tobytes())
    digest.update(episodes.labels.numpy().astype("<i8").tobytes())
    return digest.hexdigest()


def test_episode_sets_record_and_hash_their_grouping(tmp_path):
    store = omniglot_like()
    grouped = fixed_episodes(store, 2, 1, 1, n=4, seed=1, groups="alphabet")
    plain = fixed_episodes(store, 2, 1, 1, n=4, seed=1)
    fingerprint = store.fingerprint()
    assert plain.groups is None and plain.hash == _hash(plain, [2, 1, 1, fingerprint])  # the hash it always had
    assert grouped.groups == "alphabet" and grouped.hash == _hash(grouped, [2, 1, 1, fingerprint, "alphabet"])
    relabelled = EpisodeSet(grouped.rows, grouped.labels, 2, 1, 1, 1, "test", fingerprint)
    assert relabelled.hash != grouped.hash  # the same rows under another setting: another hash
    for episodes in (grouped, plain):
        path = tmp_path / f"{episodes.groups}.npz"
        episodes.save(path)
        loaded = EpisodeSet.load(path)
        assert loaded.groups == episodes.groups and loaded.hash == episodes.hash


def test_a_registered_grouping_is_usable_by_name(monkeypatch):
    monkeypatch.setitem(GROUPINGS._builders, "parity", lambda store: [str(k % 2) for k in range(store.num_classes)])
    store = row_store([3] * 6)
    episodes = fixed_episodes(store, 3, 1, 1, n=20, seed=0, groups="parity")
    assert episodes.groups == "parity"
    for rows in episodes.rows:
        assert len({int(store.labels[r]) % 2 for r in rows}) == 1
