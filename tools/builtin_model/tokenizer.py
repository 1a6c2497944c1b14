"""The built-in model's CLIP tokenizer: a small word vocabulary in CLIP's BPE format.

CLIP's BPE starts from single characters (the last one of a word carrying `</w>`) and applies
merges; the merges written here make each vocabulary word a single token, while any other
word still tokenizes into smaller pieces or characters (no crash).
"""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

from tools.builtin_model.scenes import all_words

BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def _bytes_to_unicode() -> list[str]:
    """CLIP's reversible byte -> printable character table (the base alphabet)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def _apply_merges(pieces: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """CLIP's BPE loop: keep merging the best-ranked adjacent pair."""
    while len(pieces) > 1:
        rank, i = min((ranks.get(pair, 1 << 30), i) for i, pair in enumerate(pairwise(pieces)))
        if rank == 1 << 30:
            break
        pieces = pieces[:i] + [pieces[i] + pieces[i + 1]] + pieces[i + 2 :]
    return pieces


def build_vocab(words: list[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Token table and merges. Merges are appended greedily: while a word still splits into
    several pieces under the merges so far, merge its first two pieces. An appended merge
    ranks last, so it cannot change a word already made whole (building each word's merges
    left to right independently did: "orange" fell apart on the "an" of "an")."""
    base = _bytes_to_unicode()
    tokens = base + [c + "</w>" for c in base]
    merges: list[tuple[str, str]] = []
    ranks: dict[tuple[str, str], int] = {}
    for word in words:
        while len(pieces := _apply_merges(list(word[:-1]) + [word[-1] + "</w>"], ranks)) > 1:
            ranks[(pieces[0], pieces[1])] = len(merges)
            merges.append((pieces[0], pieces[1]))
            tokens.append(pieces[0] + pieces[1])
    vocab: dict[str, int] = {}
    for tok in tokens + [BOS, EOS]:
        vocab.setdefault(tok, len(vocab))
    return vocab, merges


def write_tokenizer(folder: Path) -> int:
    """Write a CLIPTokenizer folder; returns the vocabulary size."""
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab, merges = build_vocab(all_words())
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n")
    tok = CLIPTokenizer(
        str(folder / "vocab.json"),
        str(folder / "merges.txt"),
        bos_token=BOS,
        eos_token=EOS,
        pad_token=EOS,
        unk_token=EOS,
        model_max_length=77,
    )
    tok.save_pretrained(folder)
    return len(vocab)
