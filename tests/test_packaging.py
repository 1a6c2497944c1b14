"""The app as a user installs it: a wheel built from this tree, installed into a fresh venv
outside the checkout, makes an image on the built-in model with nothing from the checkout.

The venv sees the test environment's installed dependencies through a .pth line (torch and
friends are not downloaded again); sdstudio itself comes only from the wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "sdstudio")

pytestmark = pytest.mark.slow


def _run(argv: list[str | Path], **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, f"{argv}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the sources (setuptools' build/ folder in the checkout could
    hold files deleted since), offline: no build isolation, no index."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "--quiet", "-w", work / "dist", source])
    (built,) = (work / "dist").glob("sdstudio-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh venv holding the wheel; the test environment's site-packages come after it."""
    folder = tmp_path_factory.mktemp("venv") / "env"
    _run([sys.executable, "-m", "venv", "--without-pip", folder])
    python = folder / "bin" / "python"
    purelib = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    # A bare path line adds the folder but runs none of its .pth files, so the checkout's
    # editable install (a .pth finder there) stays out.
    dependencies = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (purelib / "test-dependencies.pth").write_text("\n".join(sorted(dependencies)) + "\n")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
          "--quiet", wheel])
    return folder


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return env | {"HF_HUB_OFFLINE": "1", "QT_QPA_PLATFORM": "offscreen"}


def test_wheel_carries_the_runtime_resources(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    packaged = {n.removeprefix("sdstudio/") for n in names}
    for resource in (ROOT / "sdstudio" / "resources").rglob("*"):
        if resource.is_file() and "__pycache__" not in resource.parts:
            assert str(resource.relative_to(ROOT / "sdstudio")) in packaged


def test_installed_wheel_generates_on_the_builtin_model(venv, tmp_path):
    outside = tmp_path / "somewhere-else"
    outside.mkdir()
    env = _clean_env()
    where = _run([venv / "bin" / "python", "-c",
                  "import sdstudio.resources as r; print(r.__file__); print(r.builtin_model_dir())"],
                 cwd=outside, env=env).stdout.split()
    assert all(Path(p).is_relative_to(venv) for p in where), where

    out = tmp_path / "images"
    result = _run([venv / "bin" / "sdstudio", "generate", "--prompt", "a red circle", "--steps", "2",
                   "--width", "128", "--height", "128", "--seed", "1", "--out", out],
                  cwd=outside, env=env)

    (png,) = out.glob("*.png")
    assert str(png) in result.stdout
    with Image.open(png) as image:
        assert image.size == (128, 128)
        assert "a red circle" in image.info["parameters"]


def test_installed_app_starts_and_installs_its_desktop_entry(venv, tmp_path):
    env = _clean_env() | {"XDG_DATA_HOME": str(tmp_path / "data")}
    sdstudio = venv / "bin" / "sdstudio"

    # --help imports every window module from the wheel, then exits before opening a window.
    assert "SD Studio" in _run([sdstudio, "--help"], cwd=tmp_path, env=env).stdout
    _run([sdstudio, "--install-desktop-entry"], cwd=tmp_path, env=env)

    entry = (tmp_path / "data" / "applications" / "sdstudio.desktop").read_text()
    assert f"Exec={venv / 'bin' / 'python'} -m sdstudio" in entry
    assert (tmp_path / "data" / "icons" / "hicolor" / "scalable" / "apps" / "sdstudio.svg").read_text().startswith("<svg")
