"""Image sequences in and out of the restore pipeline, and rotated (phone) videos, on real files
written by the tests and restored with the bundled default model."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from mmrealsr_video import EncodeSettings, RestoreSettings, analyze, load_model, restore_video
from mmrealsr_video.errors import InputError, OutputError
from mmrealsr_video.io.images import read_image, to_tensor
from mmrealsr_video.io.sequences import find_sequence
from mmrealsr_video.plan.track import CoefficientTrack
from tests.conftest import Cli
from tests.media import Scene, photos, render_frame, write_av_clip

SIZE = (48, 32)  # width, height


def _renders(count: int, photo: int = 0, size: tuple[int, int] = SIZE) -> list[np.ndarray]:
    rng = np.random.default_rng(photo)
    scene = Scene(photos()[photo], count, 0.8, 3.0)
    return [render_frame(scene, t, size, rng) for t in range(count)]


def _write_sequence(
    folder: Path, names: list[str], *, deep: bool = False, alpha: bool = False, photo: int = 0
) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, rgb in zip(names, _renders(len(names), photo), strict=True):
        img = rgb.astype(np.uint16) * 257 if deep else rgb
        bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        if alpha:
            a = np.zeros(img.shape[:2], img.dtype)
            a[:, img.shape[1] // 2 :] = np.iinfo(img.dtype).max
            bgr = np.dstack([bgr, a])
        assert cv2.imwrite(str(folder / name), bgr)
        paths.append(folder / name)
    return paths


def _fast(**kw: object) -> RestoreSettings:
    return RestoreSettings(progress=False, **kw)  # type: ignore[arg-type]


def _video_frames(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as c:
        return list(c.decode(video=0))


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_natural_order_patterns_and_globs(tmp_path: Path) -> None:
    names = ["frame10.png", "frame2.png", "frame1.png", "Frame3.png"]
    _write_sequence(tmp_path / "f", names)
    (tmp_path / "f" / "notes.txt").write_text("not a frame")
    assert [p.name for p in find_sequence(tmp_path / "f").files] == [
        "frame1.png", "frame2.png", "Frame3.png", "frame10.png",
    ]  # fmt: skip
    _write_sequence(tmp_path / "p", ["001.png", "002.png", "010.png", "x01.png", "0003.jpg"])
    assert [p.name for p in find_sequence(tmp_path / "p" / "%03d.png").files] == [
        "001.png", "002.png", "010.png",
    ]  # fmt: skip
    assert [p.name for p in find_sequence(tmp_path / "p" / "*.png").files] == [
        "001.png", "002.png", "010.png", "x01.png",
    ]  # fmt: skip
    with pytest.raises(InputError, match="no file matches"):
        find_sequence(tmp_path / "p" / "*.tif")
    with pytest.raises(InputError, match="no image files"):
        find_sequence(tmp_path / "empty" if (tmp_path / "empty").mkdir() is None else "")


def test_sixteen_bit_sequence_keeps_names_depth_and_matches_the_api(tmp_path: Path) -> None:
    src = _write_sequence(tmp_path / "in", [f"shot_{i * 5}.png" for i in range(5)], deep=True)
    out = tmp_path / "out"
    summary = restore_video(tmp_path / "in", out, _fast(save_track=tmp_path / "t.json"))
    assert summary.frames == 5 and (summary.width, summary.height) == (4 * 48, 4 * 32)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in src)
    track = CoefficientTrack.load(tmp_path / "t.json")
    assert [r.pts_time for r in track.frames] == [i / 25 for i in range(5)]  # --fps default 25
    model = load_model("default")
    ordered = find_sequence(tmp_path / "in").files  # shot_0, shot_5, shot_10...: natural order
    for path, rec in zip(ordered, track.frames, strict=True):
        got = cv2.imread(str(out / path.name), cv2.IMREAD_UNCHANGED)
        assert got.dtype == np.uint16 and got.shape == (128, 192, 3)
        rgb, _ = read_image(path)
        y = model.restore_frames(to_tensor(rgb), torch.tensor([[rec.blur, rec.noise]]), (128, 192))
        want = y[0].clamp(0, 1).mul(65535).round().permute(1, 2, 0).numpy().astype(np.int64)
        diff = np.abs(cv2.cvtColor(got, cv2.COLOR_BGR2RGB).astype(np.int64) - want)
        assert diff.max() <= 1
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]


def test_video_to_images_eight_and_ten_bit(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mkv"
    write_av_clip(clip, frames=6, size=SIZE, audio=False, subtitles=False, chapters=False)
    out = tmp_path / "frames"
    summary = restore_video(clip, str(out) + "/", _fast(frames=(2, 5)))
    assert summary.frames == 3
    assert sorted(p.name for p in out.iterdir()) == ["000002.png", "000003.png", "000004.png"]
    img = cv2.imread(str(out / "000002.png"), cv2.IMREAD_UNCHANGED)
    assert img.dtype == np.uint8 and img.shape == (128, 192, 3)

    deep = tmp_path / "ten.mkv"
    write_av_clip(
        deep,
        frames=3,
        size=SIZE,
        codec="ffv1",
        pix_fmt="yuv420p10le",
        audio=False,
        subtitles=False,
        chapters=False,
    )
    restore_video(deep, tmp_path / "deep" / "f%04d.tif", _fast())
    names = sorted(p.name for p in (tmp_path / "deep").iterdir())
    assert names == ["f0000.tif", "f0001.tif", "f0002.tif"]
    assert cv2.imread(str(tmp_path / "deep" / names[0]), cv2.IMREAD_UNCHANGED).dtype == np.uint16


def test_sequence_to_video_at_the_given_rate(tmp_path: Path) -> None:
    _write_sequence(tmp_path / "in", [f"{i:04d}.jpg" for i in range(6)])
    out = tmp_path / "out.mkv"
    summary = restore_video(
        tmp_path / "in" / "%04d.jpg", out, _fast(fps="30000/1001", encode=EncodeSettings(codec="ffv1"))
    )
    frames = _video_frames(out)
    assert summary.frames == len(frames) == 6
    assert (frames[0].width, frames[0].height) == (192, 128)
    times = [float(f.pts * f.time_base) for f in frames]
    assert times == pytest.approx([i * 1001 / 30000 for i in range(6)], abs=1e-3)
    with av.open(str(out)) as c:
        assert c.streams.video[0].average_rate == Fraction(30000, 1001)
        assert not c.streams.audio


def test_sequence_options_track_keyframes_range_outscale_format(tmp_path: Path, cli: Cli) -> None:
    _write_sequence(tmp_path / "in", [f"img{i}.png" for i in range(6)])
    r = cli("restore", str(tmp_path / "in" / "*.png"), str(tmp_path / "out"), "--frames", "1:5",
            "--outscale", "2", "--image-format", "jpg", "--keyframes", "blur: 0=0.25", "--noise", "0.5",
            "--save-track", str(tmp_path / "t.csv"), "-q")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "4 frames" in r.stdout and str(tmp_path / "out") in r.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"img{i}.jpg" for i in range(1, 5)]
    img = cv2.imread(str(tmp_path / "out" / "img1.jpg"), cv2.IMREAD_UNCHANGED)
    assert img.shape == (64, 96, 3) and img.dtype == np.uint8
    track = CoefficientTrack.load(tmp_path / "t.csv")
    assert len(track) == 4
    assert {round(r.blur, 6) for r in track.frames} == {0.25} and {r.noise for r in track.frames} == {0.5}
    # a time range instead of frames (converted with --fps)
    restore_video(tmp_path / "in", tmp_path / "again", _fast(fps=10, start=0.1, duration=0.4))
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == [f"img{i}.png" for i in range(1, 5)]
    info = cli("info", str(tmp_path / "in"))
    assert info.returncode == 0, info.stderr
    assert "6 frames" in info.stdout and "48x32" in info.stdout and "8-bit" in info.stdout


def test_alpha_and_gray_frames(tmp_path: Path) -> None:
    _write_sequence(tmp_path / "rgba", ["a.png", "b.png"], alpha=True)
    restore_video(tmp_path / "rgba", tmp_path / "out", _fast())
    out = cv2.imread(str(tmp_path / "out" / "a.png"), cv2.IMREAD_UNCHANGED)
    assert out.shape == (128, 192, 4)
    a = out[:, :, 3]
    assert a[:, : 96 - 4].max() < 10 and a[:, 96 + 4 :].min() > 245
    gray = tmp_path / "gray"
    gray.mkdir()
    for i, rgb in enumerate(_renders(2)):
        cv2.imwrite(str(gray / f"{i}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    restore_video(gray, tmp_path / "gout", _fast())
    assert cv2.imread(str(tmp_path / "gout" / "0.png"), cv2.IMREAD_UNCHANGED).shape == (128, 192, 3)


@pytest.mark.parametrize("case", ["size", "unreadable", "exists", "holds_input", "fps_for_video", "clash"])
def test_bad_sequences_fail_cleanly(tmp_path: Path, case: str) -> None:
    src = tmp_path / "in"
    paths = _write_sequence(src, [f"{i}.png" for i in range(5)])
    out = tmp_path / "out"
    settings = _fast()
    source: Path = src
    error: type[Exception] = InputError
    if case == "size":
        cv2.imwrite(str(paths[3]), np.zeros((20, 30, 3), np.uint8))
        message = r"3\.png: 30x20, but the sequence's first frame .*0\.png\) is 48x32"
    elif case == "unreadable":
        paths[2].write_bytes(b"not an image")
        message = r"2\.png: not a readable image"
    elif case == "exists":
        out.mkdir()
        (out / "keep.txt").write_text("keep")
        error, message = OutputError, "not empty"
    elif case == "holds_input":
        out = src
        error, message = OutputError, "holds the input"
    elif case == "fps_for_video":
        source = tmp_path / "clip.mkv"
        write_av_clip(source, frames=3, size=SIZE, audio=False, subtitles=False, chapters=False)
        settings = _fast(fps=30)
        message = "fps sets an image sequence"
    else:
        cv2.imwrite(str(src / "0.jpg"), np.zeros((32, 48, 3), np.uint8))
        error, message = OutputError, r"0\.jpg and 0\.png would both be written as 0\."
    before = _listing(tmp_path)
    with pytest.raises(error, match=message):
        restore_video(source, out, settings)
    assert _listing(tmp_path) == before  # nothing written, nothing half-written
    if case == "exists":
        restore_video(src, out, _fast(force=True))  # replaced with --force
        assert sorted(p.name for p in out.iterdir()) == [p.name for p in paths]
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_cli_sequence_errors_are_clean(tmp_path: Path, cli: Cli) -> None:
    paths = _write_sequence(tmp_path / "in", [f"{i}.png" for i in range(3)])
    cv2.imwrite(str(paths[2]), np.zeros((20, 30, 3), np.uint8))
    before = _listing(tmp_path)
    r = cli("restore", str(tmp_path / "in"), str(tmp_path / "out.mp4"), "-q")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "2.png: 30x20" in r.stderr and "48x32" in r.stderr
    assert _listing(tmp_path) == before


# --- rotation ---------------------------------------------------------------------------------------


def _rotated_clip(path: Path, degrees: int, frames: int = 4) -> np.ndarray:
    """A clip coded 48x32 whose display matrix turns it by ``degrees`` counter-clockwise (PyAV's
    convention; a phone's portrait video reads -90: shown turned 90 degrees clockwise). The coded
    picture has a bright block in its top-left corner; returns the first coded RGB picture."""
    renders = _renders(frames, photo=2)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv444p"
        stream.set_display_rotation(degrees)
        for i, rgb in enumerate(renders):
            rgb = rgb.copy()
            rgb[:8, :8] = 255
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return renders[0]


@pytest.mark.parametrize(("degrees", "size", "corner"), [(-90, (128, 192), "tr"), (180, (192, 128), "br")])
def test_rotated_video_is_restored_upright(
    tmp_path: Path, degrees: int, size: tuple[int, int], corner: str
) -> None:
    src = tmp_path / "phone.mp4"
    _rotated_clip(src, degrees)
    with av.open(str(src)) as c:
        assert next(c.decode(video=0)).rotation % 360 == degrees % 360  # the clip really carries the rotation
    out = tmp_path / "out.mkv"
    summary = restore_video(
        src, out, _fast(encode=EncodeSettings(codec="ffv1"), save_track=tmp_path / "restore.json")
    )
    assert (summary.width, summary.height) == size
    frames = _video_frames(out)
    assert len(frames) == 4
    assert (frames[0].width, frames[0].height) == size
    assert all(f.rotation == 0 for f in frames)  # upright pictures, no rotation written
    rgb = frames[0].to_ndarray(format="rgb24").astype(np.float32)
    h, w = rgb.shape[:2]
    corners = {
        "tl": rgb[:16, :16], "tr": rgb[:16, w - 16 :], "bl": rgb[h - 16 :, :16], "br": rgb[h - 16 :, w - 16 :]
    }  # fmt: skip
    assert corners[corner].mean() > 235  # the coded top-left block, where a player shows it
    assert all(corners[k].mean() < 235 for k in corners if k != corner)
    # images come out upright too, and analyze() sees the same pictures as the restore
    restore_video(src, tmp_path / "frames", _fast())
    img = cv2.imread(str(tmp_path / "frames" / "000000.png"), cv2.IMREAD_UNCHANGED)
    assert img.shape[:2] == (size[1], size[0])
    streamed = CoefficientTrack.load(tmp_path / "restore.json")
    analysed = analyze(src, "default")
    assert [r.scene for r in analysed.frames] == [r.scene for r in streamed.frames]
    for a, b in zip(analysed.frames, streamed.frames, strict=True):
        assert (a.raw_blur is None, a.raw_noise is None) == (b.raw_blur is None, b.raw_noise is None)
        assert (a.raw_blur or 0, a.raw_noise or 0, a.blur, a.noise) == pytest.approx(
            (b.raw_blur or 0, b.raw_noise or 0, b.blur, b.noise), abs=1e-6
        )
