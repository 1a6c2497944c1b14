"""Server tokens kept out of the settings file: in the system keyring when the `keyring`
package and a working keyring backend are there, else in a file only this user can read (0600)
in the app's config folder. Never in the settings JSON, the history or the repository.

A settings file given on the command line (a separate profile, and every test) keeps its tokens
in a file beside it and never touches the system keyring. No Qt here.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from sdstudio.fileio import write_atomic

log = logging.getLogger(__name__)
SERVICE = "sdstudio"  # the keyring's service name; the server address is the user name
FILE_NAME = "server-tokens.json"
PRIVATE = 0o600


def system_keyring() -> Any | None:
    """The `keyring` module when it has a usable backend (not the fail or null one), else None."""
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return None
    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring) or type(backend).__module__.endswith(".null"):
        return None
    return keyring


class TokenStore:
    """Tokens by server address. `folder` holds the fallback file; `use_keyring` False keeps
    the system keyring out of it (see module doc)."""

    def __init__(self, folder: Path, use_keyring: bool = True) -> None:
        self.path = folder / FILE_NAME
        self._keyring = system_keyring() if use_keyring else None

    @property
    def where(self) -> str:
        """Where tokens are kept, for a person."""
        return "the system keyring" if self._keyring else str(self.path)

    def get(self, url: str) -> str:
        if not url:
            return ""
        if self._keyring:
            try:
                return self._keyring.get_password(SERVICE, url) or ""
            except Exception as exc:  # noqa: BLE001 - a locked or broken keyring: fall back to the file
                log.warning("the system keyring could not be read (%s); using %s", exc, self.path)
        return str(self._file().get(url, ""))

    def set(self, url: str, token: str) -> None:
        """Remember `token` for `url`; an empty token forgets it."""
        if not url:
            return
        if self._keyring:
            try:
                if token:
                    self._keyring.set_password(SERVICE, url, token)
                elif self._keyring.get_password(SERVICE, url) is not None:
                    self._keyring.delete_password(SERVICE, url)
                return
            except Exception as exc:  # noqa: BLE001 - a locked or broken keyring: fall back to the file
                log.warning("the system keyring could not be written (%s); using %s", exc, self.path)
        tokens = self._file()
        if tokens.get(url, "") == token:
            return
        if token:
            tokens[url] = token
        else:
            tokens.pop(url, None)
        text = json.dumps(tokens, indent=2).encode("utf-8")
        write_atomic(self.path, lambda f: f.write(text), mode=PRIVATE)
        os.chmod(self.path, PRIVATE)  # in case an older file was made with wider rights

    def _file(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("the token file %s could not be read: %s", self.path, exc)
            return {}
        return data if isinstance(data, dict) else {}
