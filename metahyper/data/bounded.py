"""Limits before memory: what a data file or setting may make the package allocate, checked first.

A small compressed file can inflate to gigabytes (a zip member or a gzip stream that declares or
holds far more than its kind of data needs), and a data setting can ask for a store larger than
the machine. Each reader checks the size a file must have before it reads it, and reads it as a
stream that stops one byte past that size:

* ``read_member(archive, name, where, cap)``: a zip member whose declared size exceeds ``cap`` is
  refused unread; ``zipfile`` stops at the declared size (and a member that inflates past it
  fails its CRC), so at most ``cap`` bytes are held;
* ``read_bounded(stream, size)``: at most ``size + 1`` bytes, so that a reader that knows a
  file's size from its header (MNIST: count x rows x columns) tells a short or long stream
  without reading a longer one whole;
* ``open_image(source, where)``: a PIL image whose header's width x height exceeds
  ``MAX_PIXELS`` is refused before its pixels are decoded;
* ``check_store_memory(images, channels, size, where)``: a store of that many images, decoded
  or generated, must fit in this machine's memory (``memory_bytes``), checked before it is
  allocated (a suite's ``data`` settings, ``metahyper.suite.specs.DataSpec``, and every resize).

Every refusal is a ``DataFormatError`` (or, for settings, a ``ValueError``) naming the file or
setting and the limit.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import BinaryIO

from PIL import Image

from metahyper.errors import DataFormatError

MAX_IMAGE_FILE_BYTES = 64 << 20  # one image file (Omniglot's are ~1 KB, MiniImageNet's JPEGs ~30 KB)
MAX_TEXT_FILE_BYTES = 1 << 20  # a label list (Lake's class_labels.txt: ~1 KB)
MAX_PIXELS = 4096 * 4096  # one image's width x height (the data sets here: at most 500 x 500)
MAX_IMAGE_SIZE = 1024  # the side an image may be resized to (``image_size``)


def read_member(archive: zipfile.ZipFile, name: str, where: str, cap: int = MAX_IMAGE_FILE_BYTES) -> bytes:
    """The bytes of member ``name`` (module docstring); ``where`` names the archive in errors."""
    declared = archive.getinfo(name).file_size
    if declared > cap:
        raise DataFormatError(f"{where}, member {name}: declares {declared} bytes uncompressed, more than the {cap} "
                              "such a file may have (a decompression bomb, or not the file it should be)")
    with archive.open(name) as member:
        data = read_bounded(member, declared)
    if len(data) != declared:
        raise DataFormatError(f"{where}, member {name}: {len(data)} bytes, not the {declared} it declares (damaged)")
    return data


def read_bounded(stream: BinaryIO, size: int) -> bytes:
    """The first ``size + 1`` bytes of ``stream`` (fewer when it ends sooner): one byte more than
    expected tells a stream longer than ``size`` without reading it whole."""
    return stream.read(size + 1)


def open_image(source: bytes | str | os.PathLike, where: str, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """A PIL image (not yet decoded) whose header's size is within ``max_pixels``; close it
    (``with``). PIL reads only the header here, so a huge declared image costs nothing."""
    image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else Path(source))
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise DataFormatError(f"{where}: image of {width}x{height} pixels, more than the {max_pixels} an image may "
                              "have here (a decompression bomb, or not an image of this data set)")
    return image


def memory_bytes() -> int:
    """This machine's physical memory in bytes (64 GiB where it cannot be asked)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 64 << 30


def check_store_memory(images: int, channels: int, size: int, where: str) -> None:
    """``ValueError`` naming ``where`` when ``images`` uint8 images of ``channels`` x ``size`` x
    ``size`` would not fit in this machine's memory."""
    needed = images * channels * size * size
    available = memory_bytes()
    if needed > available:
        raise ValueError(f"{where}: {images} images x {channels} channels x {size}x{size} pixels need "
                         f"{needed / 2**30:.1f} GiB, more than this machine's {available / 2**30:.1f} GiB of memory")


def check_image_size(size: int | None, where: str) -> None:
    """``ValueError`` naming ``where`` unless ``size`` is None or 1 .. ``MAX_IMAGE_SIZE``."""
    if size is not None and not 1 <= size <= MAX_IMAGE_SIZE:
        raise ValueError(f"{where} must lie in 1..{MAX_IMAGE_SIZE}, got {size}")
