"""The recipe search behind benchmarks/suites/omniglot-minimal.yaml, on validation data only.

Trains on the small1 training alphabets (Balinese, Early_Aramaic, Greek, Korean; rotations as
classes) and prints the accuracy on 50 fixed within-alphabet 20-way 1-shot episodes of the
held-out Latin alphabet (15 queries per class) every ``--val-every`` iterations. The test
alphabets are never read. The runs in recipe_logs/ (NOTES.md) ran on one torch thread. All but
pn60g_aff_h400 (tried after the suite runs, with today's code) were made before fused batch norm
landed, and their ``--affine`` drew Koch et al.'s distortions with the same ranges from an inline
copy of ``transforms.random_affine`` in float32, so a rerun of those gives nearby, not identical,
numbers. Examples (the logged runs):

    python recipe_search.py --way 60 --query 5 --iters 1000 --grouped 1 --out runs/pn60g         # pn60g
    python recipe_search.py --way 60 --query 5 --iters 1000 --grouped 1 --affine 1 --out runs/a  # pn60g_aff
    python recipe_search.py --method maml --way 20 --query 5 --iters 600 --meta-batch 4 --val-every 100 \\
        --val-episodes 30 --grouped 1 --pre-epochs 10 --inner-lr 0.1 --inner-steps 3 --halve 200 --out runs/m
    python recipe_search.py --way 60 --iters 1200 --grouped 1 --affine 1 --halve 400 --out runs/h  # pn60g_aff_h400
"""
import argparse
import json
import os
import time
from pathlib import Path

import torch

from metahyper.data import EpisodeSampler, fixed_episodes, load_store
from metahyper.data.presets import test_transform, train_transform
from metahyper.eval.evaluate import evaluate
from metahyper.meta.maml import MamlConfig
from metahyper.meta.methods import make_method
from metahyper.meta.pretrain import PretrainConfig, pretrain
from metahyper.meta.train import MetaTrainConfig, meta_train
from metahyper.models import build_model

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
for name, kind, default in [("model", str, "conv4"), ("variant", int, 1), ("method", str, "protonet"), ("way", int, 60),
                            ("shot", int, 1), ("query", int, 5), ("iters", int, 2000), ("meta-batch", int, 1),
                            ("lr", float, 1e-3), ("halve", int, 2000), ("rot", int, 1), ("grouped", int, 0),
                            ("affine", int, 0), ("pre-epochs", int, 0), ("inner-lr", float, 0.1),
                            ("inner-steps", int, 3), ("steps-eval", int, 5), ("first-order", int, 0),
                            ("val-every", int, 200), ("val-episodes", int, 50), ("seed", int, 0), ("size", int, 28)]:
    parser.add_argument(f"--{name}", type=kind, default=default)
parser.add_argument("--out", required=True)
args = parser.parse_args()
torch.set_num_threads(1)
root = Path(os.environ.get("METAHYPER_DATA", Path(__file__).resolve().parents[4] / "shared" / "data")) / "omniglot"
train = load_store("omniglot", root, "train", rotations=bool(args.rot), image_size=args.size)
val = load_store("omniglot", root, "val", image_size=args.size)
print(train.num_classes, "train classes", len(train.labels), "images;", val.num_classes, "val classes", flush=True)
torch.manual_seed(args.seed)
hyper = args.model.startswith("hyper")
head = args.way if args.method != "protonet" else 20
model = build_model(args.model, head, in_channels=1, **({"variant": args.variant} if hyper else {}))
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
augmented = train_transform(1, "affine" if args.affine else False)
start = time.process_time()
if args.pre_epochs:
    config = PretrainConfig(epochs=args.pre_epochs, batch_size=64, optimizer="adam", lr=1e-3, weight_decay=0.0,
                            seed=args.seed, output_norm_penalty=6.25e-5 if hyper else 0.0)
    pretrain(model, train.images, train.labels, augmented, config, out / "pre", progress=False, way=head)
print("pretrain cpu", time.process_time() - start, flush=True)
sampler = EpisodeSampler(train, args.way, args.shot, args.query, args.seed, split_name="train",
                         groups="alphabet" if args.grouped else None)
episodes = fixed_episodes(val, 20, 1, 15, args.val_episodes, 0, split_name="val")
maml = MamlConfig(inner_steps=args.inner_steps, inner_lr=args.inner_lr, first_order=bool(args.first_order))
cfg = MetaTrainConfig(iterations=args.iters, meta_batch=args.meta_batch, outer_lr=args.lr, lr_halve_every=args.halve,
                      min_lr=min(1e-4, args.lr), checkpoint_every=args.iters, validate_every=args.val_every,
                      diagnostics_every=args.iters, seed=args.seed, maml=maml)
method, curve = make_method(args.method, cfg), []


def validate(trained, iteration):
    predictor = method.predictor(trained, args.steps_eval, "transductive")
    result = evaluate(predictor, episodes, val, test_transform(1), torch.device("cpu"), batch_tasks=16, progress=False)
    curve.append((iteration, result.mean, result.ci95, time.process_time() - start))
    print(f"it {iteration} val {100 * result.mean:.2f} ± {100 * result.ci95:.2f}  cpu {curve[-1][3]:.0f}s", flush=True)
    return {"accuracy": result.mean, "ci95": result.ci95}


validate(model, 0)
meta_train(model, sampler, augmented, cfg, out / "meta", validate=validate, progress=False, method=args.method)
(out / "curve.json").write_text(json.dumps({"args": vars(args), "curve": curve}))
