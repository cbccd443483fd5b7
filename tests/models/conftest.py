"""Model-test setup: a ``slow`` marker (skipped unless METAHYPER_SLOW_TESTS=1) and a fixed seed."""

import os
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).parent


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: many seconds on CPU; run with METAHYPER_SLOW_TESTS=1")


def pytest_collection_modifyitems(config, items):
    if os.environ.get("METAHYPER_SLOW_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="slow on CPU; set METAHYPER_SLOW_TESTS=1 to run")
    for item in items:
        if "slow" in item.keywords and HERE in Path(item.fspath).parents:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same global RNG state (model inits draw from it)."""
    torch.manual_seed(0)
