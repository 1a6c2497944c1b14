"""Server tokens never reach the settings file: the keyring when there is one, else a file only
this user can read, beside the settings; an old plain-text token moves there on load."""

from __future__ import annotations

import json
import stat
import sys
from types import ModuleType, SimpleNamespace

import pytest

from sdstudio.settings import Settings, SettingsStore
from sdstudio.tokens import FILE_NAME, SERVICE, TokenStore, system_keyring

URL = "http://gpu-box:8188"


def test_without_a_keyring_the_token_goes_to_a_private_file_not_the_settings(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "keyring", None)  # no keyring package
    store = SettingsStore(tmp_path / "settings.json", TokenStore(tmp_path))
    settings = Settings()
    settings.remember_server(URL, "s3cret-token")
    store.save(settings)
    assert "s3cret-token" not in (tmp_path / "settings.json").read_text()
    token_file = tmp_path / FILE_NAME
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert json.loads(token_file.read_text()) == {URL: "s3cret-token"}
    loaded, notice = store.load()
    assert notice is None and (loaded.server, loaded.server_token) == (URL, "s3cret-token")
    loaded.remember_server(URL, "")  # an emptied token is forgotten
    store.save(loaded)
    assert json.loads(token_file.read_text()) == {}


def test_a_plain_text_token_of_an_older_version_moves_out_of_the_settings_on_load(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"server": URL, "server_token": "old-secret", "prompt": "a fig"}))
    path.chmod(0o644)
    store = SettingsStore(path)  # a settings file of its own: tokens beside it, no keyring
    loaded, _ = store.load()
    assert loaded.server_token == "old-secret" and loaded.prompt == "a fig"
    assert "old-secret" not in path.read_text()
    assert stat.S_IMODE((tmp_path / FILE_NAME).stat().st_mode) == 0o600
    assert store.tokens.where == str(tmp_path / FILE_NAME)


def test_a_working_keyring_is_used_and_the_file_is_not(tmp_path, monkeypatch):
    passwords: dict[tuple[str, str], str] = {}
    keyring = ModuleType("keyring")
    keyring.get_keyring = lambda: SimpleNamespace()  # a backend of its own kind: usable
    keyring.get_password = lambda service, user: passwords.get((service, user))
    keyring.set_password = lambda service, user, secret: passwords.__setitem__((service, user), secret)
    keyring.delete_password = lambda service, user: passwords.pop((service, user))
    backends, fail = ModuleType("keyring.backends"), ModuleType("keyring.backends.fail")
    fail.Keyring = type("Keyring", (), {})
    backends.fail = fail
    for name, module in (("keyring", keyring), ("keyring.backends", backends), ("keyring.backends.fail", fail)):
        monkeypatch.setitem(sys.modules, name, module)
    assert system_keyring() is keyring
    tokens = TokenStore(tmp_path)
    tokens.set(URL, "k")
    assert passwords == {(SERVICE, URL): "k"} and tokens.get(URL) == "k" and tokens.where == "the system keyring"
    assert not (tmp_path / FILE_NAME).exists()
    tokens.set(URL, "")
    assert passwords == {}
    keyring.get_keyring = lambda: fail.Keyring()  # only the fail backend: the file it is
    assert system_keyring() is None


@pytest.mark.parametrize("broken", ["{not json", "[1, 2]"])
def test_an_unreadable_token_file_reads_as_no_tokens(tmp_path, broken):
    (tmp_path / FILE_NAME).write_text(broken)
    assert TokenStore(tmp_path, use_keyring=False).get(URL) == ""
