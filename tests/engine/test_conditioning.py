"""Prompt embeddings on the tiny SD1 and SDXL pipelines: plain prompts exactly as the pipeline
encodes them, weights with A1111's mean-restoring rescale, BREAK and long prompts in 77-token
chunks, and clip skip counted A1111's way."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from sdstudio.engine.conditioning import prompt_embeddings  # noqa: E402

PLAIN = "a lighthouse at dusk, oil painting"
WIDTH = 77  # tokens per encoded chunk


@pytest.fixture(scope="module")
def pipes(tiny_sd1, tiny_sdxl):
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    return {"sd1": StableDiffusionPipeline.from_pretrained(tiny_sd1),
            "sdxl": StableDiffusionXLPipeline.from_pretrained(tiny_sdxl)}


def own_encoding(pipe, prompt, negative, clip_skip=None):
    return pipe.encode_prompt(prompt, device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=True,
                              negative_prompt=negative, clip_skip=clip_skip)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["sd1", "sdxl"])
@pytest.mark.parametrize(("prompt", "negative"), [(PLAIN, "blurry, text"), (PLAIN, ""), ("", ""),
                                                  (" ".join(["red apple"] * 37) + " x", "")])
def test_a_plain_prompt_is_bitwise_the_pipelines_own_encoding(pipes, family, prompt, negative):
    mine = prompt_embeddings(pipes[family], prompt, negative)
    theirs = own_encoding(pipes[family], prompt, negative)
    assert len(mine) == len(theirs) == (4 if family == "sdxl" else 2)
    for (name, tensor), own in zip(mine.items(), theirs, strict=True):
        assert torch.equal(tensor, own), name


@pytest.fixture
def trained_norm(pipes):
    """The SD1 pipeline with a final LayerNorm bias, as a trained CLIP has: the tiny model's
    zero bias makes every embedding's mean about 0, where no rescale is meaningful."""
    norm = pipes["sd1"].text_encoder.final_layer_norm
    with torch.no_grad():
        norm.bias.fill_(0.25)
    yield
    with torch.no_grad():
        norm.bias.zero_()


def weigh(pipe, prompt):
    return prompt_embeddings(pipe, prompt, "")["prompt_embeds"]


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_a_weight_scales_its_token_then_the_mean_is_restored(pipes, trained_norm, family):
    pipe = pipes[family]
    plain, weighted = weigh(pipe, "red cat"), weigh(pipe, "(red:1.5) cat")
    # A1111: z * weights, then * (mean before / mean after), for each encoder's part on its own.
    widths = [e.config.hidden_size for e in (pipe.text_encoder, getattr(pipe, "text_encoder_2", None)) if e]
    parts = []
    for part in plain.split(widths, dim=-1):
        weights = torch.ones(1, WIDTH, 1)
        weights[0, 1] = 1.5  # "red" is the token after the start token
        scaled = part * weights
        parts.append(scaled * (part.mean() / scaled.mean()))
    assert torch.allclose(weighted, torch.cat(parts, dim=-1), atol=1e-6)
    assert not torch.allclose(weighted[0, 1], plain[0, 1])
    assert abs(weighted.mean() - plain.mean()) < 1e-6
    if family == "sdxl":  # the pooled embedding is the encoder's, weights apply to the sequence only
        assert torch.equal(prompt_embeddings(pipe, "(red:1.5) cat", "")["pooled_prompt_embeds"],
                           prompt_embeddings(pipe, "red cat", "")["pooled_prompt_embeds"])


def test_no_rescale_by_a_mean_of_about_zero(pipes):
    """Many weighted tokens on the tiny SD1 model once made the mean exactly 0.0 and the
    embeddings infinite (NaN pictures)."""
    pipe = pipes["sd1"]
    prompt = "(red:1.3) apple, " * 30 + " BREAK [sky]"
    embeds = prompt_embeddings(pipe, prompt, "blurry", clip_skip=2)["prompt_embeds"]
    assert torch.isfinite(embeds).all()
    plain = prompt_embeddings(pipe, prompt.replace("(red:1.3)", "red").replace("[sky]", "sky"), "", clip_skip=2)
    assert embeds.abs().max() < 2 * plain["prompt_embeds"].abs().max()


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_break_starts_a_chunk_and_the_negative_is_padded_to_match(pipes, family):
    pipe = pipes[family]
    both = prompt_embeddings(pipe, "red BREAK cat", "blurry")
    red, cat = (prompt_embeddings(pipe, text, "blurry") for text in ("red", "cat"))
    empty = prompt_embeddings(pipe, "", "")["prompt_embeds"]
    assert both["prompt_embeds"].shape[1] == both["negative_prompt_embeds"].shape[1] == 2 * WIDTH
    assert torch.equal(both["prompt_embeds"][:, :WIDTH], red["prompt_embeds"])
    assert torch.equal(both["prompt_embeds"][:, WIDTH:], cat["prompt_embeds"])
    assert torch.equal(both["negative_prompt_embeds"][:, :WIDTH], red["negative_prompt_embeds"])
    assert torch.equal(both["negative_prompt_embeds"][:, WIDTH:], empty)
    if family == "sdxl":  # pooled from the first chunk only
        assert torch.equal(both["pooled_prompt_embeds"], red["pooled_prompt_embeds"])


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_a_long_prompt_is_read_whole(pipes, family):
    pipe = pipes[family]
    words = " ".join(["red apple"] * 60)  # 120 tokens: two chunks
    long = prompt_embeddings(pipe, words, "")
    changed_tail = prompt_embeddings(pipe, words + " green", "")
    assert long["prompt_embeds"].shape[1] == long["negative_prompt_embeds"].shape[1] == 2 * WIDTH
    assert torch.equal(long["prompt_embeds"][:, :WIDTH], changed_tail["prompt_embeds"][:, :WIDTH])
    assert not torch.equal(long["prompt_embeds"][:, WIDTH:], changed_tail["prompt_embeds"][:, WIDTH:])
    # the negative is the longer one: the prompt is padded with empty chunks
    flipped = prompt_embeddings(pipe, "", words)
    assert flipped["prompt_embeds"].shape == flipped["negative_prompt_embeds"].shape == long["prompt_embeds"].shape


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_clip_skip_counts_a1111s_way(pipes, family):
    """A1111's clip skip 2 is diffusers' clip_skip=1 (one layer before the model's own)."""
    pipe = pipes[family]
    skipped = prompt_embeddings(pipe, PLAIN, "", clip_skip=2)["prompt_embeds"]
    if family == "sdxl":
        expected = own_encoding(pipe, PLAIN, "", clip_skip=1)[0]
    else:  # diffusers' own SD1 clip_skip path looks for `text_model`, gone in transformers 5
        ids = pipe.tokenizer(PLAIN, padding="max_length", max_length=WIDTH, return_tensors="pt").input_ids
        hidden = pipe.text_encoder(ids, output_hidden_states=True).hidden_states[-2]
        expected = pipe.text_encoder.final_layer_norm(hidden)
    assert torch.equal(skipped, expected)
    assert not torch.equal(skipped, prompt_embeddings(pipe, PLAIN, "")["prompt_embeds"])


@pytest.mark.parametrize(("family", "attribute", "folder"),
                         [("sd1", "tokenizer", "sd21/tokenizer"), ("sdxl", "tokenizer_2", "sdxl/tokenizer_2")])
def test_padding_with_a_pad_token_other_than_the_end_token(pipes, family, attribute, folder):
    """SD2's tokenizer and SDXL's second pad with "!", not the end token: the end token must
    still follow the text at once, as the pipeline's own encoding has it."""
    from transformers import CLIPTokenizer

    from sdstudio.resources import config_root

    pipe = pipes[family]
    original = getattr(pipe, attribute)
    setattr(pipe, attribute, CLIPTokenizer.from_pretrained(config_root() / folder))
    try:
        assert getattr(pipe, attribute).pad_token_id != getattr(pipe, attribute).eos_token_id
        mine = prompt_embeddings(pipe, PLAIN, "blurry")
        for (name, tensor), own in zip(mine.items(), own_encoding(pipe, PLAIN, "blurry"), strict=True):
            assert torch.equal(tensor, own), name
    finally:
        setattr(pipe, attribute, original)
