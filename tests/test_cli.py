"""The command line, run as a user runs it (the installed entry point, in a subprocess)."""

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

EXE = Path(sys.executable).with_name("mmrealsr-video")


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(EXE), *map(str, args)], capture_output=True, text=True, timeout=300)


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


def test_version() -> None:
    r = run("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"mmrealsr-video {__version__}"


def test_info_lists_versions_devices_and_models() -> None:
    r = run("info")
    assert r.returncode == 0, r.stderr
    for word in ("torch", "av", "vapoursynth", "devices:", "cpu", "bundled models:", "default"):
        assert word in r.stdout


def test_restore_image_with_released_architecture(checkpoint: Path, tmp_path: Path) -> None:
    src = _photo(tmp_path / "in.png")
    dst = tmp_path / "out.png"
    r = run("image", src, dst, "--model", checkpoint, "--noise", "0.8", "--blur", "+0.1")
    assert r.returncode == 0, r.stderr
    out = cv2.imread(str(dst), cv2.IMREAD_UNCHANGED)
    assert out.shape == (84, 120, 3) and out.dtype == np.uint8
    assert "noise 0.800" in r.stdout and "mmrrdbnet" in r.stdout
    assert not list(tmp_path.glob(".*part"))  # no temporary file left behind


def test_sixteen_bit_alpha_and_outscale(checkpoint: Path, tmp_path: Path) -> None:
    src = _photo(tmp_path / "in16.png", dtype=np.uint16, alpha=True)
    dst = tmp_path / "out16.png"
    r = run("image", src, dst, "--model", checkpoint, "--outscale", "2", "--tile", "16")
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
def test_bad_invocations_fail_cleanly(checkpoint: Path, tmp_path: Path, case: str, message: str) -> None:
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
    r = run(*args)
    assert r.returncode == 1
    assert message in r.stderr and "Traceback" not in r.stderr
    assert sorted(os.listdir(tmp_path)) == before  # nothing written, nothing half-written
    if case == "exists":
        assert dst.read_bytes() == b"keep me"
