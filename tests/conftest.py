"""Fixtures shared by every test: one torch thread, and where the real Omniglot archives are."""

from __future__ import annotations

import os
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
def omniglot_dir() -> Path:
    """The folder with the real Omniglot zips: $METAHYPER_DATA/omniglot or ../shared/data/omniglot."""
    candidates = [Path(os.environ["METAHYPER_DATA"]) / "omniglot"] if os.environ.get("METAHYPER_DATA") else []
    candidates.append(REPO.parent / "shared" / "data" / "omniglot")
    for folder in candidates:
        if (folder / "images_background_small1.zip").is_file():
            return folder
    pytest.skip(f"real Omniglot archives not found (looked in {[str(c) for c in candidates]}; set METAHYPER_DATA)")
