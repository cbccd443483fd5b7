"""Character-level corpora in their distributed formats, as streams of symbol ids.

* ``ptb_char``: Mikolov's Penn Treebank character files ``ptb.char.{train,valid,test}.txt``
  in ``root``: one sentence per line, characters separated by single spaces, ``_`` between
  words. A line is its characters followed by an end-of-line symbol ``"\\n"`` (the usual
  reading, as for the word-level files' ``<eos>``). The vocabulary is closed: a symbol in valid
  or test that training never had is an error naming the file and line.
* ``enwik8``: the first 10^8 bytes of the English Wikipedia dump (Hutter prize), the file
  ``enwik8`` (or ``enwik8.zip`` holding it) in ``root``; symbols are bytes, split 90M/5M/5M in
  file order (``split_bytes`` for other files).
* ``text``: any UTF-8 file ``root/file``; symbols are Unicode characters, split by the
  fractions ``split`` (train, valid, test) in file order.

For ``enwik8`` and ``text`` the vocabulary is the sorted symbols of the training part plus one
``UNKNOWN`` id (always present, last), which valid/test symbols unseen in training map to.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

UNKNOWN = "<unk>"
EOL = "\n"
SPLITS = ("train", "valid", "test")
ENWIK8_SPLIT = (90_000_000, 5_000_000, 5_000_000)


@dataclass(frozen=True)
class Corpus:
    """Symbol-id streams of the three splits (1-D int64) and the vocabulary (id -> symbol)."""

    name: str
    vocab: tuple[str, ...]
    train: Tensor
    valid: Tensor
    test: Tensor

    def split(self, name: str) -> Tensor:
        """The stream of split ``name`` (train, valid or test)."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; splits: {', '.join(SPLITS)}")
        return getattr(self, name)

    def decode(self, ids: list[int] | Tensor) -> str:
        """Symbols of ``ids`` joined into text, one character per id (bytes as latin-1
        characters, UNKNOWN as U+FFFD)."""
        return "".join("\ufffd" if self.vocab[int(i)] == UNKNOWN else self.vocab[int(i)] for i in ids)

    def summary(self) -> str:
        """One line: name, vocabulary size and split lengths."""
        sizes = ", ".join(f"{s} {len(self.split(s)):,}" for s in SPLITS)
        return f"{self.name}: vocabulary {len(self.vocab)}, {sizes} symbols"


def _encode(symbols: list[str], index: dict[str, int], unknown: int | None, where: str) -> Tensor:
    ids = [index.get(s, unknown) for s in symbols]
    if unknown is None and None in ids:
        raise ValueError(f"{where}: symbol {symbols[ids.index(None)]!r} does not occur in the training split")
    return torch.tensor(ids, dtype=torch.long)


def _with_unknown(name: str, parts: list[list[str]], where: list[str]) -> Corpus:
    """Vocabulary = sorted training symbols + UNKNOWN; unseen valid/test symbols -> UNKNOWN."""
    vocab = tuple(sorted(set(parts[0]))) + (UNKNOWN,)
    index = {s: i for i, s in enumerate(vocab[:-1])}
    streams = [_encode(p, index, len(vocab) - 1, w) for p, w in zip(parts, where)]
    return Corpus(name, vocab, *streams)


def _ptb_lines(path: Path) -> list[list[str]]:
    """Each line's space-separated symbols plus EOL; a symbol of several characters is an error."""
    lines = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        symbols = line.split()
        long = [s for s in symbols if len(s) != 1]
        if long:
            raise ValueError(f"{path}:{number}: {long[0]!r} is not one character; PTB character files "
                             "separate single characters by spaces")
        lines.append(symbols + [EOL])
    return lines


def read_ptb_char(root: str | os.PathLike) -> Corpus:
    """Mikolov's ``ptb.char.{train,valid,test}.txt`` in ``root`` (module docstring)."""
    paths = [Path(root) / f"ptb.char.{s}.txt" for s in SPLITS]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"PTB character file {missing[0]} does not exist")
    lines = [_ptb_lines(p) for p in paths]
    vocab = tuple(sorted({s for line in lines[0] for s in line}))
    index = {s: i for i, s in enumerate(vocab)}
    streams = []
    for path, split_lines in zip(paths, lines):
        encoded = [_encode(line, index, None, f"{path}:{n}") for n, line in enumerate(split_lines, 1)]
        streams.append(torch.cat(encoded) if encoded else torch.zeros(0, dtype=torch.long))
    return Corpus("ptb_char", vocab, *streams)


def _enwik8_bytes(root: Path) -> tuple[bytes, Path]:
    plain, archive = root / "enwik8", root / "enwik8.zip"
    if plain.is_file():
        return plain.read_bytes(), plain
    if archive.is_file():
        with zipfile.ZipFile(archive) as handle:
            if "enwik8" not in handle.namelist():
                raise ValueError(f"{archive} holds no member 'enwik8' (it has {handle.namelist()[:5]})")
            return handle.read("enwik8"), archive
    raise FileNotFoundError(f"neither {plain} nor {archive} exists")


def read_enwik8(root: str | os.PathLike, split_bytes: tuple[int, int, int] = ENWIK8_SPLIT) -> Corpus:
    """The ``enwik8`` bytes in ``root`` split ``split_bytes`` = (train, valid, test) lengths in order."""
    data, path = _enwik8_bytes(Path(root))
    if len(split_bytes) != 3 or min(split_bytes) < 1 or sum(split_bytes) != len(data):
        raise ValueError(f"{path} has {len(data):,} bytes; split_bytes {tuple(split_bytes)} must be three "
                         "positive lengths adding up to that")
    array = np.frombuffer(data, dtype=np.uint8)
    train_end, valid_end = split_bytes[0], split_bytes[0] + split_bytes[1]
    seen = np.unique(array[:train_end])
    lookup = np.full(256, len(seen), dtype=np.int64)  # unseen bytes -> UNKNOWN (the last id)
    lookup[seen] = np.arange(len(seen))
    ids = torch.from_numpy(lookup[array])
    vocab = tuple(chr(b) for b in seen) + (UNKNOWN,)  # byte b as the latin-1 character chr(b)
    return Corpus("enwik8", vocab, ids[:train_end], ids[train_end:valid_end], ids[valid_end:])


def read_text(root: str | os.PathLike, file: str, split: tuple[float, float, float] = (0.9, 0.05, 0.05)) -> Corpus:
    """The UTF-8 file ``root/file`` split by the fractions ``split`` (train, valid, test) in order."""
    path = Path(root) / file
    if not path.is_file():
        raise FileNotFoundError(f"text file {path} does not exist")
    if len(split) != 3 or min(split) <= 0 or abs(sum(split) - 1.0) > 1e-9:
        raise ValueError(f"split {tuple(split)} must be three positive fractions adding up to 1")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 text: {error}") from None
    n = len(text)
    bounds = [0, round(split[0] * n), round((split[0] + split[1]) * n), n]
    if any(b <= a for a, b in zip(bounds, bounds[1:])):
        raise ValueError(f"{path}: {n} characters are too few for the split {tuple(split)}")
    parts = [list(text[a:b]) for a, b in zip(bounds, bounds[1:])]
    return _with_unknown(path.stem, parts, [f"{path} ({s})" for s in SPLITS])


READERS = {"ptb_char": read_ptb_char, "enwik8": read_enwik8, "text": read_text}


def load_corpus(format: str, root: str | os.PathLike, **options) -> Corpus:
    """Read a corpus by format name (``ptb_char``, ``enwik8``, ``text``) with its options."""
    if format not in READERS:
        raise ValueError(f"unknown text format {format!r}; known: {', '.join(READERS)}")
    return READERS[format](root, **options)
