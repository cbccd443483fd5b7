"""The model registry and ``build_model``, the one way configs turn a name into a model.

Backbones register themselves in ``backbones.py``; ``hyperize.py``, ``static.py`` and
``bayesian.py`` register their hyper variants (``hyper_<backbone>``, ``ha_<backbone>``,
``bayes_<backbone>``) on top. ``build_model`` checks the name and the option names before
building, so a typo in a config fails with a message that names it.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from torch import nn

from metahyper.registry import Registry

MODELS: Registry[nn.Module] = Registry("model")


def model_options(name: str) -> list[str]:
    """The keyword options that model ``name`` accepts besides ``num_classes``."""
    params = inspect.signature(_builder(name)).parameters.values()
    return [p.name for p in params if p.name != "num_classes" and p.kind != p.VAR_KEYWORD]


def build_model(name: str, num_classes: int, **options: Any) -> nn.Module:
    """Build registered model ``name`` with a ``num_classes``-output head.

    Raises ``ValueError`` naming the unknown model or the unknown option (with the valid
    ones); builders raise ``ValueError`` naming an option whose value is bad. The model keeps
    its recipe as ``model.metahyper_spec`` (name, num_classes, options): checkpoints store it,
    so ``metahyper.load_model`` rebuilds the model without the config that made it.
    """
    builder = _builder(name)
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"model {name!r}: num_classes must be a positive integer, got {num_classes!r}")
    params = inspect.signature(builder).parameters.values()
    if not any(p.kind == p.VAR_KEYWORD for p in params):
        valid = model_options(name)
        for option in options:
            if option not in valid:
                raise ValueError(
                    f"model {name!r} has no option {option!r}; its options: {', '.join(valid) or 'none'}"
                )
        for p in params:
            if p.default is p.empty and p.name != "num_classes" and p.name not in options:
                raise ValueError(f"model {name!r} needs option {p.name!r}")
    model = builder(num_classes=num_classes, **options)
    model.metahyper_spec = {"name": name, "num_classes": num_classes, "options": dict(options)}
    return model


def _builder(name: str):
    try:
        return MODELS.get(name)
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(MODELS.names())}") from None


def register_variant(name: str, base: str, convert: Callable[..., nn.Module]) -> None:
    """Register model ``name`` = ``convert(build_model(base, ...), **convert_options)``.

    ``convert``'s keyword options (all but its first, the model) join ``base``'s options in the
    registered signature, so ``build_model`` validates both sets and lists them in its errors.
    """
    base_params = list(inspect.signature(_builder(base)).parameters.values())
    own = [p.replace(kind=p.KEYWORD_ONLY) for p in list(inspect.signature(convert).parameters.values())[1:]]
    own_names = {p.name for p in own}

    def build(num_classes: int, **options: Any) -> nn.Module:
        converted = {k: options.pop(k) for k in list(options) if k in own_names}
        return convert(build_model(base, num_classes, **options), **converted)

    kept = [p if p.kind == p.POSITIONAL_OR_KEYWORD and p.name == "num_classes" else p.replace(kind=p.KEYWORD_ONLY)
            for p in base_params]
    build.__signature__ = inspect.Signature(kept + own)
    build.__doc__ = f"{convert.__name__}({base}); options: {', '.join(p.name for p in kept[1:] + own)}"
    MODELS.register(name)(build)
