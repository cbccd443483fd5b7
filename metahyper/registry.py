"""A name -> builder registry that refuses duplicates and explains unknown names."""

from __future__ import annotations

from typing import Any, Callable, Generic, TypeVar

from metahyper.config import did_you_mean
from metahyper.plugins import load_plugins

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to builder callables.

    ``register(name)`` is a decorator that refuses a name registered twice (two modules
    silently overriding each other is a bug); ``build(name, **kw)`` calls the builder and
    raises a ``KeyError`` with ``unknown(name)`` when ``name`` is unknown: the closest known
    name ("did you mean 'hyper_resnet12'?") and every known one. Lookups
    (``get``, ``names``, ``in``) first load the entry-point plugins (``metahyper.plugins``), so
    names that installed plugins register are always there. Subclasses may derive names from the
    registered ones at lookup time (``_derived``), as ``hyper_<backbone>`` is for models.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._builders: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorator(builder: Callable[..., T]) -> Callable[..., T]:
            if name in self._builders:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._builders[name] = builder
            return builder

        return decorator

    def get(self, name: str) -> Callable[..., T]:
        load_plugins()
        builder = self._builders.get(name) or self._derived(name)
        if builder is None:
            raise KeyError(self.unknown(name))
        return builder

    def unknown(self, name: str) -> str:
        """"unknown model 'hyper_resnt12'; did you mean 'hyper_resnet12'? (known: ...)": the
        message for a name that is not here (lookups and config checks raise it)."""
        return f"unknown {self.kind} {name!r}{did_you_mean(name, self.names())}"

    def build(self, name: str, **kwargs: Any) -> T:
        return self.get(name)(**kwargs)

    def names(self) -> list[str]:
        load_plugins()
        return sorted(self._builders)

    def __contains__(self, name: str) -> bool:
        load_plugins()
        return name in self._builders or self._derived(name) is not None

    def _derived(self, name: str) -> Callable[..., T] | None:
        """The builder of a name derived from the registered ones (none in a plain registry)."""
        return None
