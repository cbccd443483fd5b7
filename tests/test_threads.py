"""Default CPU threads from fake cgroup trees and affinity masks (``metahyper.threads``): the
quota in CPUs is worked out by hand from the files each test writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from metahyper.threads import cgroup_cpus, default_threads, process_threads, usable_cpus


def _tree(root: Path, proc_lines: list[str], files: dict[str, str]) -> tuple[Path, Path]:
    """A fake ``/sys/fs/cgroup`` under ``root/cg`` holding ``files`` and a fake
    ``/proc/self/cgroup`` with ``proc_lines``."""
    cg = root / "cg"
    cg.mkdir()
    for name, text in files.items():
        (cg / name).parent.mkdir(parents=True, exist_ok=True)
        (cg / name).write_text(text + "\n")
    proc = root / "proc-cgroup"
    proc.write_text("".join(f"{line}\n" for line in proc_lines))
    return cg, proc


@pytest.mark.parametrize("files, expected", [
    ({"cpu.max": "max 100000"}, None),                              # v2 without a quota
    ({"cpu.max": "250000 100000"}, 2.5),                            # v2: 2.5 CPUs at the root
    ({"cpu.max": "max 100000", "job/cpu.max": "50000 100000"}, 0.5),  # the job's own cgroup
    ({"cpu.max": "300000 100000", "job/cpu.max": "max 100000"}, 3.0),  # a parent's quota binds the job
])
def test_cgroup_v2_quota(tmp_path, files, expected):
    root, proc = _tree(tmp_path, ["0::/job"], files)
    assert cgroup_cpus(root, proc) == expected


def test_cgroup_v2_path_missing_under_the_mount_reads_the_mount(tmp_path):
    # in a container without a cgroup namespace the path names the host's folder, the mount is its own
    root, proc = _tree(tmp_path, ["0::/docker/abc"], {"cpu.max": "150000 100000"})
    assert cgroup_cpus(root, proc) == 1.5


@pytest.mark.parametrize("controllers, folder", [("cpu,cpuacct", "cpu,cpuacct"), ("cpu", "cpu")])
def test_cgroup_v1_quota(tmp_path, controllers, folder):
    files = {f"{folder}/cpu.cfs_quota_us": "-1", f"{folder}/cpu.cfs_period_us": "100000",
             f"{folder}/slurm/job7/cpu.cfs_quota_us": "300000", f"{folder}/slurm/job7/cpu.cfs_period_us": "100000",
             "memory/slurm/job7/memory.limit_in_bytes": "1000"}
    root, proc = _tree(tmp_path, ["4:memory:/slurm/job7", f"3:{controllers}:/slurm/job7", "0::/"], files)
    assert cgroup_cpus(root, proc) == 3.0


def test_no_cgroup_files_means_no_quota(tmp_path):
    assert cgroup_cpus(tmp_path / "absent", tmp_path / "absent-proc") is None
    root, proc = _tree(tmp_path, ["0::/", "garbage line"], {"cpu.max": "not numbers"})
    assert cgroup_cpus(root, proc) is None


@pytest.mark.parametrize("affinity, cpu_max, usable", [
    (16, "max 100000", 16),       # no quota: the affinity mask
    (16, "400000 100000", 4),     # a container with 4 CPUs on a 16-core node
    (2, "400000 100000", 2),      # taskset to 2 cores under a 4-CPU quota
    (8, "150000 100000", 1),      # 1.5 CPUs: rounded down
    (8, "20000 100000", 1),       # a fifth of a CPU: still one thread
])
def test_usable_cpus_is_the_smaller_of_mask_and_quota(tmp_path, affinity, cpu_max, usable):
    root, proc = _tree(tmp_path, ["0::/"], {"cpu.max": cpu_max})
    assert usable_cpus(affinity, root, proc) == usable


@pytest.mark.parametrize("cpus, jobs, threads", [(16, 1, 16), (16, 3, 5), (2, 2, 1), (2, 4, 1), (1, 1, 1)])
def test_default_threads_splits_the_cpus_between_jobs(cpus, jobs, threads):
    assert default_threads(jobs, cpus) == threads


def test_process_threads_prefers_omp_num_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert process_threads(jobs=2) == 3
    for unusable in ("0", "two", ""):
        monkeypatch.setenv("OMP_NUM_THREADS", unusable)
        assert process_threads(jobs=1) == default_threads(1)
