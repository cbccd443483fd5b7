"""Test helpers for metahyper.meta: ``maml_toys`` importable however pytest imports tests, and one
intra-op thread (small tensors: faster, and robust on a busy 2-core machine)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

HERE = str(Path(__file__).parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
