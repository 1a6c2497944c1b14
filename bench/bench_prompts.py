"""Cost of A1111-style prompt encoding against one denoising step, at SD1.5's real sizes.

Prints the time to encode (prompt and negative, as a job does):
- a plain 10-token prompt (one 77-token chunk), and
- a 300-token prompt with weights (four chunks, each weighted and mean-restored),
against one UNet step (CFG batch of 2, 512x512) with 77 and with 308 context tokens, since a
longer prompt also lengthens every step's cross-attention. Goal: the weighted 300-token
encoding costs under one step (it runs once per job, the step 20-50 times).

Textual-inversion embeddings (engine/embeddings.py), in a folder of EMBEDDING_FILES files of
8 SD1.5 vectors: a job's look-up of the one its prompt names, first (read and hashed) and
cached, and the plain prompt encoded with that embedding in it. Goal: the cached look-up
under 5% of a step, the first one under one step.

Real-size SD1.5 text encoder and UNet with random weights (the shipped configs, no download):
timing does not depend on the weights. Run by `make bench`; about a minute on a laptop CPU.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REPEATS = 3  # encodings; the (slow) steps are timed once after a warm-up
EMBEDDING_FILES = 500
PLAIN = "a lighthouse on a cliff at dusk, oil painting"
# 50 weighted phrases of six tokens: 300 tokens, five chunks after comma backtracking
WEIGHTED = ", ".join(f"(detail {i % 10} of the scene:1.{i % 9 + 1})" for i in range(50))


class _Pipe:
    """What conditioning.prompt_embeddings reads from a pipeline: an SD1 text encoder."""

    def __init__(self, tokenizer, text_encoder) -> None:
        self.tokenizer, self.text_encoder = tokenizer, text_encoder
        self._execution_device = text_encoder.device


def _median_s(run, repeats: int = REPEATS) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    import torch
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from sdstudio.engine import embeddings
    from sdstudio.engine.conditioning import prompt_embeddings
    from sdstudio.engine.prompts import chunk_prompt
    from sdstudio.resources import config_root

    config = config_root() / "sd15"
    tokenizer = CLIPTokenizer.from_pretrained(config / "tokenizer")
    text_encoder = CLIPTextModel(CLIPTextConfig.from_pretrained(config / "text_encoder")).eval()
    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(config / "unet")).eval()
    pipe = _Pipe(tokenizer, text_encoder)
    comma = tokenizer.convert_tokens_to_ids(",</w>")
    chunks = chunk_prompt(WEIGHTED, lambda t: tokenizer(list(t), add_special_tokens=False).input_ids, comma)

    folder = Path(tempfile.mkdtemp(prefix="bench-embeddings-"))
    for i in range(EMBEDDING_FILES):
        save_file({"emb_params": torch.randn(8, 768)}, folder / f"style-{i:03d}.safetensors")
    texts = (PLAIN + ", style-123", "blurry")
    start = time.perf_counter()
    found = embeddings.prompt_embeddings(folder, texts, [768])
    first_lookup = time.perf_counter() - start
    cached_lookup = _median_s(lambda: embeddings.prompt_embeddings(folder, texts, [768]))

    with torch.inference_mode():
        with_embedding = _median_s(lambda: prompt_embeddings(pipe, *texts, embeddings=found))
        plain = _median_s(lambda: prompt_embeddings(pipe, PLAIN, "blurry"))
        weighted = _median_s(lambda: prompt_embeddings(pipe, WEIGHTED, "blurry"))
        latents = torch.randn(2, 4, 64, 64)
        steps = {}
        for tokens in (77, 77 * len(chunks)):
            context = torch.randn(2, tokens, 768)
            steps[tokens] = _median_s(lambda c=context: unet(latents, 500, encoder_hidden_states=c), repeats=1)

    print(f"SD1.5 sizes, random weights, CPU ({torch.get_num_threads()} threads), median of {REPEATS}")
    print(f"  encode plain prompt (1 chunk):            {plain * 1000:8.1f} ms")
    print(f"  encode weighted prompt ({sum(len(c.tokens) for c in chunks)} tokens, {len(chunks)} chunks): "
          f"{weighted * 1000:8.1f} ms")
    for tokens, seconds in steps.items():
        print(f"  one step, 512x512, CFG, {tokens:3d} context tokens:  {seconds * 1000:8.1f} ms")
    ratio = weighted / steps[77]
    print(f"  weighted encoding / one plain step: {ratio:.2f} (goal < 1)")
    print(f"  embedding look-up in {EMBEDDING_FILES} files, first (read + hash): {first_lookup * 1000:8.1f} ms "
          f"= {first_lookup / steps[77]:.2f} step (goal < 1)")
    print(f"  embedding look-up, cached:                 {cached_lookup * 1000:8.1f} ms "
          f"= {cached_lookup / steps[77]:.3f} step (goal < 0.05)")
    print(f"  encode plain prompt with an 8-vector embedding: {with_embedding * 1000:8.1f} ms")
    shutil.rmtree(folder)


if __name__ == "__main__":
    main()
