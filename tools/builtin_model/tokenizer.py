"""The built-in model's CLIP tokenizer: a small word vocabulary in CLIP's BPE format.

CLIP's BPE starts from single characters (the last one of a word carrying `</w>`) and applies
merges; writing, for every vocabulary word, the merges that build it left to right makes each
word a single token, while any other word still tokenizes into its characters (no crash).
"""

from __future__ import annotations

import json
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


def build_vocab(words: list[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    base = _bytes_to_unicode()
    tokens = base + [c + "</w>" for c in base]
    merges: list[tuple[str, str]] = []
    for word in words:
        symbols = list(word[:-1]) + [word[-1] + "</w>"]
        left = symbols[0]
        for right in symbols[1:]:
            pair = (left, right)
            if pair not in merges:
                merges.append(pair)
                tokens.append(left + right)
            left = left + right
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
