"""Samplers in other people's loops: iteration, unpacking, DataLoader workers, ranks."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from metahyper.data import EpisodeSampler, TaskBatch, collate_tasks, transforms
from metahyper.data.loader import EpisodeDataset

from .helpers import decode_rows, row_store


def _store():
    return row_store([12] * 8)


def _same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_iterating_with_a_length_gives_the_batches_of_successive_sample_calls():
    sampler = EpisodeSampler(_store(), 3, 2, 2, seed=4, episodes=10, tasks=4)
    reference = EpisodeSampler(_store(), 3, 2, 2, seed=4)
    batches = list(sampler)
    assert len(sampler) == 3 and [b.support_x.shape[0] for b in batches] == [4, 4, 2]  # ceil(10 / 4), last short
    assert all(_same(got, reference.sample(len(got.support_y))) for got in batches)
    # the next pass continues with episodes 10..19 (fresh tasks), as sample() would
    assert _same(next(iter(sampler)), reference.sample(4))


def test_iterate_takes_an_explicit_number_of_episodes_and_a_sampler_without_one_has_no_length():
    sampler = EpisodeSampler(_store(), 3, 2, 2, seed=4)
    assert [b.query_x.shape[0] for b in sampler.iterate(5, tasks=2)] == [2, 2, 1]
    assert sampler.next_index == 5
    with pytest.raises(TypeError, match="episodes=N"):
        len(sampler)
    assert sampler  # no length, but truthy
    with pytest.raises(ValueError, match="tasks must be an integer >= 1"):
        EpisodeSampler(_store(), 3, 2, 2, seed=4, episodes=3, tasks=0)


def test_a_task_batch_unpacks_into_its_four_tensors():
    batch = EpisodeSampler(_store(), 3, 2, 2, seed=0).sample(2)
    support_x, support_y, query_x, query_y = batch
    assert support_x is batch.support_x and support_y is batch.support_y
    assert query_x is batch.query_x and query_y is batch.query_y
    # label block k of every task is one class (decoded from the rows the images encode)
    rows = decode_rows(support_x)
    labels = _store().labels[rows]
    assert torch.equal(labels.view(2, 3, 2)[..., 0], labels.view(2, 3, 2)[..., 1])


def test_two_dataloader_workers_give_the_batches_of_the_sampler_itself():
    dataset = EpisodeDataset(EpisodeSampler(_store(), 3, 2, 2, seed=7), steps=7, tasks=2)
    reference = EpisodeSampler(_store(), 3, 2, 2, seed=7)
    loaded = list(DataLoader(dataset, batch_size=None, num_workers=2))
    assert len(loaded) == len(dataset) == 7
    assert all(_same(got, reference.sample(2)) for got in loaded)


def test_ranks_share_each_meta_batch_and_a_transform_is_keyed_on_the_step():
    sampler = EpisodeSampler(_store(), 3, 2, 2, seed=1)
    ranks = [list(EpisodeDataset(sampler, steps=3, tasks=4, rank=r, world_size=2)) for r in range(2)]
    whole = EpisodeSampler(_store(), 3, 2, 2, seed=1)
    for step in range(3):
        joined = [torch.cat(pair) for pair in zip(ranks[0][step], ranks[1][step])]
        assert _same(joined, whole.sample(4))
    flip = transforms.Compose([transforms.RandomHFlip()])
    one = list(EpisodeDataset(sampler, steps=3, tasks=2, transform=flip))
    two = list(DataLoader(EpisodeDataset(sampler, steps=3, tasks=2, transform=flip), batch_size=None, num_workers=2))
    assert all(_same(a, b) for a, b in zip(one, two))
    with pytest.raises(ValueError, match="divisible by world_size=2"):
        EpisodeDataset(sampler, steps=1, tasks=3, rank=0, world_size=2)


def test_a_dataloader_batches_single_episodes_into_task_batches_with_collate_tasks():
    sampler = EpisodeSampler(_store(), 3, 2, 2, seed=6)
    episodes = [sampler.episode(i) for i in range(7)]  # a map-style data set of T=1 TaskBatches
    loaded = list(DataLoader(episodes, batch_size=3, collate_fn=collate_tasks))
    assert [len(b.support_y) for b in loaded] == [3, 3, 1]
    for start, batch in zip((0, 3, 6), loaded):  # the sampler's own meta-batch of those episodes
        assert isinstance(batch, TaskBatch) and _same(batch, sampler.batch(range(start, min(start + 3, 7))))
    assert _same(collate_tasks([sampler.batch([0, 1]), sampler.episode(2)]), sampler.batch([0, 1, 2]))


def test_collate_tasks_refuses_what_cannot_be_stacked():
    other = EpisodeSampler(_store(), 3, 1, 2, seed=6)  # 1-shot: another support size
    with pytest.raises(ValueError, match="item 1 has tasks of another shape"):
        collate_tasks([EpisodeSampler(_store(), 3, 2, 2, seed=6).episode(0), other.episode(0)])
    with pytest.raises(ValueError, match="at least one"):
        collate_tasks([])
    with pytest.raises(TypeError, match="TaskBatch items"):
        collate_tasks([(torch.zeros(1),)])
