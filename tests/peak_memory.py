"""The peak memory of a ``metahyper`` command in a new process (its own ``ru_maxrss``), for the
tests that check a decompression or alias bomb costs no more than a valid file of its kind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# runs the command line, then prints the process's peak resident memory (KiB on Linux) last
WRAPPER = ("import resource, sys\nfrom metahyper.cli import main\ntry:\n    status = main(sys.argv[1:])\n"
           "except SystemExit as exit_:\n    status = exit_.code\n"
           "print(f'peak-kib {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}', file=sys.stderr)\n"
           "sys.exit(status)\n")
MARGIN_MB = 300  # issue 28: a bomb may cost at most this much more than a valid file of its kind


def peak_memory(*argv: str, cwd: Path | None = None) -> tuple[int, str, float]:
    """(exit status, stderr without the measurement line, peak resident memory in MB) of
    ``metahyper argv``."""
    result = subprocess.run([sys.executable, "-c", WRAPPER, *argv], capture_output=True, text=True, cwd=cwd,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    lines = result.stderr.splitlines()
    assert lines and lines[-1].startswith("peak-kib "), result.stderr
    return result.returncode, "\n".join(lines[:-1]), int(lines[-1].split()[1]) / 1024
