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
    assert extra["sampling"]["seed"] == 8 and extra["prompt"]["prompt"] == "a boat" and extra["version"] == 2
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
        (["--width", "10000"], "Width must be 64 to 4096"),
        (["--batch-count", "1000000000"], "Batch count must be 1 to 100"),
        (["--batch-count", "1e9"], "invalid int value"),
        (["--seed", str(2**32)], "Seed must be 0 to 4294967295"),
        (["--mode", "inpaint"], "init image"),
    ]
    for extra, words in cases:
        code = generate("--model", str(tiny_sd1), "--prompt", "x", "--out", str(tmp_path / "o"), *extra)
        assert code != 0
        line = last_error_line(capsys)
        assert line.startswith("sdstudio generate: error:") and words in line, line


def test_bad_input_never_creates_the_output_folder(tmp_path, capsys):
    huge = tmp_path / "huge.png"
    Image.new("L", (13000, 13000)).save(huge)  # a small file declaring a huge picture
    out = tmp_path / "never"
    for extra, words in [(["--init", str(huge)], "at most 8192"), (["--steps", "0"], "Steps must be 1 to 150")]:
        code = generate("--prompt", "x", "--out", str(out), *extra)
        assert code == 2 and words in last_error_line(capsys)
    assert not out.exists()


def test_a_prompt_that_is_not_utf8_is_one_line(tmp_path):
    out = tmp_path / "o"
    cmd = [sys.executable.encode(), b"-m", b"sdstudio", b"generate", b"--prompt", b"caf\xe9", b"--out", bytes(out)]
    result = subprocess.run(cmd, capture_output=True, cwd=ROOT, timeout=300)
    assert result.returncode == 2
    assert result.stderr.decode().strip().splitlines()[-1] == "sdstudio generate: error: the prompt is not valid UTF-8 text"
    assert not out.exists()


def _command(tiny_sd1, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "sdstudio", "generate", "--model", str(tiny_sd1), "--prompt", "x",
            "--steps", "1", "--width", "64", "--height", "64", "--out", str(out), *extra]


def test_ctrl_c_keeps_every_finished_image(tiny_sd1, tmp_path):
    import signal

    out = tmp_path / "out"
    proc = subprocess.Popen(_command(tiny_sd1, out, "--batch-count", "30", "--seed", "5"), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    written = [proc.stdout.readline().strip() for _ in range(2)]  # two batches are on disk
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=120)
    written += rest.split()
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1].endswith("cancelled; the images already written are kept")
    assert len(written) >= 2 and len(written) < 30
    assert sorted(str(p) for p in out.iterdir()) == sorted(written)
    for path in written:
        assert Image.open(path).size == (64, 64)


def test_two_processes_writing_one_folder_never_overwrite(tiny_sd1, tmp_path):
    """Both pick the same next number; names are claimed atomically, so nothing is lost."""
    out = tmp_path / "out"
    out.mkdir()
    procs = [subprocess.Popen(_command(tiny_sd1, out, "--batch-count", "4", "--seed", "11"), cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    printed = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
        printed += stdout.split()
    assert len(printed) == len(set(printed)) == 8
    assert sorted(str(p) for p in out.iterdir()) == sorted(printed)


def test_memory_options_reach_the_model_reference():
    from sdstudio.cli import build_parser, request_from_args
    from sdstudio.engine.backend import Capabilities, Feature
    from sdstudio.engine.memory import MemoryOptions

    args = build_parser().parse_args(["--prompt", "x", "--out", "o", "--vae-tiling", "on", "--offload", "model"])
    caps = Capabilities("test", ("Euler a",), frozenset(), frozenset(Feature))
    assert request_from_args(args, caps).model.memory == MemoryOptions(vae_tiling=True, offload="model")
