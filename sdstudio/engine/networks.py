"""Add-on files a prompt or a model names: LoRAs, textual-inversion embeddings, VAEs and
upscaler models, each kind in its own folder, found by file name as A1111 finds them.

Pure Python (no torch): the CLI, the window's browser and every backend share these rules.
A file is named by its stem (`add_detail` for `add_detail.safetensors`), searched in its
folder and the folders below it. `.safetensors` files are always listed; pickle formats
(`.pt`, `.pth`, `.bin`, `.ckpt`) can run arbitrary code when loaded, so they are listed and
found only with the same opt-in as checkpoints (`allow_pickle`).

`short_hash()` is the 12-hex-digit hash A1111 writes in `Lora hashes`, `TI hashes` and
`VAE hash`, so a result made here names its files the way civitai and A1111 look them up.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from sdstudio.engine.families import PICKLE_SUFFIXES

if TYPE_CHECKING:
    from sdstudio.engine.events import UsedNetwork
    from sdstudio.engine.request import GenerationRequest

SAFE_SUFFIX = ".safetensors"
PREVIEW_SUFFIXES = (".preview.png", ".png", ".jpg", ".jpeg", ".webp")


class NetworkKind(StrEnum):
    LORA = "lora"
    EMBEDDING = "embedding"
    VAE = "vae"
    UPSCALER = "upscaler"

    @property
    def folder_name(self) -> str:
        return {"lora": "loras", "embedding": "embeddings", "vae": "vae", "upscaler": "upscalers"}[self.value]

    @property
    def env(self) -> str:
        """The environment variable that moves this kind's folder (e.g. SDSTUDIO_LORAS)."""
        return "SDSTUDIO_" + self.folder_name.upper()


class NetworkNotFound(ValueError):
    """A name with no file of its kind; str(e) names the folder and the closest names."""


@dataclass(frozen=True)
class NetworkFile:
    kind: NetworkKind
    name: str  # the stem a prompt or a setting uses
    path: Path
    preview: Path | None = None  # a picture beside the file (name.preview.png, name.png, …)


@dataclass(frozen=True)
class NetworkFolders:
    """Where each kind is looked up; built from settings, the CLI or the defaults."""

    loras: Path
    embeddings: Path
    vaes: Path
    upscalers: Path

    def folder(self, kind: NetworkKind) -> Path:
        return {
            NetworkKind.LORA: self.loras,
            NetworkKind.EMBEDDING: self.embeddings,
            NetworkKind.VAE: self.vaes,
            NetworkKind.UPSCALER: self.upscalers,
        }[kind]

    @classmethod
    def default(cls, **overrides: Path | str | None) -> NetworkFolders:
        """Each kind's folder: the override when given, else $SDSTUDIO_<KIND>, else
        `<app data>/<kind>` (e.g. ~/.local/share/sdstudio/loras)."""
        paths = {}
        for kind, field_name in zip(NetworkKind, ("loras", "embeddings", "vaes", "upscalers"), strict=True):
            given = overrides.get(field_name) or os.environ.get(kind.env)
            paths[field_name] = Path(given).expanduser() if given else _data_folder() / kind.folder_name
        return cls(**paths)


def _data_folder() -> Path:
    from platformdirs import user_data_path

    return user_data_path("sdstudio")


def suffixes(allow_pickle: bool) -> tuple[str, ...]:
    return (SAFE_SUFFIX, *PICKLE_SUFFIXES) if allow_pickle else (SAFE_SUFFIX,)


def list_networks(kind: NetworkKind, folder: Path, allow_pickle: bool = False) -> list[NetworkFile]:
    """The files of `kind` in `folder` and below, sorted by name; an unreadable or missing
    folder lists nothing. Links that lead outside the folder are followed like A1111 does,
    since people link shared model folders in."""
    allowed = suffixes(allow_pickle)
    found: list[NetworkFile] = []
    try:
        paths = sorted(folder.rglob("*"))
    except OSError:
        return []
    for path in paths:
        lower = path.name.lower()
        if not lower.endswith(allowed) or lower.endswith(PREVIEW_SUFFIXES):
            continue
        try:
            if not path.is_file():
                continue
        except OSError:
            continue
        found.append(NetworkFile(kind, _stem(path), path, _preview(path)))
    found.sort(key=lambda f: (f.name.lower(), str(f.path)))
    return found


def find_network(kind: NetworkKind, name: str, folder: Path, allow_pickle: bool = False) -> NetworkFile:
    """The file called `name` (its stem, or its file name with the extension; exact case
    first, then any case). Raises NetworkNotFound naming the folder and close matches."""
    files = list_networks(kind, folder, allow_pickle)
    wanted = _stem(Path(name)) if name.lower().endswith(suffixes(True)) else name
    for match in (lambda f: f.name == wanted, lambda f: f.name.lower() == wanted.lower()):
        hits = [f for f in files if match(f)]
        if hits:
            return hits[0]
    raise NetworkNotFound(not_found_message(kind, name, [f.name for f in files], str(folder)))


def not_found_message(kind: NetworkKind, name: str, known: list[str], where: str) -> str:
    """One sentence for a missing add-on file, with the closest known names; shared by the
    local folders and remote servers so both read alike."""
    label = {"lora": "LoRA", "embedding": "embedding", "vae": "VAE", "upscaler": "upscaler model"}[kind.value]
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    if close:
        hint = "did you mean " + ", ".join(close) + "?"
    elif 0 < len(known) <= 10:
        hint = "there are " + ", ".join(known) + "."
    elif known:
        hint = f"{len(known)} {label}s are there."
    else:
        hint = f"there are no {label}s there."
    return f"No {label} called {name!r} in {where}; {hint}"


def listed_name(listed: str) -> str:
    """What a person calls a file a server lists: its name without folders and extension, as
    A1111 finds `<lora:ink:1>` for `styles/ink.safetensors`."""
    base = listed.replace("\\", "/").rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[0] if "." in base else base


def find_listed(names: Sequence[str], wanted: str) -> str | None:
    """The listed name `wanted` means: the name as listed, or without its folders and
    extension (exact case first, then any case); None when none matches."""
    for same in (lambda a, b: a == b, lambda a, b: a.lower() == b.lower()):
        for name in names:
            if same(name, wanted) or same(listed_name(name), wanted) or same(name.rsplit(".", 1)[0], wanted):
                return name
    return None


def missing_listed(
    used: Sequence[UsedNetwork], listed: Mapping[NetworkKind, Sequence[str]], where: str
) -> list[tuple[UsedNetwork, str]]:
    """Each recorded add-on file (kinds in `listed`) that is not among the names `listed` per
    kind (a server's lists), with the sentence that says so."""
    missing = []
    for network in used:
        kind = next((k for k in NetworkKind if k.value == network.kind), None)
        names = listed.get(kind) if kind is not None else None
        if kind is not None and names is not None and find_listed(names, network.name) is None:
            missing.append((network, not_found_message(kind, network.name, [listed_name(n) for n in names], where)))
    return missing


def _stem(path: Path) -> str:
    name = path.name
    lower = name.lower()
    for suffix in (SAFE_SUFFIX, *PICKLE_SUFFIXES):
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _preview(path: Path) -> Path | None:
    stem = _stem(path)
    for suffix in PREVIEW_SUFFIXES:
        candidate = path.with_name(stem + suffix)
        if candidate.is_file():
            return candidate
    return None


# ---- A1111's hashes ------------------------------------------------------------------------

FileVersion = tuple[str, int, int]


def file_version(path: Path) -> FileVersion:
    """Which version of which file `path` is (its real path, size and modification time): the
    key of every cache of what was read from an add-on file, so an edited or replaced file is
    read again."""
    stat = path.stat()
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns


_HASH_CACHE: dict[tuple[FileVersion, bool], str] = {}
_CHUNK = 1 << 20


def short_hash(path: Path, kind: NetworkKind) -> str:
    """The first 12 hex digits of the sha256 A1111 records: for a `.safetensors` LoRA the
    "addnet" hash (the tensor data after the JSON header, so editing the metadata keeps it),
    for anything else the whole file. Cached by path, size and modification time."""
    addnet = kind is NetworkKind.LORA and path.name.lower().endswith(SAFE_SUFFIX)
    key = (file_version(path), addnet)
    if key not in _HASH_CACHE:
        _HASH_CACHE[key] = _sha256(path, addnet)[:12]
    return _HASH_CACHE[key]


def _sha256(path: Path, skip_header: bool) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        if skip_header:
            (header_length,) = struct.unpack("<Q", file.read(8))
            file.seek(8 + header_length)
        while block := file.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


# ---- prompt tags ---------------------------------------------------------------------------

# `<lora:name:weight>`, `<lora:name:te:unet>` or `<lora:name:te=…:unet=…>`; the kind is any word
# so A1111's `<hypernet:…>` and other extensions' tags are recognised (and refused) too.
_TAG = re.compile(r"<(\w+):([^>]+)>")


@dataclass(frozen=True)
class NetworkTag:
    kind: str  # "lora", or another extension's word (not loaded here)
    name: str
    weight: float = 1.0  # text encoder
    unet_weight: float = 1.0
    text: str = ""  # the tag as written


def request_tags(request: GenerationRequest) -> list[NetworkTag]:
    """The extra-network tags of both of a request's prompts, in order: A1111 applies a tag
    in the negative prompt too."""
    prompt = request.prompt
    return [tag for text in (prompt.prompt, prompt.negative_prompt) for tag in parse_tags(text)]


def parse_tags(prompt: str) -> list[NetworkTag]:
    """The extra-network tags of a prompt, in order. A weight that is no number reads as 1,
    as A1111 does."""
    tags = []
    for match in _TAG.finditer(prompt):
        name, *args = [part.strip() for part in match.group(2).split(":")]
        positional = [a for a in args if "=" not in a]
        named = dict(a.split("=", 1) for a in args if "=" in a)
        weight = _number(named.get("te", positional[0] if positional else "1"))
        unet = _number(named.get("unet", positional[1] if len(positional) > 1 else str(weight)))
        tags.append(NetworkTag(match.group(1).lower(), name, weight, unet, match.group(0)))
    return tags


def strip_tags(prompt: str) -> str:
    """The prompt without its extra-network tags: they name files, not words to encode."""
    return _TAG.sub("", prompt)


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        return 1.0
    return value if value == value and abs(value) < 1e6 else 1.0
