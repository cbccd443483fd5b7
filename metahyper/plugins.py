"""User code that registers models, data sets and methods: entry-point plugins and named modules.

Two ways in, both ending in plain imports whose module-level ``register`` calls fill the
registries (``metahyper.models.MODELS``, ``metahyper.data.sources.DATASETS``, ...):

* an installed distribution declares entry points in the group ``metahyper.plugins``
  (``[project.entry-points."metahyper.plugins"] mine = "my_pkg.metahyper_plugin"``). Each names a
  module (imported) or a callable (``"my_pkg.plugin:register"``, called without arguments).
  ``load_plugins`` loads them all once per process; every ``Registry`` lookup calls it first, so
  a plugin's names are there whenever a name is looked up, with no call to make;
* modules named on the command line (``--import MODULE``) or in a suite file
  (``imports: [MODULE, ...]``), imported by ``import_modules`` before the suite is validated.

A plugin or module that fails to import raises ``PluginError`` (a ``ConfigError``: exit status 2
on the command line) naming it and where it was named.

Modules are found on ``sys.path`` as the user set it, never in the working directory by
accident: ``python -m metahyper.cli`` (and the pool's ``python -m metahyper.launch.worker``)
would otherwise put the working directory first on ``sys.path``, so a suite's ``imports:``
could pick up a stray file there, which the ``metahyper`` console script never does.
``drop_working_directory`` removes that entry at the entry point; a user who wants modules from
the working directory says so with ``PYTHONPATH=.`` (or names the folder in ``PYTHONPATH``).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
from typing import Iterable

from metahyper.config import ConfigError
from metahyper.installed import torchvision_mismatch

GROUP = "metahyper.plugins"
_state: dict[str, object] = {"status": "not loaded"}


class PluginError(ConfigError):
    """A plugin or a named module could not be loaded; the message names it."""


def load_plugins() -> None:
    """Load every entry point of the group ``metahyper.plugins``, once per process.

    Registrations made while the plugins load (a plugin that looks names up) see the state so
    far instead of loading again. A failure is remembered and raised again by later calls, so a
    broken plugin is never silently half-registered.
    """
    status = _state["status"]
    if status == "loaded" or status == "loading":
        return
    if isinstance(status, PluginError):
        raise status
    _state["status"] = "loading"
    for entry in importlib.metadata.entry_points(group=GROUP):
        try:
            loaded = entry.load()
            if callable(loaded):
                loaded()
        except Exception as error:  # noqa: BLE001 - any failure of user code is reported as the plugin's
            failure = PluginError(f"metahyper plugin {entry.name!r} (entry point {entry.value!r} in group {GROUP!r}"
                                  f"{_distribution(entry)}) failed to load: {_why(error)}")
            _state["status"] = failure
            raise failure from error
    _state["status"] = "loaded"


def _distribution(entry: importlib.metadata.EntryPoint) -> str:
    """`` of distribution NAME`` when the entry point knows its distribution."""
    dist = getattr(entry, "dist", None)
    return f" of distribution {dist.name!r}" if dist is not None else ""


def import_modules(names: Iterable[object], where: str, indexed: bool = True) -> None:
    """Import each module of ``names`` (for its registrations). Errors name ``where``, the field
    or flag that listed them, with the module's index when ``indexed`` (``suite x.yaml:
    imports[0]``), and the module."""
    for index, name in enumerate(names):
        label = f"{where}[{index}]" if indexed else where
        if not isinstance(name, str) or not name.strip():
            raise PluginError(f"{label}: a module name must be a non-empty string, got {name!r}")
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name is not None and (name == error.name or name.startswith(error.name + ".")):
                raise PluginError(f"{label}: no module named {name!r} (is its folder on PYTHONPATH, or its "
                                  "package installed?)") from None
            raise PluginError(f"{label}: importing module {name!r} failed: {error}") from error
        except Exception as error:  # noqa: BLE001 - user code: report it naming the module
            raise PluginError(f"{label}: importing module {name!r} failed: {_why(error)}") from error


def _why(error: Exception) -> str:
    """What went wrong in user code: a torch/torchvision mismatch with its fix, else the error."""
    return torchvision_mismatch(error) or f"{type(error).__name__}: {error}"


def import_suite_modules(data: object, where: str) -> None:
    """Import the modules that a suite file's parsed YAML (``data``) lists under ``imports``,
    before the suite is validated, so that it may name their models, data sets and methods."""
    imports = data.get("imports", ()) if isinstance(data, dict) else ()
    if isinstance(imports, str) or not isinstance(imports, (list, tuple)):
        raise PluginError(f"{where}: imports must be a list of module names, got {imports!r}")
    import_modules(imports, f"{where}: imports")


def import_user_code(imports: Iterable[str]) -> None:
    """The entry-point plugins (``load_plugins``), then each ``--import`` module, before a
    command (or one of its worker processes) reads a suite or looks a name up; errors name the
    plugin or the flag."""
    load_plugins()
    for name in imports:
        import_modules([name], f"--import {name}", indexed=False)


def drop_working_directory() -> None:
    """Remove the working directory that ``python -m`` (``''`` for ``-c``) put first on
    ``sys.path`` (module docstring); an entry that ``PYTHONPATH`` adds stays."""
    if sys.path and sys.path[0] in ("", os.getcwd()) and not _from_pythonpath(sys.path[0]):
        del sys.path[0]


def _from_pythonpath(entry: str) -> bool:
    """Whether ``entry`` is also named by ``PYTHONPATH`` (then the user asked for it)."""
    listed = [os.path.abspath(p or ".") for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return os.path.abspath(entry or ".") in listed
