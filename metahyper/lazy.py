"""Package attributes imported on first use (PEP 562), so that importing a package stays light.

``import metahyper`` (and ``metahyper.meta``) would otherwise import torch and every model and
data module before the command could print its ``--version`` or read a suite folder's status.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable, Iterable, Mapping


def lazy_attributes(package: str, exports: Mapping[str, Iterable[str]],
                    subpackages: Iterable[str] = ()) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``'s ``__init__``: each name of ``exports``
    (module -> names) is read from its module when first asked for, each of ``subpackages``
    (``package.<name>``) imported then; the value is kept on the package, so later lookups
    are plain attribute reads."""
    home = {name: module for module, names in exports.items() for name in names}
    loadable = set(subpackages)

    def __getattr__(name: str) -> Any:
        if name in home:
            value = getattr(importlib.import_module(home[name]), name)
        elif name in loadable:
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *home, *loadable})

    return __getattr__, __dir__
