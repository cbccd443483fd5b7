"""Restricted unpickler, sha256 manifests, and load_store's dispatch errors."""

import hashlib
import json
import os
import pickle

import numpy as np
import pytest

from metahyper.data import DataFormatError, load_store, safe_load_pickle, verify_checksums

from .helpers import dump


class _Payload:
    """Unpickling this would run ``command`` through os.system."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class _Opener:
    """Unpickling this would create ``path`` through builtins.open."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


@pytest.mark.parametrize("make", [lambda m: _Payload(f"touch {m}"), lambda m: _Opener(str(m))])
def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path, make):
    marker = tmp_path / "marker"
    path = dump(tmp_path / "evil.pkl", {"image_data": np.zeros(2), "class_dict": make(marker)})
    with pytest.raises(DataFormatError, match=r"evil\.pkl: refused to unpickle global (posix\.system|io\.open)"):
        safe_load_pickle(path)
    assert not marker.exists()


def test_malicious_pickle_refused_through_load_store(tmp_path):
    marker = tmp_path / "marker"
    dump(tmp_path / "mini-imagenet-cache-test.pkl", _Payload(f"touch {marker}"))
    with pytest.raises(DataFormatError, match="mini-imagenet-cache-test.pkl: refused"):
        load_store("miniimagenet", tmp_path, "test")
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_numpy_and_containers_roundtrip_every_protocol(tmp_path, protocol):
    obj = {"a": np.arange(12, dtype=np.uint8).reshape(3, 4), "b": [1, 2.5, "x", b"y", (None, True)],
           "c": np.float32(1.5), "d": np.int64(-3)}
    loaded = safe_load_pickle(dump(tmp_path / "ok.pkl", obj, protocol))
    np.testing.assert_array_equal(loaded["a"], obj["a"])
    assert loaded["b"] == obj["b"] and loaded["c"] == obj["c"] and loaded["d"] == obj["d"]


@pytest.mark.parametrize("core", ["numpy.core", "numpy._core"])  # numpy 1.x's and 2.x's pickles
def test_numpy2_module_names_are_admitted(tmp_path, core):
    data = pickle.dumps(np.arange(3, dtype=np.int16), protocol=2)
    installed = next(m for m in (b"numpy._core.multiarray", b"numpy.core.multiarray") if m in data)
    built = data.replace(installed, f"{core}.multiarray".encode())  # protocol 2 names modules as text
    other = b"numpy.core.multiarray" if core == "numpy._core" else b"numpy._core.multiarray"
    assert f"{core}.multiarray".encode() in built and other not in built
    (tmp_path / "np.pkl").write_bytes(built)
    try:
        loaded = safe_load_pickle(tmp_path / "np.pkl")
    except DataFormatError as error:
        if "ModuleNotFoundError" not in str(error):
            raise
        pytest.skip(f"numpy {np.__version__} cannot import {core} (numpy._core exists from 1.26 on)")
    np.testing.assert_array_equal(loaded, np.arange(3))


def test_corrupt_pickle_names_file(tmp_path):
    (tmp_path / "cut.pkl").write_bytes(pickle.dumps({"a": list(range(100))})[:20])
    with pytest.raises(DataFormatError, match="cut.pkl: not a readable pickle"):
        safe_load_pickle(tmp_path / "cut.pkl")


def test_verify_checksums(tmp_path):
    (tmp_path / "sub").mkdir()
    files = [tmp_path / "a.bin", tmp_path / "sub" / "b.bin"]
    for i, f in enumerate(files):
        f.write_bytes(bytes([i]) * 1000)
    manifest = {"a.bin": hashlib.sha256(b"\x00" * 1000).hexdigest(),
                "sub/b.bin": hashlib.sha256(b"\x01" * 1000).hexdigest().upper()}
    verify_checksums(files, manifest)
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    verify_checksums(files, tmp_path / "manifest.json")
    files[1].write_bytes(b"\x01" * 999 + b"\x02")
    with pytest.raises(DataFormatError, match=r"b\.bin: sha256 differs"):
        verify_checksums(files, manifest)
    with pytest.raises(DataFormatError, match=r"c\.bin: not in the manifest"):
        verify_checksums([tmp_path / "c.bin"], manifest)


def test_load_store_checks_manifest_before_reading(tmp_path, fc100_pickle):
    root, _, _ = fc100_pickle
    good = {"FC100_val.pickle": hashlib.sha256((root / "FC100_val.pickle").read_bytes()).hexdigest()}
    assert len(load_store("fc100", root, "val", manifest=good, images_per_class=2)) == 40
    with pytest.raises(DataFormatError, match="FC100_val.pickle: sha256 differs"):
        load_store("fc100", root, "val", manifest={"FC100_val.pickle": "0" * 64})


def test_load_store_errors_name_root_and_files(tmp_path):
    with pytest.raises(DataFormatError) as err:
        load_store("miniimagenet", tmp_path, "train")
    message = str(err.value)
    assert str(tmp_path) in message and "mini-imagenet-cache-train.pkl" in message and "train.csv" in message
    with pytest.raises(DataFormatError, match=r"FC100_test.pickle.*cifar-100-python/train"):
        load_store("fc100", tmp_path, "test")
    with pytest.raises(DataFormatError, match="images_background"):
        load_store("omniglot", tmp_path, "train")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_store("cifar10", tmp_path / "nowhere", "train")
    known = "cifar10, cifar100, fc100, miniimagenet, mnist, omniglot, omniglot_full, omniglot_lake_runs, synthetic"
    with pytest.raises(KeyError, match=f"known: {known}"):
        load_store("imagenet", tmp_path, "train")
    with pytest.raises(ValueError, match="split must be one of"):
        load_store("miniimagenet", tmp_path, "training")


def test_a_near_miss_data_set_name_gets_a_suggestion(tmp_path):
    with pytest.raises(KeyError, match=r"unknown data set 'omniglot_ful'; did you mean 'omniglot_full'\? "):
        load_store("omniglot_ful", tmp_path, "train")
