"""Fixtures for the classification tests: tiny CIFAR-10 python batches in the real format
(written with the data tests' helpers), a tiny model and a fast training config."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from data.helpers import cifar_rows, dump
from metahyper.classify import ClassifyConfig
from metahyper.data import load_store
from metahyper.models import build_model

PER_CLASS = {"train": 2, "test": 1}  # images per class in each of the 5 train batches / the test batch


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors on a shared machine: one intra-op thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_cifar10(root, rng: np.random.Generator) -> None:
    """cifar-10-batches-py/ with data_batch_1..5 (20 images each), test_batch (10), batches.meta.

    Each class has its own mean colour plus noise, so a model can learn something."""
    folder = root / "cifar-10-batches-py"
    colours = rng.integers(40, 216, (10, 3))
    files = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in files:
        labels = np.repeat(np.arange(10), PER_CLASS["test" if name == "test_batch" else "train"])
        rng.shuffle(labels)
        noise = rng.integers(-40, 41, (len(labels), 32, 32, 3))
        hwc = np.clip(colours[labels][:, None, None, :] + noise, 0, 255).astype(np.uint8)
        dump(folder / name, {"data": cifar_rows(hwc), "labels": labels.tolist(), "batch_label": name,
                             "filenames": [f"{name}_{i}.png" for i in range(len(labels))]}, protocol=2)
    dump(folder / "batches.meta", {"label_names": [f"class{k}" for k in range(10)], "num_cases_per_batch": 20},
         protocol=2)


@pytest.fixture(scope="session")
def cifar10_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_cifar10(root, np.random.default_rng(0))
    return root


@pytest.fixture(scope="session")
def stores(cifar10_root):
    """(train store: 100 images, test store: 10 images), CIFAR-10 format, 10 classes."""
    return load_store("cifar10", cifar10_root, "train"), load_store("cifar10", cifar10_root, "test")


def tiny_model(name: str = "hyper_wrn", seed: int = 0, **options):
    """A WRN-10-1 (plain or hyper variant 1) with 10 outputs, initialised from ``seed``."""
    defaults = {"depth": 10, "width": 1, **({"variant": 1} if name == "hyper_wrn" else {})}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(name, 10, **{**defaults, **options})


def fast_config(**changes) -> ClassifyConfig:
    """Few epochs of small batches (4 steps per epoch on the 100-image train store)."""
    return ClassifyConfig(**{"epochs": 3, "batch_size": 32, "milestones": (1, 2), "eval_batch_size": 64, **changes})
