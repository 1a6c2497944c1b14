"""The tools behind the built-in model: tokenizer, scene judge, held-out split."""

from __future__ import annotations

import numpy as np
import pytest

from tools.builtin_model.judge import classify_shape, dominant_colour, foreground_mask
from tools.builtin_model.scenes import (
    COLOUR_NAMES,
    SHAPES,
    Scene,
    Shape,
    held_out_triples,
    render,
    sample_scene,
)


def test_tokenizer_gives_caption_words_single_tokens(tmp_path):
    from transformers import CLIPTokenizer

    from tools.builtin_model.tokenizer import write_tokenizer

    write_tokenizer(tmp_path)
    tok = CLIPTokenizer.from_pretrained(tmp_path)
    ids = tok("a red circle on a blue background").input_ids
    assert tok.convert_ids_to_tokens(ids)[1:-1] == [
        "a</w>", "red</w>", "circle</w>", "on</w>", "a</w>", "blue</w>", "background</w>",
    ]
    assert len(tok("an elephant").input_ids) > 3  # unknown words fall back to pieces, no crash
    assert tok.model_max_length == 77


@pytest.mark.parametrize("shape", SHAPES)
def test_judge_recognises_rendered_scenes(shape):
    rng = np.random.default_rng(SHAPES.index(shape))
    for _ in range(6):
        colour, background = (str(c) for c in rng.choice(COLOUR_NAMES, 2, replace=False))
        size = str(rng.choice(["small", "large"]))
        scene = Scene((Shape(shape, colour, size, "centre"),), background, False)
        img = render(scene, rng)
        assert dominant_colour(img, background) == colour
        assert classify_shape(foreground_mask(img, background)) == shape


def test_judge_sees_no_shape_in_an_empty_picture():
    img = render(Scene((), "green", False))
    assert dominant_colour(img, "green") is None
    assert classify_shape(foreground_mask(img, "green")) is None


def test_training_never_samples_a_held_out_triple():
    held = set(held_out_triples())
    assert len(held) >= 20
    rng = np.random.default_rng(0)
    for _ in range(2000):
        scene = sample_scene(rng)
        assert not any((s.colour, s.kind, scene.background) in held for s in scene.shapes)
