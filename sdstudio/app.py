"""Composition root: the `sdstudio` command. `sdstudio generate ...` runs the headless CLI;
plain `sdstudio` opens the window."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "generate":
        from sdstudio.cli import main as cli_main

        return cli_main(args[1:])
    from sdstudio.ui.launch import run_window

    return run_window(args)
