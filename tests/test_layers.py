"""The layer rules of docs/ARCHITECTURE.md, checked automatically (as napari does for its Qt-free core)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imported_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return {name.split(".")[0] for name in out.stdout.split()}


def test_light_modules_import_no_torch_diffusers_or_qt():
    heavy = {"torch", "diffusers", "transformers"}
    loaded = _imported_after(
        "import sdstudio, sdstudio.engine, sdstudio.engine.request, sdstudio.engine.infotext, sdstudio.history, "
        "sdstudio.engine.parameters, sdstudio.engine.events, sdstudio.engine.backend, sdstudio.engine.params, "
        "sdstudio.cli"
    )
    assert not heavy & loaded
    assert "PySide6" not in loaded


def test_import_contracts_hold():
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    result = subprocess.run([lint], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
