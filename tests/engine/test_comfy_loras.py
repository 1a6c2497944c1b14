"""LoRAs, embeddings and VAEs on a ComfyUI server: `<lora:name:weight>` tags become LoraLoaders of the server's own
files, embeddings named by their bare names, `ModelRef.vae` a VAELoader (a real server with a random kohya-format
LoRA, an A1111 embedding and a VAE in its folders)."""

from __future__ import annotations

import numpy as np
import pytest

from sdstudio.engine.comfy.backend import ComfyBackend
from sdstudio.engine.events import ErrorKind, Failed, Finished, ResultImage, UsedNetwork
from sdstudio.engine.request import GenerationRequest, ModelRef
from tests.contract.comfy_server import CHECKPOINT, install, shared_server

TIMEOUT = 180
LORA = "sdstudio-test-ink"


def write_lora() -> None:
    """A rank-4 SD1.5 LoRA in kohya's key format on one UNet conv, one UNet linear and one text
    encoder layer (layers the reduced test checkpoint has), strong enough to change an image."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    path = install() / "models" / "loras" / f"{LORA}.safetensors"
    if path.is_file():
        return
    generator = torch.Generator().manual_seed(0)
    rank, tensors = 4, {}
    for key, (out, inp), conv in (
        ("lora_unet_down_blocks_0_attentions_0_proj_in", (320, 320), True),
        ("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q", (320, 320), False),
        ("lora_te_text_model_encoder_layers_0_self_attn_q_proj", (768, 768), False),
    ):
        kernel = (1, 1) if conv else ()
        tensors[f"{key}.lora_down.weight"] = torch.randn((rank, inp, *kernel), generator=generator) * 0.5
        tensors[f"{key}.lora_up.weight"] = torch.randn((out, rank, *kernel), generator=generator) * 0.5
        tensors[f"{key}.alpha"] = torch.tensor(float(rank))
    partial = path.with_suffix(".partial")  # listed by the server only once complete
    save_file(tensors, str(partial))
    partial.rename(path)


VAE = "sdstudio-test-vae"


def write_vae() -> None:
    """The test checkpoint's own VAE in LDM keys, its decoder's last layer changed, so that
    pictures it decodes differ from the checkpoint's."""
    pytest.importorskip("torch")
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = install() / "models" / "vae" / f"{VAE}.safetensors"
    if path.is_file():
        return
    prefix = "first_stage_model."
    with safe_open(str(install() / "models" / "checkpoints" / CHECKPOINT), "pt") as checkpoint:
        tensors = {k.removeprefix(prefix): checkpoint.get_tensor(k) for k in checkpoint.keys() if k.startswith(prefix)}  # noqa: SIM118
    tensors["decoder.conv_out.bias"] = tensors["decoder.conv_out.bias"] + 0.3
    partial = path.with_suffix(".partial")
    save_file(tensors, str(partial))
    partial.rename(path)


@pytest.fixture(scope="module")
def backend():
    write_lora()
    write_vae()
    backend = ComfyBackend(shared_server().url)
    yield backend
    backend.shutdown()


def result(backend: ComfyBackend, prompt: str, negative: str = "", vae: str = "") -> ResultImage:
    request = GenerationRequest.create(model=ModelRef(CHECKPOINT, vae=vae), prompt=prompt, negative_prompt=negative,
                                       steps=3, width=64, height=64, seed=5)
    events: list = []
    assert backend.submit(request, events.append).wait(TIMEOUT)
    assert isinstance(events[-1], Finished), events[-1]
    return events[-1].results[0]


def image(backend: ComfyBackend, prompt: str, negative: str = "", vae: str = "") -> np.ndarray:
    return np.asarray(result(backend, prompt, negative, vae).image, dtype=np.int16)


@pytest.mark.slow
def test_a_lora_tag_changes_the_image_and_weight_zero_changes_nothing(backend):
    assert f"{LORA}.safetensors" in backend.capabilities().loras
    plain = image(backend, "a fig")
    assert np.array_equal(image(backend, f"a fig <lora:{LORA}:0>"), plain)
    with_lora = image(backend, f"a fig <lora:{LORA}:1>")
    assert np.abs(with_lora - plain).mean() > 2
    # The file name with its extension names the same LoRA; a tag in the negative prompt counts too.
    assert np.array_equal(image(backend, f"<lora:{LORA}.safetensors:1> a fig"), with_lora)
    assert np.array_equal(image(backend, "a fig", negative=f"<lora:{LORA}:1>"), with_lora)


def test_an_unknown_lora_fails_naming_the_server_the_lora_and_close_matches(backend):
    request = GenerationRequest.create(model=ModelRef(CHECKPOINT), prompt="a fig <lora:sdstudio-test-inc:1>", steps=2,
                                       width=64, height=64)
    events: list = []
    assert backend.submit(request, events.append).wait(TIMEOUT)
    failed = events[-1]
    assert isinstance(failed, Failed) and failed.error is ErrorKind.BAD_INPUT
    assert backend.url in failed.message and "sdstudio-test-inc" in failed.message
    assert f"did you mean {LORA}" in failed.message


EMBEDDING = "sdstudio-test-hands"


def write_embedding() -> None:
    """A two-vector SD1 embedding in A1111's safetensors layout, in the server's embeddings folder."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    path = install() / "models" / "embeddings" / f"{EMBEDDING}.safetensors"
    if path.is_file():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    vectors = torch.randn((2, 768), generator=torch.Generator().manual_seed(1)) * 0.5
    partial = path.with_suffix(".partial")
    save_file({"emb_params": vectors}, str(partial))
    partial.rename(path)


def finished_job(backend: ComfyBackend, prompt: str) -> Finished:
    request = GenerationRequest.create(model=ModelRef(CHECKPOINT), prompt=prompt, steps=3, width=64, height=64, seed=5)
    events: list = []
    assert backend.submit(request, events.append).wait(TIMEOUT)
    assert isinstance(events[-1], Finished), events[-1]
    return events[-1]


@pytest.mark.slow
def test_an_embedding_named_as_a1111_names_it_runs_on_the_server(backend):
    write_embedding()
    backend.check_connection()  # the server lists the new file
    assert EMBEDDING in backend.capabilities().embeddings
    by_name = finished_job(backend, f"a fig, {EMBEDDING}")
    in_comfy_syntax = finished_job(backend, f"a fig, embedding:{EMBEDDING}")
    as_a_word = finished_job(backend, "a fig, hands")
    assert np.array_equal(np.asarray(by_name.results[0].image), np.asarray(in_comfy_syntax.results[0].image))
    assert not np.array_equal(np.asarray(by_name.results[0].image), np.asarray(as_a_word.results[0].image))
    # What was used is recorded (no hash: the file is the server's), as LoRAs are.
    assert [(n.kind, n.name) for n in by_name.results[0].networks] == [("embedding", EMBEDDING)]
    lora_job = finished_job(backend, f"a fig <lora:{LORA}:0.5>")
    assert [(n.kind, n.name, n.weight) for n in lora_job.results[0].networks] == [("lora", LORA, 0.5)]


@pytest.mark.slow
def test_a_vae_of_the_server_decodes_instead_of_the_checkpoints_own_and_is_recorded(backend):
    own = image(backend, "a fig")
    made = result(backend, "a fig", vae=VAE)
    assert np.abs(np.asarray(made.image, dtype=np.int16) - own).mean() > 2
    assert UsedNetwork("vae", VAE, "") in made.networks and f"VAE: {VAE}" in made.infotext
    assert VAE + ".safetensors" in backend.capabilities().vaes


def test_an_unknown_vae_fails_the_model_load_naming_the_server_and_close_matches(backend):
    events: list = []
    assert backend.load_model(ModelRef(CHECKPOINT, vae="sdstudio-test-vea"), events.append).wait(TIMEOUT)
    failed = events[-1]
    assert isinstance(failed, Failed) and failed.error is ErrorKind.BAD_INPUT
    assert backend.url in failed.message and f"did you mean {VAE}" in failed.message
