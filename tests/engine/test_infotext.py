"""The A1111 "parameters" text parser: real-world strings, regressions and properties.

Properties (hypothesis): parsing never raises; whatever it reads, format_infotext writes back
to the same reading; format→parse keeps prompt, negative prompt and every pair in order; and
the scanner's work grows linearly with the input (counted in interpreter calls, never timed:
the figures in milliseconds are in bench/bench_infotext.py).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdstudio.engine.infotext import (
    Infotext,
    format_infotext,
    parse_infotext,
    parse_params_line,
    quote,
    unquote,
)

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- real-world strings -----------------------------------------------------------------------

# AUTOMATIC1111/stable-diffusion-webui, modules/infotext_utils.py: parse_generation_parameters'
# own docstring example.
A1111_DOCSTRING = (
    "girl with an artist's beret, determined, blue eyes, desert scene, computer monitors, heavy "
    "makeup, by Alphonse Mucha and Charlie Bowater, ((eyeshadow)), (coquettish), detailed, intricate\n"
    "Negative prompt: ugly, fat, obese, chubby, (((deformed))), [blurry], bad anatomy, disfigured, "
    "poorly drawn face, mutation, mutated, (extra_limb), (ugly), (poorly drawn hands), messy drawing\n"
    "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 965400086, Size: 512x512, Model hash: 45dee52b"
)

# d3x-at/sd-parsers, tests/test_automatic1111.py (test_hashes): Civitai's unquoted JSON hashes.
SD_PARSERS_HASHES = (
    "photo of a duck\nNegative prompt: monochrome\n"
    "Steps: 15, Sampler: UniPC, CFG scale: 5, Seed: 235284042, Size: 512x400, "
    'Model hash: c0d1994c73, Model: realistic_realisticVisionV20_v20, Hashes: {"vae": "c6a580b13a", '
    '"model": "c0d1994c73"}'
)

# LykosAI/StabilityMatrix, StabilityMatrix.Tests/Models/GenerationParametersTests.cs (civitai row).
CIVITAI_RESOURCES_JSON = (
    '[{"type":"checkpoint","modelVersionId":123456,"modelName":"Some model name here [Pony XL] which '
    'hopefully doesnt contains half pair of quotes and brackets","modelVersionName":"v2.0"},'
    '{"type":"lycoris","weight":0.7,"modelVersionId":11111111,"modelName":"some style",'
    '"modelVersionName":"v1.0 pony"},{"type":"lora","weight":1,"modelVersionId":222222222,'
    '"modelName":"another name","modelVersionName":"v1.0"}]'
)
STABILITY_MATRIX_CIVITAI = (
    "Steps: 8, Sampler: Euler, CFG scale: 1, Seed: 12346789098, Size: 832x1216, Clip skip: 2, "
    f"Created Date: 2024-12-22T01:01:01.0222111Z, Civitai resources: {CIVITAI_RESOURCES_JSON}, "
    'Civitai metadata: {"remixOfId":11111100000}'
)

# Same file, the nkchocoai/ComfyUI-SaveImageWithMetaData row.
COMFY_SAVE_WITH_METADATA = (
    "Steps: 20, Sampler: DPM++ SDE Karras, CFG scale: 6.0, Seed: 1111111111111, Clip skip: 2, "
    "Size: 1024x1024, Model: the_main_model.safetensors, Model hash: ababababab, "
    "Lora_0 Model name: name_of_the_first_lora.safetensors, Lora_0 Model hash: ababababab, "
    "Lora_0 Strength model: -1.1, Lora_0 Strength clip: -1.1, "
    'Hashes: {"model": "ababababab", "lora:name_of_the_first_lora": "ababababab"}'
)

# adieyal/sd-dynamic-prompts, tests/prompts/ui/test_pnginfo_saver.py (build_parameters): the
# extension's old layout, template lines after the parameters line.
DYNAMIC_PROMPTS_TEMPLATES = (
    "positive text\n"
    "Steps: 35, Sampler: Heun, CFG scale: 9, Seed: 77777, Size: 640x640, Model hash: d8691b4d16\n"
    "Template: positive text\n"
    "Negative Template: negative text\nwith\nlines"
)

# adieyal/sd-dynamic-prompts issue #651: a multi-line Template after the parameters line.
DYNAMIC_PROMPTS_651 = (
    "CGI Render of Cybernetic Man On a Digital Motorcycle Neon Lights, Computer Motif Facing the viewer\n"
    "Steps: 40, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 4259953662, Size: 512x512, "
    "Model hash: ec41bd2a82, Model: photon_v1, Version: 1.6.0\n"
    "Template: CGI Render of Cybernetic Man On a Digital Motorcycle\n"
    "Neon Lights, Computer Motif  \n"
    "Facing the viewer"
)

# zanllp/infinite-image-browsing issue #662: Dynamic Prompts' newer layout, quoted in the line.
DYNAMIC_PROMPTS_QUOTED = (
    "Silhouette Art, hyperrealistic art, __lighting__, __composition__, __time__\n"
    "Negative prompt: low quality\n"
    'Steps: 25, CFG scale: 7, Seed: 387840411, Template: "Silhouette Art, hyperrealistic art, '
    '__lighting__, __composition__, __time__", Negative Template: "low quality"'
)

# A Civitai download quoted in a public TypeScript A1111 parser's tests (found by code search):
# a trailing space before the newline, two spaces after "Negative prompt:", an empty JSON object.
CIVITAI_DOWNLOAD = (
    "masterpiece, best quality, double exposure,\n(yin yang symbol), night sky, vivid colors \n"
    "Negative prompt:  negativeXL_D, greyscale\n"
    "Steps: 22, Sampler: DPM++ 2M Karras, CFG scale: 3.8, Seed: 894409639, Size: 832x1216, "
    "Clip skip: 2, Created Date: 2024-09-23T06:17:42.9952795Z, Civitai resources: "
    '[{"type":"checkpoint","modelVersionId":128078,"modelName":"SD XL","modelVersionName":"v1.0 VAE fix"},'
    '{"type":"lora","weight":0.85,"modelVersionId":210432,"modelName":"Double Exposure",'
    '"modelVersionName":"Double Exposure"}], Civitai metadata: {}'
)

# Same file: Forge with Flux, LoRA tags on their own lines, quoted Lora hashes holding ": " and ", ".
FORGE_FLUX_LORAS = (
    'FredFraiStyle "positive."\n\n<lora:FredFraiStyle-FLUX-Share:0.95>\n'
    "<lora:Ars_MidJourney_Style_-_Flux:0.6>\n"
    "Steps: 20, Sampler: Euler, Schedule type: Simple, CFG scale: 1, Distilled CFG Scale: 3.5, "
    "Seed: 3045329758, Size: 832x1216, Model hash: 06f96f89f6, Model: flux_dev, "
    'Lora hashes: "FredFraiStyle-FLUX-Share: de92428f6411, Ars_MidJourney_Style_-_Flux: c4f0b45e6a60", '
    "Version: f2.0.1v1.10.1-previous-561-g82eb7566"
)

# Same file: A1111's ControlNet extension writes its unit as one quoted value.
CONTROLNET_UNIT = (
    "positive\nNegative prompt: negative\n"
    'Steps: 20, ControlNet 0: "preprocessor: canny, model: control_v11p_sd15_canny [d14c016b], '
    'weight: 1.0, starting/ending: (0.0, 1.0), pixel perfect: True", Size: 512x512'
)

REAL_WORLD = {
    "a1111-docstring": (
        A1111_DOCSTRING,
        "girl with an artist's beret",
        "ugly, fat",
        {"Steps": "20", "Sampler": "Euler a", "Size": "512x512", "Model hash": "45dee52b"},
    ),
    "sd-parsers-hashes": (
        SD_PARSERS_HASHES,
        "photo of a duck",
        "monochrome",
        {"Size": "512x400", "Hashes": '{"vae": "c6a580b13a", "model": "c0d1994c73"}'},
    ),
    "stability-matrix-civitai": (
        STABILITY_MATRIX_CIVITAI,
        "",
        "",
        {
            "Created Date": "2024-12-22T01:01:01.0222111Z",
            "Civitai resources": CIVITAI_RESOURCES_JSON,
            "Civitai metadata": '{"remixOfId":11111100000}',
        },
    ),
    "comfy-save-with-metadata": (
        COMFY_SAVE_WITH_METADATA,
        "",
        "",
        {
            "Lora_0 Strength clip": "-1.1",
            "Hashes": '{"model": "ababababab", "lora:name_of_the_first_lora": "ababababab"}',
        },
    ),
    "dynamic-prompts-templates": (
        DYNAMIC_PROMPTS_TEMPLATES,
        "positive text",
        "",
        {
            "Model hash": "d8691b4d16",
            "Template": "positive text",
            "Negative Template": "negative text\nwith\nlines",
        },
    ),
    "dynamic-prompts-651": (
        DYNAMIC_PROMPTS_651,
        "CGI Render of Cybernetic Man",
        "",
        {
            "Version": "1.6.0",
            "Template": "CGI Render of Cybernetic Man On a Digital Motorcycle\n"
            "Neon Lights, Computer Motif  \nFacing the viewer",
        },
    ),
    "dynamic-prompts-quoted": (
        DYNAMIC_PROMPTS_QUOTED,
        "Silhouette Art",
        "low quality",
        {
            "Template": "Silhouette Art, hyperrealistic art, __lighting__, __composition__, __time__",
            "Negative Template": "low quality",
        },
    ),
    "civitai-download": (
        CIVITAI_DOWNLOAD,
        "masterpiece, best quality, double exposure,\n(yin yang symbol), night sky, vivid colors",
        "negativeXL_D, greyscale",
        {"Clip skip": "2", "Civitai metadata": "{}"},
    ),
    "forge-flux-loras": (
        FORGE_FLUX_LORAS,
        'FredFraiStyle "positive."\n\n<lora:FredFraiStyle-FLUX-Share:0.95>',
        "",
        {
            "Lora hashes": "FredFraiStyle-FLUX-Share: de92428f6411, Ars_MidJourney_Style_-_Flux: c4f0b45e6a60",
            "Version": "f2.0.1v1.10.1-previous-561-g82eb7566",
        },
    ),
    "controlnet-unit": (
        CONTROLNET_UNIT,
        "positive",
        "negative",
        {"ControlNet 0": "preprocessor: canny, model: control_v11p_sd15_canny [d14c016b], "
         "weight: 1.0, starting/ending: (0.0, 1.0), pixel perfect: True", "Size": "512x512"},
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", list(REAL_WORLD))
def test_real_world_strings_read_like_a1111(name):
    text, prompt_start, negative_start, expected = REAL_WORLD[name]
    info = parse_infotext(text)
    assert info.prompt.startswith(prompt_start) and (prompt_start or not info.prompt)
    assert info.negative_prompt.startswith(negative_start)
    assert (negative_start == "") == (info.negative_prompt == "")
    for key, value in expected.items():
        assert info.params[key] == value, key


@pytest.mark.parametrize("name", list(REAL_WORLD))
def test_real_world_strings_survive_format_and_parse(name):
    info = parse_infotext(REAL_WORLD[name][0])
    assert _reparsed(info) == _as_tuple(info)


def test_civitai_json_values_keep_every_pair_after_them():
    # The JSON array holds ", " and ":"; splitting at its commas loses the pairs after it.
    params = parse_infotext(STABILITY_MATRIX_CIVITAI).params
    assert list(params) == [
        "Steps", "Sampler", "CFG scale", "Seed", "Size", "Clip skip", "Created Date",
        "Civitai resources", "Civitai metadata",
    ]  # fmt: skip


def test_template_lines_stay_out_of_the_prompt():
    info = parse_infotext(DYNAMIC_PROMPTS_651)
    assert info.prompt == (
        "CGI Render of Cybernetic Man On a Digital Motorcycle Neon Lights, Computer Motif Facing the viewer"
    )
    assert info.params["Steps"] == "40" and info.params["Model"] == "photon_v1"


def test_negative_prompt_after_the_parameters_line_is_the_negative_prompt():
    info = parse_infotext("a cat\nSteps: 20, Seed: 1, Size: 512x512\nNegative prompt: blurry")
    assert (info.prompt, info.negative_prompt) == ("a cat", "blurry")
    assert "Negative prompt" not in info.params


# --- StabilityMatrix's line edge cases (GenerationParametersTests.TestParseLineEdgeCases) ------


@pytest.mark.parametrize(
    ("line", "keys"),
    [
        ("", []),
        ("  ", []),
        ("Steps:30,Sampler:DPM++2MKarras,CFGscale:7,Seed:2216407431",
         ["Steps", "Sampler", "CFGscale", "Seed"]),
        ("Steps: 30, Sampler: DPM++ 2M Karras,,,,,, Model: anime_v1,,,,,,,", ["Steps", "Sampler", "Model"]),
        ('Name: "John, Doe", Json: {"key:with:colon": "value, with, comma"}, It still: should work',
         ["Name", "Json", "It still"]),
        ('Name: "John, Doe", Json: {"key:with:colon": "value, with, comma"}}}}})))>>, It still: should work',
         ["Name", "Json", "It still"]),
        # Their parser drops everything after the bracket; JSON-aware, the "[" is inside a string.
        ('Steps: 20, Missing closing bracket: {"name": "Someone did not close [this bracket"}, But: more',
         ["Steps", "Missing closing bracket", "But"]),
    ],
)  # fmt: skip
def test_params_line_edge_cases(line, keys):
    assert list(parse_params_line(line)) == keys


def test_json_value_with_junk_after_it_runs_to_the_comma():
    params = parse_params_line('Json: {"a": "b, c"}}}>>, Next: 1')
    assert params == {"Json": '{"a": "b, c"}}}>>', "Next": "1"}


def test_unclosed_json_falls_back_to_plain_values():
    assert parse_params_line('A: [1, B: {"x, C: 3') == {"A": "[1", "B": '{"x', "C": "3"}


# --- regressions --------------------------------------------------------------------------------


def _non_matching_line(pairs: int) -> str:
    # The shape that made the old nested-quantifier regex backtrack exponentially: many pairs,
    # then a segment that is no pair (13 pairs took 32 s, 40 would never finish).
    return "a prompt\n" + ", ".join(f"Key {i}: value {i}" for i in range(pairs)) + ", (junk"


@pytest.mark.parametrize("pairs", [13, 40])
def test_non_matching_parameters_line_reads_every_pair(pairs):
    info = parse_infotext(_non_matching_line(pairs))
    assert info.prompt == "a prompt"
    assert len(info.params) == pairs and info.params[f"Key {pairs - 1}"] == f"value {pairs - 1}"


def test_crlf_and_trailing_blank_lines():
    text = "a cat\r\nNegative prompt: a dog\r\nSteps: 20, Sampler: Euler a, Seed: 7\r\n\r\n \t\n\n"
    assert parse_infotext(text) == Infotext(
        "a cat", "a dog", {"Steps": "20", "Sampler": "Euler a", "Seed": "7"}
    )


def test_prompt_starting_with_negative_prompt_is_all_negative():
    # A1111's parse_generation_parameters sets done_with_prompt on the first line already.
    info = parse_infotext("Negative prompt: blurry\nlowres\nSteps: 20, Seed: 1, Size: 64x64")
    assert (info.prompt, info.negative_prompt) == ("", "blurry\nlowres")


def test_a_prompt_starting_with_negative_prompt_survives_format():
    text = format_infotext(
        "Negative prompt: is my prompt", "real negative", {"Steps": 20, "Seed": 1}
    )
    info = parse_infotext(text)
    assert (info.prompt, info.negative_prompt) == ("Negative prompt: is my prompt", "real negative")
    assert info.params == {"Steps": "20", "Seed": "1"}


def test_prompt_pair_on_the_line_overrides_the_prompt_lines():
    # A1111 assigns the line's pairs after the prompt, so a `Prompt` pair wins.
    info = parse_infotext('shown\nPrompt: "real, prompt", Steps: 1, Seed: 2')
    assert info.prompt == "real, prompt" and "Prompt" not in info.params


def test_plain_texts_stay_plain():
    params = {"Steps": 20, "Seed": 1, "Model": "my model, v2"}
    text = format_infotext("a cat, (sitting:1.2)", "blurry", params)
    assert (
        text
        == 'a cat, (sitting:1.2)\nNegative prompt: blurry\nSteps: 20, Seed: 1, Model: "my model, v2"'
    )


def test_fewer_than_three_pairs_carry_the_prompt_on_the_line():
    # A1111 takes a line as parameters from three pairs on; the prompt pairs make up the count.
    text = format_infotext("a cat", "", {"Steps": 20})
    assert text == 'a cat\nPrompt: "a cat", Negative prompt: "", Steps: 20'
    assert format_infotext("a cat", "", {}) == "a cat\n"


def test_keys_the_line_cannot_hold_are_refused():
    for key in ("Prompt", "Negative prompt", "a, b", "x: y", " lead", "trail ", "", "(paren"):
        with pytest.raises(ValueError):
            format_infotext("p", "", {key: 1})


def test_quote_and_unquote():
    assert quote(7.0) == "7" and quote(0.25) == "0.25" and quote("Euler a") == "Euler a"
    for odd in ("a, b", "a: b", "a\nb", '"x"', "[1]", "{}", " pad", "cr\r"):
        assert quote(odd) != odd and unquote(quote(odd)) == odd
    assert unquote('"not json \\q"') == '"not json \\q"'


# --- properties ---------------------------------------------------------------------------------

# Pieces that steer the fuzzer to the scanner's edges.
_PIECES = [
    "Negative prompt:", "Prompt:", "Steps: 20", "Key:", ": ", ", ", ",", ":", '"', "\\", "\\\"",
    "[", "]", "{", "}", "\n", "\r\n", "\r", " ", "\t", "\x00", "a", "é", "\u2028", "\x85",
    "Template: ", "  ", "Size: 5x5", '{"a": "b, c"}', '"x, y"',
]  # fmt: skip
_structured = st.lists(st.sampled_from(_PIECES), max_size=60).map("".join)
_any_text = st.one_of(st.text(), _structured)
_key = st.from_regex(r"\w[\w \-/+().]{0,15}", fullmatch=True).filter(
    lambda k: k == k.rstrip() and k not in ("Prompt", "Negative prompt")
)
_value = st.one_of(st.text(min_size=1), _structured.filter(bool))


def _as_tuple(info: Infotext) -> tuple[str, str, list[tuple[str, str]]]:
    return info.prompt, info.negative_prompt, list(info.params.items())


def _reparsed(info: Infotext) -> tuple[str, str, list[tuple[str, str]]]:
    kept = {k: v for k, v in info.params.items() if v}  # format leaves out empty values
    return _as_tuple(parse_infotext(format_infotext(info.prompt, info.negative_prompt, kept)))


@FUZZ
@given(_any_text)
def test_parse_never_raises_and_gives_strings(text):
    info = parse_infotext(text)
    assert isinstance(info.prompt, str) and isinstance(info.negative_prompt, str)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in info.params.items())


@FUZZ
@given(_any_text)
def test_whatever_is_read_is_written_back_the_same(text):
    info = parse_infotext(text)
    kept = {k: v for k, v in info.params.items() if v}
    assert _reparsed(info) == (info.prompt, info.negative_prompt, list(kept.items()))


@FUZZ
@given(_any_text, _any_text, st.dictionaries(_key, _value, max_size=8))
def test_format_then_parse_keeps_prompt_negative_and_every_pair(prompt, negative, params):
    info = parse_infotext(format_infotext(prompt, negative, params))
    assert _as_tuple(info) == (prompt, negative, list(params.items()))


def test_huge_and_odd_inputs_never_raise():
    for text in (
        "x" * 1_000_000,
        ("Key: [, " * 50_000),
        ('K: "' + "\\" * 100_000),
        ("a: b, " * 100_000) + "(junk",
        "\x00\r\n" * 100_000,
        "Negative prompt:" * 50_000,
        "\ud800 lone surrogate, K: v, L: w, M: x",
    ):
        assert isinstance(parse_infotext(text), Infotext)


def _calls(fn: Callable[[], object]) -> int:
    """Interpreter calls (Python and C) made by fn: a machine-independent measure of work."""
    count = 0

    def profile(_frame, event, _arg):
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return count


# Fragments whose repetition made a scanner without its guards quadratic.
_ADVERSARIAL = [
    "K: [, ", 'K: "\\", ', 'K: "a, ', "a: b, ", 'K: {"x": [, ', "K: [1] x, ", "(junk, ",
    "Negative prompt: a\n", "a, b: 1, c: 2, d: 3\nx\n", "T: x\n",
]  # fmt: skip
_SCANNER_PIECES = ["K: ", "[", "{", '"', "\\", ",", " ", "]", "}", ":", "\n", "a"]


def _grows_linearly(unit: str) -> bool:
    # Repeating a fragment twice as often may at most double the work (plus a constant):
    # a quadratic scan would quadruple it.
    small = _calls(lambda: parse_infotext(unit * 40))
    large = _calls(lambda: parse_infotext(unit * 80))
    return large <= 2.2 * small + 60


@pytest.mark.parametrize("unit", _ADVERSARIAL)
def test_work_grows_linearly_on_adversarial_lines(unit):
    assert _grows_linearly(unit)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_SCANNER_PIECES), min_size=1, max_size=10).map("".join))
def test_work_grows_linearly_with_the_input(unit):
    assert _grows_linearly(unit)
