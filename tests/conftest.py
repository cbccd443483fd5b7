"""Fixtures shared by every test: one torch thread, where the real Omniglot archives are, and the
devices that device-sensitive tests run on (``device``: cpu, and cuda when present)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tests use small tensors: one intra-op thread is faster and robust on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def smoke_sequential(tmp_path_factory) -> Path:
    """The reduced smoke suite (``tiny_suites.SMOKE``) run one run after the other in this process
    on one CPU thread: the reference that parallel and cluster runs must equal byte for byte."""
    from tiny_suites import SMOKE

    from metahyper.pipeline.runs import run_suite
    from metahyper.suite.config import load_suite

    out, threads = tmp_path_factory.mktemp("smoke-sequential"), torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_suite(load_suite("smoke", SMOKE), out, progress=False)
    finally:
        torch.set_num_threads(threads)
    return out


@pytest.fixture(scope="session")
def omniglot_dir() -> Path:
    """The folder with the real Omniglot zips: $METAHYPER_DATA/omniglot or ../shared/data/omniglot."""
    candidates = [Path(os.environ["METAHYPER_DATA"]) / "omniglot"] if os.environ.get("METAHYPER_DATA") else []
    candidates.append(REPO.parent / "shared" / "data" / "omniglot")
    for folder in candidates:
        if (folder / "images_background_small1.zip").is_file():
            return folder
    pytest.skip(f"real Omniglot archives not found (looked in {[str(c) for c in candidates]}; set METAHYPER_DATA)")


CUDA_MISSING = "CUDA is not available here (torch.cuda.is_available() is False); run benchmarks/gpu_check.sh on a GPU"
DEVICES = [
    pytest.param("cpu", marks=pytest.mark.gpu),
    pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason=CUDA_MISSING)]),
]


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    """Each device the test must hold on: the CPU always, CUDA when present. Tests taking this
    fixture carry the ``gpu`` marker, so ``pytest -m gpu`` runs exactly them."""
    return torch.device(request.param)


@pytest.fixture
def read_only_cli():
    """``run(folder, *argv)``: ``metahyper argv`` in a new process that sees ``folder``
    bind-mounted read-only in a private mount namespace (even root cannot write there; the mount
    ends with the process). Skips where such mounts cannot be made."""
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True) if shutil.which("unshare") else None
    if probe is None or probe.returncode != 0:
        pytest.skip("needs `unshare --mount` (root in a namespace-capable container) for a read-only mount")

    def run(folder: Path, *argv: str) -> subprocess.CompletedProcess:
        where = shlex.quote(str(folder))
        mount = f"mount --bind {where} {where} && mount -o remount,bind,ro {where}"
        command = shlex.join([sys.executable, "-m", "metahyper.cli", *argv])
        return subprocess.run(["unshare", "--mount", "sh", "-c", f"{mount} && exec {command}"], capture_output=True,
                              text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})

    return run


@pytest.fixture
def isolated_registries(monkeypatch):
    """The model, data set and method registries (and the entry-point plugins' loading state) as they
    are now, restored after the test together with the ``plugin_pkg`` modules it imported, so
    that what a test's plugins register never leaks into later tests."""
    from metahyper import plugins
    from metahyper.data.sources import DATASETS
    from metahyper.meta.methods import METHODS
    from metahyper.models import MODELS

    for registry in (MODELS, DATASETS, METHODS):
        monkeypatch.setattr(registry, "_builders", dict(registry._builders))
    monkeypatch.setattr(MODELS, "_families", list(MODELS._families))
    monkeypatch.setitem(plugins._state, "status", plugins._state["status"])
    yield
    for name in [m for m in sys.modules if m == "plugin_pkg" or m.startswith("plugin_pkg.")]:
        del sys.modules[name]
