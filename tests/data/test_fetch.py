"""``metahyper data fetch`` against generated archives served from 127.0.0.1 (never the internet):
success for every data set, checksum mismatch, truncation, a missing file, interrupt and resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_run import run_cli
from tiny_suites import TRAINING

from metahyper.cli import main
from metahyper.data import load_store
from metahyper.data.fetch import FetchError, fetch, fetch_for_spec, resources
from metahyper.data.splits import split_info

from .archives import LocalServer, cifar100_tarball, cifar10_tarball, lake_runs, md5, mnist_files, omniglot_zip

OMNIGLOT_SETS = {"images_background": {"Alpha": 2, "Beta": 1}, "images_evaluation": {"Gamma": 2},
                 "images_background_small1": {"Alpha": 1}, "images_background_small2": {"Beta": 1}}


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    """A folder of generated archives (made once per module) and its {file name: md5} table."""
    folder = tmp_path_factory.mktemp("served") / "mirror"
    folder.mkdir()
    for stem, alphabets in OMNIGLOT_SETS.items():
        omniglot_zip(folder / f"{stem}.zip", alphabets)
    mnist_files(folder, {"train": 20, "t10k": 10})
    cifar10_tarball(folder)
    cifar100_tarball(folder)
    return folder, {p.name: md5(p) for p in folder.iterdir() if p.is_file()}


@pytest.fixture
def served(archives):
    """A server for the archives (fresh per test) and their md5 table."""
    folder, table = archives
    with LocalServer(folder) as server:
        yield server, table


def leftovers(root: Path) -> list[str]:
    """Anything a fetch must never leave behind: hidden temporary folders or files."""
    return sorted(p.name for p in root.iterdir() if p.name.startswith("."))


def test_real_table_is_torchvisions():
    from torchvision.datasets import CIFAR100, MNIST, Omniglot

    omniglot = {r.filename: r.md5 for r in resources("omniglot")}
    assert omniglot["images_background.zip"] == Omniglot.zips_md5["images_background"]
    assert omniglot["images_evaluation.zip"] == Omniglot.zips_md5["images_evaluation"]
    assert omniglot["images_background_small1.zip"] is None  # torchvision publishes none
    assert [(r.filename, r.md5) for r in resources("mnist")] == [tuple(r) for r in MNIST.resources]
    assert [(r.filename, r.md5, r.urls[0]) for r in resources("fc100")] == [
        (CIFAR100.filename, CIFAR100.tgz_md5, CIFAR100.url)]
    with pytest.raises(ValueError, match="miniimagenet.*no stable official download|MiniImageNet"):
        resources("miniimagenet")


def test_fetch_every_dataset(served, tmp_path):
    server, table = served
    root = tmp_path / "data"
    fetch("omniglot", root / "omniglot", server.url, table, log=lambda _: None)
    fetch("mnist", root / "mnist", server.url + "/", table, log=lambda _: None)
    fetch("cifar10", root / "cifar10", server.url, table, log=lambda _: None)
    fetch("fc100", root / "fc100", server.url, table, log=lambda _: None, fc100_images_per_class=3)
    assert sorted(p.name for p in (root / "omniglot").iterdir()) == sorted(f"{s}.zip" for s in OMNIGLOT_SETS)
    store = load_store("omniglot", root / "omniglot", "test", alphabets=["Gamma"], images_per_class=2)
    assert store.class_names == ["Gamma/character01", "Gamma/character02"]
    assert len(load_store("mnist", root / "mnist", "test")) == 10
    assert len(load_store("cifar10", root / "cifar10", "train")) == 50
    assert len(load_store("cifar100", root / "fc100", "train")) == 200
    assert load_store("fc100", root / "fc100", "test", images_per_class=3).num_classes == 20
    for folder in root.iterdir():
        assert leftovers(folder) == []
    requested = {p.rsplit("/", 1)[-1] for p in server.requests}
    assert "cifar-10-python.tar.gz" in requested and all(p.startswith("/mirror/") for p in server.requests)


def test_checksum_mismatch_names_file_and_both_md5s(served, tmp_path):
    server, table = served
    wrong = {**table, "cifar-10-python.tar.gz": "0" * 32}
    with pytest.raises(FetchError) as error:
        fetch("cifar10", tmp_path / "c", server.url, wrong, log=lambda _: None)
    message = str(error.value)
    assert "cifar-10-python.tar.gz" in message and "0" * 32 in message and table["cifar-10-python.tar.gz"] in message
    assert leftovers(tmp_path / "c") == [] and not (tmp_path / "c" / "cifar-10-batches-py").exists()


def test_truncated_download(served, tmp_path):
    server, table = served
    server.truncated.add("t10k-images-idx3-ubyte.gz")
    with pytest.raises(FetchError, match="t10k-images-idx3-ubyte.gz: checksum mismatch.*truncated"):
        fetch("mnist", tmp_path / "m", server.url, table, log=lambda _: None)
    assert not (tmp_path / "m" / "t10k-images-idx3-ubyte.gz").exists() and leftovers(tmp_path / "m") == []


def test_truncated_archive_without_published_md5_is_refused(served, tmp_path):
    server, table = served
    server.truncated.add("images_background_small1.zip")
    no_small = {k: v for k, v in table.items() if "small" not in k}
    with pytest.raises(FetchError, match="images_background_small1.zip: not a readable zip.*actual md5"):
        fetch("omniglot", tmp_path / "o", server.url, no_small, log=lambda _: None)
    assert not (tmp_path / "o" / "images_background_small1.zip").exists() and leftovers(tmp_path / "o") == []


def test_missing_file_404_names_file_and_url(served, tmp_path):
    server, table = served
    match = r"cifar-10-python.tar.gz: download failed.*/nowhere/cifar-10-python.tar.gz: HTTP 404"
    with pytest.raises(FetchError, match=match):
        fetch("cifar10", tmp_path / "c", server.url.rsplit("/", 1)[0] + "/nowhere", table, log=lambda _: None)
    assert not (tmp_path / "c").exists() or leftovers(tmp_path / "c") == []


def test_interrupted_then_resumed(served, tmp_path):
    """A fetch dying on the third MNIST file keeps the two verified ones; the rerun downloads
    only what is absent. A temporary folder left by a killed process is cleared."""
    server, table = served
    root = tmp_path / "m"
    server.truncated.add("t10k-images-idx3-ubyte.gz")
    with pytest.raises(FetchError):
        fetch("mnist", root, server.url, table, log=lambda _: None)
    assert sorted(p.name for p in root.iterdir()) == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    (root / ".fetch-t10k-images-idx3-ubyte.gz-killed").mkdir()  # as a SIGKILLed fetch leaves it
    server.truncated.clear()
    server.requests.clear()
    fetch("mnist", root, server.url, table, log=lambda _: None)
    assert [p.rsplit("/", 1)[-1] for p in server.requests if "ubyte" in p] == [
        "t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz"]  # torchvision asks twice per file: redirect check, then GET
    assert leftovers(root) == [] and len(load_store("mnist", root, "test")) == 10


def test_cli_fetch_exit_2_and_environment_mirror(served, tmp_path, monkeypatch, capsys):
    server, table = served
    checksums = tmp_path / "md5.json"
    checksums.write_text(json.dumps({**table, "cifar-10-python.tar.gz": "f" * 32}))
    monkeypatch.setenv("METAHYPER_MIRROR", server.url)
    status, _, err = run_cli(capsys, "data", "fetch", "cifar10", "--root", str(tmp_path / "c"),
                             "--checksums", str(checksums))
    assert status == 2 and "expected md5 " + "f" * 32 in err
    checksums.write_text(json.dumps(table))
    assert main(["data", "fetch", "cifar10", "--root", str(tmp_path / "c"), "--checksums", str(checksums)]) == 0
    assert (tmp_path / "c" / "cifar-10-batches-py" / "test_batch").is_file()
    status, _, err = run_cli(capsys, "data", "fetch", "imagenet", "--root", str(tmp_path))
    assert status == 2 and "imagenet" in err


def test_suite_download_fetches_only_what_the_spec_needs(served, tmp_path, monkeypatch):
    server, table = served
    monkeypatch.setenv("METAHYPER_MIRROR", server.url)
    fetch_for_spec("mnist", str(tmp_path / "m"), {}, None, table, log=lambda _: None)
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["t10k-images-idx3-ubyte.gz",
                                                                  "t10k-labels-idx1-ubyte.gz"]
    fetch_for_spec("omniglot", str(tmp_path / "o"), {}, None, table, log=lambda _: None)
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["images_background_small1.zip",
                                                                  "images_background_small2.zip"]
    assert fetch_for_spec("synthetic", None, {}) == [] and fetch_for_spec("mnist", "${UNSET_VAR_X}/m", {}) == []


def test_load_store_download_fetches_and_verifies_like_the_command(served, tmp_path, monkeypatch, capsys):
    server, table = served
    monkeypatch.setenv("METAHYPER_DATA", str(tmp_path / "data"))  # root=None: $METAHYPER_DATA/mnist
    store = load_store("mnist", None, "test", download=True, mirror=server.url, checksums=table)
    assert len(store) == 10 and store.class_names == [str(d) for d in range(10)]
    assert sorted(p.name for p in (tmp_path / "data" / "mnist").iterdir()) == ["t10k-images-idx3-ubyte.gz",
                                                                             "t10k-labels-idx1-ubyte.gz"]
    asked = len(server.requests)
    assert len(load_store("mnist", None, "test", download=True, mirror=server.url, checksums=table)) == 10
    assert len(server.requests) == asked  # already there: nothing downloaded again
    (tmp_path / "md5.json").write_text(json.dumps(table))
    cli = run_cli(capsys, "data", "fetch", "mnist", "--mirror", server.url, "--checksums", str(tmp_path / "md5.json"))
    assert cli[0] == 0 and "t10k-images-idx3-ubyte.gz already present" in cli[1]  # the command's default root too
    wrong = {**table, "t10k-images-idx3-ubyte.gz": "0" * 32}  # the checksums the command checks
    with pytest.raises(FetchError, match="t10k-images-idx3-ubyte.gz: checksum mismatch"):
        load_store("mnist", tmp_path / "other", "test", download=True, mirror=server.url, checksums=wrong)
    assert not (tmp_path / "other" / "t10k-images-idx3-ubyte.gz").exists() and leftovers(tmp_path / "other") == []
    with pytest.raises(ValueError, match="miniimagenet cannot be downloaded"):
        load_store("miniimagenet", tmp_path / "mini", "test", download=True)
    monkeypatch.delenv("METAHYPER_DATA")
    with pytest.raises(ValueError, match="pass root=.*or set METAHYPER_DATA"):
        load_store("mnist", None, "test")


def test_run_download_fetches_before_training(tmp_path, monkeypatch):
    """``metahyper pretrain SUITE --download --mirror URL`` on an empty root: the small Omniglot
    sets (no published md5: checked as zips) arrive, then the stage runs."""
    info = split_info("omniglot")
    folder = tmp_path / "mirror"
    folder.mkdir()
    omniglot_zip(folder / "images_background_small1.zip", {a: 5 for a in info["train"] + info["val"]}, per_char=4)
    omniglot_zip(folder / "images_background_small2.zip", {a: 5 for a in info["test"]}, per_char=4)
    root = tmp_path / "omniglot"
    overrides = [*TRAINING, "data.image_size=16", "targets.*.image_size=16",
                 "data.images_per_class=4", "targets.*.images_per_class=4", f"data.root={root}",
                 f"targets.*.root={root}"]
    with LocalServer(folder) as server:
        assert main(["pretrain", "--download", "--mirror", server.url, "--out", str(tmp_path / "out"),
                     "omniglot-cross-alphabet", "conv4-5way", *overrides]) == 0
    assert sorted(p.name for p in root.iterdir()) == ["images_background_small1.zip", "images_background_small2.zip"]
    assert (tmp_path / "out" / "runs" / "conv4-5way" / "pretrain" / "done.json").is_file()


def test_corrupt_archive_with_a_supplied_checksum_is_refused(tmp_path):
    """A tarball that matches the checksum it was given but cannot be extracted: exit-2 error,
    nothing placed."""
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "cifar-10-python.tar.gz").write_bytes(b"not a tarball")
    with LocalServer(folder) as server, pytest.raises(FetchError, match="cifar-10-python.tar.gz: cannot be extracted"):
        fetch("cifar10", tmp_path / "c", server.url, {"cifar-10-python.tar.gz": md5(folder / "cifar-10-python.tar.gz")},
              log=lambda _: None)
    assert leftovers(tmp_path / "c") == [] and list((tmp_path / "c").iterdir()) == []


LAKE_URL = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/one-shot-classification/all_runs.zip"


def test_lake_runs_fetch_verifies_the_structure_and_places_the_zip(tmp_path, capsys):
    """``all_runs.zip`` from torchvision's Omniglot URL prefix; no md5 is published, so the zip's
    CRCs and the reader's own structure check stand in; a rerun leaves it alone."""
    found = [(r.filename, r.md5, r.urls) for r in resources("omniglot_lake_runs")]
    assert found == [("all_runs.zip", None, (LAKE_URL,))]
    folder = tmp_path / "mirror"
    lake_runs().zip(folder / "all_runs.zip")
    root = tmp_path / "lake"
    with LocalServer(folder) as server:
        assert main(["data", "fetch", "omniglot_lake_runs", "--root", str(root), "--mirror", server.url]) == 0
        assert "omniglot_lake_runs: all_runs.zip fetched and verified" in capsys.readouterr().out
        fetch("omniglot_lake_runs", root, server.url, log=print)
        assert "all_runs.zip already present" in capsys.readouterr().out
        assert [p.rsplit("/", 1)[-1] for p in server.requests] == ["all_runs.zip"] * 2  # redirect check, GET
    assert sorted(p.name for p in root.iterdir()) == ["all_runs.zip"]
    assert load_store("omniglot_lake_runs", root, "test").num_classes == 400
    (tmp_path / "bare" / "run01").mkdir(parents=True)  # run folders already in the root: --download leaves it
    assert fetch_for_spec("omniglot_lake_runs", str(tmp_path / "bare"), {}) == []


def _crc_broken(path: Path) -> None:
    """One byte of run01's class_labels.txt changed inside the (stored, uncompressed) zip."""
    data = path.read_bytes()
    path.write_bytes(data.replace(b"item01.png run01/training", b"item01.png run01/trainin_", 1))


@pytest.mark.parametrize("damage, message", [
    ("truncated", "all_runs.zip: not a readable zip archive.*no md5 is published for it, actual md5"),
    ("crc", "all_runs.zip: member all_runs/run01/class_labels.txt fails its CRC; actual md5"),
    ("structure", "all_runs.zip: .*run04/class_labels.txt line 2: expected 2 fields .*; actual md5"),
])
def test_a_broken_lake_archive_is_refused_and_nothing_placed(tmp_path, damage, message):
    runs = lake_runs()
    if damage == "structure":
        lines = runs.labels_text(3).splitlines(True)
        runs.files["run04/class_labels.txt"] = "".join([lines[0], "run04/test/item02.png\n", *lines[2:]]).encode()
    folder = tmp_path / "mirror"
    path = runs.zip(folder / "all_runs.zip")
    if damage == "crc":
        _crc_broken(path)
    root = tmp_path / "lake"
    with LocalServer(folder) as server:
        if damage == "truncated":
            server.truncated.add("all_runs.zip")
        with pytest.raises(FetchError, match=message):
            fetch("omniglot_lake_runs", root, server.url, log=lambda _: None)
    assert list(root.iterdir()) == []  # no all_runs.zip, no hidden .fetch-* folder
