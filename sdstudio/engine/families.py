"""The model families the studio runs, and the vocabulary every loader shares.

A leaf module: `models.py` (diffusers folders) and `single_file.py` (checkpoints) both use it,
so they accept the same families and say the same words, and neither imports the other for
it. No torch at import.
"""

from __future__ import annotations

from sdstudio.engine.request import Family, Mode


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
