"""Within-group episodes and an evaluation way in suites: ``episodes.groups`` (training),
``data.val_groups`` (validation), ``targets.<name>.groups`` (evaluation) and ``episodes.eval_way``,
on generated Omniglot archives with known alphabets; bad settings exit 2 naming the field before
any work; the built-in suites keep their stage-config hashes."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
import yaml
from cli_run import run_cli
from data.archives import omniglot_zip
from test_method_suites import SMOKE_HASHES

from metahyper.config import config_hash, load_yaml
from metahyper.data import EpisodeSampler, load_store
from metahyper.pipeline.stages import STAGES, Workspace, episode_set, stage_config
from metahyper.resources import SUITES_DIR, known_suites
from metahyper.suite.config import load_suite
from metahyper.suite.data_paths import resolve_data_paths

# characters per alphabet (4 images each), under the real small-set alphabet names
# (data_splits/omniglot.json): 10-way training tasks fit only Balinese and Greek, 5-way test
# tasks only Japanese_(katakana) and Sanskrit
TRAIN = {"Balinese": 10, "Early_Aramaic": 4, "Greek": 12, "Korean": 3}
VAL = {"Latin": 6}
TEST = {"Japanese_(katakana)": 6, "Sanskrit": 5, "Tagalog": 3}

# sha256 of the JSON {run: [pretrain, meta_train, evaluate stage hashes]} (sorted keys) of every
# built-in meta suite, computed on main before groupings and eval_way existed (commit 43b5cbc):
# their run folders must keep resuming. A suite changed on purpose updates its line.
BUILTIN_SUITE_HASHES = {
    "omniglot-cross-alphabet": "5d824c6411c64d93b1ee73cbaa6701e5a43a91bbc7db8edf1120cfcc3217b8ce",
    "omniglot-lake": "9b9f3ecb561bfc7fec2b3eda2bbad69a925ca122d00d8c10c617e0af15db5ac2",
    "omniglot-lr-sweep": "55baae2f20c6a231776b9a6d51421940ff887931bda9a64677dae308e9828315",
    "omniglot-maml": "55ba40fa3d36c2e219567f0fe648e759c853a12cecc0228272fe91c12e072271",
    "omniglot-seeds": "de01a3641c2ed67f41ef328fbb5d6e1e840d5d2fd9757d517965fc23e9988cdd",
    "omniglot-to-mnist": "f591ec160f9e46451f13dfc8e2519b96079161e8f3c3bfb81e5ac54f31b15757",
    "smoke": "5f56a0ca57b5e7692beac0dd7ef4f752ba24eb56710e9b5792ae5c51a35bcd9b",
    "smoke-methods": "6663739d4dcbff8d5180c528582577037da5d6d0cf5d8f3688027664cbe162f6",
    "smoke-seeds": "058f4b5276cb02ec281147753e2c025f66c1024678d59310fb9fce59d3db74d9",
    "table7-miniimagenet": "af4d712c83a28a494386a299964204d125fd000c3557214adf85b6f08180720b",
    "table8-fc100-to-miniimagenet": "23016d304aac084feebba2148c68051aef082a3700c1793b77f7a677c625f78e",
}


@pytest.fixture(scope="module")
def suite_file(tmp_path_factory):
    """The generated archives and a one-run suite on them: ProtoNet trained 10-way within an
    alphabet, validated and evaluated 5-way within an alphabet, with a nearest-centroid baseline."""
    root = tmp_path_factory.mktemp("omniglot-groups")
    omniglot_zip(root / "images_background_small1.zip", {**TRAIN, **VAL}, per_char=4)
    omniglot_zip(root / "images_background_small2.zip", TEST, per_char=4)
    data = {"dataset": "omniglot", "root": str(root), "image_size": 16, "images_per_class": 4}
    suite = {
        "name": "groups-toy",
        "data": {**data, "split": "train", "val_split": "val", "val_groups": "alphabet"},
        "targets": {"small2": {**data, "split": "test", "groups": "alphabet"}},
        "runs": {"proto": {
            "model": {"name": "conv4"}, "method": "protonet", "pretrain": {"epochs": 1, "batch_size": 32},
            "episodes": {"way": 10, "shot": 1, "query": 2, "groups": "alphabet", "eval_way": 5},
            "meta_train": {"iterations": 4, "meta_batch": 2, "checkpoint_every": 2, "validate_every": 2,
                           "diagnostics_every": 2}}},
        "evaluation": {"shots": [1], "query": 2, "episodes": 3, "val_episodes": 2, "batch_tasks": 2,
                       "baselines": {"nearest_centroid": {}}},
        "device": "cpu",
    }
    path = root / "groups-toy.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


def alphabet(class_name: str) -> str:
    return class_name.split("/")[0]


def test_training_validation_and_evaluation_episodes_lie_in_one_alphabet(capsys, monkeypatch, tmp_path, suite_file):
    drawn = []  # (split name, class names of the episode's rows), for every episode the suite draws
    original = EpisodeSampler.episode_task

    def spy(self, index):
        rows, labels = original(self, index)
        drawn.append((self.split_name, [self.store.class_names[int(self.store.labels[r])] for r in rows]))
        return rows, labels

    monkeypatch.setattr(EpisodeSampler, "episode_task", spy)
    status, _, err = run_cli(capsys, "run", str(suite_file), "--out", str(tmp_path))
    assert status == 0, err
    expected = {"train": (10, {"Balinese", "Greek"}), "val": (5, {"Latin"}),
                "test": (5, {"Japanese_(katakana)", "Sanskrit"})}
    assert {split for split, _ in drawn} == set(expected)
    for split, names in drawn:
        way, eligible = expected[split]
        assert len(set(names)) == way and len({alphabet(n) for n in names}) == 1 and alphabet(names[0]) in eligible
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    assert {(r["model"], r["way"], r["config"]["evaluation"]["groups"]) for r in results} == {
        ("proto", 5, "alphabet"), ("proto+nearest_centroid", 5, "alphabet")}
    assert sorted(p.name for p in (tmp_path / "episodes").iterdir()) == [
        "manifest.json", "small2-5w1s-q2-n3-seed0-within-alphabet.npz"]  # manifest: the sets' SHA-256
    assert "Target small2: each episode's classes come from one group of the grouping 'alphabet'." in (
        tmp_path / "report.md").read_text()
    log = [json.loads(line) for line in (tmp_path / "runs/proto/meta_train/metrics.jsonl").read_text().splitlines()]
    assert any(record.get("kind") == "val" for record in log)


def test_grouped_and_ungrouped_episode_sets_never_share_a_file(tmp_path, suite_file):
    sets = []
    for groups in ("alphabet", "null"):
        overrides = [f"targets.small2.groups={groups}", "evaluation.episodes=20"]
        suite = resolve_data_paths(load_suite(suite_file, overrides))
        ws = Workspace(suite, tmp_path, torch.device("cpu"))
        sets.append(episode_set(ws, "small2", ws.store("targets.small2", suite.targets["small2"]), 5, 1))
    assert sorted(p.name for p in (tmp_path / "episodes").iterdir()) == [
        "manifest.json", "small2-5w1s-q2-n20-seed0-within-alphabet.npz", "small2-5w1s-q2-n20-seed0.npz"]
    grouped, plain = sets
    assert (grouped.groups, plain.groups) == ("alphabet", None) and grouped.hash != plain.hash
    store = load_store("omniglot", suite_file.parent, "test", image_size=16, images_per_class=4)
    spans = [len({alphabet(store.class_names[int(store.labels[r])]) for r in rows}) for rows in plain.rows]
    assert max(spans) > 1  # without groups, tasks mix alphabets


def _suite_with(tmp_path, suite_file, edit):
    data = load_yaml(suite_file)
    edit(data)
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.mark.parametrize("overrides, message", [
    (["runs.proto.episodes.groups=script"], "runs.proto.episodes: groups: unknown grouping 'script'; known "
                                            "groupings: alphabet"),
    (["targets.small2.groups=script"], "targets.small2: groups: unknown grouping 'script'"),
    (["data.val_groups=script"], "data: val_groups: unknown grouping 'script'"),
    (["data.val_split=null"], "data: val_groups='alphabet' needs val_split"),
    (["runs.proto.episodes.way=13"], "runs.proto.episodes.groups = 'alphabet' (13-way): way=13 exceeds the classes "
                                     "of every group (largest: 12 classes)"),
    (["runs.proto.episodes.eval_way=7", "data.val_split=null", "data.val_groups=null"],
     "targets.small2.groups = 'alphabet' with runs.proto (7-way): way=7 exceeds the classes of every group "
     "(largest: 6 classes)"),
    (["runs.proto.method=maml"], "runs.proto: episodes.eval_way=5 differs from episodes.way=10, but method 'maml' "
                                 "classifies with a head of `way` outputs"),
    (["runs.proto.method=anil"], "but method 'anil' classifies with a head of `way` outputs"),
    (["runs.proto.episodes.eval_way=1"], "runs.proto.episodes: eval_way must be >= 2, got 1"),
])
def test_bad_group_and_way_settings_exit_2_naming_the_field_before_any_work(capsys, tmp_path, suite_file, overrides,
                                                                             message):
    status, _, err = run_cli(capsys, "run", str(suite_file), *overrides, "--out", str(tmp_path / "out"))
    assert status == 2 and message in err, err
    assert not (tmp_path / "out" / "runs").exists()


def test_a_grouping_that_does_not_fit_the_data_exits_2_naming_the_field(capsys, tmp_path):
    status, _, err = run_cli(capsys, "run", "smoke", "targets.*.groups=alphabet", "--out", str(tmp_path / "out"))
    assert status == 2 and "targets.synthetic-target.groups = 'alphabet' with runs.wrn10_1 (5-way): grouping " \
                           "'alphabet' needs class names 'alphabet/character'" in err, err
    assert not (tmp_path / "out" / "runs").exists()


def _digest(suite) -> str:
    hashes = {run: [config_hash(stage_config(suite, run, stage)) for stage in STAGES] for run in suite.runs}
    return hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()


def test_built_in_suites_keep_their_stage_hashes():
    meta = [name for name in known_suites() if load_yaml(SUITES_DIR / f"{name}.yaml").get("kind", "meta") == "meta"]
    assert set(BUILTIN_SUITE_HASHES) <= set(meta)
    for name, digest in BUILTIN_SUITE_HASHES.items():
        assert _digest(load_suite(name)) == digest, name
    explicit = load_suite("smoke", ["episodes.eval_way=5"])  # eval_way equal to way: the same runs
    for run, hashes in SMOKE_HASHES.items():
        assert tuple(config_hash(stage_config(explicit, run, stage)) for stage in STAGES) == hashes


@pytest.mark.parametrize("base, override, changed", [
    ([], "runs.wrn10_1-protonet.episodes.groups=alphabet", {"meta_train", "evaluate"}),
    ([], "data.val_groups=alphabet", {"meta_train", "evaluate"}),
    ([], "targets.*.groups=alphabet", {"evaluate"}),
    ([], "runs.wrn10_1-protonet.episodes.eval_way=3", {"meta_train", "evaluate"}),  # meta_train: its validation
    (["data.val_split=null"], "runs.wrn10_1-protonet.episodes.eval_way=3", {"evaluate"}),
    ([], "runs.wrn10_1-protonet.meta_augment=affine", {"meta_train", "evaluate"}),
    ([], "runs.wrn10_1-protonet.augment=affine", {"pretrain", "meta_train", "evaluate"}),
    ([], "evaluation.baseline_bn_mode=transductive", {"evaluate"}),
    ([], "runs.wrn10_1-protonet.meta_train.maml.other_weights=outer", {"meta_train", "evaluate"}),
])
def test_each_setting_enters_the_hashes_of_the_stages_it_changes(base, override, changed):
    base, edited = load_suite("smoke-methods", base), load_suite("smoke-methods", [*base, override])
    run = "wrn10_1-protonet"
    differ = {s for s in STAGES if config_hash(stage_config(base, run, s)) != config_hash(stage_config(edited, run, s))}
    assert differ == changed


@pytest.mark.realdata
def test_within_alphabet_20_way_tasks_on_the_real_small2_alphabets(capsys, tmp_path, omniglot_dir):
    store = load_store("omniglot", omniglot_dir, "test")  # Japanese 47, Sanskrit 42, Tagalog 17 characters
    sampler = EpisodeSampler(store, 20, 1, 1, seed=0, split_name="test", groups="alphabet")
    seen = set()
    for index in range(100):
        names = [store.class_names[int(store.labels[r])] for r in sampler.episode_rows(index)]
        assert len(set(names)) == 20 and len({alphabet(n) for n in names}) == 1
        seen.add(alphabet(names[0]))
    assert seen == {"Japanese_(katakana)", "Sanskrit"}
    # 39 characters in all, 22 in the larger alphabet: 23-way tasks fit the store but no alphabet
    status, _, err = run_cli(capsys, "run", "omniglot-cross-alphabet", f"data.root={omniglot_dir}",
                             f"targets.*.root={omniglot_dir}", "targets.*.groups=alphabet", "episodes.way=23",
                             "targets.*.options={alphabets: [Tagalog, Early_Aramaic]}", "--out", str(tmp_path / "out"))
    assert status == 2 and "targets.omniglot-small2.groups = 'alphabet' with runs.conv4-5way (23-way): way=23 " \
                           "exceeds the classes of every group (largest: 22 classes)" in err, err
    assert not (tmp_path / "out" / "runs").exists()
