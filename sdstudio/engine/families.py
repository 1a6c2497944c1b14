"""The model families the studio runs, and the vocabulary every loader shares.

A leaf module: `model_folders.py` (diffusers folders), `single_file.py` (checkpoints), VAE
and add-on files all use it, so they accept the same families and refuse pickles in the same
words, and none imports another for it. No torch at import.
"""

from __future__ import annotations

from typing import Any

from sdstudio.engine.request import Family, Mode

# Weight files read by unpickling, which can run arbitrary code: each loader refuses them
# without the person's opt-in (`allow_pickle`), in the same words.
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")


class ModelLoadError(Exception):
    """A model could not be loaded; str(e) is a message a person understands."""


def variant(family: Family, in_channels: object) -> tuple[Family, bool]:
    """(family, inpaint UNet) for a UNet of `family` taking `in_channels`; ValueError saying
    why the studio cannot run it. The one rule for folders and checkpoints alike."""
    if type(in_channels) is not int:
        raise ValueError(f"its UNet config gives in_channels as {in_channels!r}, which is not a whole number")
    if in_channels not in (4, 9):
        raise ValueError(
            f"its UNet takes {in_channels} input channels; only regular (4) and inpainting (9) "
            "Stable Diffusion UNets are supported (not depth, upscaler or instruct-pix2pix models)"
        )
    inpaint = in_channels == 9
    if family is Family.SD2 and inpaint:
        # No public SD 2.x inpainting config ships with the app, so a checkpoint could not be
        # built; a folder is refused too, so that both say the same.
        raise ValueError("SD 2.x inpainting models are not supported; use an SD 1.5 or SDXL inpainting model")
    return family, inpaint


def pipeline_classes(family: str) -> dict[Mode, type]:
    """The diffusers pipeline class of each mode for a family."""
    import diffusers

    if family == Family.SDXL:
        names = ("StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline",
                 "StableDiffusionXLInpaintPipeline")
    else:
        names = ("StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline",
                 "StableDiffusionInpaintPipeline")
    return {mode: getattr(diffusers, name) for mode, name in zip(Mode, names, strict=True)}


def family_from_unet_config(
    unet_config: dict[str, Any], *, has_text_encoder_2: bool = False, pipeline_class: str = ""
) -> tuple[str, bool]:
    """("sd1" | "sd2" | "sdxl", inpaint_unet) from a diffusers UNet config and the folder's shape.

    Real models are told apart by the text-conditioning width (768 SD1, 1024 SD2) and SDXL's
    size conditioning (`addition_embed_type` "text_time"). Small test models have other widths,
    so a second text encoder or an XL pipeline class also means SDXL; anything else is SD1.
    Raises ValueError for UNets that are not text-to-image SD UNets (depth, upscaler, ...).
    """
    in_channels = unet_config.get("in_channels", 4)
    if unet_config.get("addition_embed_type") == "text_time" or has_text_encoder_2 or "XL" in pipeline_class:
        return variant(Family.SDXL, in_channels)
    if unet_config.get("cross_attention_dim") == 1024:
        return variant(Family.SD2, in_channels)
    return variant(Family.SD1, in_channels)


def pickle_refusal(shown: str, suffix: str) -> ModelLoadError:
    """The one refusal of a pickle weight file loaded without `allow_pickle`."""
    return ModelLoadError(
        f"{shown} is a pickle checkpoint ({suffix}), which can run arbitrary code when "
        "loaded. Use a .safetensors version of the model, or allow pickle files if you trust "
        "where it came from."
    )
