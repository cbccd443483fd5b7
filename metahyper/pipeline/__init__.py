"""How a suite's runs run: pretrain -> meta-train -> evaluate, each stage in its own folder.

``runs``: orchestration (checks before any work, skipping finished stages, resume, locks);
``report``: the report rebuilt from a suite folder; ``stages``: what each stage does;
``stage_files``: the names and small readers of a stage's files; ``manifest``: SHA-256 of
finished stages and episode sets; ``shared_pretraining``: runs that share one pretraining;
``targets``: per-target decisions of the evaluate stage. What a suite says is
``metahyper.suite``. docs/architecture.md section 3.
"""
