"""A VAE chosen for a model (`ModelRef.vae`): read from the VAE folder or a path, built like
the model's own VAE and swapped into its pipelines (see LoadedModel.use_vae).

As in A1111, a VAE file replaces the weights only: the architecture and the latent scaling
factor stay the model's, so a file whose tensors do not fit that architecture is refused
with one sentence (an SD 1.x VAE on SDXL fits, as in A1111: same shapes). Accepted:
- `.safetensors` in the original (LDM) key layout as A1111 keeps VAEs (`encoder.down.0…`,
  with or without the `first_stage_model.` prefix), or in diffusers' layout;
- `.pt`/`.ckpt`/`.bin` with the same keys, only with `allow_pickle` (weights-only loading);
- a diffusers VAE folder (config.json + weights), built from its own config.
The text names a file as A1111 does: `VAE: <file name>` and `VAE hash: <10 hex digits>`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdstudio.engine.events import UsedNetwork
from sdstudio.engine.families import ModelLoadError
from sdstudio.engine.networks import NetworkKind, NetworkNotFound, find_network, short_hash

if TYPE_CHECKING:
    import torch

# A1111's `VAE hash` is the first 10 hex digits of the file's sha256 (sd_vae.get_loaded_vae_hash),
# where `TI hashes` and `Lora hashes` keep 12.
VAE_HASH_DIGITS = 10
_DIFFUSERS_KEYS = ("encoder.down_blocks.", "decoder.up_blocks.")


def find_vae(name: str, folder: Path, allow_pickle: bool = False) -> Path:
    """The file or folder `name` means: an existing path as given, else a name in `folder`.
    Raises ModelLoadError naming the folder and the closest names."""
    path = Path(name).expanduser()
    if path.exists():
        return path
    if path.is_absolute() or "/" in name or "\\" in name:
        raise ModelLoadError(f"VAE not found: {path} does not exist.")
    try:
        return find_network(NetworkKind.VAE, name, folder, allow_pickle).path
    except NetworkNotFound as exc:
        raise ModelLoadError(str(exc)) from exc


def used_vae(path: Path) -> UsedNetwork:
    """How a result records the VAE file (a diffusers folder has no A1111 hash: "")."""
    digest = short_hash(path, NetworkKind.VAE)[:VAE_HASH_DIGITS] if path.is_file() else ""
    return UsedNetwork(NetworkKind.VAE.value, path.name, digest)


def load_vae(path: Path, like: Any, dtype: torch.dtype, allow_pickle: bool = False) -> Any:
    """An AutoencoderKL from `path`, shaped as `like` (the model's own VAE; a diffusers folder
    uses its own config), in `dtype`, on the CPU. Raises ModelLoadError saying why not."""
    from diffusers import AutoencoderKL

    from sdstudio.engine.devices import dtype_kwarg
    from sdstudio.engine.families import PICKLE_SUFFIXES, pickle_refusal

    if path.is_dir():
        try:
            vae = AutoencoderKL.from_pretrained(path, use_safetensors=not allow_pickle or None, **dtype_kwarg(dtype))
        except (OSError, ValueError, RuntimeError) as exc:
            raise ModelLoadError(f"The VAE folder {path.name} could not be loaded: {exc}") from exc
        if vae.config.latent_channels != like.config.latent_channels:
            raise ModelLoadError(
                f"The VAE {path.name} makes {vae.config.latent_channels}-channel latents; this model's UNet "
                f"works on {like.config.latent_channels}."
            )
        return vae
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES and not allow_pickle:
        raise pickle_refusal(f"The VAE {path.name}", suffix)
    if suffix != ".safetensors" and suffix not in PICKLE_SUFFIXES:
        raise ModelLoadError(f"{path.name} is not a VAE file: expected .safetensors (or a diffusers VAE folder).")
    state = _read_state(path, dtype)
    return _build(path.name, state, like)


def _read_state(path: Path, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    from sdstudio.engine.single_file import open_checkpoint

    try:
        return open_checkpoint(path).tensors("", dtype)
    except Exception as exc:  # a damaged header, a pickle with code in it, an unreadable file
        raise ModelLoadError(f"The VAE {path.name} cannot be read: {exc}") from exc


def _build(name: str, state: dict[str, torch.Tensor], like: Any) -> Any:
    """The model's VAE architecture holding `state`'s weights (converted from the LDM layout
    when it is in it); built on the meta device, so no second set of weights is allocated."""
    import torch
    from diffusers import AutoencoderKL
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    refusal = f"{name} cannot be used as this model's VAE"
    if not any(key.startswith(_DIFFUSERS_KEYS) for key in state):
        try:
            state = convert_ldm_vae_checkpoint(state, dict(like.config))
        except (KeyError, ValueError, IndexError, RuntimeError) as exc:
            raise ModelLoadError(f"{refusal}: it is not a VAE ({exc}).") from exc
    with torch.device("meta"):
        vae = AutoencoderKL.from_config(like.config)
    try:
        missing, _unexpected = vae.load_state_dict(state, strict=False, assign=True)
    except RuntimeError as exc:  # a tensor of another shape
        first = str(exc).split("\n\t", 2)[1] if "\n\t" in str(exc) else str(exc)
        raise ModelLoadError(f"{refusal}: its weights have other shapes ({first.strip()}).") from exc
    if missing:
        what = "it is not a VAE" if len(missing) == len(vae.state_dict()) else f"{len(missing)} weights are missing"
        raise ModelLoadError(f"{refusal}: {what} (e.g. {missing[0]}).")
    return vae.eval()
