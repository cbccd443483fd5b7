"""The model registry and ``build_model``, the one way configs turn a name into a model.

Backbones register themselves (``backbones.py``, or a user's module: ``metahyper.plugins``).
``hyperize.py``, ``static.py`` and ``bayesian.py`` add variant families (``hyper_``, ``ha_``,
``bayes_``): ``MODELS`` resolves ``<prefix><backbone>`` when it is looked up, so a backbone
registered at any time has its variants, and ``MODELS.names()`` lists them. ``build_model``
checks the name and the option names before building, so a typo in a config fails with a
message that names it.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

from torch import nn

from metahyper.registry import Registry


@dataclass(frozen=True)
class VariantFamily:
    """Models ``<prefix><base>`` = ``convert(build_model(base, ...), **convert_options)`` for
    every registered base model that ``applies(base)`` accepts."""

    prefix: str
    convert: Callable[..., nn.Module]
    applies: Callable[[str], bool]


class ModelRegistry(Registry[nn.Module]):
    """Registered models plus the variant families resolved over them at lookup time.

    A variant's base is a registered name (not another variant), so ``hyper_ha_conv4`` does not
    exist; registering a name that a family already derives (``hyper_conv4``) is refused.
    """

    def __init__(self) -> None:
        super().__init__("model")
        self._families: list[VariantFamily] = []

    def add_family(self, prefix: str, convert: Callable[..., nn.Module],
                   applies: Callable[[str], bool] = lambda base: True) -> None:
        """Derive ``<prefix><base>`` (see ``variant_builder``) for every base ``applies`` accepts."""
        if any(f.prefix == prefix for f in self._families):
            raise ValueError(f"model variant family {prefix!r} is already registered")
        self._families.append(VariantFamily(prefix, convert, applies))

    def register(self, name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
        """Refuses ``name`` if it is a variant's name, or if one of its variants is registered."""
        clash = [f.prefix + name for f in self._families if f.prefix + name in self._builders and f.applies(name)]
        if self._variant_of(name) is not None or clash:
            raise ValueError(f"model {name!r} clashes with a variant family: {(clash or [name])[0]!r} would have "
                             "two builders")
        return super().register(name)

    def names(self) -> list[str]:
        plain = super().names()
        return sorted(plain + [f.prefix + base for f in self._families for base in plain if f.applies(base)])

    def _variant_of(self, name: str) -> tuple[VariantFamily, str] | None:
        """(family, base) when ``name`` is ``<prefix><registered base>`` of a family that applies."""
        for family in self._families:
            base = name[len(family.prefix):]
            if name.startswith(family.prefix) and base in self._builders and family.applies(base):
                return family, base
        return None

    def _derived(self, name: str) -> Callable[..., nn.Module] | None:
        found = self._variant_of(name)
        return None if found is None else variant_builder(found[1], found[0].convert)


MODELS = ModelRegistry()


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
        raise ValueError(MODELS.unknown(name)) from None


def variant_builder(base: str, convert: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """The builder of ``convert(build_model(base, ...), **convert_options)``.

    ``convert``'s keyword options (all but its first, the model) join ``base``'s options in the
    builder's signature, so ``build_model`` validates both sets and lists them in its errors.
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
    return build
