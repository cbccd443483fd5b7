"""Suites end to end: stages, artifacts, skipping finished stages, resume, reports, data checks."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from data.helpers import write_fc100_pickles, write_miniimagenet_caches
from tiny_suites import SMOKE, paper

from metahyper.config import ConfigError, load_yaml, save_yaml
from metahyper.meta import train
from metahyper.pipeline import stages
from metahyper.pipeline.report import rebuild_report
from metahyper.pipeline.runs import STAGES, run_suite
from metahyper.suite.config import load_suite

REPORT_FILES = ("report.md", "results.csv", "results.json", "accuracy_vs_shots.png", "val_curves.png", "movement.png",
                "norm_ratio.png", "movement_curves.png")
# a published number for the report's headline (in no config hash: the stage folders do not change)
PAPER = "paper=[{model: wrn10_1, way: 5, shot: 1, source: a test, accuracy: 42.5}]"
# where two settings come from (in no config hash either)
PROVENANCE = ("provenance={evaluation.episodes: {source: ours, ref: a toy count}, "
              "meta_train.maml.inner_lr: {source: paper, ref: Section 4.2}}")
REPO = Path(__file__).resolve().parents[1]


def _stage_files(out: Path) -> dict[str, tuple[int, str]]:
    """(mtime_ns, content) of every marker and checkpoint of a suite folder."""
    found = [*out.glob("runs/*/*/done.json"), *out.glob("runs/*/*/*.pt")]
    return {str(p.relative_to(out)): (p.stat().st_mtime_ns, p.read_bytes().hex()[:64]) for p in found}


@pytest.fixture(scope="module")
def smoke_out(tmp_path_factory):
    """The reduced smoke suite, run once for the tests of this module."""
    out = tmp_path_factory.mktemp("smoke")
    written = run_suite(load_suite("smoke", [*SMOKE, PAPER, PROVENANCE]), out, progress=False)
    return out, written


def test_smoke_suite_writes_every_artifact_and_the_report(smoke_out):
    out, written = smoke_out
    assert {p.name for p in written} == set(REPORT_FILES)
    assert all((out / name).stat().st_size > 0 for name in REPORT_FILES)
    for run in ("wrn10_1", "hyper_wrn10_1"):
        assert all((out / "runs" / run / stage / "done.json").is_file() for stage in STAGES)
        assert (out / "runs" / run / "meta_train" / "checkpoint.pt").is_file()
        assert load_suite(out / "runs" / run / "config.yaml").runs.keys() == {run}
    results = json.loads((out / "results.json").read_text())
    models = {r["model"] for r in results["results"]}
    assert models == {f"{run}{method}" for run in ("wrn10_1", "hyper_wrn10_1")
                      for method in ("", "+nearest_centroid", "+logistic_regression")}
    assert len({r["episodes_hash"] for r in results["results"]}) == 1  # every model on the same episodes
    assert {(p["hyper"], p["plain"]) for p in results["paired"]} == {
        ("hyper_wrn10_1", "wrn10_1"), ("hyper_wrn10_1+nearest_centroid", "wrn10_1+nearest_centroid"),
        ("hyper_wrn10_1+logistic_regression", "wrn10_1+logistic_regression")}
    report = (out / "report.md").read_text()
    assert "t_{0.975, n-1}" in report and "BN mode: transductive" in report and "± " in report
    assert re.search(r"\| wrn10_1 \(a test\) \| paper \|(  \|)* 42.5 \|", report) and "## Settings" in report
    # readable alone: the suite's name and description, how it was made, the data, where settings come from
    assert report.startswith("# smoke\n\nPipeline check: synthetic source -> synthetic target")
    assert "_Made with metahyper " in report and "compute summed over the runs: pretraining " in report
    assert "evaluation " in report.split("compute summed over the runs: ")[1].split("\n")[0]
    assert "| source (pretraining, meta-training) | synthetic | train | 16x16 | family: source, num_classes: 6" \
        in report
    assert "| `evaluation.episodes` | 3 | ours | a toy count |" in report
    assert "| `meta_train.maml.inner_lr` | 0.1 | paper | Section 4.2 |" in report
    assert len(list((out / "episodes").glob("*.npz"))) == 1


def test_rerun_skips_finished_stages(smoke_out, monkeypatch):
    out, _ = smoke_out
    before = _stage_files(out)
    for stage in STAGES:
        monkeypatch.setitem(stages.STAGE_RUNNERS, stage, lambda *args: pytest.fail("a finished stage ran again"))
    corrected = PAPER.replace("42.5", "40")  # a corrected published number changes no stage hash,
    run_suite(load_suite("smoke", [*SMOKE, corrected]), out, progress=False)  # nor a dropped provenance
    assert _stage_files(out) == before


def test_report_is_rebuilt_from_run_folders(smoke_out):
    out, _ = smoke_out
    csv = (out / "results.csv").read_text()
    for name in REPORT_FILES:
        (out / name).unlink()
    assert {p.name for p in rebuild_report(out)} == set(REPORT_FILES)
    assert (out / "results.csv").read_text() == csv
    assert re.search(r"\| wrn10_1 \(a test\) \| paper \|(  \|)* 40 \|", (out / "report.md").read_text())  # suite.yaml


def test_a_bad_provenance_in_the_folders_suite_file_is_refused_naming_it(smoke_out, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(smoke_out[0], copy)
    suite = load_yaml(copy / "suite.yaml")
    suite["provenance"] = {"evaluation.episodes": {"source": "book", "ref": "x"}}
    save_yaml(suite, copy / "suite.yaml")
    with pytest.raises(ConfigError, match=re.escape(f"{copy / 'suite.yaml'}: provenance.evaluation.episodes: source: "
                                                    "expected one of ['paper', 'ours']")):
        rebuild_report(copy, tmp_path / "report")
    assert not (tmp_path / "report").exists()


def test_report_of_a_read_only_suite_folder_writes_only_where_asked(smoke_out, tmp_path, read_only_cli):
    out, _ = smoke_out
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    refused = read_only_cli(out, "report", str(out))
    assert refused.returncode == 2 and f"report folder {out} is not writable" in refused.stderr
    assert "pass --out DEST" in refused.stderr
    written = read_only_cli(out, "report", str(out), "--out", str(tmp_path / "report"))
    assert written.returncode == 0, written.stderr
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == sorted(REPORT_FILES)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_changed_config_is_refused_before_any_work(smoke_out):
    out, _ = smoke_out
    with pytest.raises(ConfigError, match="different config"):
        run_suite(load_suite("smoke", [*SMOKE, "meta_train.iterations=5"]), out, progress=False)


def test_killed_meta_training_resumes_from_its_checkpoint(tmp_path, monkeypatch, capsys):
    suite = load_suite("smoke", SMOKE)
    real_step, seen = train.train_step, []

    def killed_at_three(run, sampler, transform, cfg, iteration):
        if iteration == 3:
            raise KeyboardInterrupt
        seen.append(iteration)
        return real_step(run, sampler, transform, cfg, iteration)

    monkeypatch.setattr(train, "train_step", killed_at_three)
    with pytest.raises(KeyboardInterrupt):
        run_suite(suite, tmp_path, runs=["wrn10_1"], stages=["pretrain", "meta_train"], progress=False)
    assert not (tmp_path / "runs/wrn10_1/meta_train/done.json").exists()
    monkeypatch.setattr(train, "train_step", lambda *args: seen.append(args[-1]) or real_step(*args))
    run_suite(suite, tmp_path, runs=["wrn10_1"], stages=["pretrain", "meta_train"], progress=False)
    assert seen == [1, 2, 3, 4]  # iterations 1-2 before the kill, 3-4 after the resume (checkpoint at 2)
    checkpoint = tmp_path.resolve() / "runs/wrn10_1/meta_train/checkpoint.pt"
    assert f"resuming meta-train of wrn10_1 from iteration 2 (checkpoint {checkpoint})" in capsys.readouterr().err
    log = [json.loads(line) for line in (tmp_path / "runs/wrn10_1/meta_train/metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in log if r["kind"] == "train"] == [1, 2, 3, 4]


def test_single_stage_needs_the_stage_before(tmp_path):
    with pytest.raises(ConfigError, match="pretrain stage is not finished"):
        run_suite(load_suite("smoke", SMOKE), tmp_path, runs=["wrn10_1"], stages=["meta_train"], progress=False)


@pytest.mark.parametrize("suite", ["table7-miniimagenet", "table8-fc100-to-miniimagenet", "omniglot-cross-alphabet"])
def test_missing_data_path_fails_fast_naming_suite_field_and_path(suite, tmp_path, monkeypatch):
    monkeypatch.setattr(stages, "load_store", lambda *a, **k: pytest.fail("data read before the check"))
    missing = tmp_path / "nowhere"
    with pytest.raises(ConfigError) as error:
        run_suite(load_suite(suite, [f"data.root={missing}"]), tmp_path / "out", progress=False)
    assert all(part in str(error.value) for part in (suite, "data.root", str(missing), "does not exist"))
    assert not (tmp_path / "out").exists()


def test_unset_data_variable_is_named(monkeypatch, tmp_path):
    monkeypatch.delenv("METAHYPER_DATA", raising=False)
    with pytest.raises(ConfigError, match=r"targets\.miniimagenet\.root .*METAHYPER_DATA.*not set"):
        run_suite(load_suite("table7-miniimagenet", [f"data.root={tmp_path}"]), tmp_path / "out", progress=False)


def _check_table(out: Path, runs: list[str]) -> None:
    results = json.loads((out / "results.json").read_text())
    assert {r["model"] for r in results["results"] if "+" not in r["model"]} == set(runs)
    hyper = {r for r in runs if r.startswith("hyper")}
    assert {p["hyper"] for p in results["paired"] if "+" not in p["hyper"]} == hyper
    assert (out / "report.md").is_file()


def test_table7_runs_end_to_end_on_tiny_miniimagenet_pickles(tmp_path):
    root = write_miniimagenet_caches(tmp_path / "mini", per_class=2)
    run_suite(load_suite("table7-miniimagenet", paper(root, root)), tmp_path / "out", progress=False)
    _check_table(tmp_path / "out", ["resnet12", "hyper_resnet12"])


def test_table8_runs_end_to_end_on_tiny_fc100_and_miniimagenet_pickles(tmp_path):
    fc100 = write_fc100_pickles(tmp_path / "fc100", per_class=2)
    mini = write_miniimagenet_caches(tmp_path / "mini", per_class=2, splits=("test",))
    run_suite(load_suite("table8-fc100-to-miniimagenet", paper(fc100, mini)), tmp_path / "out", progress=False)
    _check_table(tmp_path / "out", ["wrn16_4", "hyper_wrn16_4", "wrn28_4", "hyper_wrn28_4"])
    report = (tmp_path / "out" / "report.md").read_text()
    # the paper's Table 8 numbers under ours, and where each setting comes from (issue 25)
    assert "| hyper_wrn16_4 (Babu et al., Table 8, mean of 3 runs) | paper |  | 43.17 |" in report
    assert "### Where each setting comes from" in report
    for row in ("| `meta_train.maml.inner_lr` | 0.01 | paper |", "| `meta_train.maml.inner_steps` | 1 | ours |",
                "| `evaluation.baseline_bn_mode` | running | ours |", "| `per_shot` | yes | ours |"):
        assert row in report, row


@pytest.mark.realdata
def test_omniglot_suite_runs_on_the_real_archives(tmp_path, omniglot_dir):
    root = omniglot_dir
    overrides = [*paper(root, root, per_class=20, query=2), "data.image_size=28", "targets.*.image_size=28"]
    run_suite(load_suite("omniglot-cross-alphabet", overrides), tmp_path, progress=False)
    _check_table(tmp_path, ["conv4-5way", "hyper_conv4-5way", "conv4-20way", "hyper_conv4-20way"])
