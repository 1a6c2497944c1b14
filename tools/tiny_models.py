"""Tiny random-weight Stable Diffusion pipelines, built offline, for tests and benchmarks.

They follow diffusers' own `get_dummy_components` pattern but keep the real SD shapes that
matter to the app: a VAE that downscales by 8 with 4 latent channels, the real CLIP
tokenizer shipped in sdstudio/resources/, and (for SDXL) two text encoders and size conditioning.
"""

from __future__ import annotations

from pathlib import Path

from sdstudio.resources import config_root


def _tokenizer(subfolder: str = "tokenizer"):
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(config_root() / "sd15" / subfolder)


def _vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        block_out_channels=(8, 16, 16, 16),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        norm_num_groups=8,
        layers_per_block=1,
        sample_size=64,
    )


def _text_config(projection: bool = False):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=49407,
        hidden_size=32,
        intermediate_size=37,
        layer_norm_eps=1e-05,
        num_attention_heads=4,
        num_hidden_layers=2,
        vocab_size=49408,
        hidden_act="gelu",
        projection_dim=32 if projection else 512,
    )


def _scheduler():
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1
    )


def tiny_sd1_components(inpaint_unet: bool = False) -> dict:
    """Components of a tiny SD1.x pipeline (9-channel UNet when `inpaint_unet`)."""
    import torch
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=8,
        in_channels=9 if inpaint_unet else 4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=8,
    )
    torch.manual_seed(0)
    vae = _vae()
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(_text_config())
    return {
        "unet": unet,
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": _tokenizer(),
        "scheduler": _scheduler(),
        "safety_checker": None,
        "feature_extractor": None,
        "image_encoder": None,
    }


def tiny_sdxl_components() -> dict:
    """Components of a tiny SDXL pipeline: two text encoders and micro-conditioning."""
    import torch
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 1),
        projection_class_embeddings_input_dim=80,  # 6 * 8 time ids + 32 pooled text
        cross_attention_dim=64,
        norm_num_groups=8,
    )
    torch.manual_seed(0)
    vae = _vae()
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(_text_config(projection=True))
    text_encoder_2 = CLIPTextModelWithProjection(_text_config(projection=True))
    tokenizer = _tokenizer()
    return {
        "unet": unet,
        "vae": vae,
        "text_encoder": text_encoder,
        "text_encoder_2": text_encoder_2,
        "tokenizer": tokenizer,
        "tokenizer_2": tokenizer,
        "scheduler": _scheduler(),
        "image_encoder": None,
        "feature_extractor": None,
    }


def save_tiny_model(folder: Path, family: str = "sd1", inpaint_unet: bool = False) -> Path:
    """Write a tiny diffusers model folder ("sd1" or "sdxl") and return its path."""
    from diffusers import (
        StableDiffusionInpaintPipeline,
        StableDiffusionPipeline,
        StableDiffusionXLPipeline,
    )

    folder = Path(folder)
    if family == "sdxl":
        pipe = StableDiffusionXLPipeline(**tiny_sdxl_components())
    elif inpaint_unet:
        pipe = StableDiffusionInpaintPipeline(
            **tiny_sd1_components(inpaint_unet=True), requires_safety_checker=False
        )
    else:
        pipe = StableDiffusionPipeline(**tiny_sd1_components(), requires_safety_checker=False)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder
