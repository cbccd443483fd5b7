"""data_splits/: sizes, disjointness, agreement with the reference lists and CIFAR-100 facts."""

from collections import Counter
from pathlib import Path

import pytest

from metahyper.data import ClassSplit, load_split
from metahyper.data.splits import split_info, splits_dir

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference"

# CIFAR-100's coarse label of each fine label 0..99 (fine labels in alphabetical order), as
# published with the data set; an independent encoding of the mapping in fc100.json.
CIFAR100_COARSE = [
    4, 1, 14, 8, 0, 6, 7, 7, 18, 3, 3, 14, 9, 18, 7, 11, 3, 9, 7, 11, 6, 11, 5, 10, 7, 6, 13, 15, 3, 15,
    0, 11, 1, 10, 12, 14, 16, 9, 11, 5, 5, 19, 8, 8, 15, 13, 14, 17, 18, 10, 16, 4, 17, 4, 2, 0, 17, 4, 18, 17,
    10, 3, 2, 12, 12, 16, 12, 1, 9, 19, 2, 10, 0, 1, 16, 12, 9, 13, 15, 13, 16, 19, 2, 4, 6, 19, 5, 5, 8, 19,
    18, 1, 2, 15, 6, 0, 17, 8, 14, 13,
]


@pytest.mark.parametrize("dataset, sizes", [("miniimagenet", (64, 16, 20)), ("fc100", (60, 20, 20)),
                                            ("omniglot", (4, 1, 3))])
def test_split_sizes_and_disjoint(dataset, sizes):
    split = load_split(dataset)
    assert (len(split.train), len(split.val), len(split.test)) == sizes
    assert not set(split.train) & set(split.val)
    assert not set(split.train) & set(split.test)
    assert not set(split.val) & set(split.test)
    assert split.get("validation") == split.val


def test_splits_folder_is_at_repo_root():
    assert splits_dir() == Path(__file__).resolve().parents[2] / "data_splits"


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="shared/reference not present")
def test_miniimagenet_matches_reference_lists():
    split = load_split("miniimagenet")
    for name in ("train", "val", "test"):
        assert list(split.get(name)) == (REFERENCE / f"miniimagenet_{name}.txt").read_text().split()


def test_fc100_fine_coarse_mapping_is_cifar100s():
    info = split_info("fc100")
    assert info["cifar100_fine_to_coarse"] == CIFAR100_COARSE
    names = info["cifar100_fine_names"]
    assert len(names) == 100 and names == sorted(names)
    assert names[0] == "apple" and names[99] == "worm" and names[47] == "maple_tree"
    assert info["cifar100_coarse_names"][13] == "non-insect_invertebrates"
    assert Counter(CIFAR100_COARSE) == {c: 5 for c in range(20)}


def test_fc100_fine_classes_follow_the_coarse_split():
    info = split_info("fc100")
    coarse_of = info["cifar100_fine_to_coarse"]
    expected_coarse = {"train": [1, 2, 3, 4, 5, 6, 9, 10, 15, 17, 18, 19], "val": [8, 11, 13, 16],
                       "test": [0, 7, 12, 14]}
    assert info["coarse_ids"] == expected_coarse
    for name, coarse in expected_coarse.items():
        fine = info["fine_ids"][name]
        assert sorted(fine) == [f for f in range(100) if coarse_of[f] in coarse]
        assert info[name] == [info["cifar100_fine_names"][f] for f in fine]
    assert "people" in [info["cifar100_coarse_names"][c] for c in expected_coarse["test"]]


def test_class_split_refuses_overlap_and_duplicates():
    with pytest.raises(ValueError, match="'train' and 'test' share classes"):
        ClassSplit(("a", "b"), ("c",), ("b",))
    with pytest.raises(ValueError, match="lists a class twice"):
        ClassSplit(("a", "a"), (), ())
    with pytest.raises(ValueError, match="split must be one of"):
        ClassSplit(("a",), (), ()).get("training")


def test_unknown_or_broken_split_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="known data sets"):
        load_split("imagenet")
    (tmp_path / "bad.json").write_text('{"train": ["a"], "val": ["a"], "test": []}')
    with pytest.raises(ValueError, match="bad.json.*share classes"):
        load_split("bad", tmp_path)
    (tmp_path / "short.json").write_text('{"train": ["a"]}')
    with pytest.raises(ValueError, match=r"short.json: missing list\(s\) \['val', 'test'\]"):
        load_split("short", tmp_path)
