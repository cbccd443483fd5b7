"""Keep freed memory in the process heap on glibc, so that large tensors are not page-faulted in
again at every training step (``keep_freed_memory``).

glibc's malloc serves each allocation above its mmap threshold (at most 32 MiB on 64-bit) with a
fresh ``mmap`` and gives it back with ``munmap`` when freed. A training step on larger images
allocates and frees activation buffers of hundreds of MiB, so every step faults every page of
them in again, and the kernel zeroes each page: a 56-pixel Conv4 ProtoNet run on the 2-core
development machine spent as much CPU time in the kernel as in torch
(``benchmarks/speed/allocator.py``, ``benchmarks/RESULTS.md``). ``mallopt(M_MMAP_MAX, 0)`` serves
them from the heap instead, and a trim threshold of 2 GiB keeps what is freed there for the next
step. The numbers do not change (where a tensor lives is not what it holds); the process's
resident memory stays near its peak instead of falling between steps.

It is a process-wide setting, so only the processes that run stages call it (``metahyper run``
and its workers). It does nothing off glibc, nor when the user set any of glibc's own
``MALLOC_*`` tuning variables or preloaded another allocator (``LD_PRELOAD``): then their choice
stands (``MALLOC_MMAP_MAX_=65536`` restores glibc's default).
"""

from __future__ import annotations

import ctypes
import os
import platform

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
M_MMAP_MAX = -4
TRIM_THRESHOLD = 2**31 - 1  # the largest value mallopt's int takes: 2 GiB
USER_SETTINGS = ("MALLOC_MMAP_MAX_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_",
                 "GLIBC_TUNABLES", "LD_PRELOAD")


def keep_freed_memory() -> bool:
    """Set glibc's malloc to keep freed memory for reuse (module docstring); True when it did."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    if any(os.environ.get(name) for name in USER_SETTINGS):
        return False
    libc = ctypes.CDLL(None)
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
