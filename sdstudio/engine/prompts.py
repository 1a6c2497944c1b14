"""A1111 prompt syntax: attention weights, BREAK, and 75-token chunks.

`(word)` multiplies the weight of what it encloses by 1.1, `[word]` divides it by 1.1,
`(word:1.3)` multiplies it by 1.3; brackets nest and multiply, an unclosed bracket runs to the
end of the prompt, a stray closing bracket is plain text, `\\(` `\\)` `\\[` `\\]` `\\\\` are the
literal characters. `BREAK` (in capitals, as a word) ends the current 75-token chunk.

The results follow A1111's `parse_prompt_attention` and its CLIP chunking (the tables in
tests/engine/test_prompts.py are A1111's documented outputs), so a prompt brought from A1111
weighs the same here. Pure Python: the window counts tokens with it without torch.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sdstudio.engine.networks import strip_tags

ROUND = 1.1
SQUARE = 1 / 1.1  # A1111 multiplies by the reciprocal (not divides): the same floats result
CHUNK_LENGTH = 75  # tokens a CLIP text encoder reads per pass, without its start and end tokens
# A1111's "comma padding backtrack": when a chunk fills up, up to this many tokens after its
# last comma move on to the next chunk, so a phrase is not split between two chunks.
COMMA_BACKTRACK = 20

_SYNTAX = re.compile(
    r"""
    \\(?P<escaped>[()\[\]\\])       # an escaped bracket or backslash: the literal character
    | (?P<backslash>\\)             # any other backslash is dropped, as A1111 does
    | (?P<open>[(\[])
    | :\s*(?P<weight>[+-]?[.\d]+)\s*\)   # ":1.3)" closes a round bracket with that weight
    | (?P<close>[)\]])
    | (?P<text>[^\\()\[\]:]+ | :)
    """,
    re.VERBOSE,
)
_BREAK = re.compile(r"\s*\bBREAK\b\s*")


@dataclass
class _Piece:
    text: str
    weight: float = 1.0
    is_break: bool = False


Weighted = tuple[str, float]


def parse_prompt(prompt: str) -> list[list[Weighted]]:
    """The prompt as sections split at BREAK, each a list of (text, weight) with neighbours
    of equal weight merged. A prompt without text gives [[("", 1.0)]]."""
    pieces: list[_Piece] = []
    round_open: list[int] = []  # where each open bracket's pieces start
    square_open: list[int] = []

    def weigh_from(start: int, factor: float) -> None:
        for piece in pieces[start:]:
            piece.weight *= factor

    for match in _SYNTAX.finditer(prompt):
        kind, value = match.lastgroup, match.group(match.lastgroup or 0)
        if kind == "escaped":
            pieces.append(_Piece(value))
        elif kind == "backslash":
            continue
        elif kind == "open":
            (round_open if value == "(" else square_open).append(len(pieces))
        elif kind == "weight" and round_open and _is_number(value):
            weigh_from(round_open.pop(), float(value))
        elif kind == "close" and value == ")" and round_open:
            weigh_from(round_open.pop(), ROUND)
        elif kind == "close" and value == "]" and square_open:
            weigh_from(square_open.pop(), SQUARE)
        else:  # text, or a closing bracket or weight with nothing open: plain text
            for i, part in enumerate(_BREAK.split(match.group(0))):
                if i:
                    pieces.append(_Piece("", is_break=True))
                pieces.append(_Piece(part))
    for start in round_open:
        weigh_from(start, ROUND)
    for start in square_open:
        weigh_from(start, SQUARE)

    sections: list[list[Weighted]] = [[]]
    for piece in pieces:
        section = sections[-1]
        if piece.is_break:
            sections.append([])
        elif section and section[-1][1] == piece.weight:
            section[-1] = (section[-1][0] + piece.text, piece.weight)
        elif piece.text or not section:
            section.append((piece.text, piece.weight))
    return [section or [("", 1.0)] for section in sections]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclass
class Chunk:
    """Up to CHUNK_LENGTH token ids (without start/end tokens) and each one's weight."""

    tokens: list[int] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)


Tokenize = Callable[[Sequence[str]], list[list[int]]]
# How many tokens from this one on stay together in one chunk (an embedding's vectors), else 1.
RunLength = Callable[[int], int]


def chunk_prompt(prompt: str, tokenize: Tokenize, comma: int, run_length: RunLength | None = None) -> list[Chunk]:
    """The prompt's tokens in chunks of at most CHUNK_LENGTH, as A1111 splits them: a new
    chunk at each BREAK and when one is full, moving the words after a recent comma along
    with it. `tokenize` maps texts to token ids without special tokens; `comma` is the id of
    ",". A run of tokens `run_length` keeps together (an embedding's vectors) starts a new
    chunk where it would not fit, as A1111 does. Extra-network tags are left out. Always at
    least one chunk (an empty prompt is one empty chunk)."""
    chunks: list[Chunk] = []
    sections = parse_prompt(strip_tags(prompt))
    for number, section in enumerate(sections, 1):
        chunk = Chunk()
        last_comma = -1  # index in chunk.tokens of its last comma
        texts = [text for text, _ in section]
        for ids, (_, weight) in zip(tokenize(texts), section, strict=True):
            position = 0
            while position < len(ids):
                token = ids[position]
                run = run_length(token) if run_length else 1
                position += run
                if run > 1:
                    if chunk.tokens and len(chunk.tokens) + run > CHUNK_LENGTH:
                        chunks.append(chunk)
                        chunk, last_comma = Chunk(), -1
                    chunk.tokens += ids[position - run : position]
                    chunk.weights += [weight] * run
                    continue
                if len(chunk.tokens) == CHUNK_LENGTH:
                    carried = Chunk()
                    if token != comma and last_comma >= 0 and CHUNK_LENGTH - last_comma <= COMMA_BACKTRACK:
                        cut = last_comma + 1
                        carried = Chunk(chunk.tokens[cut:], chunk.weights[cut:])
                        del chunk.tokens[cut:], chunk.weights[cut:]
                    chunks.append(chunk)
                    chunk, last_comma = carried, -1
                if token == comma:
                    last_comma = len(chunk.tokens)
                chunk.tokens.append(token)
                chunk.weights.append(weight)
        # BREAK always closes a chunk, even an empty one ("BREAK a" is two chunks); the end
        # of the prompt adds a chunk only when something is left in it, as in A1111.
        if number < len(sections) or chunk.tokens or not chunks:
            chunks.append(chunk)
    return chunks


def token_counts(prompt: str, tokenize: Tokenize, comma: int, run_length: RunLength | None = None) -> list[int]:
    """How many tokens each chunk of the prompt holds (of CHUNK_LENGTH), for the window."""
    return [len(chunk.tokens) for chunk in chunk_prompt(prompt, tokenize, comma, run_length)]


WEIGHT_STEP = 0.1  # A1111's Ctrl+Up / Ctrl+Down step
# What ends a word for Ctrl+Up/Down with nothing selected (A1111's default delimiters).
_WORD_DELIMITERS = frozenset(".,\\/!?%^*;:{}=`~()[]<> \t\n")
_WEIGHT_TAIL = re.compile(r":\s*([+-]?[.\d]+)\s*\)")


def nudge_weight(text: str, start: int, end: int, delta: float) -> tuple[str, int, int]:
    """Raise (delta > 0) or lower the weight of text[start:end] as A1111's Ctrl+Up/Down does:
    "word" becomes "(word:1.1)", "(word:1.1)" becomes "(word:1.2)", and a weight back at 1
    drops its brackets. With nothing selected it works on the weighted group or the word
    around `start`. Returns the new text and the new selection (the words, brackets excluded);
    the text unchanged when there is nothing to weigh."""
    if start == end:
        start, end = _target_at(text, start)
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start == end:
        return text, start, end
    tail = _WEIGHT_TAIL.match(text, end)
    if start > 0 and text[start - 1] == "(" and tail and _is_number(tail.group(1)):
        weight = round(float(tail.group(1)) + delta, 2)
        if weight == 1:
            return text[: start - 1] + text[start:end] + text[tail.end() :], start - 1, end - 1
        return f"{text[:end]}:{weight:g}){text[tail.end():]}", start, end
    return f"{text[:start]}({text[start:end]}:{round(1 + delta, 2):g}){text[end:]}", start + 1, end + 1


def _target_at(text: str, position: int) -> tuple[int, int]:
    """The words of the "(words:weight)" group around `position`, else the word there."""
    opening = text.rfind("(", 0, position)
    if opening >= 0 and ")" not in text[opening:position]:
        colon = text.find(":", opening)
        tail = _WEIGHT_TAIL.match(text, colon) if colon >= 0 else None
        if tail and position <= tail.end() and "(" not in text[opening + 1 : colon]:
            return opening + 1, colon
    start = end = position
    while start > 0 and text[start - 1] not in _WORD_DELIMITERS:
        start -= 1
    while end < len(text) and text[end] not in _WORD_DELIMITERS:
        end += 1
    return start, end
