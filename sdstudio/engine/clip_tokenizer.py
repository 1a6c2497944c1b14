"""CLIP's byte-pair tokenizer in plain Python, for counting a prompt's tokens in the window.

The window shows how full each 75-token chunk is as the person types; importing transformers
(and with it, often, torch) in the UI thread for that would cost seconds. Every Stable Diffusion
text encoder (SD1 CLIP-L, SD2 OpenCLIP-H, both of SDXL's) uses the same vocabulary and merges,
so the copy shipped in the package counts for all of them. tests/engine/test_prompts.py checks
the ids against transformers' CLIPTokenizer.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path

from sdstudio.engine.prompts import token_counts

# CLIP's pre-tokenizer: contractions, runs of letters, single digits, runs of other symbols.
# Python's `re` has no \p{L}: [^\W\d_] is "a word character that is no digit or underscore".
_PIECES = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|(?:[^\s\w]|_)+")


def _byte_symbols() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from bytes to printable characters (the vocabulary's
    alphabet): printable Latin-1 bytes stand for themselves, the rest for code points from 256."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    symbols, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            symbols[byte] = chr(byte)
        else:
            symbols[byte] = chr(256 + extra)
            extra += 1
    return symbols


class ClipTokenizer:
    """Token ids of text, without start/end tokens, as CLIP's tokenizer gives them."""

    def __init__(self, vocab: dict[str, int], merges: Sequence[tuple[str, str]]) -> None:
        self._vocab = vocab
        self._ranks = {pair: rank for rank, pair in enumerate(merges)}
        self._bytes = _byte_symbols()
        self._cache: dict[str, list[int]] = {}
        self.comma = vocab[",</w>"]

    @classmethod
    def from_folder(cls, folder: Path) -> ClipTokenizer:
        """From a tokenizer folder's vocab.json and merges.txt."""
        vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        lines = (folder / "merges.txt").read_text(encoding="utf-8").splitlines()
        merges = [tuple(line.split()) for line in lines if line and not line.startswith("#version")]
        return cls(vocab, merges)  # type: ignore[arg-type]

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        return [self._ids(text) for text in texts]

    def _ids(self, text: str) -> list[int]:
        text = " ".join(unicodedata.normalize("NFC", text).split()).lower()
        ids: list[int] = []
        for piece in _PIECES.findall(text):
            if piece not in self._cache:
                symbols = "".join(self._bytes[b] for b in piece.encode("utf-8"))
                self._cache[piece] = [self._vocab[word] for word in self._merge(symbols)]
            ids += self._cache[piece]
        return ids

    def _merge(self, symbols: str) -> list[str]:
        """Apply the merges in rank order to one piece, the last symbol marked as word end."""
        word = [*symbols[:-1], symbols[-1] + "</w>"]
        while len(word) > 1:
            pairs = {(a, b) for a, b in zip(word, word[1:], strict=False)}
            best = min(pairs, key=lambda pair: self._ranks.get(pair, len(self._ranks)))
            if best not in self._ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        return word


@cache
def bundled_tokenizer() -> ClipTokenizer:
    """The CLIP tokenizer shipped with the app (loaded once, about 0.2 s)."""
    from sdstudio.resources import config_root

    return ClipTokenizer.from_folder(config_root() / "sd15" / "tokenizer")


def prompt_token_counts(prompt: str, embeddings: Mapping[str, int] | None = None) -> list[int]:
    """Tokens in each 75-token chunk of an A1111 prompt, as the engine will chunk it.
    `embeddings` (name -> vector count, see embeddings.vector_counts) makes each embedding's
    name count as its vectors."""
    from sdstudio.engine.embeddings import TokenMatcher

    tokenizer = bundled_tokenizer()
    if not embeddings:
        return token_counts(prompt, tokenizer.tokenize, tokenizer.comma)
    matcher = TokenMatcher(embeddings, tokenizer.tokenize)
    return token_counts(prompt, matcher.tokenize, tokenizer.comma, matcher.run_length)
