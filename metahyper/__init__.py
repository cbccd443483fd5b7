"""metahyper: meta-learning benchmarks with hypernetwork-generated ResNets.

Episodic task samplers (``metahyper.data``), plain and hypernetwork backbones
(``metahyper.models``), MAML with role-split inner/outer loops (``metahyper.meta``),
cross-domain evaluation with confidence intervals (``metahyper.eval``) and the
``metahyper`` command that runs benchmark suites.
"""

__version__ = "0.1.0"
