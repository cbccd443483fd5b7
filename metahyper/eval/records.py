"""The result record a report is built from, hyper-vs-plain pairing, and the environment stamp.

A record is one model evaluated on one fixed episode set. Records arrive as dicts (read back
from run folders) or dataclasses and are validated into ``ResultRecord`` by ``as_record``, with
errors naming the record and the key.
"""

from __future__ import annotations

import dataclasses
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy
import torch

from metahyper._version import __version__
from metahyper.config import ConfigError, from_dict, to_dict
from metahyper.eval.stats import EvalResult

# What each test-time BatchNorm mode means (names as in metahyper.meta.maml.BN_MODES, plus
# "running" for the feature baselines of metahyper.meta.baselines).
BN_MODE_MEANING = {
    "transductive": "each episode's queries are normalised with statistics of the whole query "
    "batch, so queries influence each other's predictions",
    "inductive": "queries are normalised with the support set's statistics, so each query is "
    "classified independently of the other queries",
    "running": "features are normalised with the running statistics from pretraining, so each "
    "query is classified independently of the other queries",
}
BnMode = Literal[tuple(BN_MODE_MEANING)]  # type: ignore[valid-type]


@dataclass(frozen=True)
class ResultRecord:
    """Per-episode accuracies of ``model`` (trained on ``source``) on an episode set of ``target``.

    ``episodes_hash`` identifies the fixed episode set; only records with equal hashes are
    compared pairwise. ``seed`` is the run's training seed and ``config`` its full config.
    ``baseline`` names the plain model a hyper model is compared with; left ``None``, a model
    named ``hyper<sep>NAME`` (``hyper_resnet12``, ``HyperResNet-12``) pairs with ``NAME``.
    """

    model: str
    source: str
    target: str
    way: int
    shot: int
    bn_mode: BnMode
    per_episode: tuple[float, ...]
    episodes_hash: str
    seed: int
    config: dict[str, Any] = field(default_factory=dict, hash=False)
    baseline: str | None = None

    def __post_init__(self) -> None:
        _ = self.result  # validates the accuracies (at least 2, finite, in [0, 1]) up front

    @cached_property
    def result(self) -> EvalResult:
        """Mean and 95% CI of ``per_episode``."""
        return EvalResult.from_accuracies(self.per_episode)

    def baseline_model(self) -> str | None:
        """The plain model this one is compared with, if any (see the class docstring)."""
        if self.baseline is not None:
            return self.baseline
        if self.model[:5].lower() != "hyper":
            return None
        return self.model[5:].lstrip("_-") or None


def as_record(item: Any, where: str = "result") -> ResultRecord:
    """Validate a dict or dataclass with ``ResultRecord``'s fields into a ``ResultRecord``."""
    if isinstance(item, ResultRecord):
        return item
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        item = to_dict(item)
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: expected a dict or dataclass record, got {type(item).__name__}")
    return from_dict(ResultRecord, item, where=where)


def find_pairs(records: list[ResultRecord]) -> tuple[list[tuple[ResultRecord, ResultRecord]], list[str]]:
    """Match each hyper record with its plain baseline on the same episodes.

    A pair shares episode-set hash, source, BN mode and training seed. Returns the pairs and a
    note for each hyper record whose baseline has no such record.
    """
    index = {(r.model, r.episodes_hash, r.source, r.bn_mode, r.seed): r for r in records}
    pairs, notes = [], []
    for record in records:
        baseline = record.baseline_model()
        if baseline is None:
            continue
        match = index.get((baseline, record.episodes_hash, record.source, record.bn_mode, record.seed))
        if match is None:
            notes.append(
                f"{record.model} on {record.target} {record.way}-way {record.shot}-shot (seed "
                f"{record.seed}): no {baseline} result on the same episodes; not compared"
            )
        else:
            pairs.append((record, match))
    return pairs, notes


def package_commit() -> str | None:
    """The git commit this package runs from (``git describe --always --dirty``: a ``-dirty``
    suffix marks local changes) when it runs from a checkout, else None. Outside a checkout
    nothing is run; a git that is missing or fails gives None too."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        done = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=12"],
                              capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def collect_environment(device: str | None = None) -> dict[str, str]:
    """Versions of Python and the numeric packages, the git commit of the package when it runs
    from a checkout (``package_commit``), the platform, and the compute device.

    ``device`` defaults to the first CUDA device's name, or ``"cpu"``; pass the device the
    evaluation actually ran on when rebuilding a report elsewhere.
    """
    if device is None:
        device = f"cuda: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "cpu"
    commit = package_commit()
    return {
        "python": platform.python_version(),
        "metahyper": __version__,
        **({"commit": commit} if commit else {}),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "platform": f"{platform.system()} {platform.machine()} ({sys.platform})",
        "device": device,
    }
