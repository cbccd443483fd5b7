"""CIFAR-style classification: the paper's SGD recipe with the output-norm penalty, SWA,
Ukai et al.'s model averaging, and suites of models x seeds reported as mean ± std.

Example::

    from metahyper.classify import ClassifyConfig, train_classifier, run_classify_suite, load_classify_suite
    result = train_classifier(model, train_store, test_store, ClassifyConfig(epochs=10), "runs/wrn")
    run_classify_suite(load_classify_suite("benchmarks/suites/babu-table2-penalty-tiny.yaml"), "out/")
"""

from metahyper.classify.evaluate import bayesian_metrics, quadruple_faults, recompute_bn
from metahyper.classify.suite import (
    ClassifySuite,
    is_classify_output,
    load_classify_suite,
    rebuild_classify_report,
    run_classify_suite,
)
from metahyper.classify.train import ClassifyConfig, ClassifyResult, build_optimizer, train_classifier
from metahyper.train.supervised import param_groups

__all__ = [
    "ClassifyConfig", "ClassifyResult", "ClassifySuite", "bayesian_metrics", "build_optimizer", "is_classify_output",
    "load_classify_suite", "param_groups", "quadruple_faults", "rebuild_classify_report", "recompute_bn", "run_classify_suite",
    "train_classifier",
]
