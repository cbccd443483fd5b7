"""The other-weights choice of NOTES.md, from a suite folder's validation curves only.

For every run of the suite folder (``runs/<model>-<shot>shot-s<seed>``) it reads the last
validation point of meta-training (``meta_train/metrics.jsonl``, ``kind: val``: the Latin
alphabet's fixed episodes at the run's shot), then prints, per model, the mean over shots and
seeds with a t-based 95% CI over the 3 seeds, and each hyper treatment's paired advantage over
``frozen`` per seed (averaged over shots) with its t-CI. The test targets are never read.

    python benchmarks/results/other-weights/choose.py OUT/omniglot-to-mnist
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from pathlib import Path

from metahyper.eval.stats import mean_ci

RUN = re.compile(r"^(?P<model>.+)-(?P<shot>\d+)shot-s(?P<seed>\d+)$")


def last_validation(folder: Path) -> float:
    """The accuracy (%) of the last ``val`` record of a run's meta-training log."""
    lines = (folder / "meta_train" / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines if '"val"' in line]
    return 100 * [r for r in records if r.get("kind") == "val"][-1]["accuracy"]


def summary(values: list[float], signed: bool = False) -> str:
    """``mean ± half width`` of the 95% t-CI over seeds, or the mean alone with one seed."""
    sign = "+" if signed else ""
    if len(values) < 2:
        return f"{values[0]:{sign}.2f} (1 seed: no CI)"
    mean, ci = mean_ci(values)
    return f"{mean:{sign}.2f} ± {ci:.2f}"


def main(suite_dir: str) -> None:
    """Print the validation table and the paired advantages (module docstring)."""
    by_model: dict[str, dict[int, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    for folder in sorted(Path(suite_dir, "runs").iterdir()):
        match = RUN.match(folder.name)
        if match and (folder / "meta_train" / "done.json").is_file():
            by_model[match["model"]][int(match["seed"])][int(match["shot"])] = last_validation(folder)
    print("| model | seed: shot -> last validation accuracy (%) | mean over shots and seeds (95% t-CI over seeds) |")
    print("|---|---|---|")
    seed_means = {}
    for model, seeds in by_model.items():
        seed_means[model] = {seed: sum(shots.values()) / len(shots) for seed, shots in seeds.items()}
        detail = "; ".join(f"s{seed}: " + ", ".join(f"{shot}-shot {acc:.2f}" for shot, acc in sorted(shots.items()))
                           for seed, shots in sorted(seeds.items()))
        print(f"| {model} | {detail} | {summary(list(seed_means[model].values()))} |")
    frozen = next((m for m in seed_means if m.endswith("frozen")), None)
    if frozen is None:
        return
    print("\n| treatment - frozen | per seed (points) | mean (95% t-CI over seeds) |\n|---|---|---|")
    for model in seed_means:
        if model.startswith(frozen.rsplit("-", 1)[0]) and model != frozen:
            seeds = sorted(set(seed_means[model]) & set(seed_means[frozen]))
            diffs = [seed_means[model][s] - seed_means[frozen][s] for s in seeds]
            print(f"| {model} | {', '.join(f'{d:+.2f}' for d in diffs)} | {summary(diffs, signed=True)} |")


if __name__ == "__main__":
    main(sys.argv[1])
