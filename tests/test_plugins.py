"""User code through the plugin mechanism (``metahyper.plugins``): a suite's ``imports``, the
``--import`` flag and entry points of the group ``metahyper.plugins`` (a real ``.dist-info`` on
sys.path), with the plugin package ``tests/plugin_pkg``; errors exit 2 naming the module."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from cli_run import run_cli
from tiny_suites import TRAINING

from metahyper import plugins
from metahyper.classify import load_classify_suite
from metahyper.config import ConfigError
from metahyper.data.sources import DATASETS
from metahyper.models import MODELS
from metahyper.suite.config import load_suite

WAY, PER_CLASS, SIZE = 2, 4, 16


def _main(capsys, *argv: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``metahyper argv``."""
    return run_cli(capsys, *argv)


def write_npy_folder(root: Path, classes: int = 6) -> Path:
    """The plugin data set's files: per split ``classes`` classes x PER_CLASS 16x16 RGB images."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val", "test"):
        labels = np.repeat(np.arange(classes), PER_CLASS)
        images = rng.integers(0, 256, (len(labels), SIZE, SIZE, 3), dtype=np.uint8)
        np.save(root / f"{split}_images.npy", images)
        np.save(root / f"{split}_labels.npy", labels)
    return root


def write_suite(folder: Path, imports: object = ("plugin_pkg.toy",)) -> Path:
    """A suite whose models (toy_convnet, its lazily derived hyper variant) and data set
    (npy_folder) exist only once its ``imports`` are imported."""
    data = {"dataset": "npy_folder", "root": str(write_npy_folder(folder / "data"))}
    run = {"model": {"name": "toy_convnet", "options": {"width": 8}}, "episodes": {"way": WAY, "shot": 1},
           "pretrain": {"way": WAY}}
    suite = {"name": "plugin-toy", "imports": list(imports) if isinstance(imports, tuple) else imports,
             "data": {**data, "split": "train", "val_split": "val"},
             "targets": {"toy-test": {**data, "split": "test"}},
             "runs": {"toy_convnet": run,
                      "hyper_toy_convnet": {**run, "model": {"name": "hyper_toy_convnet",
                                                             "options": {"width": 8, "variant": 1}}},
                      "hyper_toy_convnet-proto": {**run, "method": "toy_protonet", "compare_with": "hyper_toy_convnet",
                                                  "model": {"name": "hyper_toy_convnet",
                                                            "options": {"width": 8, "variant": 1}}}},
             "evaluation": {"baselines": {"nearest_centroid": {}}}}
    path = folder / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


def test_a_suite_with_imports_runs_a_plugin_backbone_its_hyper_variant_and_data_set(
        isolated_registries, capsys, tmp_path):
    out = tmp_path / "out"
    status, stdout, err = _main(capsys, "run", str(write_suite(tmp_path)), *TRAINING, "--out", str(out))
    assert status == 0, err
    results = json.loads((out / "results.json").read_text())
    assert {r["model"] for r in results["results"]} == {
        f"{run}{method}" for run in ("toy_convnet", "hyper_toy_convnet", "hyper_toy_convnet-proto")
        for method in ("", "+nearest_centroid")}
    # the plugin's method trained and evaluated the third run, and the report names it
    rows = [line for line in (out / "report.md").read_text().splitlines() if line.startswith("| hyper_toy_convnet-proto |")]
    assert rows and all("| toy_protonet |" in line for line in rows), rows
    assert {(p["hyper"], p["plain"]) for p in results["paired"]} >= {("hyper_toy_convnet", "toy_convnet")}
    assert all(r["n"] == 3 for r in results["results"])  # TRAINING: 3 evaluation episodes
    # a run folder's config is a one-run suite that keeps its imports
    assert load_suite(out / "runs/hyper_toy_convnet/config.yaml").imports == ("plugin_pkg.toy",)


def test_import_flag_lists_and_loads_the_plugin_names(isolated_registries, capsys, tmp_path):
    status, stdout, err = _main(capsys, "list", "models", "--import", "plugin_pkg.toy")
    assert status == 0, err
    assert {"toy_convnet", "hyper_toy_convnet", "ha_toy_convnet", "bayes_toy_convnet"} <= set(stdout.split())
    root = write_npy_folder(tmp_path / "data", classes=3)
    status, stdout, err = _main(capsys, "data", "npy_folder", "--root", str(root), "--split", "val",
                                "--import", "plugin_pkg.toy")
    assert status == 0, err  # written above: 3 classes x 4 images of 16x16x3
    assert "images: 12 x (3, 16, 16) uint8" in stdout and "classes: 3 (val-0, val-1, val-2)" in stdout
    assert "images per class: 4..4" in stdout


@pytest.mark.parametrize("imports, named", [
    (("no_such_module",), "imports[0]: no module named 'no_such_module'"),
    (("plugin_pkg.toy", "plugin_pkg.nope"), "imports[1]: no module named 'plugin_pkg.nope'"),
    (("plugin_pkg.broken",), "imports[0]: importing module 'plugin_pkg.broken' failed: RuntimeError"),
    ("plugin_pkg.toy", "imports must be a list of module names"),
])
def test_bad_suite_imports_exit_2_naming_the_field_and_module(isolated_registries, capsys, tmp_path, imports,
                                                              named):
    path = write_suite(tmp_path, imports)
    status, _, err = _main(capsys, "run", str(path), "--out", str(tmp_path / "out"))
    assert status == 2 and f"suite {path}: {named}" in err, err
    assert not (tmp_path / "out").exists()


def test_a_classify_suite_imports_its_models_before_validation(isolated_registries, tmp_path):
    suite = {"kind": "classify", "name": "toy", "models": [{"label": "hyper toy", "model": "hyper_toy_convnet",
                                                            "options": {"width": 8}}],
             "data": {"dataset": "npy_folder", "root": str(write_npy_folder(tmp_path / "data"))}}
    path = tmp_path / "classify.yaml"
    path.write_text(yaml.safe_dump(suite))
    with pytest.raises(ConfigError, match="models\\[0\\].model: unknown model 'hyper_toy_convnet'"):
        load_classify_suite(path)
    path.write_text(yaml.safe_dump({**suite, "imports": ["plugin_pkg.toy"]}))
    assert load_classify_suite(path).models[0].model == "hyper_toy_convnet"


def test_missing_import_flag_module_exits_2_naming_the_flag(isolated_registries, capsys):
    status, _, err = _main(capsys, "list", "models", "--import", "no_such_module")
    assert status == 2 and "--import no_such_module: no module named 'no_such_module'" in err, err


def _dist_info(tmp_path: Path, *entries: str) -> Path:
    """A site folder holding an installed distribution ``toy-plugins`` that declares ``entries``
    in the group ``metahyper.plugins`` (what ``pip install`` of a plugin package leaves)."""
    info = tmp_path / "site" / "toy_plugins-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugins\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[metahyper.plugins]\n" + "\n".join(entries) + "\n")
    return info.parent


@pytest.fixture
def fresh_plugins(isolated_registries, monkeypatch, tmp_path):
    """``install(*entries)``: an installed plugin distribution, with the entry points not yet
    loaded in this process; ``scans`` counts the entry-point scans."""
    scans, scan = [], importlib.metadata.entry_points
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: scans.append(kw) or scan(**kw))
    monkeypatch.setitem(plugins._state, "status", "not loaded")

    def install(*entries: str) -> list:
        monkeypatch.syspath_prepend(str(_dist_info(tmp_path, *entries)))
        return scans

    return install


def test_entry_point_plugins_load_once_at_the_first_lookup(fresh_plugins):
    scans = fresh_plugins("toy = plugin_pkg.toy", "narrow = plugin_pkg.toy:register_narrow")
    assert "hyper_toy_convnet" in MODELS  # a module entry point, loaded by the lookup itself
    assert "npy_folder" in DATASETS.names()
    assert {"toy_convnet8", "hyper_toy_convnet8"} <= set(MODELS.names())  # the callable form, called
    assert scans == [{"group": "metahyper.plugins"}]


def test_a_failing_plugin_is_named_and_stays_failed(fresh_plugins, capsys):
    fresh_plugins("broken = plugin_pkg.broken")
    for _ in range(2):
        with pytest.raises(plugins.PluginError, match="plugin 'broken' .*'plugin_pkg.broken'.*'toy-plugins'.*"
                                                      "RuntimeError: plugin_pkg.broken cannot be imported"):
            MODELS.names()
    status, _, err = _main(capsys, "list", "datasets")
    assert status == 2 and "metahyper plugin 'broken'" in err
