"""The command line as documented in docs/suites.md ("Commands"): options and KEY=VALUE in any
order, and exit status 2 with a message naming the file, path or device for damaged checkpoints,
unwritable output folders, missing devices and keys that the suite does not use."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from cli_run import run_cli
from tiny_suites import SMOKE

from metahyper import cli

RUN = ["smoke", "wrn10_1"]


def _cli(*argv: str) -> subprocess.CompletedProcess:
    """``metahyper argv`` in a new process."""
    return subprocess.run([sys.executable, "-m", "metahyper.cli", *argv], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def _main(capsys, *argv: str) -> tuple[int, str]:
    """(exit status, stderr) of ``metahyper argv``."""
    status, _, err = run_cli(capsys, *argv)
    return status, err


@pytest.mark.parametrize("argv, out, args", [
    (["run", "smoke", "--out", "D", "meta_train.iterations=40"], "D", ["smoke", "meta_train.iterations=40"]),
    (["run", "--out", "D", "a=1", "b=2"], "D", ["a=1", "b=2"]),
    (["run", "a=1", "--out", "D", "b=2"], "D", ["a=1", "b=2"]),
    (["evaluate", "smoke", "--out", "D", "wrn10_1", "a=1"], "D", ["smoke", "wrn10_1", "a=1"]),
    (["meta-train", "smoke", "wrn10_1", "a=1", "--out", "D"], "D", ["smoke", "wrn10_1", "a=1"]),
])
def test_options_and_overrides_in_any_order(argv, out, args):
    parsed = cli.parse_args(argv)
    assert parsed.command == argv[0] and parsed.out == Path(out) and parsed.args == args


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    """A suite folder whose wrn10_1 is pretrained, written by the README's form (``--out``
    between the suite and its overrides) in a new process."""
    out = tmp_path_factory.mktemp("cli") / "out"
    result = _cli("pretrain", *RUN, "--out", str(out), *SMOKE)
    assert result.returncode == 0, result.stderr
    assert (out / "runs/wrn10_1/pretrain/done.json").is_file()
    return out


def test_truncated_pretrained_model_exits_2_naming_it(pretrained, tmp_path):
    out = shutil.copytree(pretrained, tmp_path / "out")
    path = out / "runs/wrn10_1/pretrain/pretrained.pt"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    result = _cli("meta-train", *RUN, "--out", str(out), *SMOKE)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"checkpoint {path} is damaged or not a metahyper checkpoint" in result.stderr
    assert f"Delete {path.parent}" in result.stderr and "weights_only" not in result.stderr
    assert not (out / "runs/wrn10_1/meta_train/checkpoint.pt").exists()


class Payload:
    """Unpickling this would create the folder ``target``."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return os.mkdir, (self.target,)


@pytest.mark.parametrize("name", ["pretrained.pt", "pretrain_checkpoint.pt"])
def test_payload_checkpoint_exits_2_and_never_runs(pretrained, tmp_path, capsys, name):
    out = shutil.copytree(pretrained, tmp_path / "out")
    path = out / "runs/wrn10_1/pretrain" / name
    path.write_bytes(pickle.dumps(Payload(tmp_path / "pwned"), protocol=2))
    if name == "pretrain_checkpoint.pt":  # an unfinished pretraining resumes from it
        (path.parent / "done.json").unlink()
        command = "pretrain"
    else:
        command = "meta-train"
    status, err = _main(capsys, command, *RUN, "--out", str(out), *SMOKE)
    assert status == 2 and f"checkpoint {path} is damaged" in err and "weights_only" not in err
    assert not (tmp_path / "pwned").exists()


def test_missing_pretrained_model_of_a_finished_stage_exits_2(pretrained, tmp_path, capsys):
    out = shutil.copytree(pretrained, tmp_path / "out")
    path = out / "runs/wrn10_1/pretrain/pretrained.pt"
    path.unlink()
    status, err = _main(capsys, "meta-train", *RUN, "--out", str(out), *SMOKE)
    assert status == 2 and f"{path} is missing from a finished pretrain stage; delete {path.parent}" in err


def test_out_under_a_file_in_proc_and_a_missing_device_exit_2(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    cases = [(["--out", str(tmp_path / "file" / "out")], f"{tmp_path / 'file'}, which is a file"),
             (["--out", "/proc/metahyper-out"], "/proc/metahyper-out is not writable"),
             ([f"device=cuda:{torch.cuda.device_count()}", "--out", str(tmp_path / "out")],
              f"device='cuda:{torch.cuda.device_count()}'"),
             (["device=gpu", "--out", str(tmp_path / "out")], "device='gpu' is not a device name"),
             (["data.root=/tmp", "--out", str(tmp_path / "out")], "data.root = '/tmp', but synthetic data"),
             (["targets.*.root=/tmp", "--out", str(tmp_path / "out")], "targets.synthetic-target.root = '/tmp'")]
    for args, named in cases:
        status, err = _main(capsys, "run", "smoke", *args, *SMOKE)
        assert status == 2 and named in err and "metahyper run: error:" in err, (args, err)
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_read_only_out_exits_2_before_any_work(tmp_path, read_only_cli):
    (tmp_path / "ro").mkdir()
    result = read_only_cli(tmp_path / "ro", "run", "smoke", "--out", str(tmp_path / "ro" / "out"), *SMOKE)
    assert result.returncode == 2, result.stderr
    assert f"output folder (--out) {tmp_path / 'ro' / 'out'} is not writable" in result.stderr
    assert "Read-only file system" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("argv, message", [
    (["run", "smok"], "unknown suite 'smok' (neither a file nor a built-in suite); did you mean 'smoke'?"),
    (["run", "smoke", "model.name=hyper_wrm"], "model: unknown model 'hyper_wrm'; did you mean 'hyper_wrn'?"),
    (["run", "smoke", "data.dataset=synthetik"], "dataset: unknown data set 'synthetik'; did you mean 'synthetic'?"),
    (["run", "smoke", "method=anill"], "method: unknown method 'anill'; did you mean 'anil'?"),
    (["pretrain", "smoke", "wrn10"], "suite 'smoke' has no run 'wrn10'; did you mean 'wrn10_1'?"),
    (["data", "mnst"], "unknown data set 'mnst'; did you mean 'mnist'?"),
    (["data", "fetch", "omniglt", "--root", "R"], "cannot fetch 'omniglt'; did you mean 'omniglot'?"),
    (["bench", "maml_sped"], "did you mean 'maml'?"),
])
def test_near_miss_names_get_one_suggestion_and_one_usage_line(capsys, tmp_path, argv, message):
    """A configuration error is the message (with the closest known name) and the command's
    one-line usage: no argparse banner before it, no traceback, exit status 2."""
    out = ["--out", str(tmp_path / "out")] if argv[0] in ("run", "pretrain") else []
    status, _, err = run_cli(capsys, *argv, *out)
    lines = err.splitlines()
    assert status == 2 and len(lines) == 2, err
    assert lines[0].startswith(f"metahyper {argv[0]}: error: ") and message in lines[0]
    assert lines[1] == f"usage: {cli.USAGE[argv[0]]}  (metahyper {argv[0]} --help: every option)"
    assert "[-h]" not in err and not (tmp_path / "out").exists()


def test_a_far_miss_gets_no_suggestion_but_the_known_names(capsys):
    status, _, err = run_cli(capsys, "run", "no-such-suite")
    assert status == 2 and "did you mean" not in err and "(known: babu-table1-bias, " in err and "smoke" in err
