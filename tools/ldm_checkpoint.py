"""Write a diffusers SD1.x / SDXL pipeline as one checkpoint in the original CompVis/LDM key layout.

Tests use it to make tiny single-file checkpoints (and a config folder to read them with),
so the offline `.safetensors` path is checked without multi-GB downloads. The key names follow
the LDM/SGM model code (openaimodel UNet, Encoder/Decoder autoencoder, OpenCLIP text tower);
unlike diffusers' own hard-coded script this works for any number of blocks and layers.
"""

from __future__ import annotations

import shutil
from pathlib import Path

_RESNET = (("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"),
           ("conv2", "out_layers.3"), ("time_emb_proj", "emb_layers.1"),
           ("conv_shortcut", "skip_connection"))
_VAE_ATTN = (("group_norm.", "norm."), ("to_q.", "q."), ("to_k.", "k."), ("to_v.", "v."),
             ("to_out.0.", "proj_out."))


def _rename(key: str, pairs) -> str:
    for old, new in pairs:
        key = key.replace(old, new)
    return key


def unet_prefixes(config: dict) -> list[tuple[str, str]]:
    """(diffusers prefix, LDM prefix) pairs for a UNet2DConditionModel config."""
    levels = len(config["block_out_channels"])
    layers = config["layers_per_block"]
    down_attn = ["CrossAttn" in t for t in config["down_block_types"]]
    up_attn = ["CrossAttn" in t for t in config["up_block_types"]]
    pairs = [("time_embedding.linear_1.", "time_embed.0."), ("time_embedding.linear_2.", "time_embed.2."),
             ("add_embedding.linear_1.", "label_emb.0.0."), ("add_embedding.linear_2.", "label_emb.0.2."),
             ("conv_in.", "input_blocks.0.0."), ("conv_norm_out.", "out.0."), ("conv_out.", "out.2."),
             ("mid_block.resnets.0.", "middle_block.0."), ("mid_block.attentions.0.", "middle_block.1."),
             ("mid_block.resnets.1.", "middle_block.2.")]
    for i in range(levels):
        for j in range(layers):
            k = 1 + i * (layers + 1) + j
            pairs.append((f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{k}.0."))
            if down_attn[i]:
                pairs.append((f"down_blocks.{i}.attentions.{j}.", f"input_blocks.{k}.1."))
        if i < levels - 1:
            pairs.append((f"down_blocks.{i}.downsamplers.0.conv.", f"input_blocks.{(i + 1) * (layers + 1)}.0.op."))
        for j in range(layers + 1):
            k = i * (layers + 1) + j
            pairs.append((f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{k}.0."))
            if up_attn[i]:
                pairs.append((f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{k}.1."))
        if i < levels - 1:
            k = i * (layers + 1) + layers
            pairs.append((f"up_blocks.{i}.upsamplers.0.", f"output_blocks.{k}.{2 if up_attn[i] else 1}."))
    return pairs


def _convert_unet(state: dict, config: dict) -> dict:
    prefixes = unet_prefixes(config)
    out = {}
    for key, value in state.items():
        new = next((ldm + key[len(hf):] for hf, ldm in prefixes if key.startswith(hf)), None)
        if new is None:
            raise KeyError(f"no LDM name for UNet key {key}")
        if "resnets." in key or key.startswith("mid_block.resnets"):
            new = _rename(new, _RESNET)
        out["model.diffusion_model." + new] = value
    return out


def _convert_vae(state: dict, config: dict) -> dict:
    levels = len(config["block_out_channels"])
    layers = config["layers_per_block"]
    pairs = [("mid_block.resnets.0.", "mid.block_1."), ("mid_block.resnets.1.", "mid.block_2."),
             ("mid_block.attentions.0.", "mid.attn_1."), ("conv_norm_out.", "norm_out.")]
    for i in range(levels):
        for j in range(layers):
            pairs.append((f"encoder.down_blocks.{i}.resnets.{j}.", f"encoder.down.{i}.block.{j}."))
        for j in range(layers + 1):
            pairs.append((f"decoder.up_blocks.{i}.resnets.{j}.", f"decoder.up.{levels - 1 - i}.block.{j}."))
        pairs.append((f"encoder.down_blocks.{i}.downsamplers.0.", f"encoder.down.{i}.downsample."))
        pairs.append((f"decoder.up_blocks.{i}.upsamplers.0.", f"decoder.up.{levels - 1 - i}.upsample."))
    out = {}
    for key, value in state.items():
        new = _rename(key, pairs).replace("conv_shortcut", "nin_shortcut")
        if "attn_1." in new:
            new = _rename(new, _VAE_ATTN)
            if new.endswith("weight") and value.ndim == 2:
                value = value.reshape(*value.shape, 1, 1)  # LDM uses 1x1 convolutions there
        out["first_stage_model." + new] = value
    return out


def _convert_open_clip(state: dict) -> dict:
    """HF CLIPTextModelWithProjection -> OpenCLIP text tower (SDXL's second encoder)."""
    import torch

    out = {}
    for key, value in state.items():
        if key == "text_projection.weight":
            out["text_projection"] = value.t().contiguous()
            continue
        if ".self_attn." in key and any(f".{p}_proj." in key for p in "qkv"):
            if ".q_proj." not in key:
                continue  # q, k and v are fused below, at the q key
            parts = [state[key.replace(".q_proj.", f".{p}_proj.")] for p in "qkv"]
            kind = "weight" if key.endswith("weight") else "bias"
            stem = key.split(".self_attn.")[0].replace("text_model.encoder.layers.", "transformer.resblocks.")
            out[f"{stem}.attn.in_proj_{kind}"] = torch.cat(parts)
            continue
        new = _rename(key, (("text_model.encoder.layers.", "transformer.resblocks."),
                            ("text_model.embeddings.token_embedding.weight", "token_embedding.weight"),
                            ("text_model.embeddings.position_embedding.weight", "positional_embedding"),
                            ("text_model.final_layer_norm.", "ln_final."), (".self_attn.out_proj.", ".attn.out_proj."),
                            (".layer_norm1.", ".ln_1."), (".layer_norm2.", ".ln_2."),
                            (".mlp.fc1.", ".mlp.c_fc."), (".mlp.fc2.", ".mlp.c_proj.")))
        out[new] = value
    return out


def _clip_state(encoder) -> dict:
    """A CLIP text model's weights under the classic `text_model.` names (which LDM checkpoints
    keep), whether or not this transformers version nests the model under `text_model`."""
    out = {}
    for key, value in encoder.state_dict().items():
        if key.endswith("position_ids"):
            continue
        if not key.startswith(("text_model.", "text_projection.")):
            key = "text_model." + key
        out[key] = value
    return out


def ldm_state_dict(pipe, open_clip_text: bool = False) -> dict:
    """The pipeline's UNet, VAE and text encoder(s) under LDM (SD1.x) or SGM (SDXL) key names.

    `open_clip_text` writes an SD1-style pipeline's text encoder as SD 2.x does (OpenCLIP layout
    under cond_stage_model.model.), so a tiny model can stand in for an SD 2.x checkpoint.
    """
    state = _convert_unet(pipe.unet.state_dict(), dict(pipe.unet.config))
    state |= _convert_vae(pipe.vae.state_dict(), dict(pipe.vae.config))
    text = _clip_state(pipe.text_encoder)
    if open_clip_text:
        state |= {"cond_stage_model.model." + k: v for k, v in _convert_open_clip(text).items()}
    elif getattr(pipe, "text_encoder_2", None) is None:
        state |= {"cond_stage_model.transformer." + k: v for k, v in text.items()}
    else:
        state |= {"conditioner.embedders.0.transformer." + k: v for k, v in text.items()}
        second = _convert_open_clip(_clip_state(pipe.text_encoder_2))
        state |= {"conditioner.embedders.1.model." + k: v for k, v in second.items()}
    return {k: v.contiguous() for k, v in state.items()}


def write_checkpoint(model_folder: Path, checkpoint: Path, config_folder: Path | None = None,
                     open_clip_text: bool = False) -> Path:
    """Save the diffusers folder `model_folder` as an LDM-layout .safetensors `checkpoint`.

    With `config_folder`, also copy the folder's configs and tokenizers there (no weights): the
    local `config=` that `from_single_file` needs to read the checkpoint offline.
    """
    from diffusers import DiffusionPipeline
    from safetensors.torch import save_file

    pipe = DiffusionPipeline.from_pretrained(model_folder)
    state = ldm_state_dict(pipe, open_clip_text)
    if checkpoint.suffix == ".safetensors":
        save_file(state, str(checkpoint))
    else:
        import torch

        torch.save({"state_dict": state}, checkpoint)
    if config_folder is not None:
        shutil.copytree(model_folder, config_folder,
                        ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
    return checkpoint


def full_size_shapes(config_folder: Path, open_clip_text: bool = False) -> dict[str, tuple[int, ...]]:
    """LDM key -> shape of the full-size model a diffusers config folder describes, built on
    the meta device (no memory, no weights)."""
    from types import SimpleNamespace

    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    root = Path(config_folder)
    with init_empty_weights():
        parts = SimpleNamespace(
            unet=UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(root / "unet")),
            vae=AutoencoderKL.from_config(AutoencoderKL.load_config(root / "vae")),
            text_encoder=CLIPTextModel(CLIPTextConfig.from_pretrained(root / "text_encoder")),
            text_encoder_2=CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(root / "text_encoder_2"))
            if (root / "text_encoder_2").is_dir() else None,
        )
    return {key: tuple(value.shape) for key, value in ldm_state_dict(parts, open_clip_text).items()}


def write_random_checkpoint(shapes: dict[str, tuple[int, ...]], checkpoint: Path, dtype: str = "float32",
                            seed: int = 0) -> Path:
    """Write a .safetensors file of small random values (N(0, 0.02)) with these keys and shapes,
    one tensor at a time, so a multi-GB checkpoint is written with a few MB of memory."""
    import json
    import math

    import torch

    torch_dtype = getattr(torch, dtype)
    code = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}[dtype]
    itemsize = torch.empty(0, dtype=torch_dtype).element_size()
    header, offset = {}, 0
    for key, shape in shapes.items():
        size = itemsize * math.prod(shape)
        header[key] = {"dtype": code, "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the format aligns the data to 8 bytes
    generator = torch.Generator().manual_seed(seed)
    with open(checkpoint, "wb") as f:
        f.write(len(raw).to_bytes(8, "little") + raw)
        for shape in shapes.values():
            values = (torch.randn(shape, generator=generator) * 0.02).to(torch_dtype)
            f.write(values.reshape(-1).view(torch.uint8).numpy().tobytes())
    return Path(checkpoint)
