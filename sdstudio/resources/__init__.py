"""The files the app reads at run time, shipped inside the package: the built-in model
(models/builtin), the config and tokenizer folders for single-file checkpoints (configs), and
the icons (ui).

They are found through importlib.resources, never relative to a checkout, so an installed
wheel (pip, pipx) finds them wherever it lives. A leaf module: it imports nothing heavy.
"""

from __future__ import annotations

import atexit
from contextlib import ExitStack
from functools import cache
from importlib.resources import as_file, files
from pathlib import Path


@cache
def resource_root() -> Path:
    """This package's folder as a real path: diffusers and Qt open files by name.

    For a package installed as plain files (pip, pipx, a checkout) this is the folder itself;
    `as_file` would extract a zipped install to a temporary folder kept until exit.
    """
    stack = ExitStack()
    atexit.register(stack.close)
    return stack.enter_context(as_file(files(__name__)))


def builtin_model_dir() -> Path:
    """The diffusers folder of the small built-in model."""
    return resource_root() / "models" / "builtin"


def config_root() -> Path:
    """The per-family config folders (configs and tokenizers, no weights) used to build
    single-file checkpoints offline."""
    return resource_root() / "configs"


def icon_path(name: str) -> Path:
    """The SVG icon `name` (a file stem, e.g. "dice" or "app")."""
    return resource_root() / "ui" / f"{name}.svg"
