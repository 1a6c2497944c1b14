"""A VAE chosen per model (ModelRef.vae) in the local engine, on the tiny SD1 model: a random
VAE saved as A1111 keeps VAE files (LDM keys, no prefix), in diffusers' layout or as a pickle
changes the decoded picture and is named in the text; "from the model" gives back the very
picture of before; the live preview follows the VAE in use; files that are no VAE of this
shape, and missing names, fail in one sentence."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from safetensors.torch import save_file  # noqa: E402

from sdstudio.engine.events import ErrorKind, Failed, Finished, UsedNetwork  # noqa: E402
from sdstudio.engine.infotext import parse_infotext  # noqa: E402
from sdstudio.engine.networks import NetworkFolders, NetworkKind, short_hash  # noqa: E402
from sdstudio.engine.request import GenerationRequest, ModelRef  # noqa: E402
from sdstudio.engine.runner import Engine  # noqa: E402

TIMEOUT = 120


@pytest.fixture(scope="module")
def vae_folder(tiny_sd1, tmp_path_factory):
    from diffusers import AutoencoderKL

    from tools.ldm_checkpoint import _convert_vae

    folder = tmp_path_factory.mktemp("vaes")
    torch.manual_seed(123)  # other weights than the model's own VAE (seed 0)
    vae = AutoencoderKL.from_config(AutoencoderKL.load_config(tiny_sd1 / "vae"))
    ldm = {k.removeprefix("first_stage_model."): v.contiguous()
           for k, v in _convert_vae(vae.state_dict(), dict(vae.config)).items()}
    save_file(ldm, folder / "other.safetensors")
    save_file({k: v.contiguous() for k, v in vae.state_dict().items()}, folder / "other-diffusers.safetensors")
    torch.save(ldm, folder / "other-pickle.pt")
    vae.save_pretrained(folder.parent / f"{folder.name}-diffusers-folder")
    save_file({"emb_params": torch.zeros(1, 32)}, folder / "not-a-vae.safetensors")
    half = {k: v for k, v in ldm.items() if k.startswith("decoder.")}
    save_file(half, folder / "decoder-only.safetensors")
    return folder


@pytest.fixture(scope="module")
def engine(vae_folder, tmp_path_factory):
    empty = tmp_path_factory.mktemp("none")
    eng = Engine(device="cpu", folders=NetworkFolders.default(vaes=vae_folder, loras=empty, embeddings=empty,
                                                              upscalers=empty))
    yield eng
    eng.shutdown()


def run(engine, model, vae="", **ref):
    request = GenerationRequest.create(model=ModelRef(str(model), vae=vae, **ref), prompt="a red apple",
                                       steps=2, width=64, height=64, seed=7)
    events: list = []
    assert engine.submit(request, events.append).wait(TIMEOUT)
    return events[-1]


def pixels(result) -> np.ndarray:
    return np.asarray(result.results[0].image, dtype=np.int16)


def test_a_vae_file_changes_the_picture_and_from_the_model_restores_it(engine, tiny_sd1, vae_folder):
    own = run(engine, tiny_sd1)
    assert isinstance(own, Finished), own
    own_vae = engine._model.vae
    other = run(engine, tiny_sd1, "other")
    assert isinstance(other, Finished), other
    assert engine._model.vae is not own_vae
    assert np.abs(pixels(other) - pixels(own)).max() > 8
    result = other.results[0]
    digest = short_hash(vae_folder / "other.safetensors", NetworkKind.VAE)[:10]
    params = parse_infotext(result.infotext).params
    assert (params["VAE hash"], params["VAE"]) == (digest, "other.safetensors")
    assert list(result.networks) == [UsedNetwork("vae", "other.safetensors", digest)]
    assert result.request.model.vae == "other"  # the JSON chunk's request keeps the choice
    # The preview decodes with the VAE in use (the tiny VAEs have no linear map).
    assert engine._previewer.vae is engine._model.vae

    back = run(engine, tiny_sd1, "")
    assert isinstance(back, Finished), back
    assert engine._model.vae is own_vae and engine._previewer.vae is own_vae
    assert np.array_equal(pixels(back), pixels(own))
    assert "VAE" not in parse_infotext(back.results[0].infotext).params
    assert back.results[0].networks == ()


def test_every_layout_of_the_same_weights_decodes_alike(engine, tiny_sd1, vae_folder):
    ldm = run(engine, tiny_sd1, "other")
    diffusers_keys = run(engine, tiny_sd1, "other-diffusers.safetensors")
    by_path = run(engine, tiny_sd1, str(vae_folder / "other-pickle.pt"), allow_pickle=True)
    diffusers_folder = run(engine, tiny_sd1, str(vae_folder.parent / f"{vae_folder.name}-diffusers-folder"))
    for result in (ldm, diffusers_keys, by_path, diffusers_folder):
        assert isinstance(result, Finished), result
    for result in (diffusers_keys, by_path, diffusers_folder):
        assert np.array_equal(pixels(ldm), pixels(result))
    # A folder has no A1111 hash: the text names it without one.
    params = parse_infotext(diffusers_folder.results[0].infotext).params
    assert params["VAE"] == f"{vae_folder.name}-diffusers-folder" and "VAE hash" not in params


@pytest.mark.parametrize(("vae", "ref", "words"), [
    ("not-a-vae", {}, "not-a-vae.safetensors cannot be used as this model's VAE: it is not a VAE"),
    ("decoder-only", {}, "decoder-only.safetensors cannot be used as this model's VAE"),
    ("othr", {}, "No VAE called 'othr'"),
    ("/nowhere/vae.safetensors", {}, "VAE not found"),
    ("other-pickle", {}, "No VAE called 'other-pickle'"),  # pickles are not even listed without the opt-in
])
def test_a_vae_that_cannot_serve_fails_in_one_sentence(engine, tiny_sd1, vae, ref, words):
    before = run(engine, tiny_sd1)
    failed = run(engine, tiny_sd1, vae, **ref)
    assert isinstance(failed, Failed), failed
    assert failed.error is ErrorKind.MODEL_LOAD
    assert words in failed.message
    # The VAE in use stays: the next job is the same picture as before.
    assert np.array_equal(pixels(run(engine, tiny_sd1)), pixels(before))


def test_a_pickle_path_needs_the_opt_in(vae_folder):
    from sdstudio.engine.families import ModelLoadError
    from sdstudio.engine.vaes import load_vae

    with pytest.raises(ModelLoadError, match="pickle"):
        load_vae(vae_folder / "other-pickle.pt", None, torch.float32)


def test_the_choice_travels_in_the_request_json():
    request = GenerationRequest.create(model=ModelRef("m.safetensors", vae="other"))
    assert GenerationRequest.from_json(request.to_json()).model.vae == "other"
    old = request.to_json()
    del old["model"]["vae"]
    assert GenerationRequest.from_json(old).model.vae == ""


def test_the_command_line_chooses_a_vae():
    from sdstudio.cli import build_parser, request_from_args
    from sdstudio.engine.backend import Capabilities, Feature

    caps = Capabilities("test", ("Euler a",), frozenset(), frozenset(Feature))
    parse = lambda *extra: build_parser().parse_args(["--prompt", "x", "--out", "o", *extra])  # noqa: E731
    assert request_from_args(parse("--vae", "other"), caps).model.vae == "other"
    assert request_from_args(parse(), caps).model.vae == ""
