"""Every parameter of the table round-trips through each place derived from it: the CLI, the
parameter panel, the A1111 text and the JSON chunk. A parameter added to the table and
forgotten anywhere fails here, by name."""

from __future__ import annotations

import pytest

from sdstudio.cli import build_parser
from sdstudio.engine.parameters import BY_NAME, PARAMETERS, Control, Mode, Param, check, defaults
from sdstudio.engine.params import fields_from_infotext, request_infotext
from sdstudio.engine.request import GenerationRequest


def sample(param: Param) -> object:
    """A valid value that is not the default, so a place that ignores the parameter fails."""
    special = {
        "prompt": "a lighthouse, at dusk: (storm)",
        "negative_prompt": "blurry,\nlowres",
        "mode": Mode.INPAINT,
        "sampler": "DPM++ 2M Karras",
        "seed": 4_000_000_001,
        "inpaint_only_masked": True,
    }
    if param.name in special:
        return special[param.name]
    if param.choices:
        return param.choices[-1]
    if param.kind is float:
        return round(float(param.minimum) + param.step * 3, param.decimals)  # type: ignore[arg-type]
    value = int(param.minimum) + int(param.step) * 5  # type: ignore[arg-type]
    assert value != param.default and value <= param.maximum
    return value


SAMPLES = {p.name: sample(p) for p in PARAMETERS}


def test_every_sample_is_valid_and_not_the_default():
    assert check(SAMPLES) == []
    assert all(SAMPLES[name] != value for name, value in defaults().items())


@pytest.mark.parametrize("param", [p for p in PARAMETERS if p.cli], ids=lambda p: p.name)
def test_cli_parses_the_parameter(param):
    value = SAMPLES[param.name]
    args = ["--prompt", "x", "--out", "o"]
    if param.kind is bool:
        args.append(param.cli)
    elif param.name != "prompt":
        args += [param.cli, str(value.value if isinstance(value, Mode) else value)]
    else:
        args = ["--prompt", str(value), "--out", "o"]
    parsed = getattr(build_parser().parse_args(args), param.name)
    assert (Mode(parsed) if param.kind is Mode else parsed) == value


def test_every_parameter_has_a_cli_flag():
    assert [p.name for p in PARAMETERS if not p.cli] == []


@pytest.mark.parametrize("param", [p for p in PARAMETERS if p.control is not Control.NONE], ids=lambda p: p.name)
def test_the_panel_shows_and_gives_back_the_parameter(qtbot, param):
    from sdstudio.ui.param_panel import ParameterPanel

    panel = ParameterPanel()
    qtbot.addWidget(panel)
    panel.apply_fields({param.name: SAMPLES[param.name]})
    assert panel.request_fields()[param.name] == SAMPLES[param.name]
    widget = panel.controls[param.name]
    assert widget.toolTip() == param.tooltip
    if param.control is Control.SLIDER:
        assert (widget.spin.minimum(), widget.spin.maximum()) == (param.minimum, param.maximum)


@pytest.mark.parametrize("param", [p for p in PARAMETERS if p.infotext], ids=lambda p: p.name)
def test_the_a1111_text_writes_and_reads_the_parameter(param):
    mode = Mode.INPAINT if Mode.INPAINT in param.modes else Mode.TXT2IMG
    request = GenerationRequest.create(**SAMPLES | {"mode": SAMPLES["mode"] if param.name == "mode" else mode})
    text = request_infotext(request, None)
    assert f"{param.infotext}: " in text
    assert fields_from_infotext(text)[param.name] == SAMPLES[param.name]


def test_prompts_round_trip_through_the_a1111_text():
    read = fields_from_infotext(request_infotext(GenerationRequest.create(**SAMPLES), None))
    assert (read["prompt"], read["negative_prompt"]) == (SAMPLES["prompt"], SAMPLES["negative_prompt"])


def test_the_json_chunk_carries_every_parameter():
    request = GenerationRequest.create(**SAMPLES)
    data = request.to_json()
    again = GenerationRequest.from_json(data)
    assert again.fields() == SAMPLES
    for param in PARAMETERS:
        section = data if param.name == "mode" else data[param.part.value]
        assert param.name in section, param.name


def test_parameters_of_a_mode_only_appear_in_its_text():
    txt2img = request_infotext(GenerationRequest.create(**SAMPLES | {"mode": Mode.TXT2IMG}), None)
    for name in ("mask_blur", "inpaint_padding"):
        assert f"{BY_NAME[name].infotext}:" not in txt2img
    inpaint = request_infotext(GenerationRequest.create(**SAMPLES), None)
    assert "Hires" not in inpaint


@pytest.mark.parametrize("mode", list(Mode))
def test_no_two_rows_shown_together_share_a_mnemonic(mode):
    """Alt+letter must reach one control: among the rows a mode shows (and the size row)."""
    import re

    labels = [p.label for p in PARAMETERS if mode in p.modes] + ["Si&ze:"]
    letters = [m.group(1).lower() for label in labels if (m := re.search(r"&(\w)", label))]
    assert len(letters) == len(set(letters)), sorted(letters)
