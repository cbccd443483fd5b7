"""Methods in suites (``method:`` per run, the smoke-methods suite end to end through the CLI) and
settings with one home: old suite keys migrate or exit 2 naming the new key, and the stage hashes
of an unchanged MAML suite are the ones its run folders were written with."""

from __future__ import annotations

import json

import pytest
import yaml
from cli_run import run_cli
from tiny_suites import SMOKE

from metahyper.config import config_hash, load_yaml
from metahyper.pipeline.stages import STAGES, stage_config
from metahyper.suite.config import load_suite, suite_path

# sha256 of the smoke suite's stage configs, computed by the code before methods and one home per
# setting existed (commit 18d1396): existing run folders must keep resuming.
SMOKE_HASHES = {
    "wrn10_1": ("15976f276be2cd20a3a12f9e37aebc7ba32f54e86d7bc120e2f7c92a7a2585a0",
                "f097a73ab4d2f91026bb2a983419ae4846b693c84eb0823b441c14c4b9329d11",
                "3c35c7dba7c42e6cb749bf6f4ea0472cf1f9960025bec3b9893c9203456ce35c"),
    "hyper_wrn10_1": ("02bd4514a9efac999d232ef50fe7d6c309ceca9c2e6248f37b9c201e86fe0e0b",
                      "b4fffc0e93d63489386084504756998253d43c78be6629f3bb55937bd08c18a0",
                      "9209120e79bb77110c7b36e3fbdc8753fcfc4c5942b1ad482a7e532311d1554a"),
}


def _main(capsys, *argv: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``metahyper argv``."""
    return run_cli(capsys, *argv)


def _old_smoke(tmp_path, edit=None):
    """smoke.yaml in the layout before one home per setting: ``pretrain.way`` and
    ``meta_train.maml.inner_steps_eval`` on every run; ``edit(data)`` changes it further."""
    data = load_yaml(suite_path("smoke"))
    steps = data["evaluation"].pop("inner_steps_eval")
    for run in data["runs"].values():
        run["pretrain"] = {**run["pretrain"], "way": 5}
        run["meta_train"] = {**run["meta_train"], "maml": {**run["meta_train"]["maml"], "inner_steps_eval": steps}}
    if edit is not None:
        edit(data)
    path = tmp_path / "old-smoke.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_an_unchanged_maml_suite_keeps_its_stage_hashes(tmp_path):
    for suite in (load_suite("smoke"), load_suite(_old_smoke(tmp_path))):
        for run, hashes in SMOKE_HASHES.items():
            assert tuple(config_hash(stage_config(suite, run, stage)) for stage in STAGES) == hashes


def test_old_keys_move_to_their_one_home(tmp_path):
    old, new = load_suite(_old_smoke(tmp_path)), load_suite("smoke")
    assert old.evaluation.inner_steps_eval == 5 and old.runs == new.runs and old.evaluation == new.evaluation


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["runs"]["wrn10_1"]["pretrain"].update(way=20),
     "runs.wrn10_1.pretrain.way moved to episodes.way"),
    (lambda d: d["runs"]["hyper_wrn10_1"]["meta_train"]["maml"].update(inner_steps_eval=7),
     "meta_train.maml.inner_steps_eval moved to evaluation.inner_steps_eval; one value serves every run"),
    (lambda d: d["runs"]["wrn10_1"]["meta_train"]["maml"].update(bn_mode="inductive"),
     "runs.wrn10_1.meta_train.maml.bn_mode moved to evaluation.bn_mode"),
])
def test_old_keys_that_cannot_move_exit_2_naming_the_new_key(capsys, tmp_path, edit, message):
    status, _, err = _main(capsys, "run", str(_old_smoke(tmp_path, edit)), "--out", str(tmp_path / "out"))
    assert status == 2 and message in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("override, message", [
    ("meta_train.maml.inner_steps_eval=3", "meta_train.maml.inner_steps_eval moved to evaluation.inner_steps_eval"),
    ("runs.wrn10_1.pretrain.way=5", "pretrain.way moved to episodes.way"),
    ("method=reptile", "runs.wrn10_1: method: unknown method 'reptile' (known: anil, maml, meta_baseline, protonet)"),
    ("method=protonett", "unknown method 'protonett'; did you mean 'protonet'?"),
    ("runs.hyper_wrn10_1.method=anil", "anil adapts the classifier only"),
])
def test_bad_method_and_old_override_keys_exit_2(capsys, tmp_path, override, message):
    extra = ["runs.hyper_wrn10_1.meta_train.maml.inner_roles=[embedding]"] if "anil" in override else []
    status, _, err = _main(capsys, "run", "smoke", override, *extra, "--out", str(tmp_path / "out"))
    assert status == 2 and message in err, err


def test_method_is_hashed_only_when_not_maml():
    suite = load_suite("smoke", ["runs.wrn10_1.method=protonet"])
    assert stage_config(suite, "wrn10_1", "meta_train")["method"] == "protonet"
    assert "method" not in stage_config(suite, "hyper_wrn10_1", "meta_train")
    assert config_hash(stage_config(suite, "wrn10_1", "pretrain")) == SMOKE_HASHES["wrn10_1"][0]


def test_smoke_methods_suite_runs_tiny_and_its_report_names_each_method(capsys, tmp_path):
    out = tmp_path / "methods"
    status, _, err = _main(capsys, "run", "smoke-methods", *SMOKE, "--out", str(out))
    assert status == 0, err
    results = json.loads((out / "results.json").read_text())
    methods = {r["model"]: r["config"]["evaluation"]["predictor"] for r in results["results"]}
    assert methods == {"hyper_wrn10_1": "maml", "hyper_wrn10_1-anil": "anil", "hyper_wrn10_1-protonet": "protonet",
                       "wrn10_1-protonet": "protonet", **{f"{run}+nearest_centroid": "nearest_centroid" for run in (
                           "hyper_wrn10_1", "hyper_wrn10_1-anil", "hyper_wrn10_1-protonet", "wrn10_1-protonet")}}
    assert {("hyper_wrn10_1-anil", "hyper_wrn10_1"), ("hyper_wrn10_1-protonet", "wrn10_1-protonet")} <= {
        (p["hyper"], p["plain"]) for p in results["paired"]}
    report = (out / "report.md").read_text()
    assert "| model | method | BN | synthetic-target 5-way 1-shot |" in report  # one source and seed: not columns
    assert "Source domain: synthetic-source · training seed: 0 (every model)" in report  # BN: running for baselines
    for model, method in (("hyper_wrn10_1-anil", "anil"), ("wrn10_1-protonet", "protonet")):
        assert f"| {model} | {method} | " in report
    log = (out / "runs/hyper_wrn10_1-protonet/meta_train/metrics.jsonl").read_text().splitlines()
    assert any(json.loads(line).get("kind") == "val" for line in log)
