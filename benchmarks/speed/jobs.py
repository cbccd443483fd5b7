"""Wall time of a suite run one run after another against ``--jobs N``, with identical results.

    metahyper bench jobs [--suite smoke] [--jobs 2] [--repeat 1] [--all-cores] [--keep DIR] [KEY=VALUE ...]
    (or: python benchmarks/speed/jobs.py ...)

Issue 20's goal: on a 2-core machine ``metahyper run smoke --jobs 2`` takes <= 0.65x the wall
time of the sequential run, with identical results. Whole ``metahyper run`` processes, one after
another on this machine in one session (run it when the machine is otherwise quiet):

1. sequential: ``metahyper run SUITE --threads T`` (T: the threads each job gets, this machine's
   cores // N), every run after the other in one process;
2. jobs: ``metahyper run SUITE --jobs N``: one process per run, T threads each.

CPU results depend on the thread count (reductions in another order), so 1 and 2 use the same
threads per process and their ``results.csv`` (and the per-episode results in
``results.json``) must be identical byte for byte; the script exits 1 if not. ``--all-cores``
adds 3. plain ``metahyper run SUITE`` (torch's default threads: every core), timed only: its
numbers may differ in the last digits. ``--repeat R`` alternates the order of 1 and 2 R times
and reports each one's best wall time. Reported per mode: wall seconds, CPU seconds of the
whole process tree (``RUSAGE_CHILDREN``), and the wall-time ratio to the sequential run.
``KEY=VALUE`` overrides go to every run (e.g. ``meta_train.iterations=20`` for a quick check).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def cores() -> int:
    """The cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def timed_run(argv: list[str], out: Path, prefix: tuple[str, ...] = ()) -> tuple[float, float]:
    """(wall s, CPU s of the process tree) of ``metahyper run ARGV --out OUT`` in a fresh folder,
    started through ``prefix`` (e.g. ``taskset -c 0``) when given."""
    shutil.rmtree(out, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([*prefix, sys.executable, "-m", "metahyper.cli", "run", *argv, "--out", str(out)], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"`metahyper run {' '.join(argv)}` failed (exit status {done.returncode}):\n{done.stderr[-3000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def same_results(a: Path, b: Path) -> bool:
    """Whether two suite folders report identical numbers."""
    results = [json.loads((folder / "results.json").read_text())["results"] for folder in (a, b)]
    return (a / "results.csv").read_bytes() == (b / "results.csv").read_bytes() and results[0] == results[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", default="smoke")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1, help="alternate sequential and --jobs this many times")
    parser.add_argument("--all-cores", action="store_true", help="also time plain `metahyper run` (every core)")
    parser.add_argument("--keep", type=Path, help="keep the suite folders here (default: a temporary folder)")
    args, overrides = parser.parse_known_args(argv)
    threads = max(1, cores() // args.jobs)
    modes = {"sequential": [args.suite, "--threads", str(threads), *overrides],
             f"--jobs {args.jobs}": [args.suite, "--jobs", str(args.jobs), *overrides]}
    if args.all_cores:
        modes["sequential, every core"] = [args.suite, *overrides]
    root = args.keep or Path(tempfile.mkdtemp(prefix="metahyper-bench-jobs-"))
    best: dict[str, tuple[float, float]] = {}
    for repeat in range(args.repeat):
        order = list(modes) if repeat % 2 == 0 else [list(modes)[1], list(modes)[0], *list(modes)[2:]]
        for mode in order:
            wall, cpu = timed_run(modes[mode], root / mode.replace(" ", "").replace(",", "-"))
            print(f"  {mode}: {wall:.1f} s wall, {cpu:.1f} s CPU", file=sys.stderr)
            best[mode] = min(best.get(mode, (wall, cpu)), (wall, cpu))
    identical = same_results(root / "sequential", root / f"--jobs{args.jobs}")
    print(f"{args.suite} on {cores()} cores, {threads} thread(s) per process, best of {args.repeat}:")
    print(f"{'mode':<24} {'wall s':>8} {'CPU s':>8} {'wall / sequential':>18}")
    for mode, (wall, cpu) in best.items():
        print(f"{mode:<24} {wall:8.1f} {cpu:8.1f} {wall / best['sequential'][0]:18.3f}")
    print(f"results.csv and per-episode results identical (sequential vs --jobs {args.jobs}): "
          f"{'yes' if identical else 'NO'}")
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
