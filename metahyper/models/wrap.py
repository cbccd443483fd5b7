"""Your own ``nn.Module`` as a ``MetaModel``: wrap a plain module, or refuse it with a message that
says what to provide (docs/api.md, "Meta-training your own model"; docs/architecture.md section 4).

MAML, the baselines and the reports need three things of a model beyond ``forward``: the head
(``classifier``, an ``nn.Linear``) that pretraining resets to ``way`` outputs, the features that
feed it (``features(x)``: ProtoNet and the baselines classify them), and a role per parameter
(``param_role``). A ``MetaModel`` subclass declares them; ``as_meta_model(module, classifier=
"fc")`` derives them from a module whose head is the last layer it applies (torchvision's
classification models, a ``Sequential`` ending in its head): the named ``nn.Linear`` becomes
``classifier`` and the module with that layer replaced by ``nn.Identity`` computes ``features``.

Batch norm: MAML normalises with each batch's statistics and keeps no running statistics
(docs/architecture.md section 7); ``nn.BatchNorm2d`` cannot be told so, and under ``vmap`` it
gives wrong second-order gradients. The wrapper therefore swaps every ``nn.BatchNorm2d`` for a
``MetaBatchNorm2d`` with the same weights, running statistics, eps and momentum (outside
meta-learning it computes exactly what ``nn.BatchNorm2d`` does); other batch-norm layers are
refused, naming the layer.
"""

from __future__ import annotations

import copy

from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from metahyper.models.norm import MetaBatchNorm2d
from metahyper.models.roles import MetaModel

CONTRACT = ("a `classifier` nn.Linear head, `features(x)` -> [B, F] (what feeds the head), `reset_classifier(n)` "
            "and a role per parameter (`param_role`)")


class WrappedModel(MetaModel):
    """``body`` (the wrapped module, its head replaced by ``nn.Identity``) gives the features,
    ``classifier`` (the head) the logits. Roles: ``classifier.*`` CLASSIFIER, the rest BODY."""

    def __init__(self, body: nn.Module, classifier: nn.Linear, head_name: str):
        super().__init__()
        self.body = body
        self.classifier = classifier
        self.head_name = head_name  # where the head sat in the wrapped module (for messages)

    def features(self, x: Tensor) -> Tensor:
        """[B, C, H, W] -> [B, in_features of the head]: the wrapped module without its head."""
        out = self.body(x)
        if out.dim() != 2 or out.shape[1] != self.classifier.in_features:
            raise ValueError(
                f"as_meta_model: without its head {self.head_name!r} the module returned shape {tuple(out.shape)}, but "
                f"the head takes [B, {self.classifier.in_features}]: the head must be the last layer the module applies"
            )
        return out


def linear_layers(module: nn.Module) -> list[str]:
    """Names of the ``nn.Linear`` submodules of ``module``, in registration order."""
    return [name for name, layer in module.named_modules() if isinstance(layer, nn.Linear) and name]


def _replace(module: nn.Module, name: str, layer: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(module.get_submodule(parent) if parent else module, leaf, layer)


def _meta_batch_norm(name: str, bn: nn.BatchNorm2d) -> MetaBatchNorm2d:
    """A ``MetaBatchNorm2d`` equal to ``bn``; a ValueError names a layer it cannot stand for."""
    if not (bn.affine and bn.track_running_stats and bn.momentum is not None):
        raise ValueError(f"as_meta_model: batch norm {name!r} needs affine=True, track_running_stats=True and a "
                         f"numeric momentum to become a MetaBatchNorm2d (got {bn})")
    meta = MetaBatchNorm2d(bn.num_features, eps=bn.eps, momentum=bn.momentum)
    meta.load_state_dict({k: v for k, v in bn.state_dict().items() if k != "num_batches_tracked"})
    return meta.to(bn.weight.device, bn.weight.dtype)


def convert_batch_norms(module: nn.Module) -> None:
    """Swap every ``nn.BatchNorm2d`` of ``module`` (in place) for an equal ``MetaBatchNorm2d``;
    a ValueError names any other batch-norm layer (BatchNorm1d/3d, SyncBatchNorm, lazy ones)."""
    for name, layer in list(module.named_modules()):
        if type(layer) is nn.BatchNorm2d:
            _replace(module, name, _meta_batch_norm(name, layer))
        elif isinstance(layer, _BatchNorm):
            raise ValueError(f"as_meta_model: layer {name!r} is a {type(layer).__name__}; only nn.BatchNorm2d is "
                             "converted to batch statistics without running statistics, which MAML needs "
                             "(use nn.BatchNorm2d, or subclass metahyper.MetaModel)")


def _check_head(module: nn.Module, classifier: str) -> None:
    if not isinstance(classifier, str):
        raise TypeError(f"as_meta_model: classifier must be the head's name (a str), got {type(classifier).__name__}")
    linears = linear_layers(module)
    hint = f"its nn.Linear layers: {', '.join(map(repr, linears))}" if linears else "it has no nn.Linear layer"
    try:
        head = module.get_submodule(classifier) if classifier else None
    except AttributeError:
        head = None
    if head is None:
        raise ValueError(f"as_meta_model: the module has no submodule classifier={classifier!r} ({hint})")
    if not isinstance(head, nn.Linear):
        raise ValueError(f"as_meta_model: classifier={classifier!r} is a {type(head).__name__}, not an nn.Linear "
                         f"({hint})")
    parent, _, leaf = classifier.rpartition(".")
    container = module.get_submodule(parent) if parent else module
    if isinstance(container, nn.Sequential) and [name for name, _ in container.named_children()][-1] != leaf:
        raise ValueError(f"as_meta_model: classifier={classifier!r} is not the last layer of its nn.Sequential "
                         f"{parent or '(the module)'!r}: the head must be the last layer the module applies")


def as_meta_model(module: nn.Module, classifier: str) -> WrappedModel:
    """A ``MetaModel`` made from a copy of ``module`` whose submodule ``classifier`` (a dotted name,
    e.g. ``"fc"`` for torchvision's ResNets, ``"classifier.1"`` for MobileNetV2) is its head.

    The head must be the last layer the module applies, so that the module computes
    ``head(features)``; its ``nn.BatchNorm2d`` layers become ``MetaBatchNorm2d`` (module
    docstring). ``module`` itself is left as it was. Raises a ValueError naming the submodule
    (and listing the module's ``nn.Linear`` layers) when ``classifier`` names no ``nn.Linear``.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"as_meta_model: module must be a torch.nn.Module, got {type(module).__name__}")
    _check_head(module, classifier)
    body = copy.deepcopy(module)
    head = body.get_submodule(classifier)
    _replace(body, classifier, nn.Identity())
    convert_batch_norms(body)
    return WrappedModel(body, head, classifier)


def require_meta_model(model: object, where: str) -> None:
    """Raise a TypeError, before any work, when ``model`` does not meet the ``MetaModel`` contract,
    saying what to provide (``where`` names the caller: ``"meta_train"``, ...)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"{where}: model must be a metahyper.MetaModel (a torch.nn.Module), got {type(model).__name__}")
    kind = type(model).__name__
    if not isinstance(model, MetaModel):
        linears = linear_layers(model)
        wrap = (f"wrap it: metahyper.as_meta_model(model, classifier={linears[-1]!r}) (the name of its head; its "
                f"nn.Linear layers: {', '.join(map(repr, linears))})" if linears else "give it an nn.Linear head")
        raise TypeError(f"{where}: model is a {kind}, not a metahyper.MetaModel, which has {CONTRACT}. Either {wrap}, "
                        "or subclass metahyper.MetaModel (docs/api.md: 'Meta-training your own model')")
    if not isinstance(getattr(model, "classifier", None), nn.Linear):
        raise TypeError(f"{where}: {kind} is a MetaModel without a `classifier` nn.Linear attribute (its head: "
                        "set self.classifier = nn.Linear(feature_dim, way) in __init__)")
    if type(model).features is MetaModel.features:
        raise TypeError(f"{where}: {kind} does not implement features(x) -> [B, F], the input of its classifier "
                        "(MetaModel.forward is classifier(features(x)))")
