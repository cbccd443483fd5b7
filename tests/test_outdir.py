"""Output folders: one process per run stage (real processes), who holds a lock, stale locks,
waiting for the shared files, writability."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from holders import hold
from tiny_suites import SMOKE

from metahyper.config import ConfigError
from metahyper.outdir import LOCK_NAME, FolderLock, check_writable, describe_holder, lock_holder

def test_a_second_process_on_a_held_stage_is_refused_naming_folder_and_pid(tmp_path):
    out = tmp_path / "out"
    stage = out / "runs" / "wrn10_1" / "pretrain"
    holder = hold(stage)
    try:
        result = subprocess.run([sys.executable, "-m", "metahyper.cli", "run", "smoke", "--out", str(out), *SMOKE],
                                capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    finally:
        holder.communicate("", timeout=60)
    assert result.returncode == 2, result.stderr
    assert f"stage folder {stage} is in use by another metahyper process (pid {holder.pid})" in result.stderr
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == [f"runs/wrn10_1/pretrain/{LOCK_NAME}"]  # the refused process wrote nothing


def test_the_lock_of_a_killed_process_does_not_block(tmp_path):
    holder = hold(tmp_path)
    assert lock_holder(tmp_path)["pid"] == holder.pid
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=60)
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == holder.pid  # the stale file is still there
    assert lock_holder(tmp_path) is None
    with FolderLock(tmp_path, info={"from": 7}):
        written = json.loads((tmp_path / LOCK_NAME).read_text())
        assert written["pid"] == os.getpid() and written["from"] == 7 and written["host"] == socket.gethostname()
        assert lock_holder(tmp_path)["pid"] == os.getpid()  # another descriptor of this process is another holder
    assert lock_holder(tmp_path) is None


def test_a_probe_creates_nothing_and_holders_are_described(tmp_path):
    assert lock_holder(tmp_path / "absent") is None and not (tmp_path / "absent").exists()
    assert describe_holder({"pid": 5, "host": socket.gethostname(), "job": None}) == "pid 5"
    assert describe_holder({"pid": 5, "host": "node7", "job": "81_2"}) == "pid 5 on node7, SLURM job 81_2"
    (tmp_path / LOCK_NAME).write_text("1234\n")  # what older versions wrote
    with FolderLock(tmp_path):
        pass


def test_a_waiting_lock_gets_the_folder_when_the_holder_leaves(tmp_path):
    holder = hold(tmp_path)
    threading.Timer(0.5, holder.stdin.close).start()
    started = time.monotonic()
    with FolderLock(tmp_path, wait=True):
        assert time.monotonic() - started >= 0.4  # it got the lock only once the holder let go
    assert holder.wait(timeout=60) == 0


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
