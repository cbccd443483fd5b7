"""README.md's Python examples run as written, each block on its own in an empty folder, and
again in the same folder: a reader reruns an example with its files still there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_has_the_public_api_sampler_and_dataset_examples():
    text = "\n".join(BLOCKS)
    for needed in ("metahyper.load_model(", "for support_x, support_y, query_x, query_y in sampler",
                   "EpisodeDataset(", "ImageStore.from_dataset(", "transforms.Torchvision(",
                   'as_meta_model(resnet18(num_classes=5), classifier="fc")', "(metahyper.MetaModel)",
                   "metahyper.adapt(", "metahyper.forward_with("):
        assert needed in text, needed


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_a_readme_python_block_runs_twice(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = compile(BLOCKS[index], f"README.md python block {index + 1}", "exec")
    for _ in range(2):
        exec(code, {"__name__": "__readme__"})  # noqa: S102


def test_the_scripts_name_only_documents_in_the_repository():
    for script in sorted((REPO / "scripts").iterdir()):
        for name in re.findall(r"[\w./-]+\.md\b", script.read_text()):
            assert (REPO / name).is_file(), f"{script.name} names {name}, which is not in the repository"


def test_the_readme_says_the_pretraining_head_has_one_output_per_training_class():
    # tests/meta/test_pretrain.py checks the code: the head trains over every class of the split
    text = " ".join(README.read_text().split())
    assert "The pretraining head has one output per training class" in text
    assert "head has `episodes.way` outputs" not in text
