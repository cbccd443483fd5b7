"""The errors a user can act on that the command turns into exit statuses (``metahyper.exits``).

They live here, apart from the torch code that raises them, so that the command can catch them
without importing torch: ``metahyper --version``, ``--help``, ``list suites`` and ``status`` stay
fast. Each is also importable from the module that raises it (``metahyper.checkpoint``,
``metahyper.data.sources``, ``metahyper.meta.train``).
"""

from __future__ import annotations


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used (damaged, wrong format, or written by a different config)."""


class DataFormatError(ValueError):
    """A data file is missing or malformed; the message names the file and the problem."""


class NonFiniteLossError(RuntimeError):
    """The meta-loss or the meta-gradient is NaN or infinite."""


class BrokenInstallError(RuntimeError):
    """The installed torch and torchvision do not go together (``metahyper.installed``)."""
