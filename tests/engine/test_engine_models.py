"""load_model: sources, family detection, device/dtype, and one model shared by three modes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from sdstudio.engine import models
from sdstudio.engine.families import ModelLoadError, family_from_unet_config, pickle_refusal
from sdstudio.engine.model_folders import folder_family, folder_numels
from sdstudio.engine.models import CONFIG_ROOT, load_model
from sdstudio.engine.request import Mode, ModelRef

ROOT = Path(__file__).resolve().parents[2]
SHARED = ("unet", "vae", "text_encoder")


# ---- family detection (pure) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("folder", "expected"),
    [
        ("sd15", ("sd1", False)),
        ("sd15-inpaint", ("sd1", True)),
        ("sd21", ("sd2", False)),
        ("sd2-base", ("sd2", False)),
        ("sdxl", ("sdxl", False)),
        ("sdxl-inpaint", ("sdxl", True)),
    ],
)
def test_family_of_the_real_config_folders(folder, expected):
    assert folder_family(CONFIG_ROOT / folder) == expected


@pytest.mark.parametrize(
    ("config", "extra", "expected"),
    [
        ({"cross_attention_dim": 768}, {}, ("sd1", False)),
        ({"cross_attention_dim": 768, "in_channels": 9}, {}, ("sd1", True)),
        ({"cross_attention_dim": 1024}, {}, ("sd2", False)),
        ({"cross_attention_dim": 2048, "addition_embed_type": "text_time"}, {}, ("sdxl", False)),
        ({"cross_attention_dim": 32}, {}, ("sd1", False)),  # tiny test model
        ({"cross_attention_dim": 64}, {"has_text_encoder_2": True}, ("sdxl", False)),
        ({"cross_attention_dim": 64, "in_channels": 9}, {"pipeline_class": "StableDiffusionXLInpaintPipeline"},
         ("sdxl", True)),
    ],
)
def test_family_from_unet_config(config, extra, expected):
    assert family_from_unet_config(config, **extra) == expected


def test_family_refuses_other_unets():
    with pytest.raises(ValueError, match="5 input channels"):
        family_from_unet_config({"cross_attention_dim": 1024, "in_channels": 5})


def test_folders_and_checkpoints_accept_the_same_families():
    """One rule (families.variant): an SD 2.x inpainting UNet is refused from a folder with the
    same words as from a checkpoint."""
    from sdstudio.engine.single_file import checkpoint_family

    with pytest.raises(ValueError, match="SD 2.x inpainting models are not supported") as folder:
        family_from_unet_config({"cross_attention_dim": 1024, "in_channels": 9})
    shapes = {"model.diffusion_model.input_blocks.0.0.weight": (320, 9, 3, 3), "cond_stage_model.model.x": (1,)}
    with pytest.raises(ValueError) as checkpoint:
        checkpoint_family(shapes)
    assert str(folder.value) == str(checkpoint.value)


def test_models_and_schedulers_import_without_torch():
    code = ("import sys, sdstudio.engine.models, sdstudio.engine.schedulers, sdstudio.engine.devices, "
            "sdstudio.engine.single_file; print(sorted({'torch', 'diffusers'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


# ---- one model, three modes ---------------------------------------------------------------


@pytest.fixture(scope="module")
def sd1(tiny_sd1):
    return load_model(ModelRef(str(tiny_sd1)))


def _pointers(module):
    return [p.data_ptr() for p in module.parameters()]


def test_loads_a_folder_with_progress(tiny_sd1):
    seen = []
    model = load_model(ModelRef(str(tiny_sd1)), lambda message, fraction: seen.append((message, fraction)))
    info = model.info
    assert (info.family, info.inpaint_unet, info.device, info.dtype) == ("sd1", False, "cpu", "float32")
    assert info.name == tiny_sd1.name and info.source == str(tiny_sd1)
    assert seen[-1][1] == 1.0 and len(seen) >= 3
    assert model.base.safety_checker is None


def test_three_modes_share_every_weight(sd1):
    before = {name: _pointers(getattr(sd1.base, name)) for name in SHARED}
    pipes = {mode: sd1.pipeline(mode) for mode in Mode}
    assert [type(p).__name__ for p in pipes.values()] == [
        "StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline", "StableDiffusionInpaintPipeline"]
    for pipe in pipes.values():
        for name in SHARED:
            assert getattr(pipe, name) is getattr(sd1.base, name)
    assert {name: _pointers(getattr(sd1.base, name)) for name in SHARED} == before
    assert all(sd1.pipeline(mode) is pipe for mode, pipe in pipes.items())  # cached


def test_three_modes_generate(sd1):
    import torch

    init = Image.new("RGB", (64, 64), (200, 90, 40))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    common = {"prompt": "a fox", "num_inference_steps": 2, "output_type": "pil"}
    calls = {
        Mode.TXT2IMG: {"height": 64, "width": 64},
        Mode.IMG2IMG: {"image": init, "strength": 0.5},
        Mode.INPAINT: {"image": init, "mask_image": mask, "strength": 1.0, "height": 64, "width": 64},
    }
    for mode, kwargs in calls.items():
        assert sd1.stand_in_inputs(mode, 64, 64, init) == {}
        image = sd1.pipeline(mode)(**common, **kwargs, generator=torch.Generator().manual_seed(0)).images[0]
        assert image.size == (64, 64)


def test_from_pipe_keeps_the_loaded_dtype(tiny_sd1):
    """diffusers #12754: from_pipe casts shared components to float32 unless told the dtype."""
    import torch

    model = load_model(ModelRef(str(tiny_sd1), dtype="bfloat16"))
    assert model.dtype == torch.bfloat16 and model.info.dtype == "bfloat16"
    before = {name: _pointers(getattr(model.base, name)) for name in SHARED}
    for mode in Mode:
        pipe = model.pipeline(mode)
        assert all(getattr(pipe, name).dtype == torch.bfloat16 for name in SHARED)
    assert {name: _pointers(getattr(model.base, name)) for name in SHARED} == before


def test_sdxl_modes_share_both_text_encoders(tiny_sdxl):
    model = load_model(ModelRef(str(tiny_sdxl)))
    assert model.info.family == "sdxl"
    names = (*SHARED, "text_encoder_2")
    pipes = [model.pipeline(mode) for mode in Mode]
    assert [type(p).__name__ for p in pipes] == [
        "StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline", "StableDiffusionXLInpaintPipeline"]
    assert all(getattr(p, n) is getattr(model.base, n) for p in pipes for n in names)


def test_inpaint_unet_paints_every_mode(tiny_sd1_inpaint):
    import numpy as np
    import torch

    model = load_model(ModelRef(str(tiny_sd1_inpaint)))
    assert model.info.inpaint_unet and model.info.family == "sd1"
    pipes = {mode: model.pipeline(mode) for mode in Mode}
    assert len({id(p) for p in pipes.values()}) == 1
    assert type(pipes[Mode.TXT2IMG]).__name__ == "StableDiffusionInpaintPipeline"

    txt = model.stand_in_inputs(Mode.TXT2IMG, 64, 48)
    assert txt["strength"] == 1.0 and txt["image"].size == (64, 48)
    assert np.asarray(txt["mask_image"]).min() == 255
    init = Image.new("RGB", (64, 64), "white")
    img = model.stand_in_inputs(Mode.IMG2IMG, 64, 64, init)
    assert img["image"] is init and "strength" not in img
    assert model.stand_in_inputs(Mode.INPAINT, 64, 64, init) == {}
    with pytest.raises(ValueError, match="init image"):
        model.stand_in_inputs(Mode.IMG2IMG, 64, 64)

    out = pipes[Mode.TXT2IMG]("a fox", num_inference_steps=2, height=48, width=64,
                              generator=torch.Generator().manual_seed(0), **txt).images[0]
    assert out.size == (64, 48)


def test_scheduler_config_survives_a_scheduler_swap(sd1):
    from diffusers import DDIMScheduler

    original = sd1.base_scheduler_config
    sd1.pipeline(Mode.TXT2IMG).scheduler = DDIMScheduler.from_config(original)
    assert sd1.base_scheduler_config == original


# ---- errors a person can act on -----------------------------------------------------------


def test_missing_and_wrong_sources(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    cases = {
        str(tmp_path / "nowhere.safetensors"): "nowhere.safetensors does not exist",
        str(tmp_path / "nowhere"): "does not exist",
        "someone/not-a-cached-model": "not in the local Hugging Face cache and there is no network",
    }
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    cases[str(notes)] = "notes.txt is not a model file"
    pickle = tmp_path / "old.pt"
    pickle.write_bytes(b"\x80\x04")
    cases[str(pickle)] = "old.pt is a pickle checkpoint"
    plain = tmp_path / "plain-folder"
    plain.mkdir()
    cases[str(plain)] = "plain-folder is not a diffusers model folder"
    holder = tmp_path / "downloads"
    holder.mkdir()
    (holder / "dreamy.safetensors").write_bytes(b"")
    cases[str(holder)] = "choose the file itself, e.g. dreamy.safetensors"
    flux = tmp_path / "flux"
    flux.mkdir()
    (flux / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline"}))
    cases[str(flux)] = "flux is not a Stable Diffusion 1.x/2.x/XL model.*FluxPipeline"
    refiner = tmp_path / "refiner"
    shutil.copytree(CONFIG_ROOT / "sdxl", refiner)
    index = json.loads((refiner / "model_index.json").read_text())
    (refiner / "model_index.json").write_text(json.dumps(index | {"text_encoder": [None, None]}))
    cases[str(refiner)] = "refiner has no .*text encoder"
    for source, words in cases.items():
        with pytest.raises(ModelLoadError, match=words):
            load_model(ModelRef(source))


def test_folder_with_missing_weights(tmp_path):
    shutil.copytree(CONFIG_ROOT / "sd15", tmp_path / "configs-only")
    with pytest.raises(ModelLoadError, match="configs-only could not be loaded"):
        load_model(ModelRef(str(tmp_path / "configs-only")))


def test_builtin_model_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "builtin_model_path", lambda: tmp_path / "builtin")
    with pytest.raises(ModelLoadError, match="built-in model was not found at"):
        load_model(ModelRef())


def test_bad_device_or_dtype(tiny_sd1):
    import torch

    with pytest.raises(ModelLoadError, match="unknown dtype"):
        load_model(ModelRef(str(tiny_sd1), dtype="float8"))
    if not torch.cuda.is_available():
        with pytest.raises(ModelLoadError, match="no CUDA GPU"):
            load_model(ModelRef(str(tiny_sd1), device="cuda"))


def test_hub_id_from_the_local_cache(tiny_sd1, tmp_path, monkeypatch):
    """Offline, a hub id resolves to its snapshot in the Hugging Face cache."""
    from huggingface_hub import constants

    repo = tmp_path / "models--someone--tiny-sd"
    shutil.copytree(tiny_sd1, repo / "snapshots" / ("0" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    seen = []
    model = load_model(ModelRef("someone/tiny-sd"), lambda message, fraction: seen.append(message))
    assert model.info.family == "sd1" and model.info.source == "someone/tiny-sd"
    assert "Looking up someone/tiny-sd in the local cache" in seen
    assert "Reading someone/tiny-sd" in seen


@pytest.mark.parametrize(
    ("device", "cpu_bf16", "cuda_bf16", "weights", "expected"),
    [
        ("cuda", False, False, None, "float16"),
        ("cuda", False, True, 10**6, "bfloat16"),
        ("mps", True, False, 10**9, "float32"),
        ("cpu", True, False, 10**9, "bfloat16"),
        ("cpu", True, False, 10**6, "float32"),  # small layers run slower in bf16
        ("cpu", True, False, None, "float32"),
        ("cpu", False, False, 10**9, "float32"),
    ],
)
def test_default_dtype_per_device(device, cpu_bf16, cuda_bf16, weights, expected):
    from sdstudio.engine.devices import default_dtype_name

    assert default_dtype_name(device, cpu_bf16=cpu_bf16, cuda_bf16=cuda_bf16, weights=weights) == expected


def test_cpu_bf16_from_its_flags():
    from sdstudio.engine.devices import cpu_runs_bf16_well

    assert cpu_runs_bf16_well(frozenset({"avx2", "avx512f", "amx_bf16"}))
    assert cpu_runs_bf16_well(frozenset({"avx512_bf16"}))
    assert cpu_runs_bf16_well(frozenset({"fp", "asimd", "bf16"}))  # aarch64 FEAT_BF16
    assert not cpu_runs_bf16_well(frozenset({"avx2", "avx512f", "fma"}))


def test_requested_dtypes_and_cpu_float16_refused(tiny_sd1):
    import torch

    from sdstudio.engine.devices import pick_dtype

    assert pick_dtype(torch.device("cuda"), "fp32") == torch.float32
    assert pick_dtype(torch.device("cpu"), "bf16") == torch.bfloat16
    assert pick_dtype(torch.device("cpu")) == torch.float32  # size unknown
    with pytest.raises(ValueError, match="float16 is not usable on the CPU"):
        pick_dtype(torch.device("cpu"), "half")
    with pytest.raises(ModelLoadError, match="Cannot load .*float16 is not usable on the CPU.*bfloat16 or float32"):
        load_model(ModelRef(str(tiny_sd1), device="cpu", dtype="float16"))


def test_automatic_cpu_precision_follows_the_model_size(tiny_sd1, monkeypatch):
    """On a bf16 CPU a big model loads in bfloat16, a small one stays in float32; the
    threshold is lowered here so that the tiny model counts as big."""
    from sdstudio.engine import devices

    monkeypatch.setattr(devices, "_cpu_flags", lambda: frozenset({"avx512f", "amx_bf16"}))
    assert load_model(ModelRef(str(tiny_sd1), device="cpu")).info.dtype == "float32"
    monkeypatch.setattr(devices, "CPU_BF16_MIN_WEIGHTS", 1000)
    model = load_model(ModelRef(str(tiny_sd1), device="cpu"))
    assert model.info.dtype == "bfloat16" and model.unet.dtype == model.dtype
    monkeypatch.setattr(devices, "_cpu_flags", lambda: frozenset({"avx2"}))
    assert load_model(ModelRef(str(tiny_sd1), device="cpu")).info.dtype == "float32"


def test_the_loaded_precision_is_the_one_reported(tiny_sd1):
    model = load_model(ModelRef(str(tiny_sd1), device="cpu", dtype="bfloat16"))
    assert model.info.dtype == "bfloat16" and model.unet.dtype == model.vae.dtype == model.dtype
    assert str(model.pipeline(Mode.IMG2IMG).unet.dtype) == "torch.bfloat16"


def test_out_of_memory_while_loading_says_what_helps(tiny_sd1, monkeypatch):
    """The runner shows str(exc) of a LoadOutOfMemory: it must name the remedies and figures."""
    import torch
    from diffusers import StableDiffusionPipeline

    from sdstudio.engine import memory
    from sdstudio.engine.devices import is_out_of_memory
    from sdstudio.engine.memory import LoadOutOfMemory

    def no_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(StableDiffusionPipeline, "from_pretrained", no_memory)
    monkeypatch.setattr(memory, "free_ram_bytes", lambda: 3 * 10**9)
    with pytest.raises(LoadOutOfMemory) as caught:
        load_model(ModelRef(str(tiny_sd1), device="cpu", dtype="float32"))
    message = str(caught.value)
    assert is_out_of_memory(caught.value)
    assert message.startswith(f"Out of memory while loading {tiny_sd1.name}.")
    assert "It needs about" in message and "in float32; 3.0 GB of RAM was free" in message
    assert "close other programs" in message and "choose bfloat16" in message


def test_warns_before_loading_a_model_that_will_not_fit(tiny_sd1, monkeypatch):
    from sdstudio.engine import memory

    monkeypatch.setattr(memory, "free_ram_bytes", lambda: 1000)
    seen = []
    model = load_model(ModelRef(str(tiny_sd1), device="cpu", dtype="float32"), lambda m, f: seen.append((m, f)))
    (warning,) = model.warnings
    assert f"{tiny_sd1.name} needs about" in warning and "of RAM in float32 and 0 MB is free" in warning
    assert "choose bfloat16 (half the memory)" in warning
    assert (warning, None) in seen

    monkeypatch.setattr(memory, "free_ram_bytes", lambda: 10**12)
    assert load_model(ModelRef(str(tiny_sd1), device="cpu", dtype="float32")).warnings == ()


def test_folder_weight_count_from_headers(tiny_sdxl):
    model = load_model(ModelRef(str(tiny_sdxl), device="cpu", dtype="float32"))
    counted = folder_numels(tiny_sdxl)
    assert set(counted) == {"unet", "vae", "text_encoder", "text_encoder_2"}
    for name, n in counted.items():
        assert n == sum(p.numel() for p in getattr(model.base, name).state_dict().values()), name


def test_memory_savers_follow_the_settings(tiny_sd1):
    from diffusers.models.attention_processor import SlicedAttnProcessor

    from sdstudio.engine.memory import MemoryOptions

    model = load_model(ModelRef(str(tiny_sd1), device="cpu", dtype="float32"),
                       memory=MemoryOptions(vae_tiling=True, attention_slicing=True))
    plan = model.apply_job_memory(64, 64)
    assert plan.vae_tiling and plan.attention_slicing and model.vae.use_tiling
    assert all(isinstance(p, SlicedAttnProcessor) for p in model.unet.attn_processors.values())
    assert model.pipeline(Mode.IMG2IMG).vae.use_tiling  # one VAE and UNet for every mode

    model.memory = MemoryOptions()  # automatic: a 64x64 image needs neither on a CPU
    assert model.apply_job_memory(64, 64) == type(plan)(vae_tiling=False, attention_slicing=False)
    assert not model.vae.use_tiling
    assert not any(isinstance(p, SlicedAttnProcessor) for p in model.unet.attn_processors.values())


def test_model_offload_hooks_every_mode_pipeline(tiny_sd1):
    """Offload needs a GPU to save anything, but accelerate's hooks run on the CPU too: each
    mode's pipeline gets its own hook list, and generating through it still works."""
    import torch

    model = load_model(ModelRef(str(tiny_sd1), device="cpu", dtype="float32"))
    models._place(model.base, model.device, "model", "tiny")
    model.offload = "model"
    img2img = model.pipeline(Mode.IMG2IMG)
    assert img2img is not model.base and len(img2img._all_hooks) == len(model.base._all_hooks) > 0
    image = Image.new("RGB", (64, 64), (120, 90, 60))
    out = img2img("a fox", image=image, strength=0.5, num_inference_steps=2, output_type="np",
                  generator=torch.Generator().manual_seed(0)).images
    assert out.shape == (1, 64, 64, 3)


# ---- bad folders: one clear sentence, never a traceback (issue 9) -------------------------


def _copy(folder, tmp_path, name):
    return shutil.copytree(folder, tmp_path / name)


def test_in_channels_as_text_says_what_is_wrong(tiny_sd1, tmp_path):
    copy = _copy(tiny_sd1, tmp_path, "text-channels")
    config = json.loads((copy / "unet" / "config.json").read_text())
    (copy / "unet" / "config.json").write_text(json.dumps(config | {"in_channels": "4"}))
    with pytest.raises(ModelLoadError, match="in_channels as '4', which is not a whole number"):
        load_model(ModelRef(str(copy)))


@pytest.mark.parametrize("value", [5, "unet", [1, 2], {"a": 1}, ["diffusers"]])
def test_model_index_with_a_non_component(tiny_sd1, tmp_path, value):
    copy = _copy(tiny_sd1, tmp_path, "bad-index")
    index = json.loads((copy / "model_index.json").read_text())
    (copy / "model_index.json").write_text(json.dumps(index | {"unet": value}))
    with pytest.raises(ModelLoadError, match=r'model_index.json is damaged: "unet" should name a library and a class'):
        load_model(ModelRef(str(copy)))


def test_model_index_that_is_not_an_object(tiny_sd1, tmp_path):
    copy = _copy(tiny_sd1, tmp_path, "list-index")
    (copy / "model_index.json").write_text("[1, 2]")
    with pytest.raises(ModelLoadError, match="model_index.json is damaged: it holds list"):
        load_model(ModelRef(str(copy)))


def test_pickle_weights_in_a_folder_need_the_same_opt_in(tiny_sd1, tmp_path):
    from diffusers import UNet2DConditionModel

    copy = _copy(tiny_sd1, tmp_path, "pickled")
    unet = UNet2DConditionModel.from_pretrained(copy / "unet")
    for file in (copy / "unet").glob("*.safetensors"):
        file.unlink()
    unet.save_pretrained(copy / "unet", safe_serialization=False)
    with pytest.raises(ModelLoadError) as folder_error:
        load_model(ModelRef(str(copy)))
    assert str(folder_error.value) == str(pickle_refusal("pickled/unet/diffusion_pytorch_model.bin", ".bin"))
    assert "can run arbitrary code" in str(folder_error.value)
    assert load_model(ModelRef(str(copy), allow_pickle=True)).info.family == "sd1"


def test_a_pickle_beside_an_fp16_safetensors_is_never_unpickled(tiny_sd1, tmp_path, monkeypatch):
    """diffusers would read diffusion_pytorch_model.bin before a .fp16.safetensors variant."""
    import torch
    from diffusers import UNet2DConditionModel

    copy = _copy(tiny_sd1, tmp_path, "mixed")
    unet = UNet2DConditionModel.from_pretrained(copy / "unet")
    (copy / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    unet.save_pretrained(copy / "unet", safe_serialization=False)
    unet.save_pretrained(copy / "unet", variant="fp16")

    unpickled, original = [], torch.load
    monkeypatch.setattr(torch, "load", lambda *args, **kwargs: unpickled.append(args) or original(*args, **kwargs))
    with pytest.raises(ModelLoadError, match="mixed could not be loaded"):
        load_model(ModelRef(str(copy)))
    assert unpickled == []


def test_folder_saved_as_fp16_variant(tmp_path):
    from diffusers import StableDiffusionPipeline

    from tools.tiny_models import tiny_sd1_components

    folder = tmp_path / "fp16-only"
    pipe = StableDiffusionPipeline(**tiny_sd1_components(), requires_safety_checker=False)
    pipe.save_pretrained(folder, variant="fp16")
    assert not (folder / "unet" / "diffusion_pytorch_model.safetensors").exists()
    assert load_model(ModelRef(str(folder))).info.family == "sd1"


def test_native_size_is_the_unet_sample_size_times_the_vae_scale(tiny_sd1, tmp_path):
    assert load_model(ModelRef(str(tiny_sd1))).info.native_size == 8 * 8
    unet_config = json.loads((tiny_sd1 / "unet" / "config.json").read_text())
    copy = shutil.copytree(tiny_sd1, tmp_path / "bigger")
    (copy / "unet" / "config.json").write_text(json.dumps({**unet_config, "sample_size": 16}))
    assert load_model(ModelRef(str(copy))).info.native_size == 16 * 8
