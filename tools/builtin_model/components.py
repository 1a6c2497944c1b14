"""Architecture of the built-in model: Stable Diffusion's parts, scaled down for 128x128 scenes.

VAE: downscale 8, 4 latent channels (as SD) -> 16x16x4 latents. UNet: cross-attention on the
text encoder's hidden states (as SD 1.x). Text encoder: a small CLIP text transformer over the
project's own word vocabulary.
"""

from __future__ import annotations

TEXT_HIDDEN = 64


def make_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 32, 32),
        layers_per_block=1,
        latent_channels=4,
        # One group: with one channel per group (8 groups over 8 channels) the last GroupNorm
        # erased each channel's mean, so a flat colour could not be decoded (loss stalled at 0.7).
        norm_num_groups=1,
        sample_size=128,
        # Flat scenes need no global attention; without it the VAE is purely convolutional,
        # so training on 64x64 crops carries over to 128x128 images exactly.
        mid_block_add_attention=False,
    )


def make_unet():
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        # Attention only at 8x8 and 4x4 (and the mid block): at 16x16 it cost most of the
        # CPU time per step, and the coarse levels already see the whole 128 px scene.
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(32, 64, 64),
        layers_per_block=1,
        cross_attention_dim=TEXT_HIDDEN,
        attention_head_dim=4,
        norm_num_groups=8,
    )


def make_text_encoder(vocab_size: int):
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(
        CLIPTextConfig(
            vocab_size=vocab_size,
            hidden_size=TEXT_HIDDEN,
            intermediate_size=4 * TEXT_HIDDEN,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            bos_token_id=vocab_size - 2,
            eos_token_id=vocab_size - 1,
            pad_token_id=vocab_size - 1,
        )
    )


def make_scheduler():
    """The SD 1.x training noise schedule; the app swaps in any sampler from this config."""
    from diffusers import EulerDiscreteScheduler

    return EulerDiscreteScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type="epsilon",
        timestep_spacing="leading",
        steps_offset=1,
    )
