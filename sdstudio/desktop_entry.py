"""`sdstudio --install-desktop-entry`: put SD Studio in the Linux application launcher.

Writes a freedesktop.org desktop entry and the app icon into the user's data folder
($XDG_DATA_HOME, by default ~/.local/share), the places every Linux desktop scans:

    applications/sdstudio.desktop
    icons/hicolor/scalable/apps/sdstudio.svg

The entry starts this same Python environment (`python -m sdstudio`), so it works for a
venv, a pipx install or a checkout alike, whether or not `sdstudio` is on PATH.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from sdstudio.resources import icon_path

APP_ID = "sdstudio"
# Characters that the Desktop Entry spec says must be quoted in an Exec argument.
_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


def data_home() -> Path:
    """$XDG_DATA_HOME, or ~/.local/share when it is unset or not absolute (as the XDG spec says)."""
    value = os.environ.get("XDG_DATA_HOME", "")
    return Path(value) if os.path.isabs(value) else Path.home() / ".local" / "share"


def exec_line(argv: list[str]) -> str:
    """`argv` as the value of an Exec key: each argument quoted as the spec asks, then escaped as
    a desktop-entry string (a backslash is written twice), and `%` doubled (field codes)."""

    def quote(arg: str) -> str:
        if arg and not _RESERVED & set(arg):
            return arg
        return '"' + "".join("\\" + c if c in '"`$\\' else c for c in arg) + '"'

    return " ".join(quote(a) for a in argv).replace("\\", "\\\\").replace("%", "%%")


def desktop_entry(icon: str = APP_ID) -> str:
    """The text of sdstudio.desktop for the running Python environment."""
    command = exec_line([sys.executable, "-m", "sdstudio"])
    return "\n".join([
        "[Desktop Entry]",
        "Type=Application",
        "Version=1.5",
        "Name=SD Studio",
        "GenericName=Image Generator",
        "Comment=Prompt, paint a mask, watch it emerge: a desktop studio for Stable Diffusion",
        f"Exec={command}",
        f"Icon={icon}",
        "Terminal=false",
        "Categories=Graphics;2DGraphics;RasterGraphics;",
        "Keywords=stable diffusion;ai;image;inpaint;txt2img;",
        f"StartupWMClass={APP_ID}",
        "",
    ])


def install_desktop_entry(root: Path | None = None) -> list[Path]:
    """Write the desktop entry and the icon under `root` (default: data_home()); return both paths.

    Writing the same files again replaces them, so running it after moving the environment
    repairs the entry.
    """
    root = root or data_home()
    icon = root / "icons" / "hicolor" / "scalable" / "apps" / f"{APP_ID}.svg"
    entry = root / "applications" / f"{APP_ID}.desktop"
    icon.parent.mkdir(parents=True, exist_ok=True)
    entry.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(icon_path("app"), icon)
    entry.write_text(desktop_entry(), encoding="utf-8")
    return [entry, icon]


def main() -> int:
    """The command: install, say where, or say why not."""
    if not sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        print("sdstudio: desktop entries are for Linux desktops; nothing was installed.", file=sys.stderr)
        return 2
    try:
        written = install_desktop_entry()
    except OSError as exc:
        print(f"sdstudio: cannot install the desktop entry: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    print("SD Studio is in the application launcher (log out and in if it does not show yet).")
    return 0
