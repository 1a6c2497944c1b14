"""A1111 prompt syntax: the parse against A1111's documented results, and the 75-token chunking."""

from __future__ import annotations

import re

import pytest

from sdstudio.engine.prompts import (
    CHUNK_LENGTH,
    chunk_prompt,
    nudge_weight,
    parse_prompt,
    token_counts,
)

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


@pytest.mark.parametrize(
    ("text", "selection", "delta", "expected", "selected"),
    [
        ("a red cat", (2, 5), 0.1, "a (red:1.1) cat", "red"),
        ("a red cat", (2, 5), -0.1, "a (red:0.9) cat", "red"),
        ("a (red:1.1) cat", (3, 6), 0.1, "a (red:1.2) cat", "red"),
        ("a (red:1.1) cat", (3, 6), -0.1, "a red cat", "red"),  # back at 1: the brackets go
        ("a (red:0.3) cat", (3, 6), -0.1, "a (red:0.2) cat", "red"),
        ("a red cat", (3, 3), 0.1, "a (red:1.1) cat", "red"),  # the word under the cursor
        ("a (red cat:1.5), sky", (8, 8), 0.1, "a (red cat:1.6), sky", "red cat"),  # the group around it
        ("a (red cat:1.5), sky", (12, 12), -0.1, "a (red cat:1.4), sky", "red cat"),  # cursor on the weight
        ("a red  cat", (1, 7), 0.1, "a (red:1.1)  cat", "red"),  # spaces trimmed from the selection
        ("sky, sea", (3, 3), 0.1, "(sky:1.1), sea", "sky"),
        ("a  b", (2, 2), 0.1, "a  b", ""),  # nothing under the cursor
    ],
)
def test_ctrl_up_down_weights_like_a1111(text, selection, delta, expected, selected):
    new, start, end = nudge_weight(text, *selection, delta)
    assert (new, new[start:end]) == (expected, selected)


def test_the_pure_tokenizer_matches_clips():
    transformers = pytest.importorskip("transformers")
    from sdstudio.engine.clip_tokenizer import bundled_tokenizer, prompt_token_counts
    from sdstudio.resources import config_root

    reference = transformers.CLIPTokenizer.from_pretrained(config_root() / "sd15" / "tokenizer")
    texts = ["a lighthouse at dusk, oil painting", "Masterpiece, BEST quality, 1girl, 2 cats; (red:1.3)",
             "naïve café — déjà vu!!", "don't it's", "hello_world__x", "🙂 東京タワー", " a\n\tb ", "x" * 50,
             "rgb(255,0,0) 3.14", ""]
    assert bundled_tokenizer().tokenize(texts) == reference(texts, add_special_tokens=False).input_ids
    assert prompt_token_counts("word, " * 100) == [75, 75, 50]
    assert prompt_token_counts("(a lighthouse:1.3) BREAK [at dusk]") == [2, 2]


def test_extra_network_tags_are_not_counted():
    assert counts("<lora:style:1> a cat") == counts("a cat") == [2]
