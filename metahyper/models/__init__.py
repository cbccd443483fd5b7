"""Models: plain backbones, their hypernetwork variants, and the registry that builds them.

``build_model(name, num_classes, **options)`` builds any registered model:

* plain backbones: ``conv4``, ``resnet12``, ``resnet18``, ``resnet34``, ``wrn`` (options
  ``depth``, ``width``) and the shorthands ``wrn16_4``, ``wrn28_4``, ``wrn28_10``, ``wrn40_1``,
  ``wrn40_2``;
* ``hyper_<backbone>`` (Babu et al., options ``variant`` 1|2, ``d``, ``bias``, ``init``
  balanced|legacy) and ``ha_<backbone>`` (Ha et al.'s static hypernetwork, options ``z_dim``,
  ``shortcuts``, ``block``) for every registered backbone, a user's included;
* ``bayes_<backbone>`` for the small built-in backbones and users' backbones (Ukai et al.,
  options ``z_dim``, ``h_dim``, ``prior``, ``strategy``, ``activation``).

``as_meta_model(module, classifier="fc")`` makes a ``MetaModel`` of your own ``nn.Module``
(``metahyper.models.wrap``).
"""

from metahyper.models.backbones import Backbone, conv, conv_site
from metahyper.models.bayesian import BayesianHyperModel, bayesianize
from metahyper.models.catalog import MODELS, build_model, model_options
from metahyper.models.hyperconv import (
    BayesianHyperNet,
    ConvHyperNet,
    GeneratedConv2d,
    HyperConv2d,
    StaticHyperConv2d,
    StaticLinearHyperNet,
)
from metahyper.models.hyperize import (
    ParameterCounts,
    compress,
    compressed_state,
    export_plain,
    generated_convs,
    generated_kernels,
    generated_kernels_from,
    hyperize,
    output_norm_penalty,
    parameter_counts,
    rebuild_compressed,
    record_kernels,
)
from metahyper.models.norm import MetaBatchNorm2d, norm_statistics
from metahyper.models.roles import MetaModel, ParamRole, Params, count_parameters, select_roles
from metahyper.models.static import HaMnistNet, static_hyperize
from metahyper.models.wrap import WrappedModel, as_meta_model, require_meta_model

__all__ = [
    "MODELS", "Backbone", "BayesianHyperModel", "BayesianHyperNet", "ConvHyperNet",
    "GeneratedConv2d", "HaMnistNet", "HyperConv2d", "MetaBatchNorm2d", "MetaModel", "ParamRole",
    "ParameterCounts", "Params", "StaticHyperConv2d", "StaticLinearHyperNet", "bayesianize", "build_model",
    "compress", "compressed_state", "conv", "conv_site", "count_parameters", "export_plain",
    "generated_convs", "generated_kernels", "generated_kernels_from", "hyperize", "model_options",
    "norm_statistics", "output_norm_penalty", "parameter_counts", "rebuild_compressed", "record_kernels",
    "WrappedModel", "as_meta_model", "require_meta_model", "select_roles", "static_hyperize",
]
