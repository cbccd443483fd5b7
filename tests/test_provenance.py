"""A suite's ``provenance:`` section: each key names a setting of the suite or of its runs,
each entry says paper or ours with a reference, and the section changes no config hash and no
result record."""

from __future__ import annotations

import dataclasses

import pytest

from metahyper.config import ConfigError, config_hash
from metahyper.pipeline.stages import STAGES, make_record, stage_config
from metahyper.suite.config import load_suite
from metahyper.suite.provenance import SettingSource, setting_values

PAPER_LR = "{source: paper, ref: 'Section 4.2'}"
OURS = "{source: ours, ref: 'the field s usual count (MAML papers)'}"


def with_provenance(entries: dict[str, str], overrides=()):
    body = ", ".join(f"{key}: {value}" for key, value in entries.items())
    return load_suite("smoke", [*overrides, f"provenance={{{body}}}"])


def test_keys_name_suite_settings_or_run_settings():
    suite = with_provenance({"evaluation.episodes": OURS, "data.image_size": OURS,
                             "targets.synthetic-target.image_size": OURS, "meta_train.maml.inner_lr": PAPER_LR,
                             "pretrain.epochs": OURS, "episodes.query": PAPER_LR,
                             "model.options.variant": PAPER_LR})  # set in one of the two runs only
    assert suite.provenance["meta_train.maml.inner_lr"] == SettingSource("paper", "Section 4.2")
    plain = suite.only("wrn10_1")  # a run's own config keeps a section that names a setting it lacks
    assert plain.provenance == suite.provenance


@pytest.mark.parametrize("key, entry, message", [
    ("evaluation.episode", OURS, r"provenance.evaluation.episode: evaluation has no setting 'episode'; "
                                 r"did you mean 'episodes'\?"),
    ("targets.mini.image_size", OURS, r"provenance.targets.mini.image_size: targets has no entry 'mini'"),
    ("meta_train.maml.inner_steps.train", OURS, r"meta_train.maml.inner_steps is a single setting; it has no 'train'"),
    ("meta_train.inner_lr", OURS, r"meta_train has no setting 'inner_lr'"),
    ("inner_lr", OURS, r"'inner_lr' is neither a suite setting nor a run setting"),
    ("runs.wrn10_1.seed", OURS, r"'runs' is neither a suite setting nor a run setting"),
    ("evaluation.episodes", "{source: book, ref: x}", r"provenance.evaluation.episodes.source: expected one of "
                                                      r"\['paper', 'ours'\], got str 'book'"),
    ("evaluation.episodes", "{source: paper, ref: ' '}",
     r"provenance.evaluation.episodes: ref must not be empty: give the section or table"),
    ("evaluation.episodes", "{source: ours}", r"missing key 'provenance.evaluation.episodes.ref'"),
])
def test_bad_entries_are_refused_naming_the_key(key, entry, message):
    with pytest.raises(ConfigError, match=message):
        with_provenance({key: entry})


def test_the_section_is_in_no_stage_hash_and_in_no_result_record():
    plain = load_suite("smoke")
    marked = with_provenance({"evaluation.episodes": OURS, "meta_train.maml.inner_lr": PAPER_LR})
    for run in plain.runs:
        for stage in STAGES:
            assert config_hash(stage_config(marked, run, stage)) == config_hash(stage_config(plain, run, stage))
    result = type("Result", (), {"per_episode": (0.5, 0.7), "metadata": {
        "way": 5, "shot": 1, "bn_mode": "transductive", "episodes_hash": "h"}})()
    record = make_record(marked, "wrn10_1", "wrn10_1", "synthetic-target", result)
    assert "provenance" not in record.config["run"] and "paper" not in record.config["run"]
    assert record.config == make_record(plain, "wrn10_1", "wrn10_1", "synthetic-target", result).config


def test_values_per_model_from_a_saved_suite():
    suite = load_suite("smoke", ["seeds=[0,1]"])
    runs = {name: dataclasses.asdict(spec) for name, spec in suite.runs.items()}
    saved = {"evaluation": {"episodes": 80}, "seeds": None, "per_shot": False, "runs": runs}  # as expanded
    assert setting_values(saved, "evaluation.episodes") == {"": [80]}
    assert setting_values(saved, "meta_train.maml.inner_lr") == {"wrn10_1": [0.1], "hyper_wrn10_1": [0.1]}
    assert setting_values(saved, "seed") == {"wrn10_1": [0, 1], "hyper_wrn10_1": [0, 1]}  # seeds of one model
    assert setting_values(saved, "seeds") == setting_values(saved, "seed")  # the expansion moved them to the runs
    assert setting_values(saved, "per_shot") == {"wrn10_1": [False], "hyper_wrn10_1": [False]}
    assert setting_values(saved, "model.options.variant") == {"hyper_wrn10_1": [1]}  # only the hyper run sets it
    assert setting_values(saved, "data.image_size") == {}
