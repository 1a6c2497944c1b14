"""What the studio remembers between runs: last prompt, parameters, model, window layout.

A JSON file under the user's config dir (the path is injectable for tests). No Qt here: the
window stores its geometry and dock layout as base64 strings that this module keeps opaque.
A file that cannot be read never stops the app: it falls back to defaults and says why.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdstudio.fileio import write_atomic
from sdstudio.tokens import TokenStore

SETTINGS_VERSION = 1
RECENT_MODELS_LIMIT = 8
RECENT_SERVERS_LIMIT = 8


@dataclass
class Settings:
    prompt: str = ""
    negative_prompt: str = ""
    # GenerationRequest field names -> JSON values (mode as its string value).
    params: dict[str, Any] = field(default_factory=dict)
    # ModelRef.source of the last model used; None means the built-in model.
    model: str | None = None
    recent_models: list[str] = field(default_factory=list)
    # QMainWindow.saveGeometry() / saveState() as base64, opaque to this module.
    window_geometry: str = ""
    window_state: str = ""
    # The ComfyUI server that generates ("" = this computer), its token for a proxy (kept by
    # tokens.TokenStore in the keyring or a private file, never written to this file), and the
    # servers used before, newest first.
    server: str = ""
    server_token: str = ""
    recent_servers: list[str] = field(default_factory=list)
    # Model ▸ Memory choices (MemoryOptions as a dict); empty = all automatic.
    memory: dict[str, Any] = field(default_factory=dict)
    # Add-on folders by NetworkFolders field (loras, embeddings, vaes, upscalers); a missing or
    # empty entry means the default folder.
    folders: dict[str, str] = field(default_factory=dict)
    # Model ▸ VAE per model: ModelRef.source -> VAE file name; absent = the model's own VAE.
    vaes: dict[str, str] = field(default_factory=dict)

    def remember_server(self, url: str, token: str = "") -> None:
        """Generate on `url` from now on ("" = this computer); a server joins the recent ones."""
        self.server, self.server_token = url, token if url else ""
        if url:
            self.recent_servers = [url] + [s for s in self.recent_servers if s != url]
            del self.recent_servers[RECENT_SERVERS_LIMIT:]

    def remember_model(self, source: str) -> None:
        """Make `source` the current model and the first of the recent models."""
        self.model = source
        self.recent_models = [source] + [s for s in self.recent_models if s != source]
        del self.recent_models[RECENT_MODELS_LIMIT:]


def default_settings_path() -> Path:
    from platformdirs import user_config_dir

    return Path(user_config_dir("sdstudio")) / "settings.json"


class SettingsStore:
    """Reads and writes one settings file. `load()` returns (settings, notice-or-None). The
    server token goes to `tokens` (default: the keyring for the default file, a private file
    beside any other, see tokens.py)."""

    def __init__(self, path: Path | str | None = None, tokens: TokenStore | None = None) -> None:
        self.path = Path(path) if path is not None else default_settings_path()
        self.tokens = tokens or TokenStore(self.path.parent, use_keyring=path is None)

    def load(self) -> tuple[Settings, str | None]:
        if not self.path.exists():
            return Settings(), None
        try:
            settings = _from_json(json.loads(self.path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as exc:
            return Settings(), (
                f"Your settings file could not be read ({exc}); the studio started with default "
                f"settings. The file is {self.path}; it will be replaced when the studio closes."
            )
        if settings.server_token:  # written as plain text by an older version: moved out at once
            with contextlib.suppress(OSError):  # a read-only folder: moved at the next save
                self.save(settings)
        settings.server_token = self.tokens.get(settings.server)
        return settings, None

    def save(self, settings: Settings) -> None:
        """Write atomically, so a crash mid-write never leaves a half file behind."""
        self.tokens.set(settings.server, settings.server_token)
        data = dataclasses.asdict(settings) | {"version": SETTINGS_VERSION}
        del data["server_token"]
        text = json.dumps(data, indent=2, ensure_ascii=False).encode("utf-8")
        write_atomic(self.path, lambda f: f.write(text))


def _from_json(data: Any) -> Settings:
    if not isinstance(data, dict):
        raise ValueError("the file does not hold a JSON object")
    defaults = Settings()
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        value = data.get(f.name, getattr(defaults, f.name))
        expected = type(getattr(defaults, f.name))
        if f.name == "model":
            if value is not None and not isinstance(value, str):
                raise TypeError("'model' must be a string or null")
        elif not isinstance(value, expected):
            raise TypeError(f"'{f.name}' must be a {expected.__name__}")
        values[f.name] = value
    for name in ("recent_models", "recent_servers"):
        if not all(isinstance(s, str) for s in values[name]):
            raise TypeError(f"'{name}' must be a list of strings")
    for name in ("folders", "vaes"):
        if not all(isinstance(v, str) for v in values[name].values()):
            raise TypeError(f"'{name}' must map names to strings")
    return Settings(**values)
