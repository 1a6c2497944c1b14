"""The composed request: its JSON (version 2), files written by version 1, hostile JSON, and
the history index's schema version."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from sdstudio.engine.parameters import MAX_SEED, Mode
from sdstudio.engine.pngmeta import read_png_text
from sdstudio.engine.request import (
    REQUEST_VERSION,
    GenerationRequest,
    ImageData,
    Inputs,
    ModelRef,
    RequestFormatError,
)

V1 = Path(__file__).resolve().parents[1] / "data" / "v1"


def test_json_round_trip_with_embedded_images():
    init, mask = Image.new("RGB", (16, 8), "red"), Image.new("L", (16, 8), 255)
    request = GenerationRequest.create(
        prompt="a", mode=Mode.INPAINT, steps=7, seed=5, inputs=Inputs.from_pil(init, mask, source="images/x.png"),
        model=ModelRef("/models/m.safetensors", dtype="float32"),
    )
    data = json.loads(json.dumps(request.to_json(embed_images=True)))
    assert data["version"] == REQUEST_VERSION
    assert GenerationRequest.from_json(data) == request
    by_reference = request.to_json()
    assert by_reference["inputs"]["init_image"] == {"sha256": request.inputs.init_image.sha256}
    assert GenerationRequest.from_json(by_reference).inputs == Inputs(source="images/x.png")


def test_a_version_1_png_made_by_the_cli_loads():
    text, data = read_png_text(V1 / "txt2img_v1.png")
    assert data["version"] == 1
    request = GenerationRequest.from_json(data)
    assert request.prompt.prompt == "a red circle on a blue background" and request.prompt.negative_prompt == "blurry"
    assert (request.sampling.steps, request.sampling.cfg_scale, request.sampling.seed) == (3, 5.0, 1234)
    assert (request.extent.width, request.extent.height, request.mode) == (64, 64, Mode.TXT2IMG)
    assert request.model == ModelRef("builtin")


def test_a_version_1_history_opens_and_reuses_its_inpaint_batch(tmp_path):
    from sdstudio.history import HistoryStore

    root = tmp_path / "history"
    shutil.copytree(V1 / "history", root)
    store = HistoryStore.open(root)
    try:
        images = store.page(limit=10)
        assert sorted(i.seed for i in images) == [77, 78]
        image = next(i for i in images if i.seed == 78)
        fields = image.request_fields()
        assert (fields["mode"], fields["seed"], fields["strength"], fields["batch_size"]) == (Mode.INPAINT, 78, 0.8, 2)
        assert (fields["mask_blur"], fields["inpaint_only_masked"], fields["inpaint_padding"]) == (2, True, 8)
        assert image.init_file == "inputs/21d9d29bd45090e5f38a.png" and (root / image.mask_file).is_file()
    finally:
        store.close()


@pytest.mark.parametrize(
    "data",
    [[], "a string", 5, None, {"version": 99, "prompt": {}}],
)
def test_what_is_no_request_at_all_says_so(data):
    with pytest.raises(RequestFormatError):
        GenerationRequest.from_json(data)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"prompt": {"prompt": 5}, "sampling": {"steps": "20"}}, {"prompt": "", "steps": 20}),
        ({"sampling": {"seed": 2**63, "cfg_scale": float("nan")}}, {"seed": -1, "cfg_scale": None}),
        ({"sampling": {"seed": MAX_SEED, "steps": True}}, {"seed": MAX_SEED, "steps": 20}),
        ({"extent": {"width": 1e400, "height": 64}, "mode": "sketch"}, {"width": None, "height": 64, "mode": Mode.TXT2IMG}),
        ({"model": {"source": 5}, "inputs": {"init_image": {"base64": "%%%"}}}, {}),
        ({"prompt": "flat v1 prompt", "steps": 9, "mode": "img2img"}, {"prompt": "flat v1 prompt", "steps": 9, "mode": Mode.IMG2IMG}),
    ],
)
def test_wrong_types_and_absurd_numbers_fall_back_to_defaults(data, expected):
    request = GenerationRequest.from_json({"version": 2} | data if "version" not in data and "steps" not in data else data)
    fields = request.fields()
    for name, value in expected.items():
        assert fields[name] == value, name
    assert request.model == ModelRef() or isinstance(request.model.source, str)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=30,
)
PARTS = st.fixed_dictionaries(
    {},
    optional={
        "version": st.sampled_from([1, 2, "2", None]),
        "mode": JSON,
        "prompt": JSON,
        "sampling": st.dictionaries(st.sampled_from(["steps", "seed", "cfg_scale", "sampler", "strength"]), JSON),
        "extent": st.dictionaries(st.sampled_from(["width", "height", "batch_size", "batch_count"]), JSON),
        "inpaint": JSON,
        "inputs": JSON,
        "model": JSON,
    },
)


@settings(max_examples=200, deadline=None)
@given(PARTS | JSON)
def test_any_json_gives_a_request_or_a_format_error(data):
    try:
        request = GenerationRequest.from_json(data)
    except RequestFormatError:
        return
    from sdstudio.engine.parameters import check

    assert check({k: v for k, v in request.fields().items() if v is not None}) == []
    assert GenerationRequest.from_json(request.to_json()) == request


def test_image_data_refuses_what_is_not_a_picture():
    with pytest.raises(ValueError, match="cannot be read"):
        ImageData(b"not an image").open()


# ---- the history index's schema version --------------------------------------------------


def test_an_index_of_version_1_is_migrated(tmp_path):
    from sdstudio.history.schema import SCHEMA, SCHEMA_VERSION, open_index

    path = tmp_path / "index.db"
    old = sqlite3.connect(path)
    old.executescript(SCHEMA.replace("CREATE INDEX IF NOT EXISTS images_parent ON images(parent_id);", ""))
    old.executescript("INSERT INTO images (created, prompt, file, favourite) VALUES (1, 'kept', 'images/a.png', 1);"
                      "PRAGMA user_version = 1;")
    old.close()
    db = open_index(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    assert db.execute("SELECT name FROM sqlite_master WHERE name = 'images_parent'").fetchone()
    assert db.execute("SELECT prompt, favourite FROM images").fetchall() == [("kept", 1)]  # favourites survive
    db.close()


def test_an_index_from_a_newer_app_is_rebuilt_from_the_files(tmp_path):
    from sdstudio.history import HistoryStore

    root = tmp_path / "history"
    shutil.copytree(V1 / "history", root)
    HistoryStore.open(root).close()
    db = sqlite3.connect(root / "index.db")
    db.execute("PRAGMA user_version = 99")
    db.close()
    store = HistoryStore.open(root)
    try:
        assert store.count() == 2 and any("newer" in n or "damaged" in n for n in store.notices)
    finally:
        store.close()


def test_memory_options_travel_with_the_model():
    from sdstudio.engine.memory import MemoryOptions

    options = MemoryOptions(vae_tiling=True, attention_slicing=False, offload="sequential")
    request = GenerationRequest.create(prompt="x", model=ModelRef("m", memory=options))
    assert GenerationRequest.from_json(json.loads(json.dumps(request.to_json()))).model.memory == options
    assert MemoryOptions.from_json({"vae_tiling": "yes", "offload": "everything"}) == MemoryOptions()
