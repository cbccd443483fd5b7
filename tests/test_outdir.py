"""Output folders: one process per suite folder (real processes), stale locks, writability."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_suites import SMOKE

from metahyper.config import ConfigError
from metahyper.outdir import LOCK_NAME, FolderLock, check_writable

HOLD = """import sys
from metahyper.outdir import FolderLock
with FolderLock(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()
"""


def _holder(folder: Path) -> subprocess.Popen:
    """Another process holding ``folder``'s lock until its stdin closes (or it is killed)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_process_on_the_same_out_is_refused_naming_folder_and_pid(tmp_path):
    out = tmp_path / "out"
    holder = _holder(out)
    try:
        result = subprocess.run([sys.executable, "-m", "metahyper.cli", "run", "smoke", "--out", str(out), *SMOKE],
                                capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    finally:
        holder.communicate("", timeout=60)
    assert result.returncode == 2, result.stderr
    assert f"suite folder {out} is in use by another metahyper process (pid {holder.pid})" in result.stderr
    assert sorted(os.listdir(out)) == [LOCK_NAME]  # the refused process wrote nothing


def test_the_lock_of_a_killed_process_does_not_block(tmp_path):
    holder = _holder(tmp_path)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=60)
    assert (tmp_path / LOCK_NAME).read_text().strip() == str(holder.pid)  # the stale file is still there
    with FolderLock(tmp_path):
        assert (tmp_path / LOCK_NAME).read_text().strip() == str(os.getpid())


def test_a_file_in_the_path_is_named(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match=rf"out {tmp_path / 'file' / 'sub'} is under {tmp_path / 'file'}, which "
                                          "is a file, not a folder"):
        check_writable(tmp_path / "file" / "sub", "out")
    with pytest.raises(ConfigError, match=rf"out {tmp_path / 'file'} is a file"):
        check_writable(tmp_path / "file", "out")
    check_writable(tmp_path / "new" / "deeper", "out")
    assert not (tmp_path / "new").exists() and sorted(os.listdir(tmp_path)) == ["file"]


def test_proc_is_not_writable_even_for_root():
    with pytest.raises(ConfigError, match=r"out /proc/metahyper-out is not writable \(it would be created in /proc\)"):
        check_writable("/proc/metahyper-out", "out")
