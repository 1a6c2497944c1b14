"""Real-world A1111 "parameters" texts through infotext.py and params.py."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sdstudio.engine.infotext import format_infotext, parse_infotext
from sdstudio.engine.parameters import BY_NAME
from sdstudio.engine.params import fields_from_infotext, request_infotext
from sdstudio.engine.request import GenerationRequest, Mode, ModelInfo

A1111_LORA_HIRES = """masterpiece, best quality, 1girl, <lora:add_detail:0.5>, (detailed face:1.2),
looking at viewer, BREAK
city street at night, neon
Negative prompt: (worst quality, low quality:1.4), easynegative, text, watermark
Steps: 25, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234567890, Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, VAE hash: 735e4c3a44, VAE: vae-ft-mse-840000-ema-pruned.safetensors, Denoising strength: 0.45, Clip skip: 2, Hires upscale: 2, Hires steps: 15, Hires upscaler: 4x-UltraSharp, Lora hashes: "add_detail: 7c6bad76eb54", TI hashes: "easynegative: c74b4e810b03, verybadimagenegative_v1.3: d70463f87042", Version: v1.9.4"""

A1111_OLD_SAMPLER = """a castle on a hill, golden hour
Negative prompt: lowres
Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 6.5, Seed: 3735928559, Face restoration: CodeFormer, Size: 768x512, Model hash: 81761151, Model: sd-v1-5, Batch size: 4, Batch pos: 2, Variation seed: 123, Variation seed strength: 0.1"""

A1111_HIRES_PROMPT = """portrait of an old sailor
Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, Model: dreamshaper_8, Hires prompt: "portrait of an old sailor, wrinkles,\\nhighly detailed", Hires negative prompt: "blurry: 1.2", Hires upscale: 1.5, Hires upscaler: Latent, Denoising strength: 0.6, ADetailer model: face_yolov8n.pt, ADetailer prompt: "a smiling face, blue eyes", ADetailer confidence: 0.3, ADetailer version: 24.5.1"""

FORGE_FLUX = (  # Forge writes an empty negative prompt as "Negative prompt: " (trailing space)
    "a photo of a red fox in the snow\n"
    "Negative prompt: \n"
    'Steps: 20, Sampler: Euler, Schedule type: Simple, CFG scale: 1, Distilled CFG Scale: 3.5, Seed: 42, Size: 896x1152, Model hash: 8e91b68084, Model: flux1-dev-bnb-nf4-v2, Version: f2.0.1v1.10.1-previous-313-g8a042934, Module 1: ae'
)

FOOOCUS_A1111 = """a cinematic photo of a lighthouse, dramatic sky, (stormy:1.1)
Negative prompt: unrealistic, saturated, high contrast, big nose, painting, drawing, sketch
Steps: 30, Sampler: DPM++ 2M SDE Karras, Seed: 1098765432123456, Size: 1152x896, Model: juggernautXL_v8Rundiffusion, Model hash: aeb7e9e689, CFG scale: 4, Sharpness: 2, ADM Guidance: "(1.5, 0.8, 0.3)", Refiner Switch: 0.8, Styles: "['Fooocus V2', 'Fooocus Enhance', 'Fooocus Sharp']", Performance: Speed, Version: Fooocus v2.5.5"""

REAL_WORLD = [A1111_LORA_HIRES, A1111_OLD_SAMPLER, A1111_HIRES_PROMPT, FORGE_FLUX, FOOOCUS_A1111]


@pytest.mark.parametrize("text", REAL_WORLD, ids=["lora-hires", "old-sampler", "hires-prompt", "forge", "fooocus"])
def test_parse_then_format_keeps_every_key_in_order(text):
    info = parse_infotext(text)
    again = parse_infotext(format_infotext(info.prompt, info.negative_prompt, info.params))
    assert again == info
    assert list(again.params) == list(info.params)


@pytest.mark.parametrize("text", [A1111_LORA_HIRES, A1111_OLD_SAMPLER, A1111_HIRES_PROMPT, FOOOCUS_A1111])
def test_canonical_texts_round_trip_byte_for_byte(text):
    info = parse_infotext(text)
    assert format_infotext(info.prompt, info.negative_prompt, info.params) == text


def test_multi_line_prompt_and_quoted_hash_lists():
    info = parse_infotext(A1111_LORA_HIRES)
    assert info.prompt.splitlines() == [
        "masterpiece, best quality, 1girl, <lora:add_detail:0.5>, (detailed face:1.2),",
        "looking at viewer, BREAK",
        "city street at night, neon",
    ]
    assert info.negative_prompt == "(worst quality, low quality:1.4), easynegative, text, watermark"
    assert info.params["Lora hashes"] == "add_detail: 7c6bad76eb54"
    assert info.params["TI hashes"] == "easynegative: c74b4e810b03, verybadimagenegative_v1.3: d70463f87042"
    assert info.params["Hires upscaler"] == "4x-UltraSharp"
    assert info.params["Version"] == "v1.9.4"


def test_quoted_values_with_newlines_and_colons():
    p = parse_infotext(A1111_HIRES_PROMPT).params
    assert p["Hires prompt"] == "portrait of an old sailor, wrinkles,\nhighly detailed"
    assert p["Hires negative prompt"] == "blurry: 1.2"
    assert p["ADetailer prompt"] == "a smiling face, blue eyes"
    assert parse_infotext(A1111_HIRES_PROMPT).negative_prompt == ""


def test_schedule_type_joins_the_sampler_name():
    fields = fields_from_infotext(A1111_LORA_HIRES)
    assert fields["sampler"] == "DPM++ 2M Karras"
    assert (fields["width"], fields["height"], fields["seed"]) == (512, 768, 1234567890)
    assert fields["strength"] == pytest.approx(0.45)
    assert fields_from_infotext(A1111_OLD_SAMPLER)["sampler"] == "DPM++ 2M Karras"


def test_forge_and_fooocus_read_as_requests():
    forge = fields_from_infotext(FORGE_FLUX)
    assert forge["prompt"] == "a photo of a red fox in the snow"
    assert forge["negative_prompt"] == ""
    assert (forge["steps"], forge["cfg_scale"], forge["seed"]) == (20, 1.0, 42)
    fooocus = fields_from_infotext(FOOOCUS_A1111)
    assert "seed" not in fooocus  # Fooocus' 64-bit seed is outside the 32 bits any SD UI reproduces
    assert fooocus["sampler"] == "DPM++ 2M SDE Karras"
    assert (fooocus["width"], fooocus["height"], fooocus["cfg_scale"]) == (1152, 896, 4.0)
    assert parse_infotext(FOOOCUS_A1111).params["Styles"] == "['Fooocus V2', 'Fooocus Enhance', 'Fooocus Sharp']"


def test_our_own_text_reads_back_as_the_same_request():
    request = GenerationRequest.create(
        prompt="a cat, sitting\non a mat: cozy",
        negative_prompt="blurry,\nlowres",
        mode=Mode.INPAINT,
        steps=12,
        cfg_scale=5.5,
        width=640,
        height=384,
        sampler="DPM++ 2M Karras",
        strength=0.6,
        mask_blur=8,
        inpaint_only_masked=True,
        inpaint_padding=48,
    )
    model = ModelInfo("my model, v2", "sd1", True, "cpu", "float32", "/models/x.safetensors")
    text = request_infotext(request.replace(seed=77), model)
    fields = request.replace(seed=77).fields()
    # Every value the text holds (a default such as clip skip 1 is left out, as A1111 does).
    written = {k: v for k, v in fields.items()
               if (request.mode in BY_NAME[k].modes and BY_NAME[k].infotext_value(fields) is not None) or "prompt" in k}
    assert fields_from_infotext(text) == written
    assert parse_infotext(text).params["Model"] == "my model, v2"


@pytest.mark.parametrize(
    ("junk", "expected"),
    [
        ("", {"prompt": "", "negative_prompt": ""}),
        ("\n\n", {"prompt": "", "negative_prompt": ""}),
        ("just a prompt", {"prompt": "just a prompt", "negative_prompt": ""}),
        ("Negative prompt: only", {"prompt": "", "negative_prompt": "only"}),
        ("x\nSteps: twenty, Sampler: Euler, Seed: 1e30, Size: 1e400x5, CFG scale: NaN",
         {"prompt": "x", "negative_prompt": "", "sampler": "Euler"}),
        ("x\nSteps: 3.5, Seed: -7, Size: 64x64, Denoising strength: Infinity",
         {"prompt": "x", "negative_prompt": "", "width": 64, "height": 64}),
    ],
)
def test_odd_texts_give_what_can_be_read(junk, expected):
    assert fields_from_infotext(junk) == expected


_KEYS = sorted({p.infotext for p in BY_NAME.values() if p.infotext} | {"Size", "Hires upscale", "Denoising strength"})


@given(st.dictionaries(st.sampled_from(_KEYS), st.sampled_from(["2", "0.5", "-1", "x", "", "1e400", "64x64"]), max_size=8))
def test_any_subset_of_the_known_keys_with_any_values_reads_without_raising(pairs):
    # A foreign text may hold one key of a pair without the other (a hires scale, no denoise).
    fields = fields_from_infotext(format_infotext("a", "", pairs))
    assert all(BY_NAME[name].problem(value) is None for name, value in fields.items() if name in BY_NAME)
