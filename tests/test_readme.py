"""README.md's Python examples run as written, each block on its own in an empty folder, and
again in the same folder: a reader reruns an example with its files still there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
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
