"""A torchvision that does not match torch (its import raises ``operator torchvision::nms does not
exist``, simulated by an import hook) gives a clear exit-2 message naming both versions and the
command that fixes it: in ``data fetch``, in a user's module, and from ``require_torchvision``."""

from __future__ import annotations

import importlib.abc
import sys
from importlib.metadata import version

import pytest
from cli_run import run_cli

from metahyper.errors import BrokenInstallError
from metahyper.exits import guarded
from metahyper.installed import require_torchvision, torchvision_mismatch

RAW = "operator torchvision::nms does not exist"


class _BrokenTorchvision(importlib.abc.MetaPathFinder):
    """Importing ``torchvision`` or a submodule raises what a mismatched pair raises."""

    def find_spec(self, name, path, target=None):
        if name == "torchvision" or name.startswith("torchvision."):
            raise RuntimeError(RAW)
        return None


@pytest.fixture
def broken_torchvision(monkeypatch):
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_BrokenTorchvision(), *sys.meta_path])


def _names_the_pair_and_the_fix(message: str) -> bool:
    return (f"torchvision {version('torchvision')} does not work with torch {version('torch')}" in message
            and RAW in message and "pip install --force-reinstall torch torchvision" in message
            and "--index-url https://download.pytorch.org/whl/cpu" in message)


def test_require_torchvision_names_both_versions_and_the_fix(broken_torchvision):
    with pytest.raises(BrokenInstallError) as caught:
        require_torchvision()
    assert _names_the_pair_and_the_fix(str(caught.value))


def test_data_fetch_exits_2_with_the_message(broken_torchvision, capsys, tmp_path):
    status, _, err = run_cli(capsys, "data", "fetch", "mnist", "--root", str(tmp_path / "mnist"))
    assert status == 2 and _names_the_pair_and_the_fix(err) and "Traceback" not in err
    assert not (tmp_path / "mnist").exists()  # refused before any work


def test_a_users_module_importing_torchvision_exits_2(broken_torchvision, capsys, tmp_path, monkeypatch):
    (tmp_path / "my_models.py").write_text("import torchvision.models\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    status, _, err = run_cli(capsys, "list", "suites", "--import", "my_models")
    assert status == 2 and _names_the_pair_and_the_fix(err)


def test_other_errors_are_not_taken_for_a_mismatch():
    assert torchvision_mismatch(RuntimeError("CUDA out of memory")) is None
    assert torchvision_mismatch(ImportError("undefined symbol: _ZN3c10 in torchvision/_C.so")) is not None


def test_guarded_turns_a_mismatch_raised_anywhere_into_exit_2(capsys):
    def lazy_import_in_user_code() -> int:
        raise RuntimeError(RAW)  # as a model builder importing torchvision inside a function would

    assert guarded("metahyper run", lazy_import_in_user_code, "metahyper run SUITE") == 2
    err = capsys.readouterr().err
    assert err.startswith("metahyper run: error: torchvision ") and _names_the_pair_and_the_fix(err)

    def out_of_memory() -> int:
        raise RuntimeError("CUDA out of memory")

    with pytest.raises(RuntimeError, match="CUDA out of memory"):  # not a mismatch: passed on untouched
        guarded("metahyper run", out_of_memory)
