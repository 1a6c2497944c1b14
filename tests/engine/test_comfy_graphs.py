"""Requests as ComfyUI graphs, sampler names, addresses and tokens (no server needed)."""

from __future__ import annotations

import pytest

from sdstudio.engine.comfy.client import auth_headers, normalized_url
from sdstudio.engine.comfy.graphs import (
    SAMPLERS,
    Lora,
    Uploaded,
    batch_graph,
    comfy_text,
    sampler_plan,
    server_samplers,
    server_upscalers,
    server_vaes,
    upscale_graph,
    used_embeddings,
)
from sdstudio.engine.networks import find_listed
from sdstudio.engine.request import GenerationRequest, Mode


def info(samplers: list[str], schedulers: list[str]) -> dict:
    spec = {"sampler_name": [samplers], "scheduler": [schedulers]}
    return {"KSampler": {"input": {"required": spec}}}


def test_sampler_names_the_server_lacks_are_hidden():
    names = server_samplers(info(["euler", "euler_ancestral", "dpmpp_2m"], ["normal"]))
    assert names == ["Euler a", "Euler", "DPM++ 2M"]  # no Karras schedule on this server
    assert "DPM++ 2M Karras" in server_samplers(info(["dpmpp_2m"], ["normal", "karras"]))
    assert server_samplers({}) == []
    assert SAMPLERS["DPM++ 2M Karras"] == ("dpmpp_2m", "karras")


@pytest.mark.parametrize(("steps", "strength", "run"), [(20, 1.0, 20), (20, 0.5, 10), (3, 0.75, 2), (3, 0.1, 0)])
def test_image_modes_run_the_last_strength_part_of_the_schedule(steps, strength, run):
    request = GenerationRequest.create(mode=Mode.IMG2IMG, steps=steps, strength=strength)
    count, denoise = sampler_plan(request)
    assert count == run
    if run:
        assert int(count / denoise) == steps  # KSampler's schedule is the whole `steps` one


def test_each_image_of_a_batch_has_its_own_sampler_chain_and_seed():
    request = GenerationRequest.create(mode=Mode.INPAINT, steps=4, cfg_scale=6.0, sampler="Euler a")
    built = batch_graph(request, "m.safetensors", [7, 8], (64, 72), Uploaded("i.png", "m.png"))
    graph = built.graph
    assert [graph[n]["inputs"]["seed"] for n in built.samplers] == [7, 8]
    assert all(graph[n]["inputs"]["latent_image"] == ["masked", 0] for n in built.samplers)
    assert graph["mask"]["inputs"] == {"image": "m.png", "channel": "red"}
    assert [graph[n]["class_type"] for n in built.outputs] == ["SaveImageWebsocket"] * 2
    txt = batch_graph(request.replace(mode=Mode.TXT2IMG), "m", [1], (64, 72), Uploaded(), websocket_output=False)
    assert txt.graph["latent"]["inputs"] == {"width": 64, "height": 72, "batch_size": 1}
    assert txt.graph[txt.outputs[0]]["class_type"] == "PreviewImage"


def test_loras_chain_after_the_checkpoint_and_their_tags_leave_the_text():
    request = GenerationRequest.create(prompt="a fig <lora:ink:0.5>", negative_prompt="<lora:ink:1> blur", cfg_scale=7.0)
    loras = [Lora("styles/ink.safetensors", 0.5, 0.25), Lora("b.pt", 1.0, 1.0)]
    graph = batch_graph(request, "m", [1], (64, 64), Uploaded(), loras=loras).graph
    assert graph["lora0"]["inputs"] == {"model": ["ckpt", 0], "clip": ["ckpt", 1], "lora_name": "styles/ink.safetensors",
                                        "strength_model": 0.5, "strength_clip": 0.25}
    assert graph["lora1"]["inputs"]["model"] == ["lora0", 0] and graph["lora1"]["inputs"]["clip"] == ["lora0", 1]
    assert graph["pos"]["inputs"] == {"text": "a fig ", "clip": ["lora1", 1]}
    assert graph["neg"]["inputs"]["text"] == " blur"
    assert graph["sample0"]["inputs"]["model"] == ["lora1", 0]


def test_embeddings_are_named_as_comfyui_names_them():
    names = ["bad_hands", "bad_hands_v2", "easy-negative"]
    assert comfy_text("bad_hands, (easy-negative:1.2), bad_hands_v2 <lora:x:1>", names) == (
        "embedding:bad_hands, (embedding:easy-negative:1.2), embedding:bad_hands_v2 ")
    # Words that merely contain a name, and names already in ComfyUI's syntax, stay as written.
    assert comfy_text("bad_handsome embedding:bad_hands my.bad_hands", names) == "bad_handsome embedding:bad_hands my.bad_hands"
    assert comfy_text("bad_hands", []) == "bad_hands"
    assert used_embeddings(["a easy-negative", "bad_hands, easy-negative"], names) == ["easy-negative", "bad_hands"]
    request = GenerationRequest.create(prompt="a fig", negative_prompt="bad_hands", cfg_scale=7.0)
    graph = batch_graph(request, "m", [1], (64, 64), Uploaded(), embeddings=names).graph
    assert graph["neg"]["inputs"]["text"] == "embedding:bad_hands"


def test_a_server_file_is_found_with_or_without_folders_and_extension():
    names = ["styles/Ink.safetensors", "ink2.safetensors", "detail.pt"]
    assert find_listed(names, "styles/Ink.safetensors") == "styles/Ink.safetensors"
    assert find_listed(names, "Ink") == find_listed(names, "ink") == "styles/Ink.safetensors"
    assert find_listed(names, "detail") == "detail.pt"
    assert find_listed(names, "styles/Ink") == "styles/Ink.safetensors"
    assert find_listed(names, "nk") is None


def test_addresses_and_tokens():
    assert normalized_url(" gpu-box:8188/ ") == "http://gpu-box:8188"
    assert normalized_url("https://example.org/comfy/") == "https://example.org/comfy"
    with pytest.raises(ValueError, match="not a server address"):
        normalized_url("ftp://x")
    assert auth_headers(None) == {}
    assert auth_headers("abc") == {"Authorization": "Bearer abc"}
    assert auth_headers("X-Api-Key: k1") == {"X-Api-Key": "k1"}


def test_upscaler_models_are_read_from_the_newer_combo_form_too():
    newer = {"UpscaleModelLoader": {"input": {"required": {"model_name": ["COMBO", {"options": ["4x-a.pth"]}]}}}}
    older = {"UpscaleModelLoader": {"input": {"required": {"model_name": [["4x-b.pth"]]}}}}
    assert server_upscalers(newer) == ["4x-a.pth"] and server_upscalers(older) == ["4x-b.pth"]
    assert server_upscalers({"UpscaleModelLoader": {"input": {"required": {"model_name": ["COMBO", None]}}}}) == []


def test_an_upscale_graph_runs_the_model_then_lanczos_to_the_exact_size():
    graph = upscale_graph("in.png", (200, 100), "4x-a.pth")
    fit = graph.graph["fit"]["inputs"]
    assert graph.graph["enlarge"]["inputs"]["image"] == ["picture", 0] and fit["image"] == ["enlarge", 0]
    assert (fit["width"], fit["height"], fit["upscale_method"]) == (200, 100, "lanczos")
    assert graph.samplers == {"enlarge": 1} and graph.outputs == ("save",)
    lanczos = upscale_graph("in.png", (200, 100), None, websocket_output=False).graph
    assert "enlarge" not in lanczos and lanczos["fit"]["inputs"]["image"] == ["picture", 0]
    assert lanczos["save"]["class_type"] == "PreviewImage"


def test_a_vae_file_encodes_and_decodes_instead_of_the_checkpoints_own():
    request = GenerationRequest.create(mode=Mode.IMG2IMG, cfg_scale=7.0, hires_scale=2.0, hires_upscaler="Lanczos")
    graph = batch_graph(request, "m", [1], (64, 64), Uploaded("i.png"), hires_size=(128, 128),
                        vae_name="sd15/ft-mse.safetensors").graph
    assert graph["vae"] == {"class_type": "VAELoader", "inputs": {"vae_name": "sd15/ft-mse.safetensors"}}
    uses = [node["inputs"]["vae"] for node in graph.values() if "vae" in node["inputs"]]
    assert len(uses) == 4 and all(use == ["vae", 0] for use in uses)  # encode, first decode, re-encode, decode
    own = batch_graph(request, "m", [1], (64, 64), Uploaded("i.png")).graph
    assert "vae" not in own and own["decode0"]["inputs"]["vae"] == ["ckpt", 2]
    listed = {"VAELoader": {"input": {"required": {"vae_name": [["ft-mse.safetensors", "taesd", "pixel_space"]]}}}}
    assert server_vaes(listed) == ["ft-mse.safetensors"]  # ComfyUI's built-in decoders are no files


def test_a_hires_upscaler_model_enlarges_each_picture_then_lanczos_fits_it():
    request = GenerationRequest.create(cfg_scale=7.0, hires_scale=1.5, hires_upscaler="4x-a")
    built = batch_graph(request, "m", [1, 2], (64, 64), Uploaded(), hires_size=(96, 96), hires_model="4x-a.pth")
    graph = built.graph
    assert graph["hires_upscaler"]["inputs"] == {"model_name": "4x-a.pth"}
    for k in (0, 1):
        assert graph[f"by_model{k}"]["inputs"] == {"upscale_model": ["hires_upscaler", 0], "image": [f"first{k}", 0]}
        fit = graph[f"enlarge{k}"]["inputs"]
        assert (fit["image"], fit["width"], fit["upscale_method"]) == ([f"by_model{k}", 0], 96, "lanczos")
    assert set(built.samplers) == {"sample0", "hires0", "sample1", "hires1"}
