"""Suite files and settings a hostile or unlucky user may give (issue 28, cases 1, 3, 7 and 12):
each is refused with exit status 2 and a message naming the file or field, before any work and
without writing anything; an alias bomb costs no more memory than a valid suite file."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cli_run import run_cli
from peak_memory import MARGIN_MB, peak_memory
from tiny_suites import SMOKE

from metahyper.config import ConfigError, load_yaml
from metahyper.meta.pretrain import PretrainConfig
from metahyper.meta.train import MetaTrainConfig
from metahyper.resources import SUITES_DIR
from metahyper.safe_yaml import MAX_BYTES, MAX_NODES
from metahyper.suite.config import load_suite

SMOKE_TEXT = (SUITES_DIR / "smoke.yaml").read_text()


def _suite(folder: Path, text: str = SMOKE_TEXT, name: str = "suite.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder / name


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("name", ["ABS", "../../x", "..", ".", "a/b", "runs/../../x", ""])
def test_a_suite_name_must_be_a_plain_name(tmp_path, capsys, monkeypatch, name):
    """Case 1: with no --out, a suite's name picks runs/<name>: a path there is refused, naming
    the field, and nothing is written (not even the default folder)."""
    name = str(tmp_path / "abs" / "folder") if name == "ABS" else name
    suite = _suite(tmp_path / "in", SMOKE_TEXT.replace("name: smoke", f"name: '{name}'"))
    (tmp_path / "cwd" / "deep").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "cwd" / "deep")
    before = _files(tmp_path)
    status, _, err = run_cli(capsys, "run", str(suite), *SMOKE)
    assert status == 2, err
    assert f"suite {suite}: SuiteConfig: name = {name!r} must be a plain name" in err and "pass --out" in err
    assert _files(tmp_path) == before


def test_a_classification_suite_name_must_be_a_plain_name(tmp_path, capsys, monkeypatch):
    text = (SUITES_DIR / "babu-table1-bias-tiny.yaml").read_text().replace("name: babu-table1-bias-tiny",
                                                                            "name: ../../escaped")
    suite = _suite(tmp_path / "in", text)
    monkeypatch.chdir(tmp_path / "in")
    status, _, err = run_cli(capsys, "run", str(suite))
    assert status == 2 and f"{suite}: name = '../../escaped' must be a plain name" in err, err
    assert _files(tmp_path) == ["in", "in/suite.yaml"]


def _alias_bomb(levels: int, width: int = 9) -> str:
    """The smoke suite with a description of ``levels`` + 1 items: 9 values, then each item
    ``width`` aliases of the one before (about 9 * width**levels values in all)."""
    items = ["  - &a0 [x, x, x, x, x, x, x, x, x]"]
    items += [f"  - &a{level} [{', '.join([f'*a{level - 1}'] * width)}]" for level in range(1, levels + 1)]
    return re.sub(r"^description: .*$", lambda _: "description:\n" + "\n".join(items), SMOKE_TEXT, flags=re.M)


def test_a_yaml_alias_bomb_is_refused_naming_the_file_within_the_memory_of_a_valid_file(tmp_path):
    """Case 3: 2 KB of nested aliases (9**10, about 3.5 billion values) is refused before it is
    built; the command's peak memory stays within 300 MB of the same command on a valid suite."""
    bomb = _suite(tmp_path, _alias_bomb(9), "bomb.yaml")
    assert bomb.stat().st_size < 4096
    (tmp_path / "file").write_text("")
    out = ["--out", str(tmp_path / "file" / "out")]  # an unwritable --out: the valid suite stops after its checks
    status, err, bomb_mb = peak_memory("run", str(bomb), *out)
    assert status == 2 and f"{bomb}: refused YAML: expands to more than {MAX_NODES} values" in err, err
    status, err, valid_mb = peak_memory("run", str(_suite(tmp_path, name="valid.yaml")), *out)
    assert status == 2 and "is under" in err and "which is a file" in err, err
    assert bomb_mb < valid_mb + MARGIN_MB, (bomb_mb, valid_mb)


def test_a_value_of_the_wrong_type_is_quoted_in_at_most_a_few_hundred_characters(tmp_path):
    """Case 3: below the budget (9**4 values) the type error quotes a bounded excerpt, not megabytes."""
    suite = _suite(tmp_path, _alias_bomb(3))
    with pytest.raises(ConfigError) as error:
        load_suite(suite)
    message = str(error.value)
    assert f"suite {suite}: description: expected str, got list [[" in message and len(message) < 600, message
    for value, expected in (("'" + "9" * 100_000 + "'", "runs.wrn10_1.seed: expected int, got str '9999"),
                            ("9" * 30, "runs.wrn10_1.seed: must fit in 64 bits (|value| < 2**63), got an "
                                       "integer of 30 digits"),
                            ("9" * 100_000, "invalid YAML: Exceeds the limit")):
        with pytest.raises(ConfigError) as error:
            load_suite("smoke", [f"runs.*.seed={value}"])
        assert expected in str(error.value) and len(str(error.value)) < 1000, str(error.value)[:2000]


def test_a_config_file_past_the_size_limit_is_refused_unread(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("description: '" + "x" * MAX_BYTES + "'\n")
    with pytest.raises(ConfigError, match=f"{path}: refused config file: longer than the {MAX_BYTES} bytes"):
        load_yaml(path)


@pytest.mark.parametrize("override, field", [
    ("meta_train.outer_lr=.inf", "runs.wrn10_1.meta_train.outer_lr: must be a finite number, got inf"),
    ("pretrain.lr=.inf", "runs.wrn10_1.pretrain.lr: must be a finite number, got inf"),
    ("pretrain.momentum=.nan", "runs.wrn10_1.pretrain.momentum: must be a finite number, got nan"),
    ("meta_train.maml.inner_lr=-.inf", "runs.wrn10_1.meta_train.maml.inner_lr: must be a finite number"),
    ("data.images_per_class=1000000000", "data: synthetic data of num_classes=6 x images_per_class=1000000000: "
                                         "6000000000 images x 3 channels x 16x16 pixels need 4291.5 GiB, more than"),
    ("data.image_size=100000", "data: image_size must lie in 1..1024, got 100000"),
    ("targets.*.num_classes=100000000", "targets.synthetic-target: synthetic data of num_classes=100000000"),
    ("evaluation.episodes=1000000000000", "evaluation: episodes must be <= 1000000, got 1000000000000"),
    ("episodes.way=100000000", "episodes: way must be <= 10000, got 100000000"),
    ("meta_train.meta_batch=100000000", "meta_batch must be <= 4096, got 100000000"),
    ("evaluation.soft_kmeans_steps=100000000", "evaluation: soft_kmeans_steps must be <= 10000, got 100000000"),
    ("evaluation.support_augment={copies: 100000000}", "evaluation: support_augment.copies must be <= 1000"),
    ("eval_shots=[100000]", "runs.wrn10_1: eval_shots must be <= 10000, got 100000"),
])
def test_values_that_would_fail_later_are_refused_before_any_work(tmp_path, capsys, override, field):
    """Case 7: non-finite learning rates trained, then failed writing JSON; sizes ended in an
    allocator traceback. Now: exit status 2 naming the field, and no output folder."""
    status, _, err = run_cli(capsys, "run", "smoke", "--out", str(tmp_path / "out"), *SMOKE, override)
    assert status == 2 and field in err and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()


def test_configs_built_in_python_refuse_non_finite_numbers():
    with pytest.raises(ValueError, match="PretrainConfig needs finite numbers, got lr=inf"):
        PretrainConfig(lr=float("inf"))
    with pytest.raises(ValueError, match="MetaTrainConfig needs finite learning rates"):
        MetaTrainConfig(outer_lr=float("inf"))


def test_python_m_cli_does_not_import_a_suite_module_from_the_working_directory(tmp_path):
    """Case 12: ``python -m metahyper.cli`` puts the working directory first on sys.path; a
    stray module there is not imported for a suite's ``imports:`` unless PYTHONPATH names it."""
    (tmp_path / "stray.py").write_text("from pathlib import Path\nPath('imported').write_text('yes')\n"
                                       "raise RuntimeError('the stray module ran')\n")
    suite = _suite(tmp_path, SMOKE_TEXT.replace("name: smoke", "name: smoke\nimports: [stray]"))
    command = [sys.executable, "-m", "metahyper.cli", "run", str(suite), "--out", str(tmp_path / "out")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env)
    assert result.returncode == 2 and "imports[0]: no module named 'stray'" in result.stderr, result.stderr
    assert not (tmp_path / "imported").exists()
    asked = {**env, "PYTHONPATH": os.pathsep.join([".", env.get("PYTHONPATH", "")])}
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=asked)
    assert result.returncode == 2 and "the stray module ran" in result.stderr, result.stderr
    assert (tmp_path / "imported").read_text() == "yes"
