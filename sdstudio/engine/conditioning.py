"""Prompt embeddings the way A1111 makes them, handed to the diffusers pipelines.

A prompt of any length is read in 75-token chunks (see `prompts.chunk_prompt`), each encoded
on its own as `start + tokens + end + padding` (77 tokens) and the chunks laid end to end; the
negative prompt is padded with empty chunks to the same count (and the prompt to the
negative's), since the UNet's cross-attention takes any length but both halves of CFG must
match. Each token's embedding is multiplied by its weight, then the chunk is rescaled so its
mean is what it was (A1111's mean-restoring rescale).

SD1.x/SD2.x use one text encoder's last layer (SD2 checkpoints in diffusers already end at the
penultimate layer); SDXL concatenates both encoders' penultimate layers and takes the pooled
embedding from the first chunk of encoder 2, as A1111 does. Clip skip counts A1111's way:
1 is the layer the model normally uses, 2 the one before it, and so on.

Each chunk is laid out as the pipeline's own `encode_prompt` lays out a prompt (the end token
right after the text, then the tokenizer's padding), so a plain prompt of up to 75 tokens gives
exactly the pipeline's own embeddings.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sdstudio.engine.prompts import CHUNK_LENGTH, Chunk, chunk_prompt

if TYPE_CHECKING:
    from sdstudio.engine.embeddings import PromptEmbeddings

# The smallest mean, relative to the mean magnitude, that the emphasis rescale divides by.
_MEAN_FLOOR = 1e-3


@dataclass(frozen=True)
class _Encoder:
    tokenizer: Any
    text_encoder: Any


def text_encoders(pipe: Any) -> list[_Encoder]:
    """The pipeline's (tokenizer, text encoder) pairs in order: SDXL's CLIP-L, then its OpenCLIP-G."""
    pairs = [(getattr(pipe, "tokenizer", None), getattr(pipe, "text_encoder", None)),
             (getattr(pipe, "tokenizer_2", None), getattr(pipe, "text_encoder_2", None))]
    return [_Encoder(tokenizer, encoder) for tokenizer, encoder in pairs if tokenizer is not None and encoder is not None]


def supports(pipe: Any) -> bool:
    """Whether the pipeline has CLIP text encoders this module knows how to drive."""
    return bool(text_encoders(pipe)) and "prompt_embeds" in _call_parameters(pipe)


def _call_parameters(pipe: Any) -> set[str]:
    import inspect

    return set(inspect.signature(pipe.__call__).parameters)


def prompt_embeddings(
    pipe: Any, prompt: str, negative_prompt: str, clip_skip: int = 1, embeddings: PromptEmbeddings | None = None
) -> dict[str, Any]:
    """The pipeline call arguments (`prompt_embeds`, `negative_prompt_embeds`, and for SDXL
    the pooled pair) for the prompt and negative prompt in A1111 syntax; the names of
    `embeddings` (textual inversion, see embeddings.py) stand for their vectors."""
    import torch

    sdxl = getattr(pipe, "text_encoder_2", None) is not None
    device = pipe._execution_device
    positive, negative, pooled = [], [], []
    with torch.no_grad():
        for index, encoder in enumerate(text_encoders(pipe)):
            chunks = [_chunks(encoder.tokenizer, text, embeddings) for text in (prompt, negative_prompt)]
            count = max(len(c) for c in chunks)
            vectors = embeddings.vectors(index) if embeddings else {}
            for side, these in zip((positive, negative), chunks, strict=True):
                these += [Chunk() for _ in range(count - len(these))]
                hidden, first_pooled = _encode(encoder, these, clip_skip, sdxl, device, vectors)
                side.append(hidden)
                if first_pooled is not None:
                    pooled.append(first_pooled)
    dtype = (pipe.text_encoder_2 if sdxl else text_encoders(pipe)[0].text_encoder).dtype
    kwargs = {
        "prompt_embeds": torch.cat(positive, dim=-1).to(dtype=dtype, device=device),
        "negative_prompt_embeds": torch.cat(negative, dim=-1).to(dtype=dtype, device=device),
    }
    if sdxl:
        kwargs["pooled_prompt_embeds"], kwargs["negative_pooled_prompt_embeds"] = (
            p.to(dtype=dtype, device=device) for p in pooled[-2:]
        )
    return kwargs


def _chunks(tokenizer: Any, text: str, embeddings: PromptEmbeddings | None) -> list[Chunk]:
    def tokenize(texts: Any) -> list[list[int]]:
        return tokenizer(list(texts), add_special_tokens=False, truncation=False).input_ids

    comma = tokenizer.convert_tokens_to_ids(",</w>")
    if embeddings is None:
        return chunk_prompt(text, tokenize, comma)
    matcher = embeddings.matcher(tokenize)
    return chunk_prompt(text, matcher.tokenize, comma, matcher.run_length)


def _encode(
    encoder: _Encoder, chunks: list[Chunk], clip_skip: int, sdxl: bool, device: Any, vectors: dict[int, Any]
) -> tuple[Any, Any]:
    """One prompt's chunks through one text encoder: the weighted hidden states laid end to
    end (1, 77 * chunks, width), and the pooled embedding of the first chunk when the encoder
    has a projection (SDXL's encoder 2), else None. Each chunk is encoded alone, as A1111 does,
    so a chunk's embedding never depends on how many others the prompt has."""
    import torch

    # A chunk met again (the empty chunks padding the shorter prompt) is encoded once.
    done: dict[tuple[tuple[int, ...], tuple[float, ...]], tuple[Any, Any]] = {}
    for chunk in chunks:
        key = (tuple(chunk.tokens), tuple(chunk.weights))
        if key not in done:
            done[key] = _encode_chunk(encoder, chunk, clip_skip, sdxl, device, vectors)
    encoded = [done[(tuple(c.tokens), tuple(c.weights))] for c in chunks]
    return torch.cat([hidden for hidden, _ in encoded], dim=1), encoded[0][1]


def _encode_chunk(
    encoder: _Encoder, chunk: Chunk, clip_skip: int, sdxl: bool, device: Any, vectors: dict[int, Any]
) -> tuple[Any, Any]:
    import torch

    tokenizer, model = encoder.tokenizer, encoder.text_encoder
    padding = CHUNK_LENGTH - len(chunk.tokens)
    ids = [tokenizer.bos_token_id, *chunk.tokens, tokenizer.eos_token_id] + [tokenizer.pad_token_id] * padding
    weights = [1.0, *chunk.weights, 1.0] + [1.0] * padding
    # SD1/SD2 pass the mask only where the encoder was trained with one (as encode_prompt does).
    mask = None
    if not sdxl and getattr(model.config, "use_attention_mask", False):
        mask = torch.tensor([[1] * (len(chunk.tokens) + 2) + [0] * padding], device=device)
    with _embedding_vectors(model, ids, vectors) as plain_ids:
        output = model(torch.tensor([plain_ids], device=device), attention_mask=mask,
                       output_hidden_states=sdxl or clip_skip > 1)
    if sdxl:
        hidden = output.hidden_states[-(clip_skip + 1)]
    elif clip_skip > 1:
        # transformers 5 puts the final norm on the model itself, older versions on text_model
        final_norm = getattr(model, "text_model", model).final_layer_norm
        hidden = final_norm(output.hidden_states[-clip_skip])
    else:
        hidden = output[0]
    pooled = output[0] if output[0].ndim == 2 else None
    if any(w != 1.0 for w in weights):
        hidden = _weighted(hidden, torch.tensor(weights, dtype=hidden.dtype, device=hidden.device))
    return hidden, pooled


@contextmanager
def _embedding_vectors(model: Any, ids: list[int], vectors: dict[int, Any]) -> Iterator[list[int]]:
    """The chunk's ids with each embedding placeholder made a plain token (the start token,
    never the end token the pooled output looks for), while the text encoder's token
    embedding layer returns the embedding's vector at those positions. A chunk without
    placeholders runs the encoder untouched."""
    positions = [i for i, token in enumerate(ids) if token in vectors]
    if not positions:
        yield ids
        return
    import torch

    rows = torch.stack([vectors[ids[i]] for i in positions])
    filler = ids[0]

    def put_vectors(_module: Any, _args: Any, output: Any) -> Any:
        output = output.clone()
        output[:, positions] = rows.to(output.device, output.dtype)
        return output

    # First among the layer's hooks: any other sees the vectors as the layer's output.
    handle = model.get_input_embeddings().register_forward_hook(put_vectors, prepend=True)
    try:
        yield [filler if token in vectors else token for token in ids]
    finally:
        handle.remove()


def _weighted(hidden: Any, weights: Any) -> Any:
    """A1111's emphasis: scale each token's embedding, then restore each chunk's mean so the
    weights shift attention between tokens rather than the overall strength."""
    before = hidden.mean()
    hidden = hidden * weights.reshape(1, -1, 1)
    after = hidden.mean()
    # A mean near zero (a final LayerNorm without bias, as in the tiny test models) makes the
    # ratio noise, or infinite: the weighted values then stand as they are.
    if before * after <= 0 or after.abs() < _MEAN_FLOOR * hidden.abs().mean():
        return hidden
    return hidden * (before / after)
