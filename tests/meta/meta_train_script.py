"""Runs a short meta-training of the toy hyper model; used as a subprocess by the resume test.

usage: meta_train_script.py RUN_DIR [--resume] [--hang-at N]
--hang-at N: at iteration N (after its step) touch RUN_DIR/hanging and sleep, to be SIGKILLed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from maml_toys import FakeSampler, TinyHyperNet, to_float  # noqa: E402

from metahyper.meta.maml import MamlConfig  # noqa: E402
from metahyper.meta.train import MetaTrainConfig, meta_train  # noqa: E402

CONFIG = MetaTrainConfig(
    iterations=12, meta_batch=2, outer_lr=0.01, lr_halve_every=4, min_lr=0.002,
    checkpoint_every=3, validate_every=1, diagnostics_every=5,
    maml=MamlConfig(inner_steps=2, inner_lr=0.1),
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--hang-at", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = TinyHyperNet()

    def validate(model, iteration):
        if iteration == args.hang_at:
            (args.run_dir / "hanging").touch()
            time.sleep(600)
        return {"val_norm": sum(p.detach().norm().item() for p in model.parameters())}

    transform = lambda x, generator: to_float(x, torch.float32)  # noqa: E731
    meta_train(model, FakeSampler(seed=5), transform, CONFIG, args.run_dir, validate=validate, resume=args.resume, progress=False)


if __name__ == "__main__":
    main()
