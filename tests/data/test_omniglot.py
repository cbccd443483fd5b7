"""Omniglot from folders and zip archives (tiny generated sets), and the real archives."""

import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from metahyper.data import DataFormatError, load_split, load_store


def write_set(root, name, alphabets, per_char=3, as_zip=False):
    """A generated Omniglot set; image j of character c is black (0) in its top-left
    (c+1) x (j+1) block and white (255) elsewhere. Returns {class name: [pixel arrays]}."""
    written = {}
    members = {}
    for alphabet, n_chars in alphabets.items():
        for c in range(n_chars):
            character = f"character{c + 1:02d}"
            for j in range(per_char):
                pixels = np.full((105, 105), 255, np.uint8)
                pixels[: c + 1, : j + 1] = 0
                written.setdefault(f"{alphabet}/{character}", []).append(pixels)
                members[f"{name}/{alphabet}/{character}/{c:04d}_{j + 1:02d}.png"] = pixels
    for member, pixels in members.items():
        path = root / "staging" / member if as_zip else root / member
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels > 0).save(path)  # mode '1' like the originals
    if as_zip:
        with zipfile.ZipFile(root / f"{name}.zip", "w") as archive:
            for member in members:
                archive.write(root / "staging" / member, member)
    return written


@pytest.mark.parametrize("as_zip", [False, True])
def test_folder_and_zip_native_pixels(tmp_path, as_zip):
    written = write_set(tmp_path, "images_background", {"Alpha": 2, "Beta": 1}, as_zip=as_zip)
    store = load_store("omniglot", tmp_path, "train", image_size=105, alphabets=["Beta", "Alpha"], images_per_class=3)
    assert store.class_names == ["Beta/character01", "Alpha/character01", "Alpha/character02"]
    assert store.images.shape == (9, 1, 105, 105)
    for i in range(len(store)):
        expected = written[store.class_names[store.labels[i]]][i % 3]
        np.testing.assert_array_equal(store.images[i, 0].numpy(), expected)


def test_resize_default_28_and_rotations(tmp_path):
    write_set(tmp_path, "images_background", {"Alpha": 2}, per_char=2, as_zip=True)
    plain = load_store("omniglot", tmp_path, "train", alphabets=["Alpha"], images_per_class=2)
    assert plain.images.shape == (4, 1, 28, 28) and plain.images.dtype == torch.uint8
    assert plain.images[:, 0, -1, -1].tolist() == [255] * 4  # far from the black corner
    rotated = load_store("omniglot", tmp_path, "train", alphabets=["Alpha"], images_per_class=2, rotations=True)
    assert rotated.num_classes == 8 and rotated.class_names[2] == "Alpha/character01/rot90"
    for k in range(1, 4):
        block = rotated.images[rotated.labels == 2 * k]  # character01 rotated by k*90 degrees
        expected = np.rot90(plain.images[plain.labels == 0].numpy(), k, axes=(2, 3))
        np.testing.assert_array_equal(block.numpy(), expected)


def test_missing_alphabet_and_wrong_count(tmp_path):
    write_set(tmp_path, "images_background_small1", {"Alpha": 1}, as_zip=True)
    with pytest.raises(DataFormatError, match=r"alphabet\(s\) \['Gamma'\] not found .*images_background_small1.zip"):
        load_store("omniglot", tmp_path, "train", alphabets=["Alpha", "Gamma"])
    with pytest.raises(DataFormatError, match="expected 20 images per class, got Alpha/character01: 3"):
        load_store("omniglot", tmp_path, "train", alphabets=["Alpha"])


def test_alphabet_in_two_sets_is_read_once(tmp_path):
    write_set(tmp_path, "images_background_small1", {"Alpha": 1}, as_zip=True)
    write_set(tmp_path, "images_background_small2", {"Alpha": 1, "Beta": 2}, as_zip=True)
    store = load_store("omniglot", tmp_path, "train", alphabets=["Alpha", "Beta"], images_per_class=3)
    assert len(store) == 9 and "small1" in store.source and "small2" in store.source


@pytest.mark.realdata
def test_real_small_archives(omniglot_dir):
    split = load_split("omniglot")
    chars = {"train": 24 + 22 + 24 + 40, "val": 26, "test": 47 + 42 + 17}
    for name, n_chars in chars.items():
        store = load_store("omniglot", omniglot_dir, name)
        assert store.num_classes == n_chars and len(store) == 20 * n_chars
        assert store.images.shape[1:] == (1, 28, 28)
        assert {c.split("/")[0] for c in store.class_names} == set(split.get(name))
        assert torch.equal(store.images_per_class, torch.full((n_chars,), 20))


@pytest.mark.realdata
def test_real_native_size_is_binary(omniglot_dir):
    store = load_store("omniglot", omniglot_dir, "val", image_size=105)
    assert store.images.shape == (26 * 20, 1, 105, 105)
    assert set(torch.unique(store.images).tolist()) == {0, 255}
    ink = (store.images == 0).float().mean().item()
    assert 0.01 < ink < 0.3  # strokes are a small part of a white page



def test_rotations_only_in_the_listed_splits(tmp_path):
    """``rotations: [train]`` rotates the training split's characters (numpy's rot90 of the
    written pixels) and leaves the validation split's alone; a bad split name names the option."""
    written = write_set(tmp_path, "images_background", {"Alpha": 2, "Beta": 1}, per_char=2)
    options = {"image_size": 105, "images_per_class": 2, "rotations": ["train"]}
    train = load_store("omniglot", tmp_path, "train", alphabets=["Alpha"], **options)
    val = load_store("omniglot", tmp_path, "val", alphabets=["Beta"], **options)
    assert train.num_classes == 8 and train.class_names[2:4] == ["Alpha/character01/rot90", "Alpha/character02/rot90"]
    assert val.class_names == ["Beta/character01"]
    np.testing.assert_array_equal(train.images[train.labels == 2][0, 0].numpy(),
                                  np.rot90(written["Alpha/character01"][0], 1))
    with pytest.raises(ValueError, match="rotations: split must be one of"):
        load_store("omniglot", tmp_path, "train", alphabets=["Alpha"], **{**options, "rotations": ["training"]})
