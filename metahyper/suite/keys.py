"""Suite settings that moved to one home, and how old suite files keep loading.

Each setting has one key (``MOVED`` maps a run's old key to its new one):

* ``pretrain.way`` is gone: pretraining ends with a head of ``episodes.way`` outputs. An old
  file's value is dropped when it equals the run's ``episodes.way`` (the old loader required it).
* ``meta_train.maml.inner_steps_eval`` is ``evaluation.inner_steps_eval`` (one value for every
  run): an old file's value moves there when every run agrees.
* ``meta_train.maml.bn_mode`` is ``evaluation.bn_mode``, which always won: an old file's value
  is dropped when it equals it.

Anything else fails with a ``ConfigError`` that names the new key; so does a command-line
override of an old key.
"""

from __future__ import annotations

from typing import Any

from metahyper.config import ConfigError

MOVED = {
    ("pretrain", "way"): "episodes.way",
    ("meta_train", "maml", "inner_steps_eval"): "evaluation.inner_steps_eval",
    ("meta_train", "maml", "bn_mode"): "evaluation.bn_mode",
}
OLD_DEFAULTS = {"way": 5, "inner_steps_eval": 10, "bn_mode": "transductive"}  # MamlConfig / EpisodeSpec defaults


def _unshared(value: Any) -> Any:
    """A copy in which no mapping or list is shared: YAML anchors share them between runs (and
    ``copy.deepcopy`` would keep them shared), but each run is migrated on its own."""
    if isinstance(value, dict):
        return {key: _unshared(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unshared(item) for item in value]
    return value


def _pop(run: Any, path: tuple[str, ...]) -> tuple[bool, Any]:
    """Remove ``path`` from a run mapping: (whether it was there, its value)."""
    node = run
    for key in path[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, dict) and path[-1] in node:
        return True, node.pop(path[-1])
    return False, None


def _moved(where: str, run: str, path: tuple[str, ...], why: str) -> ConfigError:
    old = ".".join(path)
    return ConfigError(f"{where}: runs.{run}.{old} moved to {MOVED[path]}; {why}")


def migrate(data: dict[str, Any], where: str) -> dict[str, Any]:
    """A copy of raw suite data (``load_yaml``) in the current layout (module docstring)."""
    data = _unshared(data)
    runs = data.get("runs")
    if not isinstance(runs, dict):
        return data
    evaluation = data.setdefault("evaluation", {})
    if not isinstance(evaluation, dict):
        return data
    steps: dict[str, Any] = {}
    for name, run in runs.items():
        if not isinstance(run, dict):
            continue
        _migrate_run(where, name, run, evaluation, steps)
    if steps:
        _move_inner_steps(where, steps, evaluation)
    return data


def _migrate_run(where: str, name: str, run: dict[str, Any], evaluation: dict[str, Any], steps: dict) -> None:
    """Drop a run's old ``pretrain.way`` and ``maml.bn_mode``; collect its ``inner_steps_eval``."""
    found, way = _pop(run, ("pretrain", "way"))
    episodes = run.get("episodes") if isinstance(run.get("episodes"), dict) else {}
    if found and way != episodes.get("way", OLD_DEFAULTS["way"]):
        raise _moved(where, name, ("pretrain", "way"), f"the pretraining head takes the episodes' way; set "
                     f"runs.{name}.episodes.way (pretrain.way={way!r} differs from it)")
    found, mode = _pop(run, ("meta_train", "maml", "bn_mode"))
    if found and mode != evaluation.get("bn_mode", OLD_DEFAULTS["bn_mode"]):
        raise _moved(where, name, ("meta_train", "maml", "bn_mode"), f"it was never used by a suite (evaluation."
                     f"bn_mode wins); set evaluation.bn_mode or remove it (meta_train.maml.bn_mode={mode!r})")
    found, value = _pop(run, ("meta_train", "maml", "inner_steps_eval"))
    steps[name] = value if found else None


def _move_inner_steps(where: str, steps: dict[str, Any], evaluation: dict[str, Any]) -> None:
    """Every run's old ``inner_steps_eval`` (its default where unset) must agree; it becomes the evaluation's."""
    given = [value for value in steps.values() if value is not None]
    if not given:
        return
    values = {name: OLD_DEFAULTS["inner_steps_eval"] if v is None else v for name, v in steps.items()}
    if "inner_steps_eval" in evaluation:
        values["(evaluation)"] = evaluation["inner_steps_eval"]
    if len({repr(v) for v in values.values()}) > 1:
        listed = ", ".join(f"{name}: {value!r}" for name, value in values.items())
        first = next(name for name, value in steps.items() if value is not None)
        raise _moved(where, first, ("meta_train", "maml", "inner_steps_eval"),
                     f"one value serves every run, but they differ ({listed})")
    evaluation["inner_steps_eval"] = given[0]


def check_override(key: str) -> None:
    """Raise a ``ConfigError`` naming the new key when a dotted override ``key`` sets a moved one."""
    parts = tuple(key.strip().split("."))
    for path, new in MOVED.items():
        if parts[-len(path):] == path:
            raise ConfigError(f"override {key!r}: {'.'.join(path)} moved to {new}")
