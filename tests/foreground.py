"""``default_sigint``: the ``preexec_fn`` that starts a test's child process as a terminal starts
a foreground command, with SIGINT at its default action and unblocked. A pytest started by a
script's ``cmd &`` runs with SIGINT ignored, its children inherit that, and ``metahyper run``
rightly keeps ignoring it (tests/test_interrupts.py checks that case on purpose); the tests that
send SIGINT to a command must not depend on how pytest itself was started."""

from __future__ import annotations

import signal


def default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
