"""Running a suite's runs side by side: a local process pool and SLURM jobs, and their status.

Every launcher starts one process per run (``worker.run_one``: that run's unfinished stages in
the shared suite folder, each stage under its own lock, ``metahyper.pipeline.runs``) and builds the one
report when the runs are done:

* ``local``: ``metahyper run SUITE --jobs N [--devices ...]``, a pool of child processes on this
  machine, each pinned to one device with its share of the CPU threads (``local.py``);
* ``slurm``: ``metahyper run SUITE --launcher slurm``, a job array through submitit with a
  dependent report job; jobs requeue on preemption or timeout and resume (``slurm.py``; its
  resources come from the suite's ``launcher:`` section, ``metahyper.suite.launcher``);
* ``status.py``: ``metahyper status OUT``, each run's stages as their folders show them.

``commands.py`` wires them into the ``metahyper`` command. Nothing here is imported by the
layers below (pipeline, suite, meta, data).
"""
