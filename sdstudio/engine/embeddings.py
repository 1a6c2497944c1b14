"""Textual-inversion embeddings used as A1111 uses them: a word of the prompt that spells an
embedding file's name stands for that file's vectors.

A1111 matches names on tokens, not characters: the name is tokenized like the prompt, and
wherever its tokens appear in a piece of the prompt they are replaced by the embedding's
vectors (an embedding of N vectors takes N token positions and counts toward the 75-token
chunks). Here the matched tokens become placeholder ids (PLACEHOLDER_BASE and up) in the
prompt's chunks; conditioning.py swaps the vectors in at those positions, after the token
embedding layer, so a prompt without any embedding's name runs exactly the code it ran
before. The text encoders and tokenizers are never changed.

Formats (as A1111 reads them):
- `.safetensors`: `emb_params` (SD 1.x/2.x), `clip_l` + `clip_g` (SDXL: one set per text
  encoder), or one tensor under any key (diffusers' `{token: vector}`);
- `.pt` / `.bin` pickles, only with `allow_pickle` (read with torch's weights-only loader):
  A1111's `{"string_to_param": {"*": vectors}}` or diffusers' `{token: vector}`.

Only files whose names occur in the prompt or negative prompt are read; read ones are kept
(by path, size and modification time). The matching is pure Python, so the window's token
counts can count an embedding's vectors (`vector_counts`) without torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdstudio.engine.networks import (
    FileVersion,
    NetworkFile,
    NetworkKind,
    file_version,
    list_networks,
    short_hash,
)
from sdstudio.engine.prompts import CHUNK_LENGTH, Tokenize

if TYPE_CHECKING:
    import torch

# Placeholder token ids start here: far above any CLIP vocabulary (49408), so they never
# collide with a real token, and each stands for one vector of one embedding.
PLACEHOLDER_BASE = 1 << 24
SDXL_KEYS = ("clip_l", "clip_g")  # encoder 1's vectors, encoder 2's


class EmbeddingError(ValueError):
    """An embedding that cannot be used with this model; str(e) is a sentence for a person."""


# ---- token matching (pure Python) ----------------------------------------------------------


class TokenMatcher:
    """Replaces embedding names in tokenized prompt pieces by placeholder ids, as A1111 does:
    at each position the longest name whose tokens start there wins."""

    def __init__(self, counts: Mapping[str, int], tokenize: Tokenize) -> None:
        """`counts`: embedding name -> number of vectors (placeholders given out in this order)."""
        self.names = list(counts)
        self.first_id = first_ids(counts)
        self.used: list[str] = []  # names met so far, in order of first use
        self._by_first: dict[int, list[tuple[tuple[int, ...], str]]] = {}
        for name, ids in zip(self.names, tokenize(self.names), strict=True):
            if ids:
                self._by_first.setdefault(ids[0], []).append((tuple(ids), name))
        for candidates in self._by_first.values():
            candidates.sort(key=lambda pair: -len(pair[0]))
        self._counts = dict(counts)
        self._runs = {self.first_id[name]: count for name, count in counts.items()}
        self._tokenize = tokenize

    def run_length(self, token: int) -> int:
        """For chunking: an embedding's vectors stay in one chunk (from its first placeholder)."""
        return self._runs.get(token, 1)

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """The wrapped tokenizer: `tokenize` with every embedding name made placeholders."""
        return [self._replace(ids) for ids in self._tokenize(texts)]

    def _replace(self, ids: list[int]) -> list[int]:
        out: list[int] = []
        i = 0
        while i < len(ids):
            match = next((
                (name, len(seq)) for seq, name in self._by_first.get(ids[i], ())
                if tuple(ids[i : i + len(seq)]) == seq
            ), None)
            if match is None:
                out.append(ids[i])
                i += 1
                continue
            name, length = match
            if name not in self.used:
                self.used.append(name)
            out += range(self.first_id[name], self.first_id[name] + self._counts[name])
            i += length
        return out


def first_ids(counts: Mapping[str, int]) -> dict[str, int]:
    """Each embedding's first placeholder id: consecutive runs of `count` ids, in order."""
    ids, next_id = {}, PLACEHOLDER_BASE
    for name, count in counts.items():
        ids[name] = next_id
        next_id += max(1, count)
    return ids


def mentioned(files: Sequence[NetworkFile], texts: Sequence[str]) -> list[NetworkFile]:
    """The files whose names occur in any of `texts`, ignoring case (CLIP reads lower case);
    a cheap first sieve before tokens decide."""
    lowered = [text.lower() for text in texts]
    return [f for f in files if any(f.name.lower() in text for text in lowered)]


def vector_counts(folder: Path, texts: Sequence[str], allow_pickle: bool = False) -> dict[str, int]:
    """Name -> vector count of the `.safetensors` embeddings in `folder` that `texts` mention,
    from the file headers alone (no torch), for the window's token counts. Pickles are left
    out: their size is known only by loading them."""
    from sdstudio.engine.single_file import SafetensorsFile

    counts = {}
    for file in mentioned(list_networks(NetworkKind.EMBEDDING, folder, allow_pickle), texts):
        if not file.path.name.lower().endswith(".safetensors"):
            continue
        try:
            shapes = SafetensorsFile(file.path).shapes
        except (OSError, ValueError):
            continue
        shape = shapes.get("emb_params") or shapes.get("clip_l") or (next(iter(shapes.values())) if len(shapes) == 1 else None)
        if shape:
            counts[file.name] = shape[0] if len(shape) == 2 else 1
    return counts


# ---- reading files --------------------------------------------------------------------------


@dataclass(frozen=True)
class EmbeddingFile:
    """One embedding as read: its vectors per text encoder ((N, width) each, float32, CPU);
    one set for SD 1.x/2.x, two (clip_l, clip_g) for SDXL."""

    name: str
    path: Path
    vectors: tuple[torch.Tensor, ...]
    hash: str  # A1111's short hash (the `TI hashes` value)

    @property
    def count(self) -> int:
        return int(self.vectors[0].shape[0])


_CACHE: dict[FileVersion, EmbeddingFile] = {}


def load_embedding(file: NetworkFile, allow_pickle: bool = False) -> EmbeddingFile:
    """The embedding in `file`, read once per version of the file. Raises EmbeddingError."""
    key = file_version(file.path)
    if key not in _CACHE:
        data = _read(file.path, allow_pickle)
        vectors = _vectors(file.name, data)
        _CACHE[key] = EmbeddingFile(file.name, file.path, vectors, short_hash(file.path, NetworkKind.EMBEDDING))
    return _CACHE[key]


def _read(path: Path, allow_pickle: bool) -> dict[str, Any]:
    import torch

    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        if not allow_pickle:
            raise EmbeddingError(
                f"Embedding {path.name} is a pickle file ({suffix}), which can run code when loaded: "
                "use a .safetensors version, or allow pickle files if you trust where it came from."
            )
        data = torch.load(path, map_location="cpu", weights_only=True)
    except EmbeddingError:
        raise
    except Exception as exc:  # safetensors and torch.load raise many kinds for a bad file
        raise EmbeddingError(f"Embedding {path.name} cannot be read: {exc}") from exc
    if not isinstance(data, dict):
        raise EmbeddingError(f"Embedding {path.name} holds no table of vectors.")
    return data


def _vectors(name: str, data: Mapping[str, Any]) -> tuple[torch.Tensor, ...]:
    import torch

    def matrix(value: Any) -> torch.Tensor | None:
        if not isinstance(value, torch.Tensor) or value.ndim not in (1, 2) or not value.is_floating_point():
            return None
        return value.detach().reshape(-1, value.shape[-1]).float()

    params = data.get("string_to_param")
    if isinstance(params, Mapping) and matrix(params.get("*")) is not None:
        return (matrix(params["*"]),)
    if all(matrix(data.get(key)) is not None for key in SDXL_KEYS):
        found = tuple(matrix(data[key]) for key in SDXL_KEYS)
        if found[0].shape[0] != found[1].shape[0]:
            raise EmbeddingError(f"Embedding {name} is damaged: its clip_l and clip_g hold different numbers of vectors.")
        return found
    if matrix(data.get("emb_params")) is not None:
        return (matrix(data["emb_params"]),)
    tensors = [matrix(v) for v in data.values() if isinstance(v, torch.Tensor)]
    if len(tensors) == 1 and tensors[0] is not None:  # diffusers' {token: vector}
        return (tensors[0],)
    raise EmbeddingError(
        f"{name} is not a textual-inversion embedding (no emb_params, clip_l/clip_g or string_to_param vectors)."
    )


# ---- one prompt's embeddings ----------------------------------------------------------------


@dataclass
class PromptEmbeddings:
    """The embeddings a job's prompts may name, checked against the model's text encoders.

    `matcher(tokenize)` gives a tokenizer that turns names into placeholders; `vectors(i)` the
    placeholder -> vector table for text encoder i; `used` the embeddings met, in order."""

    files: list[EmbeddingFile]
    _matchers: list[TokenMatcher] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {f.name: f.count for f in self.files}

    def matcher(self, tokenize: Tokenize) -> TokenMatcher:
        matcher = TokenMatcher(self.counts, tokenize)
        self._matchers.append(matcher)
        return matcher

    def vectors(self, encoder: int) -> dict[int, torch.Tensor]:
        table = {}
        for file, first in zip(self.files, first_ids(self.counts).values(), strict=True):
            for j, row in enumerate(file.vectors[encoder]):
                table[first + j] = row
        return table

    @property
    def used(self) -> list[EmbeddingFile]:
        """In the order met: the prompt's, then the negative prompt's (as A1111 lists them)."""
        names = dict.fromkeys(name for matcher in self._matchers for name in matcher.used)
        by_name = {f.name: f for f in self.files}
        return [by_name[name] for name in names]


def prompt_embeddings(
    folder: Path, texts: Sequence[str], widths: Sequence[int], allow_pickle: bool = False
) -> PromptEmbeddings | None:
    """The embeddings in `folder` that `texts` mention, read (or taken from the cache) and
    checked against the text encoders' widths (`widths`, one per encoder); None when none is
    mentioned. Raises EmbeddingError for a file that cannot serve this model."""
    by_name: dict[str, NetworkFile] = {}
    for file in mentioned(list_networks(NetworkKind.EMBEDDING, folder, allow_pickle), texts):
        by_name.setdefault(file.name, file)  # the same name further down the folder is shadowed
    candidates = list(by_name.values())
    if not candidates:
        return None
    files = [load_embedding(file, allow_pickle) for file in candidates]
    for file in files:
        check_fits(file, widths)
    return PromptEmbeddings(files)


def check_fits(file: EmbeddingFile, widths: Sequence[int]) -> None:
    """Refuse an embedding made for another family of model, saying which."""
    if file.count > CHUNK_LENGTH:
        raise EmbeddingError(f"Embedding {file.name} has {file.count} vectors, more than the {CHUNK_LENGTH} a chunk holds.")
    family = {1: "SD 1.x/2.x", 2: "SDXL"}
    if len(file.vectors) != len(widths):
        raise EmbeddingError(
            f"Embedding {file.name} is an {family.get(len(file.vectors), '?')} embedding; this model is "
            f"{family.get(len(widths), '?')}, so it cannot use it (remove {file.name} from the prompt)."
        )
    for vectors, width in zip(file.vectors, widths, strict=True):
        if vectors.shape[1] != width:
            raise EmbeddingError(
                f"Embedding {file.name} has {vectors.shape[1]}-wide vectors where this model's text encoder "
                f"takes {width} (an SD 1.x embedding on SD 2.x, or the other way round?); remove it from the prompt."
            )
