"""LoRAs in the local engine: `<lora:name:weight>` tags load kohya-format files (made in code
for the tiny models) from the engine's LoRA folder, stay loaded between jobs, and a job without
them is bitwise what a model that never saw a LoRA makes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sdstudio.app import main as app_main
from sdstudio.engine.events import ErrorKind, Failed, Finished, UsedNetwork
from sdstudio.engine.networks import NetworkFolders, NetworkKind, short_hash
from sdstudio.engine.params import fields_from_infotext, image_json
from sdstudio.engine.pngmeta import read_png_text
from sdstudio.engine.request import GenerationRequest, ModelRef
from sdstudio.engine.runner import Engine
from tools.tiny_lora import kohya_lora, save_kohya_lora

TIMEOUT = 120


def _pipe(folder):
    from diffusers import DiffusionPipeline

    return DiffusionPipeline.from_pretrained(folder)


@pytest.fixture(scope="module")
def lora_dir(tmp_path_factory, tiny_sd1, tiny_sdxl):
    """film_grain (UNet + text encoder), film_grain_unet (the same UNet part alone), xl_style for
    SDXL (UNet + both text encoders) and xl_unet (its UNet part alone), a file that holds no LoRA,
    and a pickled LoRA."""
    folder = tmp_path_factory.mktemp("loras")
    sd1, xl = _pipe(tiny_sd1), _pipe(tiny_sdxl)
    save_kohya_lora(folder / "film_grain.safetensors", sd1)
    save_kohya_lora(folder / "film_grain_unet.safetensors", sd1, parts=("unet",))
    save_kohya_lora(folder / "sub" / "xl_style.safetensors", xl, seed=3)
    save_kohya_lora(folder / "xl_unet.safetensors", xl, parts=("unet",))  # no text-encoder keys to tell
    torch.save(kohya_lora(sd1, seed=5), folder / "pickled.pt")
    from safetensors.torch import save_file

    save_file({"weight": torch.zeros(4)}, str(folder / "not_a_lora.safetensors"))
    return folder


@pytest.fixture(scope="module")
def engine(lora_dir):
    eng = Engine(device="cpu", folders=NetworkFolders.default(loras=lora_dir))
    yield eng
    eng.shutdown()


@pytest.fixture(scope="module")
def untouched():
    """An engine whose model never sees a LoRA: the reference pictures."""
    eng = Engine(device="cpu")
    yield eng
    eng.shutdown()


def make(model, prompt: str, **fields) -> GenerationRequest:
    fields = {"steps": 2, "width": 64, "height": 64, "seed": 7, **fields}
    return GenerationRequest.create(model=ModelRef(str(model), allow_pickle=fields.pop("allow_pickle", False)),
                                    prompt=prompt, **fields)


def run(engine: Engine, request: GenerationRequest):
    events: list = []
    assert engine.submit(request, events.append).wait(TIMEOUT), "job did not finish"
    return events[-1]


def picture(engine: Engine, request: GenerationRequest) -> np.ndarray:
    last = run(engine, request)
    assert isinstance(last, Finished), last
    return np.asarray(last.results[0].image)


@pytest.mark.parametrize(("model", "name"), [("tiny_sd1", "film_grain"), ("tiny_sdxl", "xl_style")])
def test_a_tag_changes_the_picture_and_jobs_without_it_are_the_untouched_model(engine, untouched, request, model, name):
    folder = request.getfixturevalue(model)
    reference = picture(untouched, make(folder, "a red apple"))
    with_lora = picture(engine, make(folder, f"a red apple <lora:{name}:1>"))
    assert np.abs(with_lora.astype(int) - reference).max() > 10
    parts = {part for part, names in engine._model.base.get_list_adapters().items() if names}
    assert parts == {"unet", "text_encoder"} | ({"text_encoder_2"} if model == "tiny_sdxl" else set())
    # After a LoRA job: a plain job, weight 0 and weight 0 for both parts are the model's own.
    assert np.array_equal(picture(engine, make(folder, "a red apple")), reference)
    assert np.array_equal(picture(engine, make(folder, f"a red apple <lora:{name}:0>")), reference)
    assert np.array_equal(picture(engine, make(folder, f"a red apple <lora:{name}:0:0>")), reference)
    # And the LoRA is back at once, with the same picture.
    assert np.array_equal(picture(engine, make(folder, f"a red apple <lora:{name}:1>")), with_lora)


def test_every_mode_shares_the_loaded_lora(engine, untouched, tiny_sd1):
    from PIL import Image

    from sdstudio.engine.request import Inputs, Mode

    init = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    for mode in (Mode.IMG2IMG, Mode.INPAINT):
        fields = {"mode": mode, "strength": 0.9, "inputs": Inputs.from_pil(init_image=init, mask=mask)}
        plain = picture(untouched, make(tiny_sd1, "a boat", **fields))
        assert not np.array_equal(picture(engine, make(tiny_sd1, "a boat <lora:film_grain:1>", **fields)), plain)
        assert np.array_equal(picture(engine, make(tiny_sd1, "a boat", **fields)), plain)
    assert engine._model.loras.loaded  # one set of adapters served all three pipelines


def test_text_encoder_and_unet_weights_apart(engine, tiny_sd1):
    unet_only = picture(engine, make(tiny_sd1, "a cat <lora:film_grain_unet:1>"))
    assert np.array_equal(picture(engine, make(tiny_sd1, "a cat <lora:film_grain:0:1>")), unet_only)
    both = picture(engine, make(tiny_sd1, "a cat <lora:film_grain:1>"))
    text_only = picture(engine, make(tiny_sd1, "a cat <lora:film_grain:te=1:unet=0>"))
    assert not np.array_equal(both, unet_only) and not np.array_equal(text_only, both)


def test_one_file_tagged_twice_adds_up_its_weights(engine, tiny_sd1):
    once = picture(engine, make(tiny_sd1, "a cat <lora:film_grain:1>"))
    last = run(engine, make(tiny_sd1, "a cat <lora:film_grain:0.5>", negative_prompt="<lora:film_grain.safetensors:0.5>"))
    assert np.array_equal(np.asarray(last.results[0].image), once)
    assert [n.weight for n in last.results[0].networks] == [1.0]


def test_the_result_names_the_lora_with_a1111s_hash(engine, tiny_sd1, lora_dir):
    last = run(engine, make(tiny_sd1, "a cat <lora:film_grain:0.7>, <lora:film_grain_unet:0.5>"))
    assert isinstance(last, Finished), last
    result = last.results[0]
    hashes = [short_hash(lora_dir / f"{n}.safetensors", NetworkKind.LORA) for n in ("film_grain", "film_grain_unet")]
    assert result.networks == (UsedNetwork("lora", "film_grain", hashes[0], 0.7),
                               UsedNetwork("lora", "film_grain_unet", hashes[1], 0.5))
    assert f'Lora hashes: "film_grain: {hashes[0]}, film_grain_unet: {hashes[1]}"' in result.infotext
    chunk = image_json(result.request, result.model, result.networks)
    assert chunk["networks"][0] == {"kind": "lora", "name": "film_grain", "hash": hashes[0], "weight": 0.7}
    # Reusing the text gives the prompt with its tags: the same LoRAs apply again.
    assert fields_from_infotext(result.infotext)["prompt"] == "a cat <lora:film_grain:0.7>, <lora:film_grain_unet:0.5>"


def test_adapters_stay_loaded_between_jobs(engine, tiny_sd1, lora_dir, monkeypatch):
    run(engine, make(tiny_sd1, "a dog <lora:film_grain:1>"))
    loras = engine._model.loras
    loads = loras.loads
    run(engine, make(tiny_sd1, "a dog <lora:film_grain:0.5>", seed=1))
    run(engine, make(tiny_sd1, "a dog"))
    run(engine, make(tiny_sd1, "a dog <lora:film_grain:1>"))
    assert loras.loads == loads
    # Beyond the bound the least recently used one is unloaded, and loads again when named.
    monkeypatch.setattr("sdstudio.engine.loras.MAX_LOADED", 1)
    run(engine, make(tiny_sd1, "a dog <lora:film_grain_unet:1>"))
    unet_only = "lora_" + short_hash(lora_dir / "film_grain_unet.safetensors", NetworkKind.LORA)
    assert list(loras.loaded) == [unet_only] == engine._model.base.get_list_adapters()["unet"]
    loads = loras.loads
    run(engine, make(tiny_sd1, "a dog <lora:film_grain:1>"))
    assert loras.loads == loads + 1 and len(loras.loaded) == 1


def test_an_unknown_name_fails_with_close_matches(engine, tiny_sd1):
    last = run(engine, make(tiny_sd1, "a cat <lora:film_grian:1>"))
    assert isinstance(last, Failed) and last.error is ErrorKind.BAD_INPUT
    assert "No LoRA called 'film_grian'" in last.message and "did you mean film_grain" in last.message


@pytest.mark.parametrize(("name", "words"), [("xl_style", "is an SDXL LoRA; the model is SD 1.x"),
                                             ("xl_unet", "(SD 1.x): its layers have other names or sizes"),
                                             ("not_a_lora", "is not a LoRA")])
def test_a_file_that_does_not_fit_fails_with_a_sentence(engine, untouched, tiny_sd1, name, words):
    last = run(engine, make(tiny_sd1, f"a cat <lora:{name}:1>"))
    assert isinstance(last, Failed) and last.error is ErrorKind.BAD_INPUT and words in last.message, last
    # Nothing half-loaded is left behind.
    assert np.array_equal(picture(engine, make(tiny_sd1, "a cat")), picture(untouched, make(tiny_sd1, "a cat")))


def test_an_sd1_lora_on_sdxl_fails(engine, tiny_sdxl):
    last = run(engine, make(tiny_sdxl, "a cat <lora:film_grain:1>"))
    assert isinstance(last, Failed) and "SD 1.x/2.x LoRA; the model is SDXL" in last.message


def test_pickled_loras_only_with_the_opt_in(engine, tiny_sd1):
    refused = run(engine, make(tiny_sd1, "a cat <lora:pickled:1>"))
    assert isinstance(refused, Failed) and "No LoRA called 'pickled'" in refused.message
    assert isinstance(run(engine, make(tiny_sd1, "a cat <lora:pickled:1>", allow_pickle=True)), Finished)


def test_cli_lora_dir(tiny_sd1, lora_dir, tmp_path):
    out = tmp_path / "out"
    code = app_main(["generate", "--model", str(tiny_sd1), "--lora-dir", str(lora_dir), "--prompt",
                     "x <lora:film_grain:1>", "--steps", "1", "--width", "64", "--height", "64", "--seed", "1",
                     "--out", str(out)])
    assert code == 0
    text, chunk = read_png_text(out / "00001-1.png")
    digest = short_hash(lora_dir / "film_grain.safetensors", NetworkKind.LORA)
    assert f'Lora hashes: "film_grain: {digest}"' in text
    assert chunk["networks"] == [{"kind": "lora", "name": "film_grain", "hash": digest, "weight": 1.0}]


def test_cli_folder_flags_make_the_engines_folders(tmp_path, monkeypatch):
    from sdstudio.cli import build_parser, folders_from_args

    monkeypatch.setenv(NetworkKind.LORA.env, str(tmp_path / "env-loras"))
    args = build_parser().parse_args(["--prompt", "x", "--out", str(tmp_path), "--embeddings-dir", str(tmp_path / "e"),
                                      "--vae-dir", str(tmp_path / "v")])
    folders = folders_from_args(args)
    assert (folders.loras, folders.embeddings, folders.vaes) == (tmp_path / "env-loras", tmp_path / "e", tmp_path / "v")
