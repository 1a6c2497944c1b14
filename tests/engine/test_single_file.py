"""Single-file LDM checkpoints: family from keys, config folder choice, and offline loading.

Tiny checkpoints are written from the tiny diffusers models in the LDM key layout
(tools/ldm_checkpoint.py); a tiny config root stands in for resources/configs.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from sdstudio.engine.families import ModelLoadError
from sdstudio.engine.models import load_model
from sdstudio.engine.request import Mode, ModelRef
from sdstudio.engine.single_file import (
    checkpoint_family,
    config_folder_for,
    sd2_predicts_v_from_sidecar,
)

U = "model.diffusion_model."


def _fake(in_channels=4, context=768, text="cond_stage_model.transformer.text_model.embeddings.x"):
    keys = {
        U + "input_blocks.0.0.weight": (320, in_channels, 3, 3),
        U + "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, context),
        "first_stage_model.decoder.conv_out.weight": (3, 128, 3, 3),
    }
    if text:
        keys[text] = (77, 768)
    return keys


SD1 = _fake()
SD1_INPAINT = _fake(in_channels=9)
SD2 = _fake(context=1024, text="cond_stage_model.model.token_embedding.weight")
SDXL = {
    **_fake(context=2048, text="conditioner.embedders.0.transformer.text_model.embeddings.x"),
    "conditioner.embedders.1.model.positional_embedding": (77, 1280),
    U + "label_emb.0.0.weight": (1280, 2816),
}
SDXL_INPAINT = {**SDXL, U + "input_blocks.0.0.weight": (320, 9, 3, 3)}


@pytest.mark.parametrize(
    ("shapes", "expected"),
    [
        (SD1, ("sd1", False)),
        (SD1_INPAINT, ("sd1", True)),
        (SD2, ("sd2", False)),
        (_fake(context=1024, text=None), ("sd2", False)),  # no text encoder: the UNet decides
        (SDXL, ("sdxl", False)),
        (SDXL_INPAINT, ("sdxl", True)),
    ],
)
def test_checkpoint_family_from_keys(shapes, expected):
    assert checkpoint_family(shapes) == expected


@pytest.mark.parametrize(
    ("shapes", "words"),
    [
        ({"lora_unet_down_blocks_0.lora_down.weight": (4, 320)}, "LoRA"),
        ({"encoder.down.0.block.0.conv1.weight": (128, 128, 3, 3)}, "VAE"),
        ({"down_blocks.0.resnets.0.conv1.weight": (320, 320, 3, 3)}, "diffusers"),
        ({"something.else": (1,)}, "not a Stable Diffusion checkpoint"),
        (_fake(in_channels=5), "5 input channels"),
        ({**_fake(context=1280, text=None), "conditioner.embedders.0.model.text_projection": (1280, 1280),
          U + "label_emb.0.0.weight": (1536, 2560)}, "refiner"),
        (_fake(in_channels=9, context=1024, text="cond_stage_model.model.x"), "SD 2.x inpainting"),
    ],
)
def test_checkpoint_family_says_what_is_wrong(shapes, words):
    with pytest.raises(ValueError, match=words):
        checkpoint_family(shapes)


def test_config_folder_choice():
    assert config_folder_for("sd1", False) == "sd15"
    assert config_folder_for("sd1", True) == "sd15-inpaint"
    assert config_folder_for("sdxl", False) == "sdxl"
    assert config_folder_for("sdxl", True) == "sdxl-inpaint"
    assert config_folder_for("sd2", False, predicts_v=True) == "sd21"
    assert config_folder_for("sd2", False, predicts_v=False) == "sd2-base"
    assert config_folder_for("sd2", False, predicts_v=None) == "sd21"  # then probed


def test_sd2_sidecar_yaml(tmp_path):
    ckpt = tmp_path / "model.safetensors"
    assert sd2_predicts_v_from_sidecar(ckpt) is None
    (tmp_path / "model.yaml").write_text('model:\n  params:\n    parameterization: "v"\n')
    assert sd2_predicts_v_from_sidecar(ckpt) is True
    (tmp_path / "model.yaml").write_text("model:\n  params:\n    linear_start: 0.00085\n")
    assert sd2_predicts_v_from_sidecar(ckpt) is False


# ---- tiny checkpoints, end to end ---------------------------------------------------------


def _tiny_sdxl_wide(folder):
    """A tiny SDXL whose second text encoder is wider than the first, as in the real model:
    diffusers tells SDXL's two encoders apart in a checkpoint by their width."""
    import torch
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModelWithProjection

    from tools.tiny_models import _text_config, tiny_sdxl_components

    components = tiny_sdxl_components()
    config = _text_config(projection=True)
    config.hidden_size = 48
    torch.manual_seed(0)
    components["text_encoder_2"] = CLIPTextModelWithProjection(config)
    unet_config = dict(components["unet"].config)
    unet_config.update(cross_attention_dim=32 + 48, projection_class_embeddings_input_dim=6 * 8 + 32)
    torch.manual_seed(0)
    components["unet"] = UNet2DConditionModel.from_config(unet_config)
    StableDiffusionXLPipeline(**components).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_checkpoints(tiny_sd1, tiny_sd1_inpaint, tmp_path_factory):
    """{name: checkpoint path, "root": config root, "<name>_folder": diffusers folder}."""
    from tools.ldm_checkpoint import write_checkpoint

    base = tmp_path_factory.mktemp("single-file")
    root = base / "configs"
    root.mkdir()
    sdxl = _tiny_sdxl_wide(base / "sdxl-folder")
    out = {"root": root, "sd1_folder": tiny_sd1, "sd1_inpaint_folder": tiny_sd1_inpaint, "sdxl_folder": sdxl}
    out["sd1"] = write_checkpoint(tiny_sd1, base / "tiny-sd1.safetensors", root / "sd15")
    out["sd1_inpaint"] = write_checkpoint(tiny_sd1_inpaint, base / "tiny-inpaint.safetensors", root / "sd15-inpaint")
    out["sdxl"] = write_checkpoint(sdxl, base / "tiny-xl.safetensors", root / "sdxl")
    out["sd2"] = write_checkpoint(tiny_sd1, base / "tiny-sd2.safetensors", root / "sd2-base", open_clip_text=True)
    shutil.copytree(root / "sd2-base", root / "sd21")
    scheduler = root / "sd21" / "scheduler" / "scheduler_config.json"
    scheduler.write_text(json.dumps(json.loads(scheduler.read_text()) | {"prediction_type": "v_prediction"}))
    return out


def _image(model, seed=1):
    import torch

    pipe = model.pipeline(Mode.TXT2IMG)
    return pipe(
        "a red fox", num_inference_steps=2, height=64, width=64, output_type="np",
        generator=torch.Generator().manual_seed(seed), **model.stand_in_inputs(Mode.TXT2IMG, 64, 64),
    ).images


def _same_weights(a, b, names):
    import torch

    for name in names:
        sa, sb = getattr(a.base, name).state_dict(), getattr(b.base, name).state_dict()
        assert sa.keys() == sb.keys(), name
        assert all(torch.equal(sa[k], sb[k]) for k in sa), name


@pytest.mark.parametrize(("name", "family", "inpaint"), [("sd1", "sd1", False), ("sd1_inpaint", "sd1", True)])
def test_checkpoint_loads_like_its_folder(tiny_checkpoints, name, family, inpaint):
    steps = []
    from_file = load_model(ModelRef(str(tiny_checkpoints[name])), lambda m, f: steps.append(m),
                           config_root=tiny_checkpoints["root"])
    from_folder = load_model(ModelRef(str(tiny_checkpoints[name + "_folder"])))
    assert (from_file.info.family, from_file.info.inpaint_unet) == (family, inpaint)
    assert any("Reading checkpoint" in s for s in steps) and any("Building pipeline" in s for s in steps)
    _same_weights(from_file, from_folder, ("unet", "vae", "text_encoder"))
    assert np.array_equal(_image(from_file), _image(from_folder))


def test_sdxl_checkpoint_loads_like_its_folder(tiny_checkpoints):
    from_file = load_model(ModelRef(str(tiny_checkpoints["sdxl"])), config_root=tiny_checkpoints["root"])
    from_folder = load_model(ModelRef(str(tiny_checkpoints["sdxl_folder"])))
    assert from_file.info.family == "sdxl"
    _same_weights(from_file, from_folder, ("unet", "vae", "text_encoder", "text_encoder_2"))
    # Same weights; the pooled text projection may differ in the last float bit with the
    # tensors' memory alignment (mmap vs. fresh), so compare closely rather than exactly.
    assert np.abs(_image(from_file) - _image(from_folder)).max() < 1e-4


def test_sd2_checkpoint_v_or_epsilon(tiny_checkpoints, monkeypatch):
    import sdstudio.engine.single_file as single_file

    root = tiny_checkpoints["root"]
    ckpt = tiny_checkpoints["sd2"]
    probed = []
    monkeypatch.setattr(single_file, "predicts_v", lambda unet: probed.append(unet) or False)
    model = load_model(ModelRef(str(ckpt)), config_root=root)
    assert model.info.family == "sd2" and len(probed) == 1
    assert model.base_scheduler_config["prediction_type"] == "epsilon"
    _same_weights(model, load_model(ModelRef(str(tiny_checkpoints["sd1_folder"]))), ("unet", "text_encoder"))

    monkeypatch.setattr(single_file, "predicts_v", lambda unet: True)
    assert load_model(ModelRef(str(ckpt)), config_root=root).base_scheduler_config["prediction_type"] == "v_prediction"

    ckpt.with_suffix(".yaml").write_text('    parameterization: "v"\n')
    monkeypatch.setattr(single_file, "predicts_v", lambda unet: pytest.fail("sidecar yaml should decide"))
    try:
        assert load_model(ModelRef(str(ckpt)), config_root=root).base_scheduler_config["prediction_type"] == "v_prediction"
    finally:
        ckpt.with_suffix(".yaml").unlink()


@pytest.mark.parametrize(("factor", "is_v"), [(1.0, False), (0.9, False), (-1.0, False), (-3.0, True)])
def test_v_probe_tells_noise_from_v_prediction(factor, is_v):
    """At the last timestep an epsilon model returns about its input, a v model about its
    negative, scaled up: the probe must tell them apart (and not flag a mere sign flip)."""
    from types import SimpleNamespace

    from sdstudio.engine.single_file import predicts_v

    class Probe(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))
            self.config = SimpleNamespace(cross_attention_dim=8, in_channels=4)

        def forward(self, x, t, encoder_hidden_states):
            return SimpleNamespace(sample=x * factor)

    assert predicts_v(Probe()) is is_v


def test_pickle_checkpoint_needs_opt_in(tiny_checkpoints, tmp_path):
    from tools.ldm_checkpoint import write_checkpoint

    ckpt = write_checkpoint(tiny_checkpoints["sd1_folder"], tmp_path / "old.ckpt")
    with pytest.raises(ModelLoadError, match="old.ckpt.*pickle"):
        load_model(ModelRef(str(ckpt)), config_root=tiny_checkpoints["root"])
    model = load_model(ModelRef(str(ckpt), allow_pickle=True), config_root=tiny_checkpoints["root"])
    assert model.info.family == "sd1" and model.info.name == "old"


def test_damaged_and_foreign_files(tmp_path, tiny_checkpoints):
    import torch
    from safetensors.torch import save_file

    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ModelLoadError, match="broken.safetensors cannot be read"):
        load_model(ModelRef(str(broken)))

    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(tiny_checkpoints["sd1"].read_bytes()[:5000])
    with pytest.raises(ModelLoadError, match="truncated.safetensors"):
        load_model(ModelRef(str(truncated)), config_root=tiny_checkpoints["root"])

    lora = tmp_path / "style.safetensors"
    save_file({"lora_unet_mid_block_attentions_0.lora_down.weight": torch.zeros(4, 8)}, str(lora))
    with pytest.raises(ModelLoadError, match="style.safetensors.*LoRA"):
        load_model(ModelRef(str(lora)))

    no_config = tmp_path / "empty-root"
    no_config.mkdir()
    with pytest.raises(ModelLoadError, match="config folder for sd15 is missing"):
        load_model(ModelRef(str(tiny_checkpoints["sd1"])), config_root=no_config)


def test_shipped_config_folders_exist():
    from sdstudio.engine.models import CONFIG_ROOT
    from sdstudio.engine.single_file import CONFIG_FOLDERS, SD2_BASE, SD2_V

    for name in [*CONFIG_FOLDERS.values(), SD2_BASE, SD2_V]:
        assert (CONFIG_ROOT / name / "model_index.json").is_file(), name


@pytest.mark.parametrize(
    ("folder", "expected", "diffusers_type"),
    [
        ("sd15", ("sd1", False), "v1"),
        ("sd15-inpaint", ("sd1", True), "inpainting"),
        ("sd21", ("sd2", False), "v2"),
        ("sdxl", ("sdxl", False), "xl_base"),
        ("sdxl-inpaint", ("sdxl", True), "xl_inpaint"),
    ],
)
def test_real_size_key_layouts(folder, expected, diffusers_type):
    """Full-size architectures from the shipped configs, built on the meta device (no memory),
    written in LDM key names: our family agrees with diffusers' own infer_diffusers_model_type."""
    from types import SimpleNamespace

    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from sdstudio.engine.models import CONFIG_ROOT
    from tools.ldm_checkpoint import ldm_state_dict

    root = CONFIG_ROOT / folder
    with init_empty_weights():
        parts = SimpleNamespace(
            unet=UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(root / "unet")),
            vae=AutoencoderKL.from_config(AutoencoderKL.load_config(root / "vae")),
            text_encoder=CLIPTextModel(CLIPTextConfig.from_pretrained(root / "text_encoder")),
            text_encoder_2=CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(root / "text_encoder_2"))
            if (root / "text_encoder_2").is_dir() else None,
        )
    state = ldm_state_dict(parts, open_clip_text=folder.startswith("sd2"))
    assert checkpoint_family({key: tuple(value.shape) for key, value in state.items()}) == expected
    assert infer_diffusers_model_type(state) == diffusers_type


class TrainerCallback:
    """Stands in for the training objects some old .ckpt files carry next to the weights."""


def test_pickle_with_python_objects_is_refused_even_when_allowed(tmp_path):
    import torch

    ckpt = tmp_path / "trainer.ckpt"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "callbacks": TrainerCallback()}, ckpt)
    with pytest.raises(ModelLoadError, match="trainer.ckpt.*Python objects besides the weights"):
        load_model(ModelRef(str(ckpt), allow_pickle=True))


# ---- streaming: one component at a time, in the target dtype --------------------------------


def test_unet_key_with_a_wrong_shape_is_one_clear_error(tmp_path, tiny_checkpoints):
    import torch
    from safetensors.torch import save_file

    with pytest.raises(ValueError, match=r"first layer has shape \[320\], not the 4 dimensions"):
        checkpoint_family({U + "input_blocks.0.0.weight": (320,)})
    flat = tmp_path / "flat.safetensors"
    save_file({U + "input_blocks.0.0.weight": torch.zeros(320)}, str(flat))
    with pytest.raises(ModelLoadError, match="flat.safetensors cannot be loaded: its UNet's first layer"):
        load_model(ModelRef(str(flat)), config_root=tiny_checkpoints["root"])


def test_safetensors_reader_matches_the_library(tmp_path, monkeypatch):
    import torch
    from safetensors.torch import load_file, save_file

    from sdstudio.engine import single_file
    from sdstudio.engine.single_file import SafetensorsFile

    monkeypatch.setattr(single_file, "_CHUNK_BYTES", 12)  # tensors converted in several pieces

    tensors = {"a.w": torch.randn(3, 5), "a.half": torch.randn(7).half(), "a.ids": torch.arange(6).reshape(2, 3),
               "a.scalar": torch.tensor(2.5), "a.empty": torch.zeros(0, 4), "b.w": torch.randn(2, 2)}
    path = tmp_path / "t.safetensors"
    save_file(tensors, str(path), metadata={"format": "pt"})
    reader = SafetensorsFile(path)
    assert reader.shapes == {k: tuple(v.shape) for k, v in tensors.items()}
    read = reader.tensors("a.", None)
    reference = load_file(str(path))
    assert set(read) == {k for k in tensors if k.startswith("a.")}
    assert all(torch.equal(read[k], reference[k]) and read[k].dtype == reference[k].dtype for k in read)
    as_bf16 = reader.tensors("a.", torch.bfloat16)
    assert as_bf16["a.w"].dtype == as_bf16["a.half"].dtype == torch.bfloat16
    assert as_bf16["a.ids"].dtype == torch.int64  # only floating point weights change precision
    assert all(torch.equal(as_bf16[k], reference[k].bfloat16()) for k in ("a.w", "a.half", "a.scalar", "a.empty"))


def _header_file(path, header, data=b""):
    raw = json.dumps(header).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data)
    return path


@pytest.mark.parametrize(
    ("header", "data", "words"),
    [
        ([1, 2], b"", "not a table of tensors"),
        ({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4, "outside the file"),
        ({"x": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8, "wrong size"),
        ({"x": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8, "unknown number format"),
        ({"x": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, b"\0" * 8, "entry for 'x' is damaged"),
        ({"x": {"dtype": "F32", "shape": [2], "data_offsets": "0-8"}}, b"\0" * 8, "entry for 'x' is damaged"),
        ({"x": 5}, b"", "entry for 'x' is damaged"),
    ],
)
def test_damaged_safetensors_headers(tmp_path, header, data, words):
    path = _header_file(tmp_path / "bad.safetensors", header, data)
    with pytest.raises(ModelLoadError, match=f"bad.safetensors cannot be read: the file is damaged.*{words}"):
        load_model(ModelRef(str(path)))


def test_checkpoint_streams_each_component_once_in_the_target_dtype(tiny_checkpoints, monkeypatch):
    """The whole file is never read as one state dict (what diffusers' from_single_file does):
    each component's tensors are read on their own, already in the dtype the model runs in."""
    import safetensors.torch
    import torch
    from diffusers.loaders import single_file_utils

    from sdstudio.engine.single_file import SafetensorsFile

    def whole_file(*args, **kwargs):
        raise AssertionError("the whole checkpoint was loaded at once")

    monkeypatch.setattr(single_file_utils, "load_single_file_checkpoint", whole_file)
    monkeypatch.setattr(safetensors.torch, "load_file", whole_file)
    reads = []
    original = SafetensorsFile.tensors

    def spy(self, prefix, dtype):
        out = original(self, prefix, dtype)
        reads.append((prefix, {t.dtype for t in out.values() if t.is_floating_point()}))
        return out

    monkeypatch.setattr(SafetensorsFile, "tensors", spy)
    model = load_model(ModelRef(str(tiny_checkpoints["sdxl"]), dtype="bfloat16"), config_root=tiny_checkpoints["root"])
    assert [prefix for prefix, _ in reads] == [
        "model.diffusion_model.", "first_stage_model.", "conditioner.embedders.0.transformer.",
        "conditioner.embedders.1."]
    assert all(dtypes == {torch.bfloat16} for _, dtypes in reads)
    assert model.info.dtype == "bfloat16" and model.unet.dtype == torch.bfloat16


def test_component_sizes_from_the_header(tiny_checkpoints):
    from sdstudio.engine.single_file import component_numels, inspect_checkpoint

    plan = inspect_checkpoint(tiny_checkpoints["sdxl"], tiny_checkpoints["root"])
    model = load_model(ModelRef(str(tiny_checkpoints["sdxl_folder"])))
    numels = component_numels(plan.checkpoint.shapes, "sdxl")
    assert numels == plan.numels
    assert numels["unet"] == sum(p.numel() for p in model.unet.parameters())
    assert numels["vae"] == sum(p.numel() for p in model.vae.parameters())


def test_out_of_memory_loading_a_checkpoint_says_what_helps(tiny_checkpoints, monkeypatch):
    from diffusers import UNet2DConditionModel

    from sdstudio.engine.memory import LoadOutOfMemory

    def no_memory(*args, **kwargs):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1000 bytes")

    monkeypatch.setattr(UNet2DConditionModel, "from_single_file", no_memory)
    with pytest.raises(LoadOutOfMemory, match=r"Out of memory while loading tiny-sd1\. It needs about .* in float32.*"
                       "What helps: close other programs; choose bfloat16"):
        load_model(ModelRef(str(tiny_checkpoints["sd1"]), dtype="float32"), config_root=tiny_checkpoints["root"])


def test_random_checkpoint_from_a_config_folder_loads(tiny_checkpoints, tmp_path):
    """The benchmark's full-size files are written this way; a tiny config proves the format."""
    from tools.ldm_checkpoint import full_size_shapes, write_random_checkpoint

    shapes = full_size_shapes(tiny_checkpoints["root"] / "sd15")
    path = write_random_checkpoint(shapes, tmp_path / "random.safetensors", "float16")
    model = load_model(ModelRef(str(path), dtype="float32"), config_root=tiny_checkpoints["root"])
    assert model.info.family == "sd1" and model.unet.dtype.is_floating_point
    assert {k: tuple(v.shape) for k, v in model.unet.state_dict().items()} == {
        k: tuple(v.shape) for k, v in load_model(ModelRef(str(tiny_checkpoints["sd1_folder"]))).unet.state_dict().items()}
