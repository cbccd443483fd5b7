"""Exit statuses of the ``metahyper`` command and of the worker processes its launchers start.

``guarded(prog, action, usage)`` runs ``action()`` and turns the errors a user can fix (a bad
config, data file or checkpoint, an unusable file the package wrote or reads, a full disk: each
names the file or field; a torchvision that does not match torch, ``metahyper.installed``) into
exit status 2 with the one message and then the command's one-line usage (not argparse's whole
banner before it, which would bury the line that matters), a non-finite loss into 1 (the message
names the iteration and the checkpoint kept), and Ctrl-C or SIGTERM into 130 with how to resume
(``metahyper.interrupts.stop_signals``: a ``kill`` stops a run as Ctrl-C does, and writes finish
first). One place, so that a run's worker process (``metahyper.launch.worker``) exits as the
command would.
"""

from __future__ import annotations

import sys
from typing import Callable

from metahyper.config import ConfigError
from metahyper.errors import BrokenInstallError, CheckpointError, DataFormatError, NonFiniteLossError
from metahyper.files import UnusableFileError
from metahyper.installed import torchvision_mismatch
from metahyper.interrupts import stop_signals

USER_ERRORS = (ConfigError, CheckpointError, DataFormatError, BrokenInstallError, UnusableFileError)


def guarded(prog: str, action: Callable[[], int], usage: str | None = None) -> int:
    """``action()``'s exit status, or the one of the error it raised (module docstring);
    ``prog`` starts each message."""
    try:
        with stop_signals():
            return action()
    except USER_ERRORS as error:
        return _user_error(prog, str(error), usage)
    except NonFiniteLossError as error:  # names the iteration and what is on disk to resume from
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 1
    except RuntimeError as error:  # a torch/torchvision mismatch met outside require_torchvision (a user's module)
        message = torchvision_mismatch(error)
        if message is None:
            raise
        return _user_error(prog, message, usage)
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


def _user_error(prog: str, message: str, usage: str | None) -> int:
    """Prints the message and the usage line; exit status 2."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    if usage:
        print(f"usage: {usage}", file=sys.stderr)
    return 2
