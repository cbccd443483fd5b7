"""``metahyper.allocator.keep_freed_memory``: in the steady state of a training loop whose
activations are larger than glibc's mmap threshold, glibc by default faults in every page of
every activation again at each step (at least one activation's bytes over the page size, a
closed form), and after ``keep_freed_memory`` it faults in none. Each case runs in a new
process: the setting is process-wide."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="glibc's malloc only")

BATCH, CHANNELS, SIDE = 240, 16, 56  # one conv activation: 48 MB, above glibc's largest mmap threshold (32 MiB)
PROGRAM = f"""
import resource, sys, torch
from metahyper.allocator import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "keep" else None
torch.set_num_threads(1)
model = torch.nn.Sequential(torch.nn.Conv2d(1, {CHANNELS}, 3, padding=1), torch.nn.ReLU(),
                            torch.nn.Conv2d({CHANNELS}, {CHANNELS}, 3, padding=1))
images = torch.randn({BATCH}, 1, {SIDE}, {SIDE})
faults = []
for step in range(8):  # a training step: forward, backward, every buffer freed at its end
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    model(images).square().mean().backward()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(applied, min(faults[2:]))
"""
ACTIVATION_PAGES = BATCH * CHANNELS * SIDE * SIDE * 4 // os.sysconf("SC_PAGE_SIZE")


def steady_state_faults(mode: str, **env: str) -> tuple[str, int]:
    """(what keep_freed_memory returned, the fewest minor page faults of the steps after the first
    two). The least of six steps, because with freed memory kept the heap still grows by one
    buffer in a step or two of the first six or so, at a step that depends on the address layout,
    while its free chunks settle (seen with strace as brk calls); by default every step faults."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "LD_PRELOAD"}
    result = subprocess.run([sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True, check=True,
                            env={**environment, "OMP_NUM_THREADS": "1", **env}, timeout=300)
    applied, faults = result.stdout.split()
    return applied, int(faults)


def test_glibc_faults_the_activations_in_again_at_every_step_by_default():
    assert steady_state_faults("default")[1] >= ACTIVATION_PAGES


def test_kept_memory_is_reused_without_faults():
    applied, faults = steady_state_faults("keep")
    assert applied == "True" and faults < 0.05 * ACTIVATION_PAGES


def test_the_users_own_malloc_settings_stand():
    applied, faults = steady_state_faults("keep", MALLOC_MMAP_MAX_="65536")
    assert applied == "False" and faults >= ACTIVATION_PAGES
