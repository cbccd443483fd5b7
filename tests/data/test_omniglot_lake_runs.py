"""Lake's one-shot runs (``omniglot_lake_runs``) on runs generated in the published layout: the
store and the fixed episodes against the generator's own tables (class_labels.txt's lines), the
demo's binarisation, every structural error naming its file and line, and the real Omniglot
PNGs decoded exactly as the Omniglot reader decodes them."""

from __future__ import annotations

import dataclasses
import io
import zipfile

import numpy as np
import pytest
import torch
from cli_run import run_cli
from PIL import Image

from metahyper.data import DataFormatError, load_store
from metahyper.data.episodes import FIXED_EPISODES
from metahyper.data.omniglot_lake_runs import lake_run_episodes
from metahyper.eval.evaluate import evaluate

from .archives import lake_runs, png_bytes


@pytest.fixture(scope="module")
def runs():
    return lake_runs(shuffle_lines=True)


def _store(root, **options):
    return load_store("omniglot_lake_runs", root, "test", **options)


def test_folder_zip_and_bare_runs_read_the_same_store(runs, tmp_path):
    runs.write(tmp_path / "folder" / "all_runs")
    runs.write(tmp_path / "bare")  # run01/ .. run20/ directly in the root
    runs.zip(tmp_path / "zip" / "all_runs.zip")
    runs.zip(tmp_path / "flatzip" / "all_runs.zip", prefix="")
    junk = {"run01/training/._class01.png": b"", "run02/.DS_Store": b""}  # macOS extras
    path = dataclasses.replace(runs, files={**runs.files, **junk}).zip(tmp_path / "junk" / "all_runs.zip")
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("__MACOSX/all_runs/run01/class_labels.txt", b"\x00\x05")
    stores = [_store(tmp_path / name, image_size=105) for name in ("folder", "bare", "zip", "flatzip", "junk")]
    first = stores[0]
    assert first.class_names == [f"run{r:02d}/class{k:02d}" for r in range(1, 21) for k in range(1, 21)]
    assert first.images.shape == (800, 1, 105, 105)
    for r in range(20):
        rows = slice(40 * r, 40 * r + 40)
        expected = [20 * r + k for k in range(20)] + [20 * r + k for k in runs.answers[r]]
        assert first.labels[rows].tolist() == expected
        for k in range(20):  # the training images, pixel for pixel
            assert np.array_equal(first.images[40 * r + k, 0].numpy(), runs.pixels[r][k])
    for other in stores[1:]:
        assert torch.equal(other.images, first.images) and torch.equal(other.labels, first.labels)


def test_episodes_follow_class_labels_lines(runs, tmp_path):
    store = _store(runs.write(tmp_path), image_size=105)
    episodes = FIXED_EPISODES.get("omniglot_lake_runs")(store)
    assert FIXED_EPISODES.get("omniglot_lake_runs").metric == "error_rate"
    assert (len(episodes), episodes.way, episodes.shot, episodes.query) == (20, 20, 1, 1)
    batch = next(episodes.batches(store, 20))
    for r in range(20):
        assert batch.support_y[r].tolist() == list(range(20))
        assert batch.query_y[r].tolist() == runs.answers[r]  # line order, the lines' answers
        for k in range(20):
            assert np.array_equal(batch.support_x[r, k, 0].numpy(), runs.pixels[r][k])
        for m, (item, k) in enumerate(zip(runs.items[r], runs.answers[r])):
            name = f"run{r + 1:02d}/test/item{item + 1:02d}.png"
            with Image.open(io.BytesIO(runs.files[name])) as image:
                assert np.array_equal(batch.query_x[r, m, 0].numpy(), np.asarray(image.convert("L")))
    assert lake_run_episodes(store).hash == episodes.hash
    with pytest.raises(ValueError, match="not an omniglot_lake_runs store"):
        lake_run_episodes(store.subset(store.class_names[:40]))


def test_a_pixel_nearest_neighbour_scores_the_designed_accuracies(tmp_path):
    correct = [20 - r % 7 for r in range(20)]
    store = _store(lake_runs(correct, seed=1).write(tmp_path))
    episodes = lake_run_episodes(store)

    def nearest(support_x, support_y, query_x):
        return -torch.cdist(query_x.flatten(1), support_x.flatten(1))[:, support_y.argsort()]

    result = evaluate(nearest, episodes, store, lambda x, _: x.float(), metadata={"bn_mode": "inductive"})
    assert result.per_episode == tuple(c / 20 for c in correct)


def test_binarised_as_the_demo_reads_them(runs, tmp_path):
    """Ink exactly where the greyscale float value is 0: grey, and RGB (1, 0, 0), are paper."""
    runs.write(tmp_path)
    grey = np.full((105, 105), 255, np.uint8)
    grey[0, :4] = [0, 1, 128, 254]
    Image.fromarray(grey, "L").save(tmp_path / "run01/training/class01.png")
    rgb = np.full((105, 105, 3), 255, np.uint8)
    rgb[0, 0], rgb[0, 1] = (0, 0, 0), (1, 0, 0)
    Image.fromarray(rgb, "RGB").save(tmp_path / "run01/training/class02.png")
    store = _store(tmp_path, image_size=105)
    assert store.images[0, 0, 0, :5].tolist() == [0, 255, 255, 255, 255]
    assert store.images[1, 0, 0, :3].tolist() == [0, 255, 255]
    assert set(torch.unique(store.images[:2]).tolist()) == {0, 255}


RUNS = lake_runs()  # unshuffled: line m of every run lists item m+1
LABELS = "run03/class_labels.txt"


def _line(m: int, text: str) -> dict[str, bytes]:
    """Run 3's class_labels.txt with line m (0-based) replaced by ``text`` (None: removed)."""
    lines = RUNS.labels_text(2).splitlines(True)
    lines[m] = "" if text is None else text + "\n"
    return {LABELS: "".join(lines).encode()}


def _drop_class(files: dict[str, bytes]) -> None:
    """Run 3 without class20, the test image answering it and that line: 19 classes, all consistent."""
    m = RUNS.answers[2].index(19)
    del files["run03/training/class20.png"], files[f"run03/test/item{m + 1:02d}.png"]
    files.update(_line(m, None))


ANSWER_1, ANSWER_2 = (f"run03/training/class{RUNS.answers[2][m] + 1:02d}.png" for m in (0, 1))
BROKEN = {
    "missing run": (lambda f: [f.pop(n) for n in list(f) if n.startswith("run07/")], "run run07 is missing"),
    "missing labels": (lambda f: f.pop("run05/class_labels.txt"), "run05/class_labels.txt is missing"),
    "missing image": (lambda f: f.pop("run03/training/class04.png"),
                      r"run03/class_labels.txt line \d+: run03/training/class04.png does not exist"),
    "field count": (lambda f: f.update(_line(2, "run03/test/item03.png")),
                    "run03/class_labels.txt line 3: expected 2 fields .*, got 1"),
    "outside its run": (lambda f: f.update(_line(1, "run03/test/item02.png run04/training/class01.png")),
                        r"run03/class_labels.txt line 2: 'run04/training/class01.png' is not a run03/training/\*.png"),
    "wrong folder": (lambda f: f.update(_line(0, "run03/training/class01.png run03/training/class01.png")),
                     r"line 1: 'run03/training/class01.png' is not a run03/test/\*.png path"),
    "escapes": (lambda f: f.update(_line(0, "run03/test/../../run04/test/item01.png run03/training/class01.png")),
                "line 1: 'run03/test/../../run04/test/item01.png' is not a run03/test"),
    "listed twice": (lambda f: f.update(_line(4, "run03/test/item04.png run03/training/class01.png")),
                     r"run03/class_labels.txt line 5: run03/test/item04.png is listed twice \(first on line 4\)"),
    "not listed": (lambda f: f.update(_line(19, None)),
                   "run03/class_labels.txt: test image.* run03/test/item20.png not listed"),
    "class unused": (lambda f: f.update(_line(0, f"run03/test/item01.png {ANSWER_2}")),
                     f"run03/class_labels.txt: training image.* {ANSWER_1} answer no line"),
    "count": (_drop_class, "run03/training/ holds 19 .png images, expected 20"),
    "extra run": (lambda f: f.update({"run21/class_labels.txt": b""}), "unexpected run folder.* run21"),
    "image size": (lambda f: f.update({"run09/test/item02.png": png_bytes(np.zeros((104, 105), np.uint8))}),
                   "run09/test/item02.png: image is 105x104, expected 105x105"),
    "not a png": (lambda f: f.update({"run09/test/item02.png": b"not an image"}),
                  "run09/test/item02.png.*damaged or not in the expected format"),
    "binary labels": (lambda f: f.update({LABELS: b"\xff\xfe\x00"}), "run03/class_labels.txt: not a text file"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_structural_errors_name_file_and_line(case, tmp_path):
    edit, message = BROKEN[case]
    broken = dataclasses.replace(RUNS, files=dict(RUNS.files))
    edit(broken.files)
    broken.write(tmp_path / "folder" / "all_runs")
    broken.zip(tmp_path / "zip" / "all_runs.zip")
    with pytest.raises(DataFormatError, match=message) as error:
        _store(tmp_path / "folder")
    assert str(tmp_path / "folder" / "all_runs") in str(error.value)
    with pytest.raises(DataFormatError, match=message) as error:
        _store(tmp_path / "zip")
    assert str(tmp_path / "zip" / "all_runs.zip") in str(error.value)


def test_nothing_there_a_damaged_zip_and_other_splits(tmp_path):
    with pytest.raises(DataFormatError, match=r"no Lake one-shot runs in .*metahyper data fetch omniglot_lake_runs"):
        _store(tmp_path)
    (tmp_path / "all_runs.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataFormatError, match="all_runs.zip: damaged or not in the expected format"):
        _store(tmp_path)
    with zipfile.ZipFile(tmp_path / "all_runs.zip", "w") as archive:
        archive.writestr("a/run01/class_labels.txt", "")
        archive.writestr("b/run02/class_labels.txt", "")
    with pytest.raises(DataFormatError, match=r"run folders under several folders \['a/', 'b/'\]"):
        _store(tmp_path)
    with pytest.raises(ValueError, match="omniglot_lake_runs has only a 'test' split"):
        load_store("omniglot_lake_runs", tmp_path, "train")


def test_cli_summary_and_exit_2_naming_the_line(runs, tmp_path, capsys):
    runs.write(tmp_path / "all_runs")
    status, out, _ = run_cli(capsys, "data", "omniglot_lake_runs", "--root", str(tmp_path))
    assert status == 0 and "images: 800 x (1, 28, 28)" in out and "classes: 400 (run01/class01" in out
    assert "fixed evaluation episodes: 20 (20-way 1-shot, 20 queries each)" in out
    (tmp_path / "all_runs/run02/class_labels.txt").write_text("run02/test/item01.png\n")
    status, _, err = run_cli(capsys, "data", "omniglot_lake_runs", "--root", str(tmp_path))
    assert status == 2 and "run02/class_labels.txt line 1: expected 2 fields" in err


@pytest.mark.realdata
def test_real_omniglot_pngs_decode_as_the_omniglot_reader_decodes_them(omniglot_dir, tmp_path):
    """Runs made of real Omniglot PNGs (class k of run r: drawer 1 of a character, its test
    image: drawer 2): the same pixels as ``omniglot``'s reader gives for those files."""
    with zipfile.ZipFile(omniglot_dir / "images_background_small1.zip") as archive:
        pngs = sorted(n for n in archive.namelist() if n.endswith(".png"))
        by_char = {}
        for name in pngs:
            by_char.setdefault(name.rsplit("/", 1)[0], []).append(name)
        chars = sorted(by_char)
        files = {}
        for r in range(20):
            run, lines = f"run{r + 1:02d}", []
            for k in range(20):
                drawings = sorted(by_char[chars[(20 * r + k) % len(chars)]])
                files[f"{run}/training/class{k + 1:02d}.png"] = archive.read(drawings[0])
                files[f"{run}/test/item{k + 1:02d}.png"] = archive.read(drawings[1])
                lines.append(f"{run}/test/item{k + 1:02d}.png {run}/training/class{k + 1:02d}.png\n")
            files[f"{run}/class_labels.txt"] = "".join(lines).encode()
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    store = _store(tmp_path)
    alphabets = sorted({c.split("/")[1] for c in chars})
    reference = load_store("omniglot", omniglot_dir, "train", alphabets=alphabets, image_size=28)
    index = {name: k for k, name in enumerate(reference.class_names)}
    for r in range(20):
        for k in range(20):
            char = chars[(20 * r + k) % len(chars)].split("/", 1)[1]
            rows = (reference.labels == index[char]).nonzero().flatten()
            assert torch.equal(store.images[40 * r + k], reference.images[rows[0]])  # drawer 1
            assert torch.equal(store.images[40 * r + 20 + k], reference.images[rows[1]])  # drawer 2
