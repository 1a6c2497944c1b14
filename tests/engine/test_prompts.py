"""A1111 prompt syntax: the parse against A1111's documented results, and the 75-token chunking."""

from __future__ import annotations

import re

import pytest

from sdstudio.engine.prompts import CHUNK_LENGTH, chunk_prompt, parse_prompt, token_counts

# (prompt, A1111's parse_prompt_attention result): the first six are the examples in A1111's
# own docstring, the floats exactly as it prints them.
A1111_CASES = [
    ("normal text", [("normal text", 1.0)]),
    ("an (important) word", [("an ", 1.0), ("important", 1.1), (" word", 1.0)]),
    ("(unbalanced", [("unbalanced", 1.1)]),
    (r"\(literal\]", [("(literal]", 1.0)]),
    ("(unnecessary)(parens)", [("unnecessaryparens", 1.1)]),
    (
        "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
        [("a ", 1.0), ("house", 1.5730000000000004), (" ", 1.1), ("on", 1.0), (" a ", 1.1),
         ("hill", 0.55), (", sun, ", 1.1), ("sky", 1.4641000000000006), (".", 1.1)],
    ),
    ("((word))", [("word", 1.2100000000000002)]),
    ("[word]", [("word", 0.9090909090909091)]),
    ("[[word]]", [("word", 0.8264462809917354)]),
    ("(word:1.3)", [("word", 1.3)]),
    ("(word: 0.25 )", [("word", 0.25)]),
    ("((a:0.5) b)", [("a", 0.55), (" b", 1.1)]),
    ("a:b (c:d)", [("a:b ", 1.0), ("c:d", 1.1)]),
    ("a) b] c", [("a) b] c", 1.0)]),
    ("word:1.2)", [("word:1.2)", 1.0)]),
    (r"\\ back\slash", [("\\ backslash", 1.0)]),
    ("[unclosed", [("unclosed", 0.9090909090909091)]),
    ("", [("", 1.0)]),
]


@pytest.mark.parametrize(("prompt", "expected"), A1111_CASES, ids=[c[0] or "empty" for c in A1111_CASES])
def test_weights_match_a1111(prompt, expected):
    assert parse_prompt(prompt) == [expected]


@pytest.mark.parametrize(
    ("prompt", "sections"),
    [
        ("a BREAK b", [[("a", 1.0)], [("b", 1.0)]]),
        ("(a BREAK b:1.5)", [[("a", 1.5)], [("b", 1.5)]]),
        ("BREAKfast BREAK", [[("BREAKfast", 1.0)], [("", 1.0)]]),
        ("break", [[("break", 1.0)]]),
    ],
)
def test_break_splits_sections(prompt, sections):
    assert parse_prompt(prompt) == sections


COMMA = 0


def fake_tokenize(texts):
    """One token per word (id 1) or comma (id 0): enough to count as CLIP does for plain words."""
    return [[COMMA if t == "," else 1 for t in re.findall(r"\w+|,", text)] for text in texts]


def counts(prompt):
    return token_counts(prompt, fake_tokenize, COMMA)


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("", [0]),
        ("w " * 75, [75]),
        ("w " * 76, [75, 1]),
        ("w " * 151, [75, 75, 1]),
        # chunk full at a word with a comma 5 tokens back: the words after the comma move on
        ("w " * 70 + ", " + "w " * 10, [71, 10]),
        # the comma is too far back (over 20 tokens): the chunk is cut where it is full
        ("w " * 10 + ", " + "w " * 100, [75, 36]),
        ("a BREAK b", [1, 1]),
        ("BREAK a", [0, 1]),
        ("a BREAK", [1]),
        ("w " * 75 + "BREAK b", [75, 1]),
    ],
    ids=["empty", "75", "76", "151", "comma-backtrack", "far-comma", "break", "leading-break", "trailing-break",
         "full-then-break"],
)
def test_chunks_as_a1111_splits_them(prompt, expected):
    assert counts(prompt) == expected
    assert all(n <= CHUNK_LENGTH for n in expected)


def test_each_token_keeps_its_weight_across_chunks():
    chunks = chunk_prompt("w " * 74 + "(a b:1.5) [c]", fake_tokenize, COMMA)
    assert [c.weights[-1] for c in chunks] == [1.5, 0.9090909090909091]
    assert chunks[1].weights == [1.5, 0.9090909090909091]
