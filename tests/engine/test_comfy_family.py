"""A server checkpoint's family: from its model-spec metadata (ComfyUI's /view_metadata), else
guessed from its name, since ComfyUI 0.3.x reports no family before it loads the weights."""

from __future__ import annotations

import pytest

from sdstudio.engine.comfy.backend import ComfyBackend, _model_info
from sdstudio.engine.events import ModelLoaded
from sdstudio.engine.request import Family, ModelRef
from tests.contract.comfy_server import CHECKPOINT, install, shared_server


@pytest.mark.parametrize(
    ("name", "metadata", "family", "side"),
    [
        ("dream.safetensors", {"modelspec.architecture": "stable-diffusion-xl-v1-base"}, Family.SDXL, 1024),
        ("dream.safetensors", {"modelspec.architecture": "stable-diffusion-v2-768-v"}, Family.SD2, 768),
        ("dream.safetensors", {"modelspec.architecture": "stable-diffusion-v2-512"}, Family.SD2, 512),
        ("juggernautXL.safetensors", {"modelspec.architecture": "stable-diffusion-v1"}, Family.SD1, 512),
        ("juggernautXL.safetensors", {}, Family.SDXL, 1024),  # no header: the name's guess
        ("dream.ckpt", {"modelspec.architecture": "flux-1-dev"}, Family.SD1, 512),  # unknown: the guess
    ],
)
def test_the_model_spec_names_the_family_else_the_name_guesses(name, metadata, family, side):
    info = _model_info(name, "http://s:1", metadata)
    assert (info.family, info.native_size) == (family, side)


def test_a_real_server_reports_the_checkpoints_metadata():
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    path = install() / "models" / "checkpoints" / "zz-sdstudio-spec-test.safetensors"
    backend = ComfyBackend(shared_server().url)
    try:
        save_file({"x": torch.zeros(1)}, str(path), metadata={"modelspec.architecture": "stable-diffusion-xl-v1-base"})
        events: list = []
        # A load on a server only checks the name (the weights load with the first job).
        assert backend.load_model(ModelRef(path.name), events.append).wait(60)
        assert isinstance(events[-1], ModelLoaded) and events[-1].info.family is Family.SDXL
        assert events[-1].info.native_size == 1024
        assert backend._client.checkpoint_metadata(CHECKPOINT) == {}  # no header: 404, read as none
    finally:
        path.unlink(missing_ok=True)
        backend.shutdown()
