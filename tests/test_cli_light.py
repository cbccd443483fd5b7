"""The commands a user types first (``--version``, ``--help``, ``list suites``, ``status``) load no
torch: each runs in one fresh interpreter, which reports after every command whether ``torch``
(or numpy) is in ``sys.modules``; ``import metahyper`` alone stays light too, while its
re-exported names still resolve."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import metahyper
from metahyper.data import EpisodeSampler
from metahyper.meta.maml import adapt
from metahyper.models import build_model

PACKAGE_ROOT = Path(metahyper.__file__).resolve().parents[1]

SCRIPT = """
import json, sys
import metahyper
loaded = {"import metahyper": sorted({"torch", "numpy"} & set(sys.modules))}
from metahyper.cli import main
for argv in json.loads(sys.argv[1]):
    try:
        main(argv)
    except SystemExit:
        pass
    loaded[" ".join(argv)] = sorted({"torch", "numpy"} & set(sys.modules))
print(json.dumps(loaded))
"""


def _suite_folder(root: Path) -> Path:
    """A suite folder as ``metahyper run`` leaves it: one run pretrained, its meta-training stopped."""
    out = root / "suite"
    (out / "runs/conv4/pretrain").mkdir(parents=True)
    (out / "runs/conv4/meta_train").mkdir()
    (out / "suite.yaml").write_text("name: tiny\nruns:\n  conv4: {}\n")
    (out / "runs/conv4/pretrain/done.json").write_text(json.dumps({"config_hash": "0" * 64, "seconds": 12.5,
                                                                 "device": "cpu"}))
    (out / "runs/conv4/meta_train/config.yaml").write_text("meta_train: {iterations: 10}\n")
    (out / "runs/conv4/meta_train/metrics.jsonl").write_text('{"iteration": 4, "loss": 1.2}\n')
    return out


def test_first_commands_and_import_load_no_torch(tmp_path):
    out = _suite_folder(tmp_path)
    commands = [["--version"], ["--help"], ["list", "suites"], ["list", "--help"], ["run", "--help"],
                ["status", "--help"], ["status", str(out)], ["data", "--help"], ["bench", "--help"]]
    done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(commands)], capture_output=True, text=True,
                          cwd=PACKAGE_ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    *_, last = done.stdout.strip().splitlines()
    assert json.loads(last) == {"import metahyper": [], **{" ".join(argv): [] for argv in commands}}
    assert "pretrain    done" in done.stdout and "at iteration 4" in done.stdout  # status read the folder


def test_lazy_names_are_the_modules_own():
    assert metahyper.EpisodeSampler is EpisodeSampler and metahyper.build_model is build_model
    assert metahyper.data.EpisodeSampler is EpisodeSampler and metahyper.meta.adapt is adapt
    assert set(metahyper.__all__) <= set(dir(metahyper))
    assert all(getattr(metahyper, name) is not None for name in metahyper.__all__)
    with pytest.raises(AttributeError, match="no_such_name"):
        metahyper.no_such_name
