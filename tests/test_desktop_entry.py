"""`sdstudio --install-desktop-entry`: a valid desktop entry and the icon, in $XDG_DATA_HOME."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sdstudio.app import main
from sdstudio.desktop_entry import exec_line
from sdstudio.resources import icon_path

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="freedesktop launchers")


def _read_entry(path: Path) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(path, encoding="utf-8")
    return dict(parser["Desktop Entry"])


def test_installs_entry_and_icon_under_xdg_data_home(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    assert main(["--install-desktop-entry"]) == 0

    entry_file = tmp_path / "data" / "applications" / "sdstudio.desktop"
    icon_file = tmp_path / "data" / "icons" / "hicolor" / "scalable" / "apps" / "sdstudio.svg"
    assert str(entry_file) in capsys.readouterr().out
    assert icon_file.read_bytes() == icon_path("app").read_bytes()
    entry = _read_entry(entry_file)
    assert entry["Type"] == "Application"
    assert entry["Name"] == "SD Studio"
    assert entry["Icon"] == icon_file.stem  # a theme name, found in the hicolor folder above
    assert not (tmp_path / "home").exists()
    validate = shutil.which("desktop-file-validate")
    if validate:
        result = subprocess.run([validate, str(entry_file)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_exec_line_starts_the_studio(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    main(["--install-desktop-entry"])
    command = _read_entry(tmp_path / "applications" / "sdstudio.desktop")["Exec"]

    # `--help` makes the launched studio print its usage and exit instead of opening a window.
    argv = shlex.split(command) + ["--help"]
    result = subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, timeout=120,
                            env={"PATH": "/usr/bin:/bin", "QT_QPA_PLATFORM": "offscreen"})
    assert result.returncode == 0, result.stderr
    assert "SD Studio" in result.stdout


def test_relative_xdg_data_home_is_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", "relative/data")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)

    assert main(["--install-desktop-entry"]) == 0

    assert (tmp_path / ".local" / "share" / "applications" / "sdstudio.desktop").is_file()
    assert not (tmp_path / "relative").exists()


def test_exec_line_quotes_as_the_spec_says():
    assert exec_line(["/usr/bin/python3", "-m", "sdstudio"]) == "/usr/bin/python3 -m sdstudio"
    # A space needs quotes; a backslash is quoted (\\) and then string-escaped (\\\\); % is doubled.
    assert exec_line(["/opt/my apps/python"]) == '"/opt/my apps/python"'
    assert exec_line(["/a\\b"]) == '"/a\\\\\\\\b"'
    assert exec_line(['say"$x`', "100%"]) == '"say\\\\"\\\\$x\\\\`" 100%%'
