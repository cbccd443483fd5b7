"""A suite's runs as they run: one per seed and, with ``per_shot``, one per evaluated shot.

A run the user names (``conv4``) may stand for several runs with folders of their own:

* ``seeds: [0, 1, 2]`` (on the run, or on the suite for every run without its own) gives one run
  per seed, ``conv4-s0`` ... (``seeded_run``: the model's init, pretraining, training episodes
  and meta-training all take the seed);
* ``per_shot: true`` (on the run, or on the suite) gives one run per shot of
  ``evaluation.shots``, ``conv4-1shot``, ``conv4-5shot``: each is meta-trained on episodes of
  its shot and evaluated at that shot only (``RunSpec.eval_shots``), so a 5-shot cell comes from
  a model meta-trained on 5-shot tasks, as MAML papers (Finn et al.; Babu et al.'s Tables 7-8)
  report them. The shots of one seed share one pretraining: every run of the group names the
  first shot's run in ``pretrain_from``, the pretraining stage hashes that name, and the stage
  runs once (``metahyper.pipeline.stages.run_pretrain`` links a sibling's finished pretraining).

Both together give ``conv4-1shot-s0`` and so on. ``pretrain_from: conv4`` on another run
(``hyper_conv4-outer``, a variant that differs from ``conv4`` only after pretraining) shares
``conv4``'s pretraining in the same way, seed by seed and shot by shot, so the two differ in
nothing before meta-training (``metahyper.pipeline.runs`` checks that the pretraining settings agree).
Every expanded run keeps the user's name in
``report_name``, the name its results carry, so a report has one row per model whatever made
its cells. The evaluation episodes are the suite's (``evaluation.seed``) and shared by every run,
so hyper - plain comparisons stay paired.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from metahyper.config import ConfigError


def seeded_run(spec: Any, name: str, seed: int) -> Any:
    """``spec`` (a ``RunSpec``) at ``seed``: the model's init (``seed``), pretraining
    (``pretrain.seed``), the training episodes (``episodes.seed``) and meta-training
    (``meta_train.seed``) all take it; ``name`` becomes its ``report_name``."""
    return dataclasses.replace(
        spec, seed=seed, seeds=None, report_name=name,
        pretrain=dataclasses.replace(spec.pretrain, seed=seed),
        episodes=dataclasses.replace(spec.episodes, seed=seed),
        meta_train=dataclasses.replace(spec.meta_train, seed=seed))


def shot_run(spec: Any, name: str, shot: int, pretrain_from: str) -> Any:
    """``spec`` meta-trained on ``shot``-shot episodes and evaluated at ``shot`` only, its
    pretraining shared with run ``pretrain_from``; ``name`` becomes its ``report_name``."""
    return dataclasses.replace(spec, per_shot=None, report_name=name, eval_shots=(shot,), pretrain_from=pretrain_from,
                               episodes=dataclasses.replace(spec.episodes, shot=shot))


def run_name(name: str, shot: int | None, seed: int | None) -> str:
    """``conv4`` -> ``conv4-5shot-s1`` (each part only when expanded)."""
    return name + ("" if shot is None else f"-{shot}shot") + ("" if seed is None else f"-s{seed}")


def expand_run(suite: Any, name: str, spec: Any) -> dict[str, Any]:
    """The runs that run ``name`` of ``suite`` stands for (module docstring), by folder name."""
    seeds = spec.seeds or suite.seeds
    per_shot = suite.per_shot if spec.per_shot is None else spec.per_shot
    shots = list(suite.evaluation.shots) if per_shot else [None]
    source = spec.pretrain_from or name  # the run whose pretraining this one uses
    if seeds is None and shots == [None]:
        return {name: dataclasses.replace(spec, per_shot=None)}
    runs = {}
    for seed in seeds or [None]:
        for shot in shots:
            run = dataclasses.replace(spec, per_shot=None, report_name=name)
            if seed is not None:
                run = seeded_run(run, name, seed)
            owner = run_name(source, shots[0], seed)
            if shot is not None:
                run = shot_run(run, name, shot, pretrain_from=owner)
            elif spec.pretrain_from is not None:
                run = dataclasses.replace(run, pretrain_from=owner)
            runs[run_name(name, shot, seed)] = run
    return runs


def expand_runs(suite: Any) -> Any:
    """``suite`` (a ``SuiteConfig``) with every run expanded (``expand_run``); refuses an
    expansion that names a run twice."""
    runs: dict[str, Any] = {}
    owners = _names(suite)
    for name, spec in suite.runs.items():
        if spec.report_name is not None:  # expanded before (a run folder's one-run suite): as it is
            runs[name] = spec
            continue
        for run, run_spec in expand_run(suite, name, spec).items():
            if run in runs or (run != name and run in suite.runs):
                raise ConfigError(f"suite {suite.name!r}: runs.{name}: seed or shot expansion names run {run!r} "
                                  "twice; rename one of the runs")
            if run_spec.pretrain_from is not None and run_spec.pretrain_from not in owners:
                raise ConfigError(f"suite {suite.name!r}: runs.{name}.pretrain_from = {spec.pretrain_from!r}: no run "
                                  f"{run_spec.pretrain_from!r} to share the pretraining of (it must name a run of the "
                                  "suite with the same seeds and per_shot setting)")
            runs[run] = run_spec
    return dataclasses.replace(suite, runs=runs, seeds=None, per_shot=False)


def _names(suite: Any) -> set[str]:
    """Every run name ``suite`` expands to (the runs ``pretrain_from`` may name)."""
    return {run for name, spec in suite.runs.items() if spec.report_name is None
            for run in expand_run(suite, name, spec)}
