"""Run a few-shot predictor over a fixed episode set -> ``EvalResult`` (docs/architecture.md sections 2, 9).

A predict function (``metahyper.meta.predictors``) classifies the queries of one task.
``evaluate`` gathers the episodes of an ``EpisodeSet`` (fixed and hashed, so every model is
scored on identical episodes) ``batch_tasks`` at a time with one index_select, moves them to the
device, applies the (deterministic) test transform in one batched call, then calls ``predict``
task by task (or a ``Predictor``'s ``batch_fn`` on the whole batch) and keeps each episode's
query accuracy. ``evaluate_all`` does so for several predictors on each batch in turn. The result's metadata carries the episode-set hash, the episode settings and the
BN mode, which reports must state.

A ``Predictor`` (``metahyper.meta.predictors``) is a predict function plus the facts a report
needs about it (method name, BN mode, settings); the meta-learning methods
(``metahyper.meta.methods``) and the few-shot baselines (``metahyper.meta.baselines``) build them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm

from metahyper.data.episodes import EpisodeSet, TaskBatch
from metahyper.data.stores import ImageStore
from metahyper.data.transforms import Transform
from metahyper.eval.stats import EvalResult
from metahyper.meta.predictors import PredictFn, Predictor
from metahyper.progress import status_lines


def episode_metadata(episodes: EpisodeSet, store: ImageStore) -> dict[str, Any]:
    """What identifies the episodes: the set's hash, its settings (``groups`` only for a grouped
    set) and the store's description."""
    grouped = {} if episodes.groups is None else {"groups": episodes.groups}
    return {"episodes_hash": episodes.hash, "way": episodes.way, "shot": episodes.shot,
            "query": episodes.query, "episodes": len(episodes), "episode_seed": episodes.seed,
            "split_name": episodes.split_name, **grouped, "store": store.source}


def _check_logits(logits: Tensor, query_y: Tensor, way: int) -> None:
    expected = (len(query_y), way)
    if not isinstance(logits, Tensor) or tuple(logits.shape) != expected:
        got = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(
            f"predict returned {got} for a {way}-way task with {len(query_y)} queries; expected logits "
            f"of shape {expected} (a model's classifier needs {way} outputs: model.reset_classifier({way}))"
        )


def correct_counts(predict: Predictor | PredictFn, batch: TaskBatch, way: int) -> list[int]:
    """Number of correctly classified queries of every task of ``batch`` (float images); all
    tasks in one call when ``predict`` is a ``Predictor`` with a ``batch_fn``."""
    if isinstance(predict, Predictor) and predict.batch_fn is not None:
        logits = predict.batch_fn(batch.support_x, batch.support_y, batch.query_x)
        if not isinstance(logits, Tensor) or len(logits) != len(batch.query_y):
            raise ValueError(f"batch_fn must return logits [T, Q, way] for T={len(batch.query_y)} tasks")
        pairs = zip(logits, batch.query_y)
    else:
        pairs = ((predict(sx, sy, qx), qy) for sx, sy, qx, qy in
                 zip(batch.support_x, batch.support_y, batch.query_x, batch.query_y))
    counts = []
    for task_logits, qy in pairs:
        _check_logits(task_logits, qy, way)
        counts.append((task_logits.argmax(dim=-1) == qy).sum())
    return torch.stack(counts).tolist()  # one device sync per batch


def _check_args(episodes: EpisodeSet, batch_tasks: int) -> None:
    """Raise naming the argument when ``evaluate`` could not produce a mean and CI."""
    if isinstance(batch_tasks, bool) or not isinstance(batch_tasks, int) or batch_tasks < 1:
        raise ValueError(f"batch_tasks must be an int >= 1, got {batch_tasks!r}")
    if not isinstance(episodes, EpisodeSet):
        raise TypeError(f"episodes must be an EpisodeSet (metahyper.data.fixed_episodes), got {type(episodes).__name__}")
    if len(episodes) < 2 or episodes.query < 1:
        raise ValueError(f"episodes: a mean and 95% CI need >= 2 episodes with >= 1 query per class, "
                         f"got {len(episodes)} episodes with query={episodes.query}")


def evaluate(
    predict: Predictor | PredictFn,
    episodes: EpisodeSet,
    store: ImageStore,
    transform: Transform,
    device: torch.device | str = "cpu",
    *,
    batch_tasks: int = 16,
    progress: bool | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> EvalResult:
    """Per-episode query accuracy of ``predict`` on every episode of ``episodes`` (in order).

    ``store`` must be the store the episode set was drawn from (checked by fingerprint).
    ``transform(images, None)`` turns uint8 [..., C, H, W] on ``device`` into float; it gets
    no generator, so it must be deterministic (no test-time augmentation). ``batch_tasks``
    episodes are gathered and transformed at once; results do not depend on it. ``progress``
    defaults to "stderr is a terminal". The result's metadata holds ``episode_metadata``, the
    predictor's ``metadata()`` and ``metadata`` (later ones win), and must name a ``bn_mode``:
    pass it in ``metadata`` when ``predict`` is a bare function.
    """
    return evaluate_all({"": predict}, episodes, store, transform, device, batch_tasks=batch_tasks,
                        progress=progress, metadata=metadata)[""]


def evaluate_all(
    predictors: Mapping[str, Predictor | PredictFn],
    episodes: EpisodeSet,
    store: ImageStore,
    transform: Transform,
    device: torch.device | str = "cpu",
    *,
    batch_tasks: int = 16,
    progress: bool | None = None,
    metadata: Mapping[str, Any] | None = None,
    status: str | None = None,
) -> dict[str, EvalResult]:
    """``evaluate`` of every predictor (name -> predictor), each batch of episodes gathered and
    transformed once for all of them; the same results as one ``evaluate`` per predictor.
    Baselines that share a ``metahyper.meta.baselines.FeatureCache`` also extract each batch's
    features once. ``status`` names what is evaluated (e.g. run, target and shot) in the status
    lines (``metahyper.progress``: episodes done, rate, ETA) logged when no bar is drawn; without
    it, none (validation inside meta-training stays quiet).
    """
    _check_args(episodes, batch_tasks)
    infos = {}
    for name, predict in predictors.items():
        predictor_info = predict.metadata() if isinstance(predict, Predictor) else {}
        infos[name] = {**episode_metadata(episodes, store), **predictor_info, **(metadata or {})}
        if not isinstance(infos[name].get("bn_mode"), str):
            raise ValueError("evaluate needs the BN mode for the report: pass a Predictor or metadata={'bn_mode': ...}")
    show = sys.stderr.isatty() if progress is None else progress
    correct: dict[str, list[int]] = {name: [] for name in predictors}
    desc = f"evaluate {', '.join(str(info.get('predictor', '')) for info in infos.values())}".strip(", ")
    lines = None if status is None else status_lines(show, "evaluate", status, len(episodes), 0, unit="episode")
    with tqdm(total=len(episodes), disable=not show, desc=desc) as bar:
        for start, batch in zip(range(0, len(episodes), batch_tasks), episodes.batches(store, batch_tasks)):
            batch = batch.to(device).map_images(lambda x: transform(x, None))
            for name, predict in predictors.items():
                correct[name] += correct_counts(predict, batch, episodes.way)
            bar.update(len(batch.support_x))
            if lines is not None:
                lines.update(start + len(batch.support_x))
    n_query = episodes.way * episodes.query
    return {name: EvalResult.from_accuracies([c / n_query for c in correct[name]], **infos[name])
            for name in predictors}
