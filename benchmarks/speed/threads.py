"""Wall time of a suite run under a CPU limit: torch's own thread count against metahyper's
default and one thread (issue 27 item 1).

    metahyper bench threads [--suite smoke] [--cpus 1] [--limit quota|taskset] [--repeat 1] [KEY=VALUE ...]
    (or: python benchmarks/speed/threads.py ...)

Each mode is a whole ``metahyper run SUITE`` process started under the limit, one after another
(run it when the machine is otherwise quiet; nothing here is meant for a loaded machine):

* ``--limit quota`` (default): ``systemd-run --user --scope -p CPUQuota=<cpus*100>%``, a cgroup
  CPU quota as containers and SLURM set them, while the process still sees every core;
* ``--limit taskset``: ``taskset -c 0..cpus-1``, an affinity mask.

Modes: ``every core`` (``--threads <cores of the machine>``, what torch chose before metahyper
read the limit), ``default`` (no ``--threads``: ``metahyper.threads.default_threads``) and
``--threads 1``. Reported per mode: wall s, CPU s of the process tree, the threads the run's
meta-training recorded in its ``done.json``, and the wall-time ratio to ``--threads 1``.
``--repeat R`` runs the modes R times in rotated order and keeps each one's best wall time.
``KEY=VALUE`` overrides go to every run (e.g. ``meta_train.iterations=20`` for a quick check).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from jobs import timed_run


def limit_prefix(limit: str, cpus: int) -> tuple[str, ...]:
    """The command that starts a process under the CPU limit; exits naming what is missing."""
    tool = {"quota": "systemd-run", "taskset": "taskset"}[limit]
    if shutil.which(tool) is None:
        sys.exit(f"--limit {limit} needs {tool}, which is not on PATH; try --limit "
                 f"{'taskset' if limit == 'quota' else 'quota'}")
    prefix = ("taskset", "-c", f"0-{cpus - 1}") if limit == "taskset" else (
        "systemd-run", "--user", "--scope", "--quiet", "-p", f"CPUQuota={cpus * 100}%")
    probe = subprocess.run([*prefix, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        sys.exit(f"--limit {limit}: `{' '.join(prefix)} true` failed ({probe.stderr.strip() or probe.returncode}); "
                 "try the other --limit")
    return prefix


def recorded_threads(out: Path) -> str:
    """The threads the first run's meta-training recorded (``done.json``), or ``?``."""
    markers = sorted(out.glob("runs/*/meta_train/done.json"))
    return str(json.loads(markers[0].read_text()).get("threads", "?")) if markers else "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", default="smoke")
    parser.add_argument("--cpus", type=int, default=1, help="CPUs the limit allows (default 1)")
    parser.add_argument("--limit", choices=("quota", "taskset"), default="quota")
    parser.add_argument("--repeat", type=int, default=1, help="run the modes this many times, rotating the order")
    parser.add_argument("--keep", type=Path, help="keep the suite folders here (default: a temporary folder)")
    args, overrides = parser.parse_known_args(argv)
    machine = os.cpu_count() or 1
    if not 1 <= args.cpus < machine:
        sys.exit(f"--cpus must lie in 1..{machine - 1} (this machine has {machine} cores), got {args.cpus}")
    prefix = limit_prefix(args.limit, args.cpus)
    modes = {"every core": ["--threads", str(machine)], "default": [], "--threads 1": ["--threads", "1"]}
    root = args.keep or Path(tempfile.mkdtemp(prefix="metahyper-bench-threads-"))
    best: dict[str, tuple[float, float, str]] = {}
    for repeat in range(args.repeat):
        names = list(modes)
        for mode in names[repeat % len(names):] + names[:repeat % len(names)]:
            out = root / mode.replace(" ", "").replace("-", "")
            wall, cpu = timed_run([args.suite, *modes[mode], *overrides], out, prefix)
            print(f"  {mode}: {wall:.1f} s wall, {cpu:.1f} s CPU", file=sys.stderr)
            if mode not in best or wall < best[mode][0]:  # the fastest repeat, with the threads it recorded
                best[mode] = (wall, cpu, recorded_threads(out))
    print(f"{args.suite} on a {machine}-core machine limited to {args.cpus} CPU(s) by {' '.join(prefix[:1])}, "
          f"best of {args.repeat}:")
    print(f"{'mode':<14} {'wall s':>8} {'CPU s':>8} {'threads':>8} {'wall / --threads 1':>19}")
    for mode in modes:
        wall, cpu, threads = best[mode]
        print(f"{mode:<14} {wall:8.1f} {cpu:8.1f} {threads:>8} {wall / best['--threads 1'][0]:19.3f}")
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
