"""Another process holding a folder's lock (``metahyper.outdir.FolderLock``) until its stdin
closes or it is killed: the stand-in for a second metahyper process, shared by the lock tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

HOLD = """import json, sys
from metahyper.outdir import FolderLock
with FolderLock(sys.argv[1], info=json.loads(sys.argv[2])):
    print("held", flush=True)
    sys.stdin.read()
"""


def hold(folder: Path, info: dict[str, Any] | None = None) -> subprocess.Popen:
    """Start the holder; returns once it holds the lock (``info`` goes into the lock file)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder), json.dumps(info or {})], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc
