"""The package as a user gets it: a wheel installed (not editable) into a fresh virtualenv, run
from a folder outside the checkout, must find its suites and class splits inside itself.

The fresh venv sees this venv's site-packages through a ``.pth`` line (torch is not installed
twice); the wheel is installed with ``--no-deps`` and, being in the venv's own site-packages,
comes first on ``sys.path``. ``.ci/run`` does the same with a full dependency install.
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
import venv
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from tiny_suites import SMOKE

REPO = Path(__file__).resolve().parents[1]


def _run(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "METAHYPER_DATA")}
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            env={**env, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"})
    assert result.returncode == 0, f"{args} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


def _isolation() -> list[str]:
    """Build with this venv's setuptools when it builds wheels by itself (>= 70.1), which saves
    fetching one; else in pip's isolated build environment (``pyproject.toml``)."""
    try:
        major, minor = (int(part) for part in version("setuptools").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return []
    return ["--no-build-isolation"] if (major, minor) >= (70, 1) else []


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(the fresh venv's bin folder, a work folder outside the checkout) with the wheel installed."""
    root = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", *_isolation(), "-q", "-w", str(root / "dist"),
          str(REPO)], cwd=root)
    wheel = next((root / "dist").glob("metahyper-*.whl"))
    venv.EnvBuilder(with_pip=False).create(root / "venv")
    python = root / "venv" / "bin" / "python"
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], root).stdout.strip()
    Path(purelib, "test-venv.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
          str(wheel)], cwd=root)
    work = root / "work"
    work.mkdir()
    return python.parent, work


def test_the_installed_wheel_imports_itself_and_ships_its_data(installed):
    bin_dir, work = installed
    code = ("import metahyper, metahyper.data.splits as s; print(metahyper.__file__); print(s.splits_dir()); "
            "print(sorted(metahyper.list_suites())); import metahyper.meta.backend_choice as b; "
            "print(sorted(b.recorded()))")
    out = _run([str(bin_dir / "python"), "-c", code], work).stdout.splitlines()
    assert "site-packages" in out[0] and not out[0].startswith(str(REPO))
    assert out[1].endswith("metahyper/_data_splits") and "site-packages" in out[1]
    assert eval(out[2]) == sorted(p.stem for p in (REPO / "benchmarks" / "suites").glob("*.yaml"))  # noqa: S307
    assert "cpu" in eval(out[3])  # noqa: S307  (backend: auto's measured choices ship in the wheel)
    assert _run([str(bin_dir / "metahyper"), "--version"], work).stdout.strip().startswith("metahyper ")


def test_the_installed_wheel_runs_the_smoke_suite_outside_the_checkout(installed):
    bin_dir, work = installed
    result = _run([str(bin_dir / "metahyper"), "run", "smoke", *SMOKE, "--out", "out"], work)
    assert "report: out/report.md" in result.stdout
    assert (work / "out" / "report.md").is_file()
    assert "meta-train" in result.stderr and "iteration 4/4" in result.stderr  # plain status lines (not a TTY)


@pytest.mark.realdata
def test_the_installed_wheel_reads_omniglot_with_its_shipped_class_splits(installed, omniglot_dir):
    bin_dir, work = installed
    command = ["data", "omniglot", "--root", str(omniglot_dir), "--split", "test"]
    result = _run([str(bin_dir / "metahyper"), *command], work)
    assert "classes: 106" in result.stdout  # the test alphabets of data_splits/omniglot.json
