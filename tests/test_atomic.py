"""Tests for metahyper.atomic: a failed write leaves the previous file intact."""

import os

import pytest

from metahyper.atomic import atomic_write, write_text_atomic


def test_failure_mid_write_keeps_previous_file(tmp_path):
    path = tmp_path / "report.md"
    write_text_atomic(path, "old content\n")
    with pytest.raises(RuntimeError, match="disk on fire"):
        with atomic_write(path) as handle:
            handle.write("half of the new")
            raise RuntimeError("disk on fire")
    assert path.read_text() == "old content\n"
    assert os.listdir(tmp_path) == ["report.md"]


def test_binary_write_creates_parents_with_umask_mode(tmp_path):
    path = tmp_path / "a" / "b" / "plot.png"
    with atomic_write(path, "wb") as handle:
        handle.write(b"\x89PNG")
    assert path.read_bytes() == b"\x89PNG"
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_rejects_other_modes(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        with atomic_write(tmp_path / "x", "a"):
            pass
