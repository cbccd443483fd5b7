"""Files of a suite folder that were truncated, edited or could not be written (issue 28, cases 8
and 9): ``report``, ``run``, ``evaluate`` and ``status`` stop with exit status 2 naming the file and
what to delete, never a traceback; an edited result, checkpoint or episode set is caught by the
SHA-256 its stage recorded (``metahyper.pipeline.manifest``), also when it was re-hashed inside itself."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from cli_run import run_cli
from tiny_suites import SMOKE

from metahyper.data import EpisodeSet

EVALUATED = Path("runs/wrn10_1/evaluate")


@pytest.fixture
def out(smoke_sequential, tmp_path) -> Path:
    """A copy of the finished reduced smoke suite folder."""
    return shutil.copytree(smoke_sequential, tmp_path / "out")


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_a_truncated_done_json_stops_report_run_and_status_naming_it(out, capsys):
    marker = out / EVALUATED / "done.json"
    _truncate(marker)
    for argv in (["report", str(out)], ["run", "smoke", "--out", str(out), *SMOKE]):
        status, _, err = run_cli(capsys, *argv)
        assert status == 2 and f"{marker} is unreadable or not valid JSON (truncated or edited" in err, err
        assert "delete it to redo the end of that stage" in err and "Traceback" not in err
    status, stdout, err = run_cli(capsys, "status", str(out))
    assert status == 2 and f"error: {marker} is unreadable or not valid JSON" in err
    assert "    evaluate    damaged" in stdout and "    meta-train  done" in stdout


@pytest.mark.parametrize("damage", ["truncated", "edited"])
def test_a_damaged_or_edited_results_json_is_refused_by_report_and_status(out, capsys, damage):
    """Case 9: an edited results.json (99%) was reported as is."""
    results = out / EVALUATED / "results.json"
    if damage == "truncated":
        _truncate(results)
    else:
        records = json.loads(results.read_text())
        records[0]["per_episode"] = [1.0] * len(records[0]["per_episode"])
        results.write_text(json.dumps(records, indent=1) + "\n")
    report = (out / "report.md").read_bytes()
    status, _, err = run_cli(capsys, "report", str(out))
    expected = (f"{results} differs from the SHA-256 recorded in {out / EVALUATED / 'done.json'} when that stage "
                f"finished: it was edited, damaged or replaced; delete {out / EVALUATED} (and the later stages' "
                "folders of that run) to redo that stage")
    assert status == 2 and expected in err, err
    assert (out / "report.md").read_bytes() == report  # nothing rewritten from it
    status, stdout, err = run_cli(capsys, "status", str(out))
    assert status == 2 and expected in err and "    evaluate    damaged" in stdout


def test_a_results_json_of_an_older_version_without_hashes_is_still_checked_as_json(out, capsys):
    marker = out / EVALUATED / "done.json"
    recorded = json.loads(marker.read_text())
    del recorded["artifacts"]
    marker.write_text(json.dumps(recorded))
    _truncate(out / EVALUATED / "results.json")
    status, _, err = run_cli(capsys, "report", str(out))
    assert status == 2 and f"{out / EVALUATED / 'results.json'} is unreadable or not valid JSON" in err, err


def _evaluate_again(out: Path, capsys, run: str = "hyper_wrn10_1") -> tuple[int, str]:
    shutil.rmtree(out / "runs" / run / "evaluate")
    status, _, err = run_cli(capsys, "evaluate", "smoke", run, "--out", str(out), *SMOKE)
    return status, err


def test_an_episode_set_edited_and_re_hashed_inside_itself_is_refused(out, capsys):
    """Case 9: a set's hash was kept only inside the file it protects; edit the episodes and save
    them again (a valid file with a matching inner hash): the manifest beside it still catches it."""
    (path,) = (out / "episodes").glob("*.npz")
    episodes = EpisodeSet.load(path)
    edited = EpisodeSet(episodes.rows.flip(0), episodes.labels, episodes.way, episodes.shot, episodes.query,
                        episodes.seed, episodes.split_name, episodes.store_fingerprint, episodes.groups)
    edited.save(path)
    assert EpisodeSet.load(path).hash == edited.hash  # it passes its own check
    status, err = _evaluate_again(out, capsys)
    assert status == 2 and f"{path} differs from the SHA-256 recorded in {out / 'episodes' / 'manifest.json'}" in err
    assert "delete it and the evaluate stages that used it" in err and "Traceback" not in err
    status, _, err = run_cli(capsys, "report", str(out))  # wrn10_1's finished evaluation used it
    assert status == 2 and f"{path} differs from the SHA-256 recorded in {out / EVALUATED / 'done.json'}" in err


def test_a_truncated_episode_set_is_refused_naming_it(out, capsys):
    (path,) = (out / "episodes").glob("*.npz")
    _truncate(path)
    status, err = _evaluate_again(out, capsys)
    assert status == 2 and f"{path} differs from the SHA-256" in err and "Traceback" not in err, err


def test_an_edited_checkpoint_is_refused_by_evaluate(out, capsys):
    path = out / "runs/hyper_wrn10_1/meta_train/checkpoint.pt"
    state = torch.load(path, weights_only=True)
    name = next(iter(state["model"]))
    state["model"][name] = state["model"][name] + 1
    torch.save(state, path)  # a valid checkpoint of the same config: only its hash tells
    status, err = _evaluate_again(out, capsys)
    assert status == 2 and f"{path} differs from the SHA-256 recorded in {path.parent / 'done.json'}" in err, err


def test_a_full_disk_is_named_and_leaves_nothing_half_written(tmp_path):
    """Case 8: a full disk ended in a traceback with ENOSPC only in a chained exception. On a
    512 KiB tmpfs the first checkpoint (about 1 MB) does not fit: exit 2 naming it, no temporary
    file left. Needs ``unshare --mount`` (root in a namespace-capable container)."""
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True) if shutil.which("unshare") else None
    if probe is None or probe.returncode != 0:
        pytest.skip("needs `unshare --mount` to mount a small tmpfs")
    disk = tmp_path / "disk"
    disk.mkdir()
    command = shlex.join([sys.executable, "-m", "metahyper.cli", "run", "smoke", "wrn10_1", "--out",
                          str(disk / "out"), *SMOKE])
    script = (f"mount -t tmpfs -o size=512k tmpfs {shlex.quote(str(disk))} && {{ {command}; echo exit=$?; "
              f"find {shlex.quote(str(disk))} -name '*.tmp'; }}")
    result = subprocess.run(["unshare", "--mount", "sh", "-c", script], capture_output=True, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    checkpoint = disk / "out/runs/wrn10_1/pretrain/pretrain_checkpoint.pt"
    assert result.stdout.splitlines() == ["exit=2"], (result.stdout, result.stderr)  # and no *.tmp found
    assert f"{checkpoint} could not be written: no space left on its device" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "run the same command again to resume" in result.stderr
