"""`sdstudio generate`: files named by seed with readable parameters, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from sdstudio.app import main as app_main
from sdstudio.engine.pngmeta import read_png_text

ROOT = Path(__file__).resolve().parent.parent.parent


def generate(*args: str) -> int:
    return app_main(["generate", *args])


def last_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def test_end_to_end_as_a_real_command(tiny_sd1, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "sdstudio", "generate", "--model", str(tiny_sd1), "--prompt", "a boat",
           "--negative", "blurry", "--steps", "2", "--width", "64", "--height", "64", "--seed", "7",
           "--batch-size", "2", "--sampler", "Euler", "--out", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(out / "00001-7.png"), str(out / "00002-8.png")]
    assert "2/2 steps" in result.stderr
    text, extra = read_png_text(out / "00002-8.png")
    assert text.startswith("a boat\nNegative prompt: blurry\nSteps: 2, Sampler: Euler")
    assert "Seed: 8" in text and "Size: 64x64" in text
    assert extra["seed"] == 8 and extra["prompt"] == "a boat"
    assert Image.open(out / "00001-7.png").size == (64, 64)


def test_inpaint_from_files_never_overwrites(tiny_sd1, tmp_path, capsys):
    init, mask = tmp_path / "init.png", tmp_path / "mask.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(init)
    painted = Image.new("L", (64, 64), 0)
    painted.paste(255, (16, 16, 40, 40))
    painted.save(mask)
    out = tmp_path / "out"
    args = ["--model", str(tiny_sd1), "--prompt", "x", "--init", str(init), "--mask", str(mask), "--steps", "2",
            "--strength", "1", "--width", "64", "--height", "64", "--seed", "3", "--out", str(out)]
    assert generate(*args) == 0
    assert generate(*args) == 0
    assert sorted(p.name for p in out.iterdir()) == ["00001-3.png", "00002-3.png"]
    text, _ = read_png_text(out / "00002-3.png")
    assert "Mode: inpaint" in text and "Mask blur: 4" in text


def test_missing_model_is_one_line_and_non_zero(tmp_path, capsys):
    code = generate("--model", str(tmp_path / "missing-model"), "--prompt", "x", "--out", str(tmp_path / "o"))
    assert code != 0
    line = last_error_line(capsys)
    assert line.startswith("sdstudio generate: error:") and "missing-model" in line


def test_bad_arguments_are_one_line(tiny_sd1, tmp_path, capsys):
    cases = [
        (["--sampler", "Nope"], "unknown sampler"),
        (["--init", str(tmp_path / "none.png")], "cannot read init image"),
        (["--steps", "many"], "invalid int value"),
        (["--width", "10000"], "out of range"),
        (["--mode", "inpaint"], "init image"),
    ]
    for extra, words in cases:
        code = generate("--model", str(tiny_sd1), "--prompt", "x", "--out", str(tmp_path / "o"), *extra)
        assert code != 0
        line = last_error_line(capsys)
        assert line.startswith("sdstudio generate: error:") and words in line, line
