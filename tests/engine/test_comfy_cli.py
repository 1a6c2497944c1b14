"""`sdstudio generate --server URL --model NAME` runs on a real ComfyUI server."""

from __future__ import annotations

import json

from PIL import Image

from sdstudio.cli import main
from tests.contract.comfy_server import CHECKPOINT, free_port, shared_server


def test_generate_on_a_server_writes_each_image_with_its_seed_and_the_server(tmp_path, capsys):
    url = shared_server().url
    code = main(["--server", url, "--model", CHECKPOINT, "--prompt", "a plum", "--steps", "2", "--width", "64",
                 "--height", "64", "--seed", "3", "--batch-size", "2", "--out", str(tmp_path)])
    assert code == 0, capsys.readouterr().err
    files = sorted(tmp_path.glob("*.png"))
    assert len(files) == 2
    for path, seed in zip(files, (3, 4), strict=True):
        with Image.open(path) as image:
            assert image.size == (64, 64)
            assert f"Seed: {seed}" in image.text["parameters"]
            chunk = json.loads(next(v for k, v in image.text.items() if k != "parameters"))
        assert url in json.dumps(chunk)  # the history can tell which server made it


def test_an_unreachable_server_is_one_line_and_status_2(tmp_path, capsys):
    url = f"http://127.0.0.1:{free_port()}"
    code = main(["--server", url, "--model", CHECKPOINT, "--prompt", "x", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and url in err and "Cannot reach" in err
    assert not (tmp_path / "out").exists()


def test_a_model_the_server_lacks_fails_naming_it(tmp_path, capsys):
    code = main(["--server", shared_server().url, "--model", "nope.safetensors", "--prompt", "x", "--steps", "1",
                 "--width", "64", "--height", "64", "--out", str(tmp_path)])
    assert code == 1 and "nope.safetensors" in capsys.readouterr().err


def test_a_vae_and_a_hires_upscaler_model_of_the_server_from_the_command_line(tmp_path, capsys):
    from tests.contract.comfy_server import install
    from tests.engine.test_comfy_loras import VAE, write_vae
    from tests.engine.test_upscalers import _esrgan, save_model

    write_vae()
    save_model(install() / "models" / "upscale_models", "sdstudio-test-x2.safetensors", _esrgan(2))
    code = main(["--server", shared_server().url, "--model", CHECKPOINT, "--vae", VAE, "--prompt", "a plum",
                 "--steps", "2", "--width", "64", "--height", "64", "--hires-scale", "1.5",
                 "--hires-upscaler", "sdstudio-test-x2", "--hires-denoise", "0.5", "--out", str(tmp_path)])
    assert code == 0, capsys.readouterr().err
    (path,) = tmp_path.glob("*.png")
    with Image.open(path) as image:
        assert image.size == (96, 96)
        text = image.text["parameters"]
    assert f"VAE: {VAE}" in text and "Hires upscaler: sdstudio-test-x2" in text
