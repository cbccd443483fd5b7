"""Training loops shared across stages: ``metahyper.train.supervised`` is the one supervised
loop of pretraining and classification (not re-exported, so the name stays the module)."""
