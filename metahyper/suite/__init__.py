"""What a suite says: its YAML file read into frozen, checked configs, before anything runs.

``specs``: the data, model, episode, run and evaluation settings and their checks; ``config``:
``SuiteConfig``, finding and loading a suite, command-line overrides; ``data_paths``: data roots
and reader options checked before any work; ``keys``: old keys that moved; ``expansion``: the runs
as they run (one per seed, one per shot); ``launcher``: the ``launcher:`` section; ``paper`` and
``provenance``: published numbers and where each setting comes from; ``names``: plain suite names.
How a suite's runs then run is ``metahyper.pipeline``. docs/architecture.md section 3.
"""
