"""Where the built-in suites, class splits and speed benchmarks are read from (and data sets
downloaded from: ``MIRROR_ENV``).

In the source checkout they live in ``benchmarks/suites/``, ``data_splits/`` and
``benchmarks/speed/`` (the places people edit). ``setup.py`` maps those folders into the wheel
as ``metahyper/_suites/``, ``metahyper/_data_splits/`` and ``metahyper/_speed/``, so an
installed package reads them through ``importlib.resources``; a checkout (plain or
``pip install -e .``) has no such folders inside the package and reads the originals.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from metahyper.config import load_yaml

_CHECKOUT = Path(__file__).resolve().parents[1]


def shipped_dir(packaged: str, checkout: str) -> Path:
    """``metahyper/<packaged>`` of an installed wheel, else ``<checkout root>/<checkout>``.

    Installed wheels unpack to the file system, so the resource folder is a real ``Path``.
    """
    installed = files("metahyper") / packaged
    if installed.is_dir():
        return Path(str(installed))
    return _CHECKOUT / checkout


SUITES_DIR = shipped_dir("_suites", "benchmarks/suites")
SPLITS_DIR = shipped_dir("_data_splits", "data_splits")
SPEED_DIR = shipped_dir("_speed", "benchmarks/speed")
MIRROR_ENV = "METAHYPER_MIRROR"  # a URL prefix replacing the original hosts of ``metahyper data fetch``


def known_suites() -> list[str]:
    """Names of the built-in suites (``benchmarks/suites/``, shipped inside the package)."""
    return sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))


def list_suites() -> dict[str, str]:
    """Built-in suite name -> its ``description`` (``metahyper run NAME``)."""
    return {path.stem: str(load_yaml(path).get("description", "")) for path in sorted(SUITES_DIR.glob("*.yaml"))}
