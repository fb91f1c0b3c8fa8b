"""What a hostile user tried on the command line (issue 20), run through ``cli.main`` in this
process: each mistake is refused with a message that names the flag or the file, before any work
where it can be checked, with exit status 1; nothing is lost (no existing file replaced) and
nothing is left behind (no ``.NAME.*.partial.*``). The cases that need a whole restore (audio of
a part, two restores racing, SIGTERM) are in ``test_engine.py``."""

from __future__ import annotations

import logging
import math
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from mmrealsr_video.plan.track import CoefficientTrack, FrameCoefficients
from tests.conftest import Cli
from tests.media import Scene, photos, write_clip

BIG = "9" * 5000  # more digits than Python converts to an int (4300)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 100-frame and a 400-frame MP4 (their frame counts declared in the header) and a picture."""
    folder = tmp_path_factory.mktemp("media")
    write_clip(
        folder / "c100.mp4", [Scene(photos()[0], 100)], size=(32, 24), codec="libx264", pix_fmt="yuv420p"
    )
    write_clip(
        folder / "c400.mp4", [Scene(photos()[1], 400)], size=(32, 24), codec="libx264", pix_fmt="yuv420p"
    )
    picture = cv2.resize(photos()[2], (96, 64), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(folder / "in.png"), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    return folder


@pytest.fixture
def work(media: Path, tmp_path: Path) -> Path:
    """The test's own folder, with copies of the media."""
    for p in media.iterdir():
        shutil.copy(p, tmp_path / p.name)
    return tmp_path


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _partials(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if ".partial" in p.name]


def _refused(cli: Cli, folder: Path, *args: object) -> str:
    """Runs a command that must be refused: exit status 1, a message, not a traceback, and every
    file of ``folder`` as it was (nothing written, replaced or left behind). Returns stderr."""
    before = _files(folder)
    r = cli(*args)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stderr.startswith("mmrealsr-video: error: ") and "Traceback" not in r.stderr, r.stderr
    assert _files(folder) == before
    return r.stderr


def _track(frames: int, scenes: int = 1, fps: float = 24.0) -> CoefficientTrack:
    per = math.ceil(frames / scenes)
    return CoefficientTrack(
        tuple(FrameCoefficients(i, i / fps, i // per, None, None, 0.3, 0.4, 0.3, 0.4) for i in range(frames)),
        model="default",
        fps=fps,
    )


# --- 1. tiles: never garbage -------------------------------------------------------------------------


@pytest.mark.parametrize("tile", ["3", "4"])
def test_tiny_tiles_are_raised_with_a_warning_and_give_the_untiled_picture(
    work: Path, cli: Cli, caplog: pytest.LogCaptureFixture, tile: str
) -> None:
    """`image --tile 3` wrote NaN garbage, `--tile 4` ran 95 s on a 96x64 picture: tiles are now at
    least 32 px (said once), and the picture is the untiled one."""
    with caplog.at_level(logging.WARNING):
        r = cli("image", work / "in.png", work / "tiled.png", "--tile", tile)
    assert r.returncode == 0, r.stderr
    assert f"tile {tile} px is below the smallest useful tile: using 32 px tiles" in caplog.text
    assert cli("image", work / "in.png", work / "whole.png", "--tile", "0").returncode == 0
    a = cv2.imread(str(work / "tiled.png")).astype(np.float64)
    b = cv2.imread(str(work / "whole.png")).astype(np.float64)
    assert a.shape == b.shape == (256, 384, 3)
    assert 10 * math.log10(255**2 / max(np.mean((a - b) ** 2), 1e-12)) >= 45.0
    assert _partials(work) == []


@pytest.mark.parametrize("command", ["image", "restore"])
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--tile", "16", "--tile-overlap=-4"], "--tile-overlap must not be negative (-4)"),
        (["--tile=-5"], "--tile must be 0 (never tile), a side in pixels, or None; not -5"),
        (["--device", "tpu"], "--device must be auto, cpu, cuda or cuda:N, not 'tpu'"),
    ],
)
def test_bad_tiles_and_devices_are_messages(
    work: Path, cli: Cli, command: str, flags: list[str], message: str
) -> None:
    src, dst = (
        (work / "in.png", work / "out.png") if command == "image" else (work / "c100.mp4", work / "o.mkv")
    )
    assert message in _refused(
        cli, work, command, src, dst, "-q" if command == "restore" else "--force", *flags
    )


def test_analyze_names_a_bad_device(work: Path, cli: Cli) -> None:
    err = _refused(cli, work, "analyze", work / "c100.mp4", "-o", work / "t.json", "--device", "tpu")
    assert "--device must be auto, cpu, cuda or cuda:N, not 'tpu'" in err


# --- 3. nothing replaced without --force -------------------------------------------------------------


def test_analyze_does_not_replace_a_track_or_plot_without_force(work: Path, cli: Cli) -> None:
    (work / "existing.json").write_text("keep me")
    (work / "existing.png").write_bytes(b"keep me too")
    err = _refused(cli, work, "analyze", work / "c100.mp4", "-o", work / "existing.json", "-q")
    assert f"{work / 'existing.json'}: already exists (pass --force to overwrite)" in err
    err = _refused(
        cli, work, "analyze", work / "c100.mp4", "-o", work / "new.json", "--plot", work / "existing.png"
    )
    assert f"{work / 'existing.png'}: already exists (pass --force to overwrite)" in err
    r = cli("analyze", work / "c100.mp4", "-o", work / "existing.json", "-q", "--force")
    assert r.returncode == 0, r.stderr
    assert len(CoefficientTrack.load(work / "existing.json")) == 100
    assert _partials(work) == []


def test_restore_does_not_replace_a_track_without_force(work: Path, cli: Cli) -> None:
    (work / "existing.json").write_text("keep me")
    err = _refused(
        cli, work, "restore", work / "c100.mp4", work / "o.mkv", "--save-track", work / "existing.json"
    )
    assert f"{work / 'existing.json'}: already exists (pass --force to overwrite)" in err


# --- 4. what can be checked is checked before the first frame ---------------------------------------


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("t.txt", "--save-track {}: a track is written as .json or .csv"),
        ("missing/t.json", "{}: track folder does not exist"),
        ("/proc/mmrealsr-video-test-track.json", "/proc: cannot write there"),  # not writable even for root
    ],
)
def test_a_track_that_cannot_be_saved_is_refused_before_the_restore(
    work: Path, cli: Cli, where: str, message: str
) -> None:
    """It failed after the whole restore, and the restored video was thrown away."""
    path = work / where if not where.startswith("/") else Path(where)
    shown = path if where.endswith(".txt") else path.parent
    err = _refused(cli, work, "restore", work / "c100.mp4", work / "o.mkv", "-q", "--save-track", path)
    assert message.format(shown) in err
    assert "frames in" not in err


def test_a_track_short_of_the_declared_frames_is_refused_before_the_restore(work: Path, cli: Cli) -> None:
    """A track 10 frames short of a 400-frame file failed after 390 restored frames."""
    _track(390).save(work / "t.json")
    err = _refused(cli, work, "restore", work / "c400.mp4", work / "o.mkv", "-q", "--track", work / "t.json")
    assert (
        f"{work / 't.json'}: the track holds frames 0-389 but not frame 390 of {work / 'c400.mp4'}, "
        "which declares 400 frames (10 without coefficients); was it made from this input?"
    ) in err


def test_a_track_that_misses_the_part_asked_in_seconds_is_refused(work: Path, cli: Cli) -> None:
    _track(30).save(work / "t.json")  # 0 to 1.2 s
    args = ["restore", work / "c100.mp4", work / "o.mkv", "-q", "--track", work / "t.json"]
    err = _refused(cli, work, *args, "--start", "2", "--duration", "1")
    assert "the track holds frames 0-29, 0.000-1.208 s, but not all of 2-3 s of" in err


def test_a_track_inside_the_image_folder_is_refused(work: Path, cli: Cli) -> None:
    err = _refused(
        cli, work, "restore", work / "c100.mp4", f"{work / 'out'}/", "--save-track", work / "out" / "t.json"
    )
    assert "the track would be inside the output folder" in err


def test_a_track_longer_than_the_video_is_warned_about_or_refused(
    work: Path, cli: Cli, caplog: pytest.LogCaptureFixture
) -> None:
    """A few frames more than the header declares (headers can be short by a frame or two): a
    warning, and the restore goes on; more than a second more: another video's track, refused."""
    _track(403).save(work / "near.json")
    with caplog.at_level(logging.WARNING):
        r = cli(
            "restore",
            work / "c400.mp4",
            work / "o.mkv",
            "-q",
            "--frames",
            "0:3",
            "--track",
            work / "near.json",
        )
    assert r.returncode == 0, r.stderr
    assert "the track holds 3 frames past the 400 that" in caplog.text and "they are not used" in caplog.text
    _track(500).save(work / "other.json")
    err = _refused(
        cli, work, "restore", work / "c400.mp4", work / "p.mkv", "-q", "--track", work / "other.json"
    )
    assert "the track holds frames 0-499 (500 frames) but" in err and "it was made from another video" in err


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (
            "blur: 500=0.5",
            "blur key #1 (at 500): frame 500 is past the end ({} declares 100 frames, the last is 99)",
        ),
        (
            "noise: 0=auto; -101=0.2",
            "noise key #2 (at -101): -101 is before the first frame ({} declares 100 frames)",
        ),
        ("blur: 10s=0.5", "blur key #1 (at 10.0s): 10.0s is past the end ({} declares 4.167s)"),
    ],
)
def test_keyframes_past_the_declared_end_are_refused_before_the_analysis(
    work: Path, cli: Cli, keys: str, message: str
) -> None:
    err = _refused(cli, work, "restore", work / "c100.mp4", work / "o.mkv", "-q", "--keyframes", keys)
    assert "keyframe string: " + message.format(work / "c100.mp4") in err


def test_a_scene_key_the_video_does_not_have_is_refused_before_restoring(work: Path, cli: Cli) -> None:
    """With a track, before anything; without, right after the analysis pass (scenes are known only
    then), before the first frame is restored."""
    _track(100, scenes=3).save(work / "t.json")
    args = ["restore", work / "c100.mp4", work / "o.mkv", "-q", "--keyframes", "blur: scene 9=0.5"]
    err = _refused(cli, work, *args, "--track", work / "t.json")
    assert "keyframe string: blur key #1 (at scene 9): the track has no scene 9 (it has scenes 0..2)" in err
    err = _refused(cli, work, *args)
    assert "keyframe string: blur key #1 (at scene 9): the track has no scene 9 (it has scenes 0..0)" in err


# --- 5. messages, not tracebacks ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--pix-fmt", "bogus"], "--pix-fmt 'bogus': not a pixel format this program writes"),
        (["--codec", "ffv1", "--pix-fmt", "nv12"], "--pix-fmt 'nv12': ffv1 cannot code it; it takes"),
        (["--crf", "999"], "--crf must be 0-51 for libx264, not 999"),
        (["--codec", "libx265", "--crf", "52"], "--crf must be 0-51 for libx265, not 52"),
        (["--crf=-1"], "--crf must be a whole number of 0 or more, not -1"),
        (["--encoder-opt", "bogus=1"], "--encoder-opt bogus: not an option of libx264"),
        (["--preset", "bogus"], "--encoder-opt libx264 refuses its settings"),
        (["--codec", "nosuchcodec"], "--codec 'nosuchcodec': no such encoder"),
        (["--batch", "0"], "--batch must be at least 1, not 0"),
        (["--start", "nan"], "--start must be a time of 0 s or more, not nan"),
        (["--duration", "nan"], "--duration must be a positive time, not nan"),
        (["--start", "1:75"], "minutes and seconds of a timecode are 0 to 59"),
        (["--frames", "200:300"], "--frames 200:300: "),
        (["--start", "60"], "--start 60 s is past the end of"),
    ],
)
def test_encoder_and_range_mistakes_are_refused_before_any_work(
    work: Path, cli: Cli, flags: list[str], message: str
) -> None:
    assert message in _refused(cli, work, "restore", work / "c100.mp4", work / "o.mkv", "-q", *flags)


def test_svt_av1_takes_a_crf_up_to_63(work: Path, cli: Cli) -> None:
    err = _refused(cli, work, "restore", work / "c100.mp4", work / "o.webm", "-q", "--crf", "64")
    assert "--crf must be 0-63 for libsvtav1, not 64" in err


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "--outscale must be in (0, 16], not 0.0"),
        ("-1", "--outscale must be in (0, 16], not -1.0"),
        ("nan", "--outscale must be in (0, 16], not nan"),
        ("inf", "--outscale must be in (0, 16], not inf"),
        ("0.001", "--outscale 0.001 makes {} (96x64) 0x0 pixels; an output needs at least 1 pixel a side"),
    ],
)
def test_image_outscale_is_checked_before_the_model_runs(
    work: Path, cli: Cli, value: str, message: str
) -> None:
    err = _refused(cli, work, "image", work / "in.png", work / "out.png", "--outscale", value)
    assert message.format(work / "in.png") in err


def test_restore_outscale_under_a_pixel_is_refused(work: Path, cli: Cli) -> None:
    err = _refused(cli, work, "restore", work / "c100.mp4", work / "o.mkv", "-q", "--outscale", "0.01")
    assert "--outscale 0.01 makes" in err and "0x0 pixels" in err


@pytest.mark.parametrize("kind", ["json", "toml", "string"])
def test_a_5000_digit_number_in_keyframes_is_a_message(work: Path, cli: Cli, kind: str) -> None:
    if kind == "json":
        (work / "k.json").write_text('{"blur": [{"at": ' + BIG + ', "value": 0.5}]}')
        keys, message = (
            str(work / "k.json"),
            f"{work / 'k.json'}: invalid JSON: a number has more than 4300 digits",
        )
    elif kind == "toml":
        (work / "k.toml").write_text(f"[[blur]]\nat = {BIG}\nvalue = 0.5\n")
        keys, message = (
            str(work / "k.toml"),
            f"{work / 'k.toml'}: invalid TOML: a number has more than 4300 digits",
        )
    else:
        keys, message = f"blur: {BIG}=0.5", "a 5000-digit number is too large for a position"
    for command in (
        ["restore", work / "c100.mp4", work / "o.mkv"],
        ["analyze", work / "c100.mp4", "-o", work / "t.json"],
    ):
        assert message in _refused(cli, work, *command, "-q", "--keyframes", keys)


def test_a_5000_digit_number_in_cuts_or_a_track_is_a_message(work: Path, cli: Cli) -> None:
    analyze = ["analyze", work / "c100.mp4", "-o", work / "t.json", "-q"]
    err = _refused(cli, work, *analyze, "--cuts", f"10,{BIG}")
    assert "--cuts: entry 2 ('99999999999999999999...'): a 5000-digit frame number is too large" in err
    (work / "cuts.txt").write_text(f"10\n{BIG}\n")
    err = _refused(cli, work, *analyze, "--cuts", work / "cuts.txt")
    assert f"{work / 'cuts.txt'}: entry 2 ('99999999999999999999...'): a 5000-digit frame number" in err
    text = _track(3).save(work / "big.json").read_text()
    (work / "big.json").write_text(text.replace('"index": 2,', f'"index": {BIG},'))
    err = _refused(
        cli, work, "restore", work / "c100.mp4", work / "o.mkv", "-q", "--track", work / "big.json"
    )
    assert f"{work / 'big.json'}: invalid JSON: a number has more than 4300 digits" in err
    text = _track(3).save(work / "big.csv").read_text()
    (work / "big.csv").write_text(text.replace("\n2,", f"\n{BIG},"))
    err = _refused(cli, work, "restore", work / "c100.mp4", work / "o.mkv", "-q", "--track", work / "big.csv")
    assert f"{work / 'big.csv'}: line 7: field 'index': a 5000-digit number is too large" in err


# --- 6. what killed writers leave --------------------------------------------------------------------


def test_a_killed_writers_partial_is_removed_by_the_next_restore(
    work: Path, cli: Cli, caplog: pytest.LogCaptureFixture
) -> None:
    """`kill -9` leaves `.NAME.<pid>.<random>.partial.EXT`; the next write to NAME removes it (its
    process is gone) and says so; a live writer's is left alone."""
    dead = (
        int(Path("/proc/sys/kernel/pid_max").read_text()) + 1000
        if Path("/proc/sys/kernel/pid_max").exists()
        else 2**22 + 1000
    )
    stale = work / f".o.{dead}.x1y2z3w4.partial.mkv"
    live = work / f".o.{os.getppid()}.a1b2c3d4.partial.mkv"
    stale.write_bytes(b"half a video")
    live.write_bytes(b"someone is writing")
    with caplog.at_level(logging.WARNING):
        r = cli("restore", work / "c100.mp4", work / "o.mkv", "-q", "--frames", "0:2")
    assert r.returncode == 0, r.stderr
    assert not stale.exists() and live.exists()
    assert f"{stale}: removed, left by an interrupted write (process {dead} is gone)" in caplog.text
    assert sorted(_partials(work)) == [live.name]
