"""How many CPU threads a process should use: the CPUs it may really run on.

torch starts one thread per core of the machine. A process that may use fewer (a ``taskset``
affinity mask, a SLURM allocation, a container's CPU quota) then runs more threads than it has
CPUs; they wait on each other at every parallel region, and on a shared 2-core machine a suite
ran ten times slower that way than with one thread (issue 27). ``usable_cpus`` is the smaller of
the affinity mask and the cgroup CPU quota (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us`` /
``cpu.cfs_period_us``, the smallest along the process's cgroup path), rounded down, at least 1;
``default_threads(jobs)`` splits it between ``jobs`` processes, and ``process_threads`` is what a
``metahyper`` process uses without ``--threads`` (``$OMP_NUM_THREADS`` first). Only the standard
library is imported, so the command can decide before torch loads.
"""

from __future__ import annotations

import math
import os
from pathlib import Path, PurePosixPath

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


def affinity_cpus() -> int:
    """The CPUs of this process's affinity mask (every CPU where the OS has no masks)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _v2_quota(folder: Path) -> float | None:
    """``cpu.max`` (``"<quota> <period>"``, or ``"max <period>"`` without a quota) in CPUs."""
    fields = (_read(folder / "cpu.max") or "").split()
    if len(fields) != 2 or fields[0] == "max":
        return None
    return _ratio(fields[0], fields[1])


def _v1_quota(folder: Path) -> float | None:
    """``cpu.cfs_quota_us / cpu.cfs_period_us`` in CPUs (a quota of -1: none)."""
    return _ratio(_read(folder / "cpu.cfs_quota_us") or "", _read(folder / "cpu.cfs_period_us") or "")


def _ratio(quota: str, period: str) -> float | None:
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def _along(mount: Path, path: str) -> list[Path]:
    """The cgroup folder of ``path`` under ``mount`` and each parent up to ``mount``, those that
    exist (in a container the mount is often the container's own cgroup, and the path not there)."""
    parts = PurePosixPath(path).parts[1:]
    return [folder for folder in (mount.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)) if folder.is_dir()]


def cgroup_cpus(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """The CPU quota of this process's cgroups in CPUs (the smallest one along each cgroup path,
    v1 and v2), or None when there is none or the files cannot be read."""
    quotas = []
    for line in (_read(proc_cgroup) or "").splitlines():
        hierarchy, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if hierarchy == "0" and controllers == "":  # cgroup v2 (unified; under unified/ on hybrid systems)
            mounts, quota = (root, root / "unified"), _v2_quota
        elif "cpu" in controllers.split(","):  # cgroup v1: the cpu controller, mounted alone or with cpuacct
            mounts, quota = (root / controllers, root / "cpu", root / "cpu,cpuacct"), _v1_quota
        else:
            continue
        mount = next((m for m in mounts if m.is_dir()), None)
        quotas += [q for folder in (_along(mount, path) if mount else []) if (q := quota(folder)) is not None]
    return min(quotas) if quotas else None


def usable_cpus(affinity: int | None = None, root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> int:
    """The CPUs this process may keep busy: its affinity mask (``affinity``: default this
    process's), capped by its cgroup CPU quota (rounded down), at least 1."""
    cpus = affinity_cpus() if affinity is None else affinity
    quota = cgroup_cpus(root, proc_cgroup)
    if quota is not None:
        cpus = min(cpus, math.floor(quota))
    return max(1, cpus)


def default_threads(jobs: int = 1, cpus: int | None = None) -> int:
    """Threads per process when ``jobs`` processes share the usable CPUs (``cpus``: default
    ``usable_cpus()``), at least 1."""
    return max(1, (usable_cpus() if cpus is None else cpus) // max(1, jobs))


def process_threads(jobs: int = 1) -> int:
    """The threads of each of ``jobs`` processes when no ``--threads`` is given: ``$OMP_NUM_THREADS``
    when it is a positive integer (the user's choice, which torch reads too), else
    ``default_threads(jobs)``."""
    text = os.environ.get("OMP_NUM_THREADS", "")
    return int(text) if text.isdigit() and int(text) > 0 else default_threads(jobs)
