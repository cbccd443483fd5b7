"""One prepared GPU check: correctness on CUDA, MAML speed against the peers, and the Table-8 suite's time.

    bash benchmarks/gpu_check.sh OUT_DIR        (the wrapper: peers from .whl/, PYTHONPATH)
    python benchmarks/gpu_check.py --out OUT_DIR [--scale 1.0] [--parts tests maml ...]

Parts, each a subprocess with its own time limit (a part that fails or runs out of time is
recorded and the next one runs); with CUDA the limits add up to under 8 minutes:

1. ``env``: Python, torch, CUDA, cuDNN, the GPU's name, memory and compute capability, the peers.
2. ``tests``: ``pytest -m gpu`` (the device-sensitive tests; with CUDA only their cuda cases).
3. ``maml``: ``benchmarks/speed/maml.py`` for Conv4 and ResNet-12 at 84x84, first and second
   order (metahyper loop, vmap and grouped, learn2learn and higher when installed, on the same
   model and on their own); on CUDA it records ``backend: auto``'s CUDA choice in
   ``OUT/backend_choice.json`` (copy it over ``metahyper/meta/backend_choice.json``).
4. ``models``: ``benchmarks/speed/models.py`` (plain vs hyper forward+backward).
5. ``sampler``: ``benchmarks/speed/sampler.py`` with the meta-batch transformed on the device.
6. ``table8``: ``benchmarks/speed/table8.py``, WRN-28-4 and Hyper-WRN-28-4 at full size,
   extrapolated to the suite's full length.

Without CUDA every part runs in a reduced CPU form (tiny models and counts; it checks that the
script works end to end, its numbers say nothing about a GPU) and the summary lists what was
skipped. Writes ``OUT/gpu_check.json``, ``OUT/gpu_check.md`` (rendered by ``gpu_report.py``)
and ``OUT/gpu_check.log`` (every part's output). The JSON's ``recommendation`` says which MAML
backend ``auto`` should pick on CUDA (see ``gpu_report.recommend``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import torch

import gpu_report

REPO = Path(__file__).resolve().parents[1]
SPEED = REPO / "benchmarks" / "speed"
PART_NAMES = ("tests", "maml", "models", "sampler", "table8")
TINY_TABLE8 = ["runs.wrn28_4.model={name: wrn, options: {depth: 10, width: 1}}",
               "runs.hyper_wrn28_4.model={name: hyper_wrn, options: {depth: 10, width: 1, variant: 1}}",
               "runs.wrn28_4.pretrain.batch_size=16", "runs.hyper_wrn28_4.pretrain.batch_size=16",
               "runs.wrn28_4.meta_train.meta_batch=2", "runs.hyper_wrn28_4.meta_train.meta_batch=2",
               "evaluation.shots=[1]"]


@dataclass
class Part:
    """One step: its command, time limit (seconds), the JSON it writes, and what it leaves out."""

    name: str
    argv: list[str]
    limit: float
    json_path: Path | None = None
    skipped: list[str] = field(default_factory=list)


def plan(cuda: bool, tmp: Path, scale: float, out: Path) -> list[Part]:
    """The parts: full size on CUDA, reduced on the CPU (naming the CUDA parts left out)."""
    py, limit = sys.executable, (lambda seconds: seconds * scale)
    tests = [py, "-m", "pytest", "-m", "gpu", "-q", "-rs", "-p", "no:cacheprovider", f"--junitxml={tmp}/tests.xml",
             str(REPO / "tests")]
    if cuda:
        return [
            Part("tests", [*tests, "-k", "cuda"], limit(120)),  # their CPU twins run wherever the suite runs
            Part("maml", [py, str(SPEED / "maml.py"), "--device", "cuda", "--models", "conv4:84", "resnet12:84",
                          "--warmup", "2", "--repeats", "5", "--json", f"{tmp}/maml.json",
                          "--record", str(out.resolve() / "backend_choice.json")], limit(135), tmp / "maml.json"),
            Part("models", [py, str(SPEED / "models.py"), "--device", "cuda", "--json", f"{tmp}/models.json"],
                 limit(45), tmp / "models.json"),
            Part("sampler", [py, str(SPEED / "sampler.py"), "--device", "cuda", "--threads", "4",
                             "--json", f"{tmp}/sampler.json"], limit(55), tmp / "sampler.json"),
            Part("table8", [py, str(SPEED / "table8.py"), "--device", "cuda", "--json", f"{tmp}/table8.json"],
                 limit(120), tmp / "table8.json"),
        ]
    gone = "CUDA is not available: reduced CPU form, "
    return [
        Part("tests", tests, limit(400), skipped=["the cuda-parametrised tests (skipped by pytest)"]),
        Part("maml", [py, str(SPEED / "maml.py"), "--device", "cpu", "--models", "conv4:32", "--repeats", "1",
                      "--warmup", "0", "--json", f"{tmp}/maml.json"], limit(300), tmp / "maml.json",
             [gone + "Conv4 at 32x32 only (no ResNet-12 84, no CUDA timings)"]),
        Part("models", [py, str(SPEED / "models.py"), "--device", "cpu", "--quick", "--backbones", "conv4", "--size",
                        "32", "--json", f"{tmp}/models.json"], limit(200), tmp / "models.json",
             [gone + "Conv4 at 32x32, batch 16"]),
        Part("sampler", [py, str(SPEED / "sampler.py"), "--device", "cpu", "--quick", "--per-class", "20",
                         "--json", f"{tmp}/sampler.json"], limit(300), tmp / "sampler.json",
             [gone + "20 images per class, no transform on a GPU"]),
        Part("table8", [py, str(SPEED / "table8.py"), "--device", "cpu", "--pretrain-steps", "2", "--iterations", "2",
                        "--episodes", "2", "--json", f"{tmp}/table8.json", *TINY_TABLE8], limit(500),
             tmp / "table8.json", [gone + "WRN-10-1 in place of WRN-28-4, small batches: not the suite's time"]),
    ]


def environment() -> dict:
    """What the figures were taken on."""
    env = {"date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "python": platform.python_version(),
           "platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
           "torch_cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
           "cuda_available": torch.cuda.is_available(), "commit": _commit()}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        env |= {"gpu": props.name, "gpu_memory_gib": round(props.total_memory / 2**30, 1),
                "compute_capability": f"{props.major}.{props.minor}", "gpus": torch.cuda.device_count()}
    for package in ("numpy", "learn2learn", "higher"):
        try:
            env[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            env[package] = None
    return env


def _commit() -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def run_part(part: Part, log) -> dict:
    """Run one part in its own process group; kill the group when its time is up."""
    print(f"== {part.name} (limit {part.limit:.0f} s): {' '.join(part.argv)}", flush=True)
    log.write(f"\n== {part.name}: {' '.join(part.argv)}\n")
    start = time.perf_counter()
    child = subprocess.Popen(part.argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
    try:
        output, _ = child.communicate(timeout=part.limit)
        status = "ok" if child.returncode == 0 else f"failed (exit {child.returncode})"
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        output, _ = child.communicate()
        status = f"timed out after {part.limit:.0f} s"
    seconds = time.perf_counter() - start
    print(output, flush=True)
    log.write(output)
    result = None
    if part.json_path is not None and part.json_path.is_file():
        result = json.loads(part.json_path.read_text(encoding="utf-8"))
    return {"status": status, "seconds": round(seconds, 1), "command": part.argv[1:], "skipped": part.skipped,
            "result": result, "tail": output[-2000:]}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for gpu_check.json, gpu_check.md and gpu_check.log")
    parser.add_argument("--parts", nargs="+", choices=PART_NAMES, default=list(PART_NAMES))
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every part's time limit")
    args = parser.parse_args()
    if not args.scale > 0:
        parser.error(f"--scale must be > 0, got {args.scale}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        parser.error(f"--out {out} exists and is not a folder")
    return args


def main() -> None:
    args = parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = environment()
    print(json.dumps(env, indent=1), flush=True)
    summary = {"environment": env, "parts": {}, "skipped": []}
    if not env["cuda_available"]:
        summary["skipped"].append("every CUDA part: no CUDA device here; the CPU parts ran in a reduced form")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, open(out / "gpu_check.log", "w", encoding="utf-8") as log:
        for part in plan(env["cuda_available"], Path(tmp), args.scale, out):
            if part.name in args.parts:
                summary["parts"][part.name] = run_part(part, log)
        if "tests" in summary["parts"]:
            gpu_report.add_test_counts(summary["parts"]["tests"], Path(tmp) / "tests.xml")
    summary["seconds"] = round(time.perf_counter() - started, 1)
    summary |= gpu_report.judge(summary)
    gpu_report.write(summary, out / "gpu_check.json", out / "gpu_check.md")
    print((out / "gpu_check.md").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
