"""Generators keyed on names and numbers, so randomness never comes from the global RNG."""

from __future__ import annotations

import hashlib

import torch


def keyed_seed(*key: object) -> int:
    """A 63-bit seed from sha256 of the key parts joined by '|' (stable across runs and hosts)."""
    digest = hashlib.sha256("|".join(map(str, key)).encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def keyed_generator(*key: object) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``keyed_seed(*key)``."""
    return torch.Generator().manual_seed(keyed_seed(*key))
