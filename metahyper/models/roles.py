"""Parameter roles and the MetaModel interface shared by every backbone and hyper variant.

MAML in metahyper adapts and trains parameters by *role* (docs/architecture.md section 4): for a
hypernetwork model the inner loop adapts EMBEDDING and CLASSIFIER parameters and the outer
loop trains HYPERNET and CLASSIFIER; for a plain model everything is BODY or CLASSIFIER.
"""

from __future__ import annotations

from enum import Enum
from typing import Iterable

from torch import Tensor, nn

Params = dict[str, Tensor]


class ParamRole(str, Enum):
    """What a parameter is for; decides where MAML and the optimisers touch it."""

    EMBEDDING = "embedding"  # per-kernel embeddings that a hypernetwork turns into weights
    HYPERNET = "hypernet"  # hypernetwork weights (shared across kernels / layers)
    CLASSIFIER = "classifier"  # the final linear layer
    BODY = "body"  # plain weights: plain convs, batch norm, stem, shortcuts

    @classmethod
    def parse(cls, value: "str | ParamRole") -> "ParamRole":
        """Accept a role or its (case-insensitive) name; raise naming the valid roles."""
        if isinstance(value, ParamRole):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            valid = ", ".join(r.value for r in cls)
            raise ValueError(f"unknown parameter role {value!r}; valid roles: {valid}") from None


class MetaModel(nn.Module):
    """Base class: ``forward(x) = classifier(features(x))`` plus role bookkeeping.

    Subclasses build ``self.classifier`` (an ``nn.Linear``) and implement ``features`` and,
    when they own non-BODY parameters, ``param_role``.
    """

    classifier: nn.Linear

    def features(self, x: Tensor) -> Tensor:
        """[B, C, H, W] images -> [B, F] feature vectors."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        """[B, C, H, W] images -> [B, num_classes] logits."""
        return self.classifier(self.features(x))

    @property
    def feature_dim(self) -> int:
        return self.classifier.in_features

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the head by a freshly initialised ``num_classes``-output linear layer."""
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        old = self.classifier
        self.classifier = nn.Linear(old.in_features, num_classes).to(old.weight.device, old.weight.dtype)

    def param_role(self, name: str) -> ParamRole:
        """Role of the parameter called ``name`` (as in ``named_parameters()``)."""
        return ParamRole.CLASSIFIER if name.startswith("classifier.") else ParamRole.BODY

    def params_by_role(self) -> dict[ParamRole, Params]:
        """All trainable parameters, partitioned by role (every role present, maybe empty)."""
        groups: dict[ParamRole, Params] = {role: {} for role in ParamRole}
        for name, param in self.named_parameters():
            if param.requires_grad:
                groups[self.param_role(name)][name] = param
        return groups


def select_roles(model: MetaModel, roles: Iterable["str | ParamRole"]) -> Params:
    """The parameters of ``model`` whose role is one of ``roles`` (name -> tensor)."""
    wanted = {ParamRole.parse(r) for r in roles}
    groups = model.params_by_role()
    return {name: p for role in wanted for name, p in groups[role].items()}


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of scalar parameters in ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def role_of_tensor_names(model: MetaModel) -> dict[str, ParamRole]:
    """name -> role for every trainable parameter (handy for optimiser param groups)."""
    return {name: role for role, group in model.params_by_role().items() for name in group}


__all__ = [
    "MetaModel",
    "ParamRole",
    "Params",
    "count_parameters",
    "role_of_tensor_names",
    "select_roles",
]
