"""Generated data files in the real published layouts (Omniglot zips, CIFAR tarballs, MNIST
IDX), and a local HTTP server that serves them: the fetch tests never touch the internet."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import threading
import zipfile
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
