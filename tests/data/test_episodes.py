"""EpisodeSampler and EpisodeSet: episode properties, determinism, distributed shares, errors."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from metahyper.data import EpisodeSampler, EpisodeSet, fixed_episodes

from .helpers import decode_rows, row_store


def check_task(store, rows_s, rows_q, y_s, y_q, way, shot, query):
    """Checks one task against the store's labels (independent of the sampler's bookkeeping)."""
    assert y_s.tolist() == np.repeat(np.arange(way), shot).tolist()
    assert sorted(y_q.tolist()) == np.repeat(np.arange(way), query).tolist()  # query: any order
    all_rows = torch.cat([rows_s, rows_q])
    assert len(set(all_rows.tolist())) == len(all_rows)  # no image twice: support, query disjoint
    classes = []
    for k in range(way):
        labels_s = store.labels[rows_s[y_s == k]]
        labels_q = store.labels[rows_q[y_q == k]]
        assert len(set(labels_s.tolist()) | set(labels_q.tolist())) == 1  # one class per label
        classes.append(int(labels_s[0]))
    assert len(set(classes)) == way  # classes without replacement


@settings(max_examples=25, deadline=None)
@given(counts=st.lists(st.integers(4, 12), min_size=3, max_size=9), data=st.data())
def test_episode_properties(counts, data):
    store = row_store(counts)
    way = data.draw(st.integers(1, len(counts)))
    shot = data.draw(st.integers(1, min(counts) - 1))
    query = data.draw(st.integers(0, min(counts) - shot))
    seed = data.draw(st.integers(0, 2**40))
    batch = EpisodeSampler(store, way, shot, query, seed).sample(3)
    assert batch.support_x.shape == (3, way * shot, 1, 2, 2) and batch.query_x.shape == (3, way * query, 1, 2, 2)
    for t in range(3):
        check_task(store, decode_rows(batch.support_x[t]), decode_rows(batch.query_x[t]),
                   batch.support_y[t], batch.query_y[t], way, shot, query)


def test_queries_are_shuffled_reproducibly_and_keep_their_labels():
    store = row_store([20] * 10)
    way, query = 5, 4
    blocks = np.repeat(np.arange(way), query).tolist()
    batch = EpisodeSampler(store, way, 1, query, seed=2).sample(20)
    again = EpisodeSampler(store, way, 1, query, seed=2).sample(20)
    assert torch.equal(batch.query_y, again.query_y) and torch.equal(batch.query_x, again.query_x)
    assert all(y.tolist() != blocks for y in batch.query_y)  # 20 tasks: no query set grouped by class
    assert len({tuple(y.tolist()) for y in batch.query_y}) == 20  # each task its own order
    for t in range(20):  # every query image is of the class its label names, as in the support
        support_class = store.labels[decode_rows(batch.support_x[t])]
        query_class = store.labels[decode_rows(batch.query_x[t])]
        assert torch.equal(query_class, support_class[batch.query_y[t]])
    episodes = fixed_episodes(store, way, 1, query, n=3, seed=2, split_name="train")
    assert torch.equal(episodes.labels, torch.cat([batch.support_y, batch.query_y], 1)[:3])


def test_every_image_of_a_small_class_can_be_used():
    store = row_store([5, 5, 5, 5])
    sampler = EpisodeSampler(store, 4, 2, 3, seed=1)
    batch = sampler.sample(1)  # shot+query equals the class size: every image once
    rows = torch.cat([decode_rows(batch.support_x[0]), decode_rows(batch.query_x[0])])
    assert sorted(rows.tolist()) == list(range(20))


def test_same_seed_same_episodes_and_global_rng_untouched():
    store = row_store([20] * 10)
    state = torch.get_rng_state()
    a = EpisodeSampler(store, 5, 1, 3, seed=7).sample(4)
    torch.manual_seed(123)  # the global RNG must not matter
    b = EpisodeSampler(store, 5, 1, 3, seed=7).sample(4)
    torch.set_rng_state(state)
    for x, y in zip((a.support_x, a.query_x, a.support_y), (b.support_x, b.query_x, b.support_y)):
        assert torch.equal(x, y)
    state = torch.get_rng_state()
    EpisodeSampler(store, 5, 1, 3, seed=7).sample(2)
    assert torch.equal(torch.get_rng_state(), state)


def test_seed_split_and_index_change_episodes():
    store = row_store([30] * 10)
    rows = {key: EpisodeSampler(store, 5, 2, 3, seed=s, split_name=n).episode_rows(i)
            for key, (s, n, i) in {"base": (0, "train", 0), "seed": (1, "train", 0),
                                   "split": (0, "val", 0), "index": (0, "train", 1)}.items()}
    for key in ("seed", "split", "index"):
        assert not torch.equal(rows[key], rows["base"]), key


def test_labels_are_a_random_permutation_of_classes():
    store = row_store([10] * 5)
    sampler = EpisodeSampler(store, 5, 1, 0, seed=0)
    first_classes = {int(store.labels[decode_rows(sampler.episode(i).support_x[0])[0]]) for i in range(40)}
    assert len(first_classes) == 5  # label 0 is not always the same class


def test_sample_advances_and_episode_matches():
    store = row_store([12] * 6)
    sampler = EpisodeSampler(store, 3, 2, 2, seed=3)
    first, second = sampler.sample(2), sampler.sample(3)
    assert sampler.next_index == 5
    for index, (batch, t) in enumerate([(first, 0), (first, 1), (second, 0), (second, 1), (second, 2)]):
        single = sampler.episode(index)
        assert torch.equal(single.support_x[0], batch.support_x[t]) and torch.equal(single.query_x[0], batch.query_x[t])


def test_distributed_shares_union_is_the_meta_batch():
    store = row_store([12] * 8)
    full = EpisodeSampler(store, 4, 1, 2, seed=5)
    for step in (0, 3):
        whole = full.sample_for(step, 0, 1, 4)
        shares = [full.sample_for(step, r, 2, 4) for r in range(2)]
        assert torch.equal(torch.cat([s.support_x for s in shares]), whole.support_x)
        assert torch.equal(torch.cat([s.query_y for s in shares]), whole.query_y)
    fresh = EpisodeSampler(store, 4, 1, 2, seed=5)
    fresh.next_index = 12
    assert torch.equal(fresh.sample(4).query_x, full.sample_for(3, 0, 1, 4).query_x)
    with pytest.raises(ValueError, match="tasks=3 must be divisible by world_size=2"):
        full.sample_for(0, 0, 2, 3)
    with pytest.raises(ValueError, match="rank=2"):
        full.sample_for(0, 2, 2, 4)


def test_reuse_buffer_gives_the_same_batches():
    store = row_store([10] * 6)
    plain, reused = EpisodeSampler(store, 3, 2, 2, 9), EpisodeSampler(store, 3, 2, 2, 9, reuse_buffer=True)
    for _ in range(3):
        a, b = plain.sample(2), reused.sample(2)
        assert torch.equal(a.support_x, b.support_x) and torch.equal(a.query_x, b.query_x)


def test_store_on_the_device_gathers_there_the_same_episodes(device):
    store = row_store([10] * 6)
    on_device = store.to(device)
    assert on_device.images.device.type == device.type and on_device.labels.device.type == "cpu"
    for reuse in (False, True):
        sampler = EpisodeSampler(on_device, 3, 2, 2, 9, reuse_buffer=reuse)
        rows, batch = sampler.episode_rows(0), sampler.sample(1)
        assert {x.device.type for x in (batch.support_x, batch.support_y, batch.query_x, batch.query_y)} == {
            device.type}
        support, query = decode_rows(batch.support_x[0].cpu()), decode_rows(batch.query_x[0].cpu())
        assert torch.equal(torch.cat([support, query]), rows)
        check_task(store, support, query, batch.support_y[0].cpu(), batch.query_y[0].cpu(), 3, 2, 2)
    episodes = fixed_episodes(store, 3, 2, 2, n=5, seed=1)
    for cpu_batch, device_batch in zip(episodes.batches(store, 2), episodes.batches(on_device, 2)):
        assert torch.equal(device_batch.query_x.cpu(), cpu_batch.query_x)
        assert torch.equal(device_batch.support_y.cpu(), cpu_batch.support_y)


@pytest.mark.parametrize("args, message", [
    ((7, 1, 1), "way=7 exceeds the 6 classes"),
    ((2, 4, 3), r"shot\+query=7 \(shot=4, query=3\) exceeds the 6 images of class 'class2'"),
    ((0, 1, 1), "way must be an integer >= 1"),
    ((2, 0, 1), "shot must be an integer >= 1"),
    ((2, 1, -1), "query must be an integer >= 0"),
])
def test_argument_errors(args, message):
    store = row_store([10, 10, 6, 10, 10, 10])
    with pytest.raises(ValueError, match=message):
        EpisodeSampler(store, *args, seed=0)


def test_fixed_episodes_save_load_hash(tmp_path):
    store = row_store([15] * 8)
    episodes = fixed_episodes(store, 5, 1, 4, n=7, seed=11)
    assert len(episodes) == 7 and episodes.hash == fixed_episodes(store, 5, 1, 4, n=7, seed=11).hash
    assert episodes.hash != fixed_episodes(store, 5, 1, 4, n=7, seed=12).hash
    episodes.save(tmp_path / "eps.npz")
    loaded = EpisodeSet.load(tmp_path / "eps.npz")
    assert loaded.hash == episodes.hash and torch.equal(loaded.rows, episodes.rows) and loaded.seed == 11
    sampler = EpisodeSampler(store, 5, 1, 4, seed=11, split_name="test")
    batches = list(loaded.batches(store, 3))
    assert [b.support_x.shape[0] for b in batches] == [3, 3, 1]
    for i in range(7):
        single, batch = sampler.episode(i), batches[i // 3]
        assert torch.equal(single.query_x[0], batch.query_x[i % 3])
        assert torch.equal(single.support_y[0], batch.support_y[i % 3])


def test_episode_set_refuses_other_store_and_edited_file(tmp_path):
    store = row_store([15] * 8)
    episodes = fixed_episodes(store, 5, 1, 4, n=3, seed=0)
    with pytest.raises(ValueError, match="not the store this episode set was made from"):
        next(episodes.batches(row_store([15] * 9), 2))
    episodes.save(tmp_path / "eps.npz")
    with np.load(tmp_path / "eps.npz") as archive:
        parts = dict(archive)
    parts["rows"][0, 0] = (parts["rows"][0, 0] + 1) % len(store)
    np.savez(tmp_path / "edited.npz", **parts)
    with pytest.raises(ValueError, match="edited.npz: episode set content does not match its stored hash"):
        EpisodeSet.load(tmp_path / "edited.npz")
    np.savez(tmp_path / "partial.npz", rows=parts["rows"])
    with pytest.raises(ValueError, match=r"partial.npz: not an episode set \(missing \['labels', 'meta'\]\)"):
        EpisodeSet.load(tmp_path / "partial.npz")


def test_images_within_a_class_are_drawn_evenly():
    store = row_store([10] * 5)
    sampler = EpisodeSampler(store, 5, 1, 1, seed=2)
    batch = sampler.sample(300)
    counts = torch.bincount(torch.cat([decode_rows(batch.support_x).flatten(), decode_rows(batch.query_x).flatten()]),
                            minlength=50)
    assert counts.sum() == 3000 and counts.min() > 30 and counts.max() < 95  # expected 60 each
