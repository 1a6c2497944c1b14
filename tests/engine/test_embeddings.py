"""Textual-inversion embeddings made in code, on the tiny SD1 and SDXL pipelines: the vectors
land exactly at the name's token positions (and nowhere else), prompts without a name encode
bitwise as before, SDXL takes clip_l/clip_g per encoder, the wrong family and pickles without
the opt-in are refused, and a result names what it used in A1111's `TI hashes`."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from safetensors.torch import save_file  # noqa: E402

from sdstudio.engine.clip_tokenizer import prompt_token_counts  # noqa: E402
from sdstudio.engine.conditioning import prompt_embeddings  # noqa: E402
from sdstudio.engine.embeddings import (  # noqa: E402
    EmbeddingError,
    TokenMatcher,
    vector_counts,
)
from sdstudio.engine.embeddings import prompt_embeddings as find_embeddings  # noqa: E402
from sdstudio.engine.networks import NetworkKind, short_hash  # noqa: E402

WIDTH = 32  # the tiny text encoders' width


@pytest.fixture(scope="module")
def pipes(tiny_sd1, tiny_sdxl):
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    return {"sd1": StableDiffusionPipeline.from_pretrained(tiny_sd1),
            "sdxl": StableDiffusionXLPipeline.from_pretrained(tiny_sdxl)}


def vectors(count: int, seed: int, width: int = WIDTH) -> torch.Tensor:
    return torch.randn(count, width, generator=torch.Generator().manual_seed(seed))


def ids(pipe, text: str) -> list[int]:
    return pipe.tokenizer(text, add_special_tokens=False).input_ids


class TokenInputs:
    """Records what each text encoder's token-embedding layer hands on (after the embedding
    vectors were put in), chunk by chunk."""

    def __init__(self, pipe) -> None:
        self.seen: dict[int, list[torch.Tensor]] = {}
        encoders = [pipe.text_encoder] + ([pipe.text_encoder_2] if getattr(pipe, "text_encoder_2", None) else [])
        self._handles = [
            encoder.get_input_embeddings().register_forward_hook(self._recorder(i))
            for i, encoder in enumerate(encoders)
        ]

    def _recorder(self, index: int):
        def record(_module, _args, output):
            self.seen.setdefault(index, []).append(output[0].detach().clone())
        return record

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()


def encode(pipe, prompt: str, negative: str = "", folder=None, record: bool = False):
    embeddings = find_embeddings(folder, (prompt, negative), _widths(pipe)) if folder else None
    recorder = TokenInputs(pipe) if record else None
    try:
        out = prompt_embeddings(pipe, prompt, negative, embeddings=embeddings)
    finally:
        if recorder:
            recorder.close()
    return (out, embeddings, recorder) if record else out


def _widths(pipe) -> list[int]:
    encoders = [pipe.text_encoder] + ([pipe.text_encoder_2] if getattr(pipe, "text_encoder_2", None) else [])
    return [e.get_input_embeddings().embedding_dim for e in encoders]


def test_an_embedding_changes_the_conditioning_only_at_its_token_positions(pipes, tmp_path):
    pipe = pipes["sd1"]
    emb = vectors(1, 0)
    save_file({"emb_params": emb}, tmp_path / "kitten.safetensors")
    prompt = "a photo of a kitten on a red sofa"
    plain, _, recorder_plain = encode(pipe, prompt, "blurry", record=True)
    mine, embeddings, recorder = encode(pipe, prompt, "blurry", tmp_path, record=True)

    position = 1 + ids(pipe, prompt).index(ids(pipe, "kitten")[0])  # after the start token
    before, after = recorder_plain.seen[0][0], recorder.seen[0][0]
    changed = (before != after).any(dim=-1).nonzero().flatten().tolist()
    assert changed == [position]
    assert torch.equal(after[position], emb[0])
    # The text encoder is causal: what comes before the name is untouched, what follows sees it.
    hidden, own = mine["prompt_embeds"][0], plain["prompt_embeds"][0]
    assert torch.equal(hidden[:position], own[:position])
    assert not torch.equal(hidden[position:], own[position:])
    # The negative prompt does not name it: bitwise as before.
    assert torch.equal(mine["negative_prompt_embeds"], plain["negative_prompt_embeds"])
    assert [e.name for e in embeddings.used] == ["kitten"]


def test_a_prompt_without_the_name_encodes_bitwise_as_before(pipes, tmp_path):
    pipe = pipes["sd1"]
    save_file({"emb_params": vectors(2, 1)}, tmp_path / "kitten.safetensors")
    prompt = "a photo of a puppy, (oil painting:1.2)"
    assert find_embeddings(tmp_path, (prompt, "blurry"), _widths(pipe)) is None
    # Named in the text but spelt into other tokens ("kittens"): read, then not used.
    embeddings = find_embeddings(tmp_path, ("two kittens", ""), _widths(pipe))
    with_file = prompt_embeddings(pipe, "two kittens", "", embeddings=embeddings)
    without = prompt_embeddings(pipe, "two kittens", "")
    assert embeddings.used == []
    for name in without:
        assert torch.equal(with_file[name], without[name]), name


def test_a_multi_vector_embedding_takes_as_many_positions_and_counts_toward_the_chunk(pipes, tmp_path):
    pipe = pipes["sd1"]
    emb = vectors(5, 2)
    save_file({"emb_params": emb}, tmp_path / "my-style.safetensors")
    prompt = "castle, my-style, dusk"
    _, _, recorder = encode(pipe, prompt, "", tmp_path, record=True)
    first = 1 + len(ids(pipe, "castle,"))
    assert torch.equal(recorder.seen[0][0][first : first + 5], emb)
    counts = vector_counts(tmp_path, (prompt,))
    assert counts == {"my-style": 5}
    plain_count = prompt_token_counts(prompt)[0]
    assert prompt_token_counts(prompt, counts) == [plain_count - len(ids(pipe, "my-style")) + 5]
    # 15 mentions of 5 vectors plus commas pass one 75-token chunk: the prompt grows a chunk.
    long = ", ".join(["my-style"] * 15)
    assert len(prompt_token_counts(long, counts)) == 2
    out = encode(pipe, long, "", tmp_path)
    assert out["prompt_embeds"].shape[1] == 2 * 77 == out["negative_prompt_embeds"].shape[1]


def test_an_embedding_that_does_not_fit_moves_whole_to_the_next_chunk(pipes, tmp_path):
    pipe = pipes["sd1"]
    emb = vectors(10, 14)
    save_file({"emb_params": emb}, tmp_path / "tenvec.safetensors")
    words = " ".join(["apple"] * 70)  # 70 tokens, no comma to fall back to
    counts = vector_counts(tmp_path, (words + " tenvec",))
    assert prompt_token_counts(words + " tenvec", counts) == [70, 10]  # as A1111: not 75 + 5
    _, _, recorder = encode(pipe, words + " tenvec", "", tmp_path, record=True)
    assert torch.equal(recorder.seen[0][1][1:11], emb)  # the second chunk, after its start token
    save_file({"emb_params": vectors(76, 15)}, tmp_path / "huge.safetensors")
    with pytest.raises(EmbeddingError, match="76 vectors, more than the 75"):
        find_embeddings(tmp_path, ("huge",), _widths(pipe))


def test_token_matching_prefers_the_longest_name():
    tokenize = lambda texts: [[ord(c) for c in text.replace(" ", "")] for text in texts]  # noqa: E731
    matcher = TokenMatcher({"ab": 1, "abc": 2}, tokenize)
    first = matcher.first_id
    assert matcher.tokenize(["xabcab"]) == [[ord("x"), first["abc"], first["abc"] + 1, first["ab"]]]
    assert matcher.used == ["abc", "ab"]


def test_sdxl_takes_clip_l_for_encoder_1_and_clip_g_for_encoder_2(pipes, tmp_path):
    pipe = pipes["sdxl"]
    clip_l, clip_g = vectors(2, 3), vectors(2, 4)
    save_file({"clip_l": clip_l, "clip_g": clip_g}, tmp_path / "xlstyle.safetensors")
    prompt = "a xlstyle house"
    plain = encode(pipe, prompt)
    mine, embeddings, recorder = encode(pipe, prompt, "", tmp_path, record=True)
    first = 1 + len(ids(pipe, "a"))
    assert torch.equal(recorder.seen[0][0][first : first + 2], clip_l)
    assert torch.equal(recorder.seen[1][0][first : first + 2], clip_g)
    assert not torch.equal(mine["prompt_embeds"], plain["prompt_embeds"])
    assert not torch.equal(mine["pooled_prompt_embeds"], plain["pooled_prompt_embeds"])
    assert torch.equal(mine["negative_pooled_prompt_embeds"], plain["negative_pooled_prompt_embeds"])
    assert [e.name for e in embeddings.used] == ["xlstyle"]


def test_an_embedding_for_another_family_is_refused_in_words(pipes, tmp_path):
    save_file({"emb_params": vectors(1, 5)}, tmp_path / "sd1thing.safetensors")
    with pytest.raises(EmbeddingError, match=r"sd1thing is an SD 1.x/2.x embedding; this model is SDXL"):
        find_embeddings(tmp_path, ("a sd1thing",), _widths(pipes["sdxl"]))
    save_file({"emb_params": vectors(1, 5, width=48)}, tmp_path / "wide.safetensors")
    with pytest.raises(EmbeddingError, match=r"48-wide vectors where this model's text encoder takes 32"):
        find_embeddings(tmp_path, ("a wide",), _widths(pipes["sd1"]))
    save_file({"weight": vectors(1, 5), "bias": vectors(1, 6)}, tmp_path / "other.safetensors")
    with pytest.raises(EmbeddingError, match="not a textual-inversion embedding"):
        find_embeddings(tmp_path, ("an other",), _widths(pipes["sd1"]))


def test_pickle_embeddings_only_with_the_opt_in(pipes, tmp_path):
    emb = vectors(3, 7)
    torch.save({"string_to_param": {"*": torch.nn.Parameter(emb)}, "name": "oldstyle", "step": 500},
               tmp_path / "oldstyle.pt")
    torch.save({"<tok>": vectors(1, 8)[0]}, tmp_path / "learned.bin")
    widths = _widths(pipes["sd1"])
    # Without the opt-in the pickles are not even listed (as checkpoints): the words stay words.
    assert find_embeddings(tmp_path, ("an oldstyle picture",), widths) is None
    found = find_embeddings(tmp_path, ("an oldstyle picture, learned",), widths, allow_pickle=True)
    by_name = {f.name: f for f in found.files}
    assert torch.equal(by_name["oldstyle"].vectors[0], emb)
    assert by_name["learned"].vectors[0].shape == (1, WIDTH)


def test_a_pickle_named_directly_is_refused_without_the_opt_in(tmp_path):
    from sdstudio.engine.embeddings import load_embedding
    from sdstudio.engine.networks import NetworkFile

    torch.save({"string_to_param": {"*": vectors(1, 9)}}, tmp_path / "x.pt")
    with pytest.raises(EmbeddingError, match="pickle file"):
        load_embedding(NetworkFile(NetworkKind.EMBEDDING, "x", tmp_path / "x.pt"))


def test_results_name_the_embeddings_in_ti_hashes(tiny_sd1, tmp_path):
    from sdstudio.engine.events import Finished, UsedNetwork
    from sdstudio.engine.infotext import parse_infotext
    from sdstudio.engine.networks import NetworkFolders
    from sdstudio.engine.params import image_json, networks_from_infotext, networks_from_json
    from sdstudio.engine.request import GenerationRequest, ModelRef
    from sdstudio.engine.runner import Engine

    folder = tmp_path / "embeddings"
    folder.mkdir()
    save_file({"emb_params": vectors(2, 10)}, folder / "kitten.safetensors")
    save_file({"emb_params": vectors(1, 11)}, folder / "bad-hands.safetensors")
    save_file({"emb_params": vectors(1, 12)}, folder / "unused.safetensors")
    engine = Engine(device="cpu", folders=NetworkFolders.default(embeddings=folder, loras=tmp_path, vaes=tmp_path,
                                                                  upscalers=tmp_path))
    try:
        request = GenerationRequest.create(model=ModelRef(str(tiny_sd1)), prompt="a kitten", negative_prompt="bad-hands",
                                           steps=2, width=64, height=64, seed=1)
        events: list = []
        assert engine.submit(request, events.append).wait(120)
    finally:
        engine.shutdown()
    assert isinstance(events[-1], Finished), events[-1]
    result = events[-1].results[0]
    hashes = {name: short_hash(folder / f"{name}.safetensors", NetworkKind.EMBEDDING) for name in ("kitten", "bad-hands")}
    assert all(len(h) == 12 for h in hashes.values())
    assert parse_infotext(result.infotext).params["TI hashes"] == f"kitten: {hashes['kitten']}, bad-hands: {hashes['bad-hands']}"
    assert f'TI hashes: "kitten: {hashes["kitten"]}, bad-hands: {hashes["bad-hands"]}"' in result.infotext
    expected = [UsedNetwork("embedding", "kitten", hashes["kitten"]), UsedNetwork("embedding", "bad-hands", hashes["bad-hands"])]
    assert list(result.networks) == expected
    assert networks_from_infotext(result.infotext) == expected
    assert networks_from_json(image_json(result.request, result.model, result.networks)) == expected


def test_missing_embeddings_are_named_when_parameters_are_reused(tmp_path):
    from sdstudio.engine.events import UsedNetwork
    from sdstudio.engine.networks import NetworkFolders
    from sdstudio.engine.params import missing_networks

    save_file({"emb_params": vectors(1, 13)}, tmp_path / "kitten.safetensors")
    folders = NetworkFolders.default(embeddings=tmp_path, loras=tmp_path, vaes=tmp_path, upscalers=tmp_path)
    used = [UsedNetwork("embedding", "kitten", "x"), UsedNetwork("embedding", "kiten2", "y")]
    [(_network, message)] = missing_networks(used, folders)
    assert "No embedding called 'kiten2'" in message and "kitten" in message
