"""``python -m metahyper.cli`` (and ``torchrun -m metahyper.cli``): the ``metahyper`` command."""

import sys

from metahyper.cli import main
from metahyper.plugins import drop_working_directory

if __name__ == "__main__":
    drop_working_directory()  # python -m: a suite's imports never come from the working directory
    sys.exit(main())
