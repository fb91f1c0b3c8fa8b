"""The wheel a user installs: ``pip wheel .`` gives one whose top-level names are all the project's
own, and installed alone (no extras) in a fresh virtual environment it restores the bundled sample
clip with the bundled model, away from this checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import av
import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "sample.mp4"


@pytest.mark.slow
def test_the_wheel_installs_alone_and_restores_the_sample(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(wheels)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    (wheel,) = wheels.glob("mmrealsr_video-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"mmrealsr_video", "vsmmrealsr", "mmrealsr_training"}
    assert "mmrealsr_video/models/weights/compact-x4.safetensors" in names
    assert "mmrealsr_video/py.typed" in names

    venv = tmp_path / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    r = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", str(wheel)], capture_output=True, text=True, timeout=1200
    )
    assert r.returncode == 0, r.stderr
    # No extra came along: the core runs without VapourSynth, matplotlib or scikit-image.
    for extra in ("vapoursynth", "matplotlib", "skimage"):
        r = subprocess.run([str(py), "-c", f"import {extra}"], capture_output=True, cwd=tmp_path, timeout=120)
        assert r.returncode != 0, f"{extra} is installed without being asked for"
    out = tmp_path / "sample_x4.mp4"
    r = subprocess.run(
        [str(venv / "bin" / "mmrealsr-video"), "restore", str(SAMPLE), str(out), "-q"],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # away from the checkout: only the installed package can answer
        timeout=900,
    )
    assert r.returncode == 0, r.stderr
    assert "90 frames" in r.stdout
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.width == 960 and len(c.streams.audio) == 1
