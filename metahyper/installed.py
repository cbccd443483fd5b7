"""Whether the installed torch and torchvision go together, said in words a user can act on.

pip leaves a mismatched pair when it cannot reach PyTorch's CPU index: a CPU torch beside a CUDA
torchvision built for another torch. Importing torchvision then fails deep inside its C++
operators (``RuntimeError: operator torchvision::nms does not exist``, or an undefined symbol).
``require_torchvision`` turns that into a ``BrokenInstallError`` naming both versions and the
command that installs a matched pair (the command exits 2 with it, ``metahyper.exits``), and
``torchvision_mismatch`` recognises the raw error wherever else it surfaces (a user's module).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from metahyper.errors import BrokenInstallError

FIX = ("pip install --force-reinstall torch torchvision (a matched pair; without a GPU: pip install "
       "--force-reinstall torch torchvision --index-url https://download.pytorch.org/whl/cpu)")


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "(not installed)"


def torchvision_mismatch(error: BaseException) -> str | None:
    """The message for ``error`` when it is what importing torchvision beside another torch
    raises, else None."""
    text = str(error)
    if "torchvision::" not in text and not ("undefined symbol" in text and "torchvision" in text):
        return None
    return (f"torchvision {_version('torchvision')} does not work with torch {_version('torch')} "
            f"({type(error).__name__}: {text}); install a matched pair: {FIX}")


def require_torchvision() -> None:
    """Imports torchvision; raises ``BrokenInstallError`` when it does not match torch."""
    try:
        import torchvision  # noqa: F401  (its C++ operators register at import)
    except (RuntimeError, ImportError, OSError) as error:
        message = torchvision_mismatch(error)
        if message is None:
            raise
        raise BrokenInstallError(message) from None
