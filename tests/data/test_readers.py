"""Readers of the real formats, on tiny files written here: pixels and labels against what was
written, the errors for malformed files, and parity with learn2learn's own dataset classes."""

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from metahyper.data import DataFormatError, load_store
from metahyper.data.splits import split_info

from .helpers import cifar_rows, dump


def hwc(store, i):
    return store.images[i].permute(1, 2, 0).numpy()


def test_miniimagenet_pickle_pixels_and_labels(mini_pickle):
    root, images, class_dict = mini_pickle
    store = load_store("miniimagenet", root, "val", images_per_class=2)
    wnids = split_info("miniimagenet")["val"]
    assert store.class_names == wnids and store.images.shape == (32, 3, 84, 84)
    np.testing.assert_array_equal(store.images.permute(0, 2, 3, 1).numpy(), images)  # file order kept
    for wnid, rows in class_dict.items():
        assert [store.class_names[store.labels[r]] for r in rows] == [wnid, wnid]


@pytest.mark.parametrize("field, value, message", [
    ("image_data", None, "missing key 'image_data'"),
    ("image_data", np.zeros((2, 84, 84), np.uint8),
     r"'image_data' must have shape \(N, 84, 84, 3\), got \(2, 84, 84\)"),
    ("image_data", np.zeros((2, 84, 84, 3), np.float32), "'image_data' must have dtype uint8, got float32"),
    ("class_dict", None, "missing key 'class_dict'"),
    ("class_dict", [1, 2], "'class_dict' must be a dict"),
])
def test_miniimagenet_pickle_format_errors(mini_pickle, field, value, message):
    root, images, class_dict = mini_pickle
    data = {"image_data": images, "class_dict": class_dict}
    if value is None:
        del data[field]
    else:
        data[field] = value
    dump(root / "mini-imagenet-cache-validation.pkl", data)
    with pytest.raises(DataFormatError, match=r"mini-imagenet-cache-validation\.pkl: " + message):
        load_store("miniimagenet", root, "val", images_per_class=2)


def test_miniimagenet_pickle_class_errors(mini_pickle):
    root, images, class_dict = mini_pickle
    path = root / "mini-imagenet-cache-validation.pkl"
    absent = dict(class_dict)
    gone = next(iter(absent))
    del absent[gone]
    dump(path, {"image_data": images, "class_dict": absent})
    with pytest.raises(DataFormatError, match=rf"validation\.pkl: 1 class\(es\) of the split absent: \['{gone}'\]"):
        load_store("miniimagenet", root, "val", images_per_class=2)
    dump(path, {"image_data": images, "class_dict": {**class_dict, "n99999999": [0]}})
    with pytest.raises(DataFormatError, match=r"not in the split: \['n99999999'\]"):
        load_store("miniimagenet", root, "val", images_per_class=2)
    twice = {**class_dict, gone: [class_dict[gone][0]] * 2}
    dump(path, {"image_data": images, "class_dict": twice})
    with pytest.raises(DataFormatError, match=rf"class_dict\['{gone}'\] lists a row twice"):
        load_store("miniimagenet", root, "val", images_per_class=2)
    dump(path, {"image_data": images, "class_dict": {**class_dict, gone: [0, 99]}})
    with pytest.raises(DataFormatError, match=rf"class_dict\['{gone}'\] has rows outside 0\.\.31"):
        load_store("miniimagenet", root, "val", images_per_class=2)
    dump(path, {"image_data": images, "class_dict": class_dict})
    with pytest.raises(DataFormatError, match=r"validation\.pkl: expected 600 images per class, got n\d{8}: 2"):
        load_store("miniimagenet", root, "val")


def test_miniimagenet_csv_and_images(tmp_path):
    rng = np.random.default_rng(5)
    wnids = split_info("miniimagenet")["test"]
    (tmp_path / "images").mkdir()
    rows, written = [], {}
    for k, wnid in enumerate(wnids):
        for j in range(2):
            name = f"{wnid}{j:08d}.png"
            size = 84 if j == 0 else 100  # the second image is resized to 84 at load time
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "images" / name)
            rows.append((name, wnid))
            written[name] = pixels
    rows.reverse()
    with open(tmp_path / "test.csv", "w", newline="") as f:
        csv.writer(f).writerows([("filename", "label"), *rows])
    store = load_store("miniimagenet", tmp_path, "test", images_per_class=2)
    assert store.class_names == wnids and store.images.shape == (40, 3, 84, 84)
    for i in range(len(store)):
        wnid = wnids[store.labels[i]]
        name = f"{wnid}{1 - i % 2:08d}.png"  # csv order within a class (reversed above)
        expected = written[name] if name.endswith("0.png") else np.asarray(
            Image.fromarray(written[name]).resize((84, 84), Image.BILINEAR))
        np.testing.assert_array_equal(hwc(store, i), expected)
    (tmp_path / "images" / rows[3][0]).unlink()
    with pytest.raises(DataFormatError, match=rf"test\.csv: 1 listed image\(s\) missing, e\.g\. .*{rows[3][0]}"):
        load_store("miniimagenet", tmp_path, "test", images_per_class=2)
    (tmp_path / "test.csv").write_text("file,wnid\n")
    with pytest.raises(DataFormatError, match="test.csv: first line must be the header 'filename,label'"):
        load_store("miniimagenet", tmp_path, "test", images_per_class=2)


def test_fc100_pickle_pixels_and_labels(fc100_pickle):
    root, data, fine = fc100_pickle
    info = split_info("fc100")
    store = load_store("fc100", root, "validation", images_per_class=2)
    assert store.class_names == info["val"] and store.image_shape == (3, 32, 32)
    for i in range(len(store)):  # file order is kept
        np.testing.assert_array_equal(hwc(store, i), data[i])
        assert store.class_names[store.labels[i]] == info["cifar100_fine_names"][fine[i]]


def test_fc100_pickle_errors(fc100_pickle):
    root, data, fine = fc100_pickle
    path = root / "FC100_val.pickle"
    dump(path, {"data": data, "labels": [int(f) for f in fine[:-1]]}, protocol=2)
    with pytest.raises(DataFormatError, match="FC100_val.pickle: 'labels' has 39 entries, expected 40"):
        load_store("fc100", root, "val", images_per_class=2)
    wrong = fine.copy()
    wrong[wrong == wrong[0]] = 0  # 'apple' (fine 0) is a train class
    dump(path, {"data": data, "labels": [int(f) for f in wrong]}, protocol=2)
    with pytest.raises(DataFormatError, match="FC100_val.pickle: 1 class.*absent"):
        load_store("fc100", root, "val", images_per_class=2)


def test_fc100_from_cifar100_pools_train_and_test(cifar100_dir):
    root, written = cifar100_dir
    info = split_info("fc100")
    store = load_store("fc100", root, "test", images_per_class=3)
    assert store.class_names == info["test"] and len(store) == 60
    expected = []
    for name in ("train", "test"):
        images, fine, _ = written[name]
        expected += [(img, f) for img, f in zip(images, fine) if f in info["fine_ids"]["test"]]
    for i, (img, f) in enumerate(expected):
        np.testing.assert_array_equal(hwc(store, i), img)
        assert store.class_names[store.labels[i]] == info["cifar100_fine_names"][f]


def test_fc100_from_cifar100_checks_coarse_labels(cifar100_dir):
    root, written = cifar100_dir
    images, fine, coarse = written["test"]
    coarse = coarse.copy()
    coarse[0] = (coarse[0] + 1) % 20
    dump(root / "cifar-100-python" / "test", {"data": cifar_rows(images), "fine_labels": fine.tolist(),
                                               "coarse_labels": coarse.tolist()}, protocol=2)
    with pytest.raises(DataFormatError, match="cifar-100-python/test: fine/coarse labels disagree"):
        load_store("fc100", root, "train", images_per_class=3)


def test_cifar100_classification_chw_order(cifar100_dir):
    root, written = cifar100_dir
    store = load_store("cifar100", root, "train")
    images, fine, _ = written["train"]
    assert store.images.shape == (200, 3, 32, 32) and store.labels.tolist() == fine.tolist()
    assert store.class_names == split_info("fc100")["cifar100_fine_names"]
    np.testing.assert_array_equal(store.images.permute(0, 2, 3, 1).numpy(), images)
    row = cifar_rows(images[:1])[0]
    assert store.images[0, 1, 5, 7] == row[1024 + 5 * 32 + 7] == images[0, 5, 7, 1]


def test_cifar10_batches_in_order(tmp_path):
    rng = np.random.default_rng(6)
    folder = tmp_path / "cifar-10-batches-py"
    parts = []
    for name in [f"data_batch_{i}" for i in range(1, 6)]:
        images = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
        labels = rng.integers(0, 10, 3)
        dump(folder / name, {"data": cifar_rows(images), "labels": labels.tolist()}, protocol=2)
        parts.append((images, labels))
    dump(folder / "test_batch", {"data": cifar_rows(parts[0][0]), "labels": [12, 0, 0]}, protocol=2)
    dump(folder / "batches.meta", {"label_names": [f"c{i}" for i in range(10)]}, protocol=2)
    store = load_store("cifar10", tmp_path, "train")
    np.testing.assert_array_equal(store.images.permute(0, 2, 3, 1).numpy(), np.concatenate([p[0] for p in parts]))
    assert store.labels.tolist() == np.concatenate([p[1] for p in parts]).tolist()
    assert store.class_names == [f"c{i}" for i in range(10)]
    with pytest.raises(DataFormatError, match=r"test_batch: 'labels' outside 0\.\.9"):
        load_store("cifar10", folder, "test")  # root may also be the batches folder itself


def test_cache_roundtrip_and_invalidation(fc100_pickle, tmp_path):
    root, data, _ = fc100_pickle
    cache = tmp_path / "cache"
    first = load_store("fc100", root, "val", cache_dir=cache, images_per_class=2)
    (folder,) = cache.iterdir()
    assert sorted(p.name for p in folder.iterdir()) == ["classes.json", "images.npy", "labels.npy"]
    again = load_store("fc100", root, "val", cache_dir=cache, images_per_class=2)
    assert torch.equal(again.images, first.images) and again.class_names == first.class_names
    assert again.images.numpy().base is not None  # memory-mapped, not decoded again
    data[0, 0, 0, 0] ^= 0xFF
    dump(root / "FC100_val.pickle", {"data": data, "labels": [0] * 40}, protocol=2)
    with pytest.raises(DataFormatError):  # a changed source is read again, not served from cache
        load_store("fc100", root, "val", cache_dir=cache, images_per_class=2)


def test_image_size_resizes_once(fc100_pickle):
    root, data, _ = fc100_pickle
    store = load_store("fc100", root, "val", image_size=16, images_per_class=2)
    assert store.images.shape == (40, 3, 16, 16) and store.images.dtype == torch.uint8


l2l = pytest.importorskip  # alias keeps the peer tests readable


@pytest.mark.peers
def test_miniimagenet_matches_learn2learn(mini_pickle):
    datasets = l2l("learn2learn.vision.datasets", reason="learn2learn not installed")
    root, images, class_dict = mini_pickle
    ours = load_store("miniimagenet", root, "val", images_per_class=2)
    theirs = datasets.MiniImagenet(str(root), mode="validation", download=False)
    their_wnid = {label: wnid for wnid, label in theirs.class_idx.items()}
    assert len(theirs) == len(ours)
    for i in range(len(ours)):
        image, label = theirs[i]
        assert torch.equal(ours.images[i].float(), image)
        assert ours.class_names[ours.labels[i]] == their_wnid[label]


@pytest.mark.peers
def test_fc100_matches_learn2learn(fc100_pickle):
    datasets = l2l("learn2learn.vision.datasets", reason="learn2learn not installed")
    root, _, _ = fc100_pickle
    ours = load_store("fc100", root, "val", images_per_class=2)
    theirs = datasets.FC100(str(root), mode="validation", download=False)
    names = split_info("fc100")["cifar100_fine_names"]
    assert len(theirs) == len(ours)
    for i in range(len(ours)):
        image, label = theirs[i]
        np.testing.assert_array_equal(hwc(ours, i), np.asarray(image))
        assert ours.class_names[ours.labels[i]] == names[label]


def test_miniimagenet_pickle_rows_outside_class_dict_are_dropped(mini_pickle):
    root, images, class_dict = mini_pickle
    extra = np.concatenate([images, np.full((1, 84, 84, 3), 7, np.uint8)])
    dump(root / "mini-imagenet-cache-validation.pkl", {"image_data": extra, "class_dict": class_dict})
    store = load_store("miniimagenet", root, "val", images_per_class=2)
    assert len(store) == 32 and not (store.images == 7).all(dim=(1, 2, 3)).any()
