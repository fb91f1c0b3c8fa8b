"""The set-up's promises: vspipe works from the virtual environment, the package is importable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

VSPIPE = Path(sys.executable).with_name("vspipe")


@pytest.mark.slow
@pytest.mark.skipif(not VSPIPE.exists(), reason="vapoursynth extra not installed")
def test_vspipe_runs_a_script(tmp_path: Path) -> None:
    script = tmp_path / "blank.vpy"
    script.write_text(
        "import vapoursynth as vs\n"
        "clip = vs.core.std.BlankClip(width=64, height=48, format=vs.YUV420P8, length=5)\n"
        "clip.set_output()\n"
    )
    r = subprocess.run([str(VSPIPE), "--info", str(script), "-"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Width: 64" in r.stdout and "Frames: 5" in r.stdout


def test_public_api_is_exported() -> None:
    import mmrealsr_video

    for name in ("load_model", "ModulatedModel", "MMRealSRVideoError", "CheckpointError"):
        assert name in mmrealsr_video.__all__ and hasattr(mmrealsr_video, name)


@pytest.mark.slow
def test_setup_refuses_a_first_install_without_disk_space(tmp_path: Path) -> None:
    """The set-up says how much room it needs before it writes anything, not half-way through pip."""
    root = Path(__file__).resolve().parents[1]
    (tmp_path / "scripts").mkdir()
    for name in ("scripts/setup.sh", "pyproject.toml"):
        (tmp_path / name).write_bytes((root / name).read_bytes())
    r = subprocess.run(
        ["bash", str(tmp_path / "scripts" / "setup.sh")],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "MMREALSR_SETUP_MIN_FREE_GB": "1000000"},
    )
    assert r.returncode == 1
    assert "GiB free on the disk of" in r.stderr and "needs about 1000000 GiB" in r.stderr
    assert not (tmp_path / ".venv").exists()
