"""Groupings of a store's classes, by name: episodes whose classes all come from one group.

Lake et al.'s Omniglot one-shot tasks draw the 20 classes of a task from one alphabet, which is
harder than drawing them from all alphabets (similar characters compete). A grouping turns a
store into one group name per class; ``EpisodeSampler(..., groups="alphabet")`` and the suites'
``groups`` settings (``episodes.groups``, ``data.val_groups``, ``targets.<name>.groups``) look it
up here. Registered groupings (``GROUPINGS``; ``GROUPINGS.register(name)`` on a function
``store -> list[str]`` adds one):

* ``alphabet``: the first path component of the class name ``alphabet/character[/rotN]``
  (``omniglot`` and ``omniglot_full``), so a rotated character stays in its alphabet.
"""

from __future__ import annotations

from typing import Callable

from metahyper.data.stores import ImageStore
from metahyper.registry import Registry

GROUPINGS: Registry[list[str]] = Registry("grouping")


def check_grouping(grouping: str) -> None:
    """Raises ``ValueError`` naming the known groupings when ``grouping`` is not registered."""
    if grouping not in GROUPINGS:
        raise ValueError(f"unknown grouping {grouping!r}; known groupings: {', '.join(GROUPINGS.names())}")


def group_names(store: ImageStore, grouping: str) -> list[str]:
    """One group name per class of ``store`` under the registered ``grouping``; a ``ValueError``
    names the known groupings for an unknown one, or says why the store does not fit it."""
    check_grouping(grouping)
    build: Callable[[ImageStore], list[str]] = GROUPINGS.get(grouping)
    return build(store)


@GROUPINGS.register("alphabet")
def alphabet_groups(store: ImageStore) -> list[str]:
    """The alphabet of each class (``alphabet/character[/rotN]``, as the Omniglot readers name
    them); refuses a store whose class names have no ``/`` (not Omniglot)."""
    flat = [name for name in store.class_names if "/" not in name]
    if flat:
        raise ValueError(f"grouping 'alphabet' needs class names 'alphabet/character' (Omniglot), but class "
                         f"{flat[0]!r} of {store.source!r} has no '/'")
    return [name.split("/", 1)[0] for name in store.class_names]
