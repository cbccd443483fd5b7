"""``python -m metahyper.cli`` (and ``torchrun -m metahyper.cli``): the ``metahyper`` command."""

import sys

from metahyper.cli import main

if __name__ == "__main__":
    sys.exit(main())
