"""Upscaler models: tiny random-weight models of real architectures (spandrel's own classes),
saved as files, found by name, run tile by tile, as the hires upscaler and by `sdstudio upscale`."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from sdstudio.engine.backend import Upscale
from sdstudio.engine.events import Cancelled, ErrorKind, Failed, Finished, JobState, Started, Step
from sdstudio.engine.parameters import BY_NAME, check
from sdstudio.engine.params import fields_from_infotext
from sdstudio.engine.pngmeta import read_png_text, save_png
from sdstudio.engine.request import GenerationRequest, ImageData, Inputs, ModelRef
from sdstudio.engine.upscalers import (
    FOLDER_ENV,
    UpscalerError,
    _spandrel,
    list_upscalers,
    load_upscaler,
    tile_count,
    upscale,
)
from sdstudio.upscale_cli import main as upscale_main

TIMEOUT = 120


def _esrgan(scale: int) -> torch.nn.Module:
    _spandrel()
    from spandrel.architectures.ESRGAN import ESRGAN

    return ESRGAN(num_filters=8, num_blocks=1, scale=scale)


def _compact(scale: int) -> torch.nn.Module:
    _spandrel()
    from spandrel.architectures.Compact import Compact

    return Compact(num_feat=8, num_conv=2, upscale=scale)


def _swinir(scale: int) -> torch.nn.Module:
    _spandrel()
    from spandrel.architectures.SwinIR import SwinIR

    return SwinIR(img_size=16, embed_dim=12, depths=[1, 1], num_heads=[2, 2], window_size=4, mlp_ratio=2.0,
                  upscale=scale, upsampler="pixelshuffle")


def save_model(folder: Path, name: str, net: torch.nn.Module) -> Path:
    torch.manual_seed(0)
    for p in net.parameters():  # random weights near identity-ish scale keep outputs in range
        torch.nn.init.normal_(p, std=0.05)
    path = folder / name
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    if path.suffix == ".pth":
        torch.save(state, path)
    else:
        save_file(state, str(path))
    return path


def picture(width: int = 50, height: int = 37, seed: int = 1) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


@pytest.mark.parametrize(("make", "scale"), [(_esrgan, 4), (_esrgan, 2), (_compact, 2), (_swinir, 2)])
def test_models_of_real_architectures_load_by_name_and_enlarge(tmp_path, make, scale):
    save_model(tmp_path, f"x{scale}.safetensors", make(scale))
    model = load_upscaler(f"x{scale}.safetensors", folder=tmp_path)
    assert model.scale == scale
    assert model(picture(), tile=24).size == (50 * scale, 37 * scale)


def test_tiles_join_without_seams(tmp_path):
    save_model(tmp_path, "c.safetensors", _compact(2))
    model = load_upscaler("c.safetensors", folder=tmp_path)
    image = picture(70, 45)
    whole = np.asarray(model(image, tile=1000), np.int16)
    tiled = np.asarray(model(image, tile=16, overlap=8), np.int16)
    assert np.abs(whole - tiled).max() <= 1  # float rounding only; no tile-edge band


def test_without_context_tiles_would_show_seams(tmp_path):
    """The seam test above can fail: with no overlap, tile edges differ from the whole run."""
    save_model(tmp_path, "c.safetensors", _compact(2))
    model = load_upscaler("c.safetensors", folder=tmp_path)
    image = picture(70, 45)
    whole = np.asarray(model(image, tile=1000), np.int16)
    assert np.abs(whole - np.asarray(model(image, tile=16, overlap=0), np.int16)).max() > 1


def test_the_last_model_is_kept_until_its_file_changes(tmp_path):
    save_model(tmp_path, "k.safetensors", _compact(2))
    first = load_upscaler("k", folder=tmp_path)
    assert load_upscaler("k.safetensors", folder=tmp_path) is first  # read once for pictures in a row
    save_model(tmp_path, "k.safetensors", _compact(4))  # replaced by another model
    assert load_upscaler("k", folder=tmp_path).scale == 4


def test_pickle_models_need_the_opt_in(tmp_path):
    save_model(tmp_path, "old.pth", _compact(2))
    assert list_upscalers(tmp_path) == []
    assert list_upscalers(tmp_path, allow_pickle=True) == ["old.pth"]
    with pytest.raises(UpscalerError, match="arbitrary code"):
        load_upscaler("old.pth", folder=tmp_path)
    assert load_upscaler("old.pth", allow_pickle=True, folder=tmp_path).scale == 2


def test_folder_listing_and_missing_model(tmp_path):
    save_model(tmp_path, "b.safetensors", _compact(2))
    save_model(tmp_path, "a.safetensors", _compact(2))
    (tmp_path / "notes.txt").write_text("not a model")
    assert list_upscalers(tmp_path) == ["a.safetensors", "b.safetensors"]
    with pytest.raises(UpscalerError, match=r"No upscaler model called 'c.safetensors'.*there are a, b\."):
        load_upscaler("c.safetensors", folder=tmp_path)


def test_weights_of_no_known_architecture_are_refused(tmp_path):
    save_file({"weight": torch.zeros(3, 3)}, str(tmp_path / "odd.safetensors"))
    with pytest.raises(UpscalerError, match="odd.safetensors"):
        load_upscaler("odd.safetensors", folder=tmp_path)


def test_a_factor_beyond_the_model_runs_it_again_then_fits_the_size(tmp_path):
    save_model(tmp_path, "c.safetensors", _compact(2))
    model = load_upscaler("c.safetensors", folder=tmp_path)
    calls: list = []
    model.descriptor = _Counting(model.descriptor, calls)
    assert upscale(picture(20, 10), (60, 30), model).size == (60, 30)  # ×3: two ×2 passes, then Lanczos
    assert len(calls) == 2


class _Counting:
    def __init__(self, inner, calls: list) -> None:
        self._inner, self._calls = inner, calls

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def __call__(self, x):
        self._calls.append(tuple(x.shape))
        return self._inner(x)


def test_the_hires_upscaler_takes_model_names_never_paths():
    param = BY_NAME["hires_upscaler"]
    assert param.problem("4x-Sharp.safetensors") is None
    assert param.problem("old.pth") is None
    assert param.problem("4x-UltraSharp") is None  # as A1111's text names it
    for bad in ("../4x.safetensors", "a/b.safetensors", "a\\b", ".safetensors", "", " x", "x" * 300):
        assert param.problem(bad), bad
    assert check({"mode": "txt2img", "hires_upscaler": "x.safetensors"}) == []


@pytest.fixture(scope="module")
def engine():
    from sdstudio.engine.runner import Engine

    eng = Engine(device="cpu", dtype="float32")
    yield eng
    eng.shutdown()


def _hires(engine, model: Path, upscaler: str) -> list:
    request = GenerationRequest.create(
        model=ModelRef(str(model)), prompt="a red apple", steps=2, width=64, height=64, seed=3, sampler="Euler",
        hires_scale=2.0, hires_upscaler=upscaler, hires_steps=2, hires_denoise=0.5,
    )
    events: list = []
    assert engine.submit(request, events.append).wait(TIMEOUT)
    return events


def test_an_upscaler_model_is_the_hires_upscaler(engine, tiny_sd1, tmp_path, monkeypatch):
    save_model(tmp_path, "2x-tiny.safetensors", _esrgan(2))
    monkeypatch.setenv(FOLDER_ENV, str(tmp_path))
    events = _hires(engine, tiny_sd1, "2x-tiny.safetensors")
    assert isinstance(events[-1], Finished), events[-1]
    result = events[-1].results[0]
    assert result.image.size == (128, 128)
    assert "Hires upscaler: 2x-tiny," in result.infotext  # as A1111 names it: no extension
    assert result.request.hires.hires_upscaler == "2x-tiny.safetensors"  # the JSON keeps the file
    # A1111's text names the model without its extension; reading it back finds the same file.
    assert fields_from_infotext(result.infotext)["hires_upscaler"] == "2x-tiny"
    again = _hires(engine, tiny_sd1, "2x-tiny")[-1]
    assert isinstance(again, Finished) and np.array_equal(np.asarray(again.results[0].image), np.asarray(result.image))


def test_a_missing_hires_upscaler_model_fails_the_job_before_drawing(engine, tiny_sd1, tmp_path, monkeypatch):
    monkeypatch.setenv(FOLDER_ENV, str(tmp_path))
    events = _hires(engine, tiny_sd1, "nowhere.safetensors")
    assert isinstance(events[-1], Failed) and events[-1].error is ErrorKind.BAD_INPUT
    assert "nowhere.safetensors" in events[-1].message


def _upscale_job(engine, picture: Image.Image, upscaler: str, on_event=None) -> tuple[list, object]:
    source = GenerationRequest.create(prompt="an apple", seed=5, inputs=Inputs(source="images/parent.png"))
    order = Upscale(ImageData.from_pil(picture), 2.0, upscaler, source, "an apple\nSteps: 20, Seed: 5")
    events: list = []

    def listen(event):
        events.append(event)
        if on_event is not None:
            on_event(event)

    job = engine.upscale(order, listen)
    assert job.wait(TIMEOUT)
    return events, job


def test_an_upscale_job_steps_once_per_tile_and_queues_with_generations(engine, tmp_path, monkeypatch):
    save_model(tmp_path, "2x-tiny.safetensors", _esrgan(2))
    monkeypatch.setenv(FOLDER_ENV, str(tmp_path))
    events, _ = _upscale_job(engine, picture(300, 20), "2x-tiny.safetensors")
    assert isinstance(events[0], Started) and events[0].total == tile_count((300, 20), (600, 40), load_upscaler(
        "2x-tiny.safetensors", folder=tmp_path)) == 2
    assert [e.index for e in events if isinstance(e, Step)] == [1, 2]
    (result,) = events[-1].results
    assert result.image.size == (600, 40) and result.request.inputs.source == "images/parent.png"
    assert result.infotext.endswith("Seed: 5, Postprocess upscale by: 2, Postprocess upscaler: 2x-tiny")


def test_an_upscale_job_cancels_between_tiles(engine, tmp_path, monkeypatch):
    save_model(tmp_path, "2x-tiny.safetensors", _esrgan(2))
    monkeypatch.setenv(FOLDER_ENV, str(tmp_path))
    holder: list = []

    def cancel_at_first_tile(event):
        if isinstance(event, Step):
            engine.cancel(holder[0])

    # The job handle exists only once `upscale` returns; a pending first job keeps it waiting.
    blocker = threading.Event()
    engine.submit(GenerationRequest.create(model=ModelRef("unused")), lambda e: blocker.wait(TIMEOUT))
    order_events: list = []
    source = GenerationRequest.create(prompt="an apple")
    job = engine.upscale(Upscale(ImageData.from_pil(picture(600, 20)), 2.0, "2x-tiny.safetensors", source),
                         lambda e: (order_events.append(e), cancel_at_first_tile(e)))
    holder.append(job)
    blocker.set()
    assert job.wait(TIMEOUT)
    assert isinstance(order_events[-1], Cancelled) and job.state is JobState.CANCELLED
    assert [e.index for e in order_events if isinstance(e, Step)] == [1]


def test_cli_upscale_writes_the_enlarged_png_with_extras_keys(tmp_path, capsys):
    save_model(tmp_path / "models", "4x-tiny.safetensors", _esrgan(4))
    source = tmp_path / "in.png"
    save_png(picture(30, 20), source, "an apple\nSteps: 20, Sampler: Euler, Seed: 5, Size: 30x20")
    status = upscale_main([str(source), "--scale", "2", "--model", str(tmp_path / "models/4x-tiny.safetensors"),
                           "--out", str(tmp_path / "out")])
    assert status == 0
    written = Path(capsys.readouterr().out.strip())
    assert Image.open(written).size == (60, 40)
    text, _ = read_png_text(written)
    assert text == "an apple\nSteps: 20, Sampler: Euler, Seed: 5, Size: 30x20, " \
        "Postprocess upscale by: 2, Postprocess upscaler: 4x-tiny"


def test_cli_upscale_without_a_model_uses_lanczos_and_refuses_bad_input(tmp_path, capsys):
    source = tmp_path / "in.png"
    picture(30, 20).save(source)
    assert upscale_main([str(source), "--scale", "1.5", "--out", str(tmp_path / "out")]) == 0
    written = Path(capsys.readouterr().out.strip())
    assert Image.open(written).size == (45, 30)
    assert read_png_text(written)[0] == "Postprocess upscale by: 1.5, Postprocess upscaler: Lanczos"
    assert upscale_main([str(source), "--scale", "1", "--out", str(tmp_path / "o2")]) == 2
    assert upscale_main([str(tmp_path / "none.png"), "--out", str(tmp_path / "o3")]) == 2
    assert upscale_main([str(source), "--model", "nowhere.safetensors", "--out", str(tmp_path / "o4")]) == 2
    assert "nowhere.safetensors" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists()


def test_the_engine_lists_installed_upscalers_in_its_capabilities(engine, tmp_path, monkeypatch):
    monkeypatch.setenv(FOLDER_ENV, str(tmp_path))
    assert engine.capabilities().upscalers == ()
    save_model(tmp_path, "2x-tiny.safetensors", _compact(2))
    save_model(tmp_path, "old.pth", _compact(2))  # pickles need the request's opt-in: not offered
    assert engine.capabilities().upscalers == ("2x-tiny.safetensors",)
