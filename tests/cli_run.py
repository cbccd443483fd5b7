"""Run the ``metahyper`` command line in this process, for tests that check its exit status and
output (the one helper that the CLI test files share)."""

from __future__ import annotations

from metahyper import cli


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``metahyper argv``; ``capsys`` is pytest's fixture."""
    try:
        status = cli.main(list(argv))
    except SystemExit as exit_:
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err
