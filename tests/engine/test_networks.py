"""Add-on files by name (networks.py): folders, listing, close-match errors, A1111's hashes
and the prompt's extra-network tags."""

import hashlib
import json
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sdstudio.engine.networks import (
    NetworkFolders,
    NetworkKind,
    NetworkNotFound,
    NetworkTag,
    find_network,
    list_networks,
    parse_tags,
    short_hash,
    strip_tags,
)


def _safetensors(path, metadata: dict, payload: bytes = b"\x00" * 16):
    header = json.dumps({"__metadata__": metadata, "w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(header)) + header + payload)


def test_listing_finds_files_below_the_folder_with_their_previews(tmp_path):
    _safetensors(tmp_path / "style" / "film_grain.safetensors", {})
    (tmp_path / "style" / "film_grain.preview.png").write_bytes(b"png")
    _safetensors(tmp_path / "Add_Detail.safetensors", {})
    (tmp_path / "old.pt").write_bytes(b"pickle")
    (tmp_path / "notes.txt").write_text("no model")
    files = list_networks(NetworkKind.LORA, tmp_path)
    assert [f.name for f in files] == ["Add_Detail", "film_grain"]
    assert files[1].preview == tmp_path / "style" / "film_grain.preview.png"
    assert files[0].preview is None
    assert [f.name for f in list_networks(NetworkKind.LORA, tmp_path, allow_pickle=True)] == ["Add_Detail", "film_grain", "old"]
    assert list_networks(NetworkKind.LORA, tmp_path / "missing") == []


def test_a_name_is_found_by_stem_or_file_name_in_any_case(tmp_path):
    _safetensors(tmp_path / "Add_Detail.safetensors", {})
    for name in ("Add_Detail", "add_detail", "Add_Detail.safetensors"):
        assert find_network(NetworkKind.LORA, name, tmp_path).path == tmp_path / "Add_Detail.safetensors"


def test_an_unknown_name_lists_close_matches(tmp_path):
    for name in ("add_detail", "film_grain", "more_details"):
        _safetensors(tmp_path / f"{name}.safetensors", {})
    with pytest.raises(NetworkNotFound, match=r"No LoRA called 'add_detial'.*did you mean add_detail"):
        find_network(NetworkKind.LORA, "add_detial", tmp_path)
    with pytest.raises(NetworkNotFound, match=r"no embeddings there"):
        find_network(NetworkKind.EMBEDDING, "bad_hands", tmp_path / "none")


def test_pickles_are_found_only_with_the_opt_in(tmp_path):
    (tmp_path / "old.pt").write_bytes(b"pickle")
    with pytest.raises(NetworkNotFound):
        find_network(NetworkKind.EMBEDDING, "old", tmp_path)
    assert find_network(NetworkKind.EMBEDDING, "old", tmp_path, allow_pickle=True).path.name == "old.pt"


def test_folders_follow_overrides_then_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SDSTUDIO_EMBEDDINGS", str(tmp_path / "env-embeddings"))
    folders = NetworkFolders.default(loras=tmp_path / "cli-loras")
    assert folders.folder(NetworkKind.LORA) == tmp_path / "cli-loras"
    assert folders.folder(NetworkKind.EMBEDDING) == tmp_path / "env-embeddings"
    assert folders.folder(NetworkKind.VAE).name == "vae"


def test_lora_hash_skips_the_safetensors_header_as_a1111s_addnet_hash(tmp_path):
    payload = bytes(range(64))
    _safetensors(tmp_path / "a.safetensors", {"ss_note": "one"}, payload)
    _safetensors(tmp_path / "b.safetensors", {"ss_note": "another, longer note"}, payload)
    expected = hashlib.sha256(payload).hexdigest()[:12]
    assert short_hash(tmp_path / "a.safetensors", NetworkKind.LORA) == expected
    assert short_hash(tmp_path / "b.safetensors", NetworkKind.LORA) == expected
    whole = hashlib.sha256((tmp_path / "a.safetensors").read_bytes()).hexdigest()[:12]
    assert short_hash(tmp_path / "a.safetensors", NetworkKind.EMBEDDING) == whole


def test_tags_parse_as_a1111_reads_them():
    assert parse_tags("a cat <lora:film_grain-v2:0.8>, <hypernet:x:1> <not a tag> <lora:plain>") == [
        NetworkTag("lora", "film_grain-v2", 0.8, 0.8, "<lora:film_grain-v2:0.8>"),
        NetworkTag("hypernet", "x", 1.0, 1.0, "<hypernet:x:1>"),
        NetworkTag("lora", "plain", 1.0, 1.0, "<lora:plain>"),
    ]
    assert parse_tags("<lora:a:0.5:1.2>")[0].unet_weight == 1.2
    assert parse_tags("<lora:a:te=0.3:unet=0.7>")[0].weight == 0.3
    assert parse_tags("<lora:a:abc>")[0].weight == 1.0
    assert parse_tags("<lora:a:nan>")[0].weight == 1.0
    assert strip_tags("a cat <lora:film_grain-v2:0.8>, <hypernet:x:1> <not a tag>") == "a cat ,  <not a tag>"


@given(st.text(max_size=200))
def test_any_prompt_parses_without_raising_with_finite_weights(prompt):
    tags = parse_tags(prompt)
    assert len(strip_tags(prompt)) == len(prompt) - sum(len(t.text) for t in tags)
    for tag in tags:
        assert tag.weight == tag.weight and abs(tag.weight) < 1e6
