"""Generated data files in the real published layouts (Omniglot zips, CIFAR tarballs, MNIST
IDX), and a local HTTP server that serves them: the fetch tests never touch the internet."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import threading
import zipfile
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from PIL import Image

from metahyper.data.splits import split_info

from .helpers import cifar_rows, dump


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels > 0).save(buffer, format="PNG")  # mode '1' like the originals
    return buffer.getvalue()


def omniglot_zip(path: Path, alphabets: dict[str, int], per_char: int = 2) -> Path:
    """``<stem>.zip`` holding ``<stem>/<alphabet>/characterNN/*.png``; image j of character c
    has a black (c+1) x (j+1) block in its top-left corner."""
    with zipfile.ZipFile(path, "w") as archive:
        for alphabet, n_chars in alphabets.items():
            for c in range(n_chars):
                for j in range(per_char):
                    pixels = np.full((105, 105), 255, np.uint8)
                    pixels[: c + 1, : j + 1] = 0
                    archive.writestr(f"{path.stem}/{alphabet}/character{c + 1:02d}/{c:04d}_{j + 1:02d}.png",
                                     png_bytes(pixels))
    return path


@dataclass
class LakeRuns:
    """Generated Lake runs (``lake_runs``): ``files`` {path under the runs' folder: bytes},
    ``pixels[r][k]`` the binary 105x105 image of run r's class k (0 ink, 255 paper),
    ``answers[r][m]`` the class index (0-based) that line m of run r's class_labels.txt names
    for its test image, and ``items[r][m]`` that line's test image index (0-based)."""

    files: dict[str, bytes]
    pixels: list[list[np.ndarray]]
    answers: list[list[int]]
    items: list[list[int]]

    def labels_text(self, r: int) -> str:
        run = f"run{r + 1:02d}"
        return "".join(f"{run}/test/item{m + 1:02d}.png {run}/training/class{k + 1:02d}.png\n"
                       for m, k in zip(self.items[r], self.answers[r]))

    def write(self, folder: Path) -> Path:
        """The files under ``folder`` (``folder/run01/...``); returns ``folder``."""
        for name, data in self.files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
        return folder

    def zip(self, path: Path, prefix: str = "all_runs/") -> Path:
        """``path`` holding the files under ``prefix`` (with its folder entries, as zip tools write them)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path, "w") as archive:
            for folder in sorted({str(Path(prefix, n).parent) + "/" for n in self.files} | ({prefix} - {""})):
                archive.writestr(folder, b"")
            for name, data in self.files.items():
                archive.writestr(prefix + name, data)
        return path


def lake_runs(correct: list[int] | None = None, seed: int = 0, shuffle_lines: bool = False) -> LakeRuns:
    """Lake's 20 one-shot runs in the published layout, from random binary 105x105 images.

    Every class of every run is a distinct image (~10% ink). Test image m of run r answers class
    ``perm_r[m]``; the first ``correct[r]`` (default all 20) test images of a run are copies of
    their class's training image and the others copies of the next class's (so a pixel nearest
    neighbour is right on exactly ``correct[r]`` of 20). ``shuffle_lines`` lists the lines in a
    random order instead of item order."""
    correct = [20] * 20 if correct is None else correct
    rng = np.random.default_rng(seed)
    files, pixels, answers, items = {}, [], [], []
    for r in range(20):
        run = f"run{r + 1:02d}"
        classes = [np.where(rng.random((105, 105)) < 0.1, 0, 255).astype(np.uint8) for _ in range(20)]
        perm = [int(k) for k in rng.permutation(20)]
        order = [int(m) for m in (rng.permutation(20) if shuffle_lines else range(20))]
        for k, image in enumerate(classes):
            files[f"{run}/training/class{k + 1:02d}.png"] = png_bytes(image)
        for m, k in enumerate(perm):
            shown = classes[k] if m < correct[r] else classes[(k + 1) % 20]
            files[f"{run}/test/item{m + 1:02d}.png"] = png_bytes(shown)
        pixels.append(classes)
        answers.append([perm[m] for m in order])
        items.append(order)
    runs = LakeRuns(files, pixels, answers, items)
    for r in range(20):
        runs.files[f"run{r + 1:02d}/class_labels.txt"] = runs.labels_text(r).encode()
    return runs


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    """An IDX file: big-endian magic, one int32 per dimension, then the uint8 data."""
    header = np.array([magic, *array.shape], dtype=">i4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def mnist_files(folder: Path, counts: dict[str, int], seed: int = 0) -> dict[str, np.ndarray]:
    """``{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz`` with ``counts[part]`` digits
    (labels cycling 0..9). Returns {part: images}."""
    rng = np.random.default_rng(seed)
    written = {}
    for part, n in counts.items():
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = np.arange(n) % 10
        (folder / f"{part}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images, 2051)))
        (folder / f"{part}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels, 2049)))
        written[part] = images
    return written


def _tar(folder: Path, inner: str, path: Path) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        archive.add(folder / inner, arcname=inner)
    return path


def cifar10_tarball(folder: Path, per_batch: int = 10) -> Path:
    """``cifar-10-python.tar.gz`` with ``cifar-10-batches-py/`` (five train batches, the test
    batch, ``batches.meta``), ``per_batch`` random images per batch."""
    rng = np.random.default_rng(4)
    inner = folder / "staging" / "cifar-10-batches-py"
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        hwc = rng.integers(0, 256, (per_batch, 32, 32, 3), dtype=np.uint8)
        dump(inner / name, {"data": cifar_rows(hwc), "labels": (np.arange(per_batch) % 10).tolist()}, protocol=2)
    dump(inner / "batches.meta", {"label_names": [f"class{k}" for k in range(10)]}, protocol=2)
    return _tar(folder / "staging", "cifar-10-batches-py", folder / "cifar-10-python.tar.gz")


def cifar100_tarball(folder: Path) -> Path:
    """``cifar-100-python.tar.gz`` with ``cifar-100-python/{train,test,meta}``: 2 train and 1
    test image per fine class, coarse labels from the real mapping."""
    info = split_info("fc100")
    rng = np.random.default_rng(5)
    inner = folder / "staging" / "cifar-100-python"
    for name, copies in (("train", 2), ("test", 1)):
        fine = np.tile(np.arange(100), copies)
        coarse = np.asarray(info["cifar100_fine_to_coarse"])[fine]
        hwc = rng.integers(0, 256, (len(fine), 32, 32, 3), dtype=np.uint8)
        dump(inner / name, {"data": cifar_rows(hwc), "fine_labels": fine.tolist(),
                            "coarse_labels": coarse.tolist()}, protocol=2)
    dump(inner / "meta", {"fine_label_names": info["cifar100_fine_names"],
                          "coarse_label_names": info["cifar100_coarse_names"]}, protocol=2)
    return _tar(folder / "staging", "cifar-100-python", folder / "cifar-100-python.tar.gz")


class _Handler(SimpleHTTPRequestHandler):
    """Serves a folder; names in ``server.truncated`` are cut to half after a full
    Content-Length header (a dropped connection); every request path is recorded."""

    def do_GET(self):
        self.server.requests.append(self.path)
        name = self.path.rsplit("/", 1)[-1]
        if name not in self.server.truncated:
            return super().do_GET()
        data = Path(self.translate_path(self.path)).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.close_connection = True

    def log_message(self, *args):
        pass


class LocalServer:
    """A threaded HTTP server on 127.0.0.1 (a free port) serving ``folder`` at
    ``url`` = ``http://127.0.0.1:<port>/<folder name>`` (the mirror); a context manager."""

    def __init__(self, folder: Path):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(folder.parent)))
        self.httpd.requests, self.httpd.truncated = [], set()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/{folder.name}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def requests(self) -> list[str]:
        return self.httpd.requests

    @property
    def truncated(self) -> set[str]:
        return self.httpd.truncated

    def __enter__(self) -> "LocalServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
