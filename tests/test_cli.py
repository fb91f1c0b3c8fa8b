"""The command line: ``cli.main`` in this process (the ``cli`` fixture), and once through the
installed entry point in a subprocess, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mmrealsr_video import __version__
from tests.conftest import Cli

EXE = Path(sys.executable).with_name("mmrealsr-video")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory, parity: dict) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "small_x4.pth"
    torch.save({"params": parity["params"]}, path)
    return path


def _photo(path: Path, h: int = 21, w: int = 30, dtype: type = np.uint8, alpha: bool = False) -> Path:
    rng = np.random.default_rng(0)
    peak = np.iinfo(dtype).max
    img = (rng.random((h, w, 4 if alpha else 3)) * peak).astype(dtype)
    assert cv2.imwrite(str(path), img)
    return path


@pytest.mark.slow
def test_the_installed_command_runs() -> None:
    r = subprocess.run([str(EXE), "--version"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == f"mmrealsr-video {__version__}"
    r = subprocess.run([str(EXE), "restore", "absent.mkv", "out.mkv"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "absent.mkv: no such file" in r.stderr and "Traceback" not in r.stderr


def test_info_lists_versions_devices_and_models(cli: Cli) -> None:
    r = cli("info")
    assert r.returncode == 0, r.stderr
    for word in ("torch", "av", "vapoursynth", "devices:", "cpu", "bundled models:", "default"):
        assert word in r.stdout


def test_restore_image_with_released_architecture(checkpoint: Path, tmp_path: Path, cli: Cli) -> None:
    src = _photo(tmp_path / "in.png")
    dst = tmp_path / "out.png"
    r = cli("image", src, dst, "--model", checkpoint, "--noise", "0.8", "--blur", "+0.1")
    assert r.returncode == 0, r.stderr
    out = cv2.imread(str(dst), cv2.IMREAD_UNCHANGED)
    assert out.shape == (84, 120, 3) and out.dtype == np.uint8
    assert "noise 0.800" in r.stdout and "mmrrdbnet" in r.stdout
    assert not list(tmp_path.glob(".*part"))  # no temporary file left behind


def test_sixteen_bit_alpha_and_outscale(checkpoint: Path, tmp_path: Path, cli: Cli) -> None:
    src = _photo(tmp_path / "in16.png", dtype=np.uint16, alpha=True)
    dst = tmp_path / "out16.png"
    r = cli("image", src, dst, "--model", checkpoint, "--outscale", "2", "--tile", "16")
    assert r.returncode == 0, r.stderr
    out = cv2.imread(str(dst), cv2.IMREAD_UNCHANGED)
    assert out.shape == (42, 60, 4) and out.dtype == np.uint16


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("same", "would overwrite the input"),
        ("exists", "already exists"),
        ("nodir", "output folder does not exist"),
        ("badin", "not a readable image"),
        ("badcoef", "--noise: expected a number"),
        ("badmodel", "neither a bundled model"),
    ],
)
def test_bad_invocations_fail_cleanly(checkpoint: Path, tmp_path: Path, case: str, message: str, cli: Cli) -> None:
    src = _photo(tmp_path / "in.png")
    dst = tmp_path / "out.png"
    args: list[str | Path] = ["image", src, dst, "--model", checkpoint]
    if case == "same":
        args[2] = src
    elif case == "exists":
        dst.write_bytes(b"keep me")
    elif case == "nodir":
        args[2] = tmp_path / "missing" / "out.png"
    elif case == "badin":
        src.write_bytes(b"garbage")
    elif case == "badcoef":
        args += ["--noise", "lots"]
    elif case == "badmodel":
        args[4] = "no-such-model"
    before = sorted(os.listdir(tmp_path))
    r = cli(*args)
    assert r.returncode == 1
    assert message in r.stderr and "Traceback" not in r.stderr
    assert sorted(os.listdir(tmp_path)) == before  # nothing written, nothing half-written
    if case == "exists":
        assert dst.read_bytes() == b"keep me"


def _x5_compact(path: Path) -> Path:
    """The bundled model's tensors with an upsampler of 3 * 5**2 channels: key names of a compact
    model whose shapes make none (there is no x5 compact model)."""
    from safetensors.torch import load_file, save_file

    from mmrealsr_video.models import bundled_model_path

    bundled = bundled_model_path("default")
    assert bundled is not None
    sd = load_file(str(bundled))
    nf = sd["conv_last.weight"].shape[1]
    sd["conv_last.weight"] = torch.zeros(75, nf, 3, 3)
    sd["conv_last.bias"] = torch.zeros(75)
    save_file(sd, str(path))
    return path


def test_malformed_checkpoint_is_a_message_naming_the_file(tmp_path: Path, cli: Cli) -> None:
    weights = _x5_compact(tmp_path / "odd.safetensors")
    src, dst = _photo(tmp_path / "in.png"), tmp_path / "out.png"
    r = cli("image", src, dst, "--model", weights)
    assert r.returncode == 1
    assert f"{weights}: looks like a compact checkpoint" in r.stderr and "scale" in r.stderr
    assert "Traceback" not in r.stderr and not dst.exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--batch", "0"], "--batch must be at least 1, not 0"),
        (["--tile=-5"], "--tile must be 0 (never tile), a side in pixels, or None; not -5"),
        (["--tile-overlap=-4"], "--tile-overlap must not be negative (-4)"),
        (["--outscale", "0"], "--outscale must be in (0, 16], not 0.0"),
        (["--start", "nan"], "--start must be a time of 0 s or more, not nan"),
        (["--fps", "30"], "--fps sets an image sequence's frame rate"),
    ],
)
def test_settings_errors_name_the_flag(tmp_path: Path, cli: Cli, flags: list[str], message: str) -> None:
    """The library names the field (``batch``); the command line names the flag the user typed."""
    src = tmp_path / "in.mkv"
    from tests.media import write_av_clip

    write_av_clip(src, frames=3, size=(32, 24), audio=False, subtitles=False, chapters=False)
    before = sorted(os.listdir(tmp_path))
    r = cli("restore", src, tmp_path / "out.mkv", "-q", *flags)
    assert r.returncode == 1 and message in r.stderr, r.stderr
    assert sorted(os.listdir(tmp_path)) == before
