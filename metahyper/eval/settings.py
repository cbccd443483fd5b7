"""The report's settings summary: how each model was pretrained, meta-trained and evaluated.

A suite's result records carry their run's whole config (``config["run"]``: the one-run suite
that ``metahyper.pipeline.stages.make_record`` stores). ``settings_section`` condenses it to one table row
per model (seeds merged; baselines share their run's row) and one line for the evaluation
settings, which are the suite's and so the same for every run unless the report merges suites.
Records made outside a suite have no such config; the section then says so in one line.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

from metahyper.eval.markdown import md_table
from metahyper.eval.plots import ValSetting


def run_settings(record: Any) -> dict[str, Any] | None:
    """``{"run": folder name, "spec": the run's settings, "suite": the one-run suite}`` of a
    record made by a suite, else None."""
    suite = record.config.get("run") if isinstance(record.config, dict) else None
    runs = suite.get("runs") if isinstance(suite, dict) else None
    if not isinstance(runs, dict) or len(runs) != 1 or not isinstance(suite.get("evaluation"), dict):
        return None
    run, spec = next(iter(runs.items()))
    if not isinstance(spec, dict) or not {"model", "pretrain", "meta_train", "episodes"} <= set(spec):
        return None
    return {"run": run, "spec": spec, "suite": suite}


class RunInfo(NamedTuple):
    """How figures and tables name a run: ``group``, the model it is a run of (with the shot it
    was meta-trained at when the model has runs at several: per-shot models), its registered
    ``architecture`` (``model.name``, for layer names) and its training ``seed``."""

    group: str
    architecture: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.group}, seed {self.seed}"


def run_infos(records: Sequence[Any]) -> dict[str, RunInfo]:
    """run folder -> its ``RunInfo``, for the meta-trained runs of records made by a suite."""
    found = {}
    for record in records:
        settings = run_settings(record)
        if settings is not None and "+" not in record.model:
            spec = settings["spec"]
            found[settings["run"]] = (record.model, spec["episodes"]["shot"], spec["model"]["name"], record.seed)
    shots: dict[str, set[int]] = {}
    for model, shot, _, _ in found.values():
        shots.setdefault(model, set()).add(shot)
    return {run: RunInfo(model if len(shots[model]) == 1 else f"{model} ({shot}-shot)", name, seed)
            for run, (model, shot, name, seed) in found.items()}


def val_settings(records: Sequence[Any]) -> dict[str, ValSetting]:
    """run folder -> what its validation curve measures (``metahyper.eval.plots.ValSetting``):
    the model it belongs to (``RunInfo.group``), the source's ``val_split`` (and ``val_groups``),
    the run's evaluation way (``episodes.eval_way``, else its way) and shot, the suite's
    validation queries and episodes."""
    found, infos = {}, run_infos(records)
    for record in records:
        settings = run_settings(record)
        if settings is None or "+" in record.model:
            continue
        spec, suite = settings["spec"], settings["suite"]
        episodes, ev, data = spec["episodes"], suite["evaluation"], suite.get("data", {})
        split = data.get("val_split")
        if split and data.get("val_groups"):
            split = f"{split} (classes within one {data['val_groups']})"
        way = episodes.get("eval_way") or episodes["way"]
        found[settings["run"]] = ValSetting(infos[settings["run"]].group, split, way, episodes["shot"], ev.get("query"),
                                            ev.get("val_episodes"))
    return found


def _g(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def pretraining(spec: dict[str, Any]) -> str:
    """``"1 epoch, adam lr 0.001, batch 64, weight decay 0.0005"`` (+ schedule, penalty, augmentation)."""
    p = spec["pretrain"]
    if p["epochs"] == 0:
        return "none (0 epochs: meta-training starts from the initialisation; no baselines)"
    text = (f"{p['epochs']} epoch{'s' if p['epochs'] != 1 else ''}, {p['optimizer']} lr {_g(p['lr'])}, "
            f"batch {p['batch_size']}, weight decay {_g(p['weight_decay'])}")
    if p.get("lr_milestones"):
        text += f", lr x{_g(p['lr_gamma'])} at epochs {', '.join(map(str, p['lr_milestones']))}"
    if p.get("output_norm_penalty"):
        text += f", output-norm penalty {_g(p['output_norm_penalty'])}"
    if p.get("head", "linear") != "linear":
        text += f", {p['head']} head"
    return text + augment_text(spec.get("augment"))


AUGMENT_TEXT = {"crop_flip": "pad-crop + flip", "affine": "affine distortions (Koch et al.)",
                "stroke": "stroke width +-1 px", "elastic": "elastic distortions (Simard et al.)",
                "erase": "random erasing (Zhong et al.)"}


def augment_text(augment: Any) -> str:
    """``", affine distortions (Koch et al.) + ..."`` for a run's ``augment``/``meta_augment``
    (true, a name, or names joined by '+'); "" for none."""
    names = ["crop_flip"] if augment is True else str(augment).split("+") if augment else []
    return ", " + " + ".join(AUGMENT_TEXT.get(name, name) for name in names) if names else ""


def meta_training(spec: dict[str, Any], roles: Sequence[str] | None = None, shots: str | None = None) -> str:
    """``"12 it x 2 tasks (5-way 1-shot, 5 queries), Adam 0.001 halved every 1000 it to 0.0001;
    inner 2 steps x lr 0.1 on embedding, classifier, first order"`` (no inner loop for protonet);
    ``roles``: the inner roles the model resolved (what evaluation recorded) when the config
    leaves them to the model's defaults; ``shots`` replaces the run's shot (``per_shot_text``)."""
    m, e = spec["meta_train"], spec["episodes"]
    within, shot = (f", within one {e['groups']}" if e.get("groups") else ""), shots or f"{e['shot']}-shot"
    text = (f"{m['iterations']} it x {m['meta_batch']} tasks ({e['way']}-way {shot}, {e['query']} "
            f"queries{within}), Adam {_g(m['outer_lr'])} halved every {m['lr_halve_every']} it to "
            f"{_g(m['min_lr'])}{augment_text(spec.get('meta_augment'))}")
    if spec.get("method", "maml") not in ("maml", "anil"):  # no inner loop (protonet, meta_baseline)
        return text
    maml = m["maml"]
    roles = ", ".join(maml.get("inner_roles") or roles or ["default roles"])
    lr = maml["inner_lr"]
    lr_text = ", ".join(f"{k} {_g(v)}" for k, v in lr.items()) if isinstance(lr, dict) else _g(lr)
    order = "first order" if maml.get("first_order") else "second order"
    text = f"{text}; inner {maml['inner_steps']} steps x lr {lr_text} on {roles}, {order}"
    if "embedding" in roles:  # a hyper model: say what its other weights did (metahyper.meta.maml)
        other = OTHER_WEIGHTS_TEXT[maml.get("other_weights", "frozen")]
        text += f"; other weights (BN, stem, shortcuts, ungenerated convs) {other}"
    return text


OTHER_WEIGHTS_TEXT = {"frozen": "frozen at their pretrained values", "outer": "meta-trained in the outer loop",
                      "both": "adapted in the inner loop and meta-trained in the outer loop"}


def evaluation_line(suite: dict[str, Any]) -> str:
    """The suite's evaluation settings in one sentence."""
    ev = suite["evaluation"]
    text = (f"{ev['episodes']} fixed episodes per target and shot (shots {', '.join(map(str, ev['shots']))}; "
            f"{ev['query']} queries per class; episode seed {ev['seed']}), at each run's way; "
            f"{ev['inner_steps_eval']} inner steps at test time (maml, anil); BN mode {ev['bn_mode']}")
    if ev.get("baselines"):
        text += f"; baselines on the pretrained features: {', '.join(ev['baselines'])}"
    data = suite.get("data", {})
    if data.get("val_split"):
        text += f"; validation: {ev['val_episodes']} episodes of the source's {data['val_split']} split"
    return text + "."


def training_shots(records: Sequence[Any]) -> dict[str, dict[int, set[int]]]:
    """Meta-trained model -> evaluated shot -> the shots its models were meta-trained at (the
    record's run: ``episodes.shot``), from records made by a suite; baselines (``+``) have none."""
    found: dict[str, dict[int, set[int]]] = {}
    for record in records:
        settings = run_settings(record)
        if settings is not None and "+" not in record.model:
            found.setdefault(record.model, {}).setdefault(record.shot, set()).add(settings["spec"]["episodes"]["shot"])
    return found


def per_shot_text(shots: dict[int, set[int]]) -> str | None:
    """"1-shot and 5-shot: one model per shot (meta-trained at the evaluated shot)" when every
    evaluated shot of a model (``training_shots``) comes from models meta-trained at it, else None."""
    if len(shots) < 2 or any(trained != {shot} for shot, trained in shots.items()):
        return None
    listed = " and ".join(f"{shot}-shot" for shot in sorted(shots))
    return f"{listed}: one model per shot (meta-trained at the evaluated shot)"


def settings_section(records: Sequence[Any]) -> list[str]:
    """The lines of the settings summary: the evaluation line(s) and one row per model."""
    found = {}
    for record in records:
        settings = run_settings(record)
        if settings is not None and "+" not in record.model:
            evaluation = record.config.get("evaluation") or {}
            found.setdefault(record.model, {**settings, "roles": evaluation.get("inner_roles")})
    if not found:
        return ["The records carry no run settings (they were not made by a suite)."]
    shots = training_shots(records)
    lines = dict.fromkeys(evaluation_line(s["suite"]) for s in found.values())
    rows = [[model, s["spec"].get("method", "maml"), _model_name(s["spec"]), pretraining(s["spec"]),
             meta_training(s["spec"], s["roles"], per_shot_text(shots[model]))] for model, s in found.items()]
    header = ["model", "method", "architecture", "pretraining", "meta-training (episodes)"]
    return [f"Evaluation: {line}" for line in lines] + [md_table(header, rows)]


def _model_name(spec: dict[str, Any]) -> str:
    model = spec["model"]
    options = ", ".join(f"{k}={_g(v)}" for k, v in model.get("options", {}).items())
    return f"{model['name']}({options})" if options else model["name"]
