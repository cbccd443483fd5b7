"""Where the built-in suites, class splits and speed benchmarks are read from.

In the source checkout they live in ``benchmarks/suites/``, ``data_splits/`` and
``benchmarks/speed/`` (the places people edit). ``setup.py`` maps those folders into the wheel
as ``metahyper/_suites/``, ``metahyper/_data_splits/`` and ``metahyper/_speed/``, so an
installed package reads them through ``importlib.resources``; a checkout (plain or
``pip install -e .``) has no such folders inside the package and reads the originals.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

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
