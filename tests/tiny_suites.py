"""Overrides that shrink the shipped suites to seconds, shared by test_runs.py and test_cli.py."""

from __future__ import annotations

# Everything a run does, at toy size: 1 pretraining epoch, 4 meta-iterations with a checkpoint,
# a validation point and diagnostics every 2, 3 evaluation episodes of 1-shot 2-query tasks.
TRAINING = [
    "pretrain.epochs=1", "pretrain.batch_size=32", "episodes.query=2",
    "meta_train.iterations=4", "meta_train.meta_batch=2", "meta_train.checkpoint_every=2",
    "meta_train.validate_every=2", "meta_train.diagnostics_every=2",
    "meta_train.maml.inner_steps=1", "evaluation.inner_steps_eval=2",
    "evaluation.shots=[1]", "evaluation.query=2", "evaluation.episodes=3", "evaluation.val_episodes=2",
    "evaluation.batch_tasks=2",
]

# The smoke suite at 16x16 with 6 classes of 8 images per split.
SMOKE = TRAINING + [
    "data.image_size=16", "data.num_classes=6", "data.images_per_class=8",
    "targets.*.image_size=16", "targets.*.num_classes=6", "targets.*.images_per_class=8",
]


def paper(source_root: str, target_root: str, per_class: int = 2, query: int = 1) -> list[str]:
    """A table suite on tiny generated files: ``per_class`` images per class (1-shot tasks
    with ``query`` queries), 16x16, one meta-iteration."""
    return TRAINING + [
        f"data.root={source_root}", f"targets.*.root={target_root}",
        f"data.images_per_class={per_class}", f"targets.*.images_per_class={per_class}",
        f"episodes.query={query}", f"evaluation.query={query}",
        "data.image_size=16", "targets.*.image_size=16", "meta_train.iterations=1",
        # hypernetworks generate every kernel once per forward pass, whatever the batch size
        # (HyperResNet-12: ~24 GMAC), so few, large batches
        "pretrain.batch_size=256", "evaluation.inner_steps_eval=1", "evaluation.episodes=2", "seeds=[0]",
    ]
