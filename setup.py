"""Build script: the package plus the built-in suites, class splits and speed benchmarks.

``benchmarks/suites/*.yaml``, ``data_splits/*.json`` and ``benchmarks/speed/*.py`` stay where
people edit them in the checkout; ``package_dir`` maps them at build time into the wheel as
``metahyper/_suites/``, ``metahyper/_data_splits/`` and ``metahyper/_speed/`` (one copy on
disk, no generated files in the checkout). ``metahyper.resources`` reads them from the
installed package through ``importlib.resources`` and falls back to the checkout folders.
Everything else (metadata, dependencies, entry point) is in ``setup.cfg``.
"""

from setuptools import find_packages, setup

SHIPPED = {"metahyper._suites": "benchmarks/suites", "metahyper._data_splits": "data_splits",
           "metahyper._speed": "benchmarks/speed"}

setup(packages=find_packages(include=["metahyper", "metahyper.*"]) + list(SHIPPED),
      package_dir=SHIPPED,
      package_data={"metahyper": ["py.typed"], "metahyper.meta": ["backend_choice.json"],
                    "metahyper._suites": ["*.yaml"],
                    "metahyper._data_splits": ["*.json"]})
