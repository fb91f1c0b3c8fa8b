"""The streaming restoration pipeline end to end, on real files made in the test."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from mmrealsr_video import EncodeSettings, RestoreSettings, load_model, restore_video
from mmrealsr_video.errors import InputError, OutputError, SettingsError
from mmrealsr_video.plan.track import CoefficientTrack
from tests.conftest import Cli
from tests.media import (
    Scene,
    packets,
    photos,
    write_audio_only,
    write_av_clip,
    write_clip,
    write_empty_video,
    write_lagged_audio_clip,
)

EXE = Path(sys.executable).with_name("mmrealsr-video")


def _frames(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as c:
        return list(c.decode(video=0))


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pipeline") / "source.mkv"
    write_av_clip(path, frames=30, size=(48, 32))
    return path


def test_end_to_end_keeps_everything(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "restored.mkv"
    summary = restore_video(clip, out, RestoreSettings(progress=False, save_track=tmp_path / "t.json"))
    src, dst = _frames(clip), _frames(out)
    assert summary.frames == len(dst) == len(src) == 30
    assert [f.pts for f in dst] == [f.pts for f in src]
    assert (dst[0].width, dst[0].height) == (4 * 48, 4 * 32)
    assert packets(out, "audio") == packets(clip, "audio")  # byte-identical, same timestamps
    assert packets(out, "subtitle") == packets(clip, "subtitle")
    with av.open(str(clip)) as a, av.open(str(out)) as b:
        assert [c["metadata"] for c in b.chapters()] == [c["metadata"] for c in a.chapters()]
        assert b.metadata.get("title") == a.metadata["title"]
        va, vb = a.streams.video[0].codec_context, b.streams.video[0].codec_context
        assert (vb.colorspace, vb.color_range) == (va.colorspace, va.color_range)
    track = CoefficientTrack.load(tmp_path / "t.json")
    assert len(track) == 30 and track.model == "default"
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]


def test_part_of_the_input_and_fixed_coefficients(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "part.mkv"
    summary = restore_video(
        clip,
        out,
        RestoreSettings(
            progress=False, frames=(6, 18), outscale=2, save_track=tmp_path / "p.csv", noise=None
        ),
    )
    dst = _frames(out)
    assert summary.frames == len(dst) == 12
    assert (dst[0].width, dst[0].height) == (96, 64)
    src = _frames(clip)
    assert [f.pts - dst[0].pts for f in dst] == [f.pts - src[6].pts for f in src[6:18]]


def test_same_track_same_frames_as_streaming(clip: Path, tmp_path: Path) -> None:
    """restore --track with the track that streaming analysis produced gives identical frames."""
    a, b = tmp_path / "a.mkv", tmp_path / "b.mkv"
    lossless = EncodeSettings(codec="ffv1")
    restore_video(clip, a, RestoreSettings(progress=False, encode=lossless, save_track=tmp_path / "a.json"))
    restore_video(clip, b, RestoreSettings(progress=False, encode=lossless, track=tmp_path / "a.json"))
    for fa, fb in zip(_frames(a), _frames(b), strict=True):
        assert np.array_equal(fa.to_ndarray(), fb.to_ndarray())


def test_keyframes_apply_on_top_of_a_track(clip: Path, tmp_path: Path) -> None:
    restore_video(clip, tmp_path / "a.mkv", RestoreSettings(progress=False, save_track=tmp_path / "a.json"))
    keyed = RestoreSettings(
        progress=False, track=tmp_path / "a.json", keyframes="noise: 0|=0.9", save_track=tmp_path / "b.json"
    )
    restore_video(clip, tmp_path / "b.mkv", keyed)
    a, b = CoefficientTrack.load(tmp_path / "a.json"), CoefficientTrack.load(tmp_path / "b.json")
    assert all(r.noise == pytest.approx(0.9) and r.source == "keyframe" for r in b.frames)
    assert [r.blur for r in b.frames] == [r.blur for r in a.frames]


def test_track_of_a_part_names_source_frames_and_restores_that_part(clip: Path, tmp_path: Path) -> None:
    """A track saved from --frames 6:18 numbers its records by source frame, and restoring the same
    part from it gives the same frames; a part it does not hold is refused, naming the frame."""
    a, b = tmp_path / "a.mkv", tmp_path / "b.mkv"
    lossless = EncodeSettings(codec="ffv1")
    part = RestoreSettings(progress=False, encode=lossless, frames=(6, 18), save_track=tmp_path / "t.json")
    restore_video(clip, a, part)
    track = CoefficientTrack.load(tmp_path / "t.json")
    assert [r.index for r in track.frames] == list(range(6, 18))
    restore_video(
        clip, b, RestoreSettings(progress=False, encode=lossless, frames=(6, 18), track=tmp_path / "t.json")
    )
    for fa, fb in zip(_frames(a), _frames(b), strict=True):
        assert np.array_equal(fa.to_ndarray(), fb.to_ndarray())
    with pytest.raises(InputError, match=r"holds frames 6-17 but not frame 4 of"):
        restore_video(
            clip,
            tmp_path / "c.mkv",
            RestoreSettings(progress=False, frames=(4, 8), track=tmp_path / "t.json"),
        )
    assert not (tmp_path / "c.mkv").exists()


@pytest.mark.parametrize(
    "case", ["truncated", "no_video", "zero_frames", "unwritable", "same_as_input", "exists"]
)
def test_bad_inputs_fail_cleanly(clip: Path, tmp_path: Path, case: str, cli: Cli) -> None:
    src = tmp_path / "in.mkv"
    src.write_bytes(clip.read_bytes())
    out = tmp_path / "out.mkv"
    if case == "truncated":
        data = src.read_bytes()
        src.write_bytes(data[: len(data) // 3])
    elif case == "no_video":
        write_audio_only(src)
    elif case == "zero_frames":
        src.unlink()
        src = tmp_path / "in.avi"
        write_empty_video(src)
    elif case == "unwritable":
        out = Path("/proc/mmrealsr-video-test-out.mkv")  # not writable even for root
    elif case == "same_as_input":
        out = src
    elif case == "exists":
        out.write_bytes(b"keep")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    r = cli("restore", str(src), str(out), "-q")
    if case == "truncated" and r.returncode == 0:
        pytest.fail("a truncated input was restored without a word")
    assert r.returncode != 0
    assert "Traceback" not in r.stderr and "error:" in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing left behind
    if case == "exists":
        assert out.read_bytes() == b"keep"


def test_errors_are_typed(clip: Path, tmp_path: Path) -> None:
    with pytest.raises(OutputError):
        restore_video(clip, clip, RestoreSettings(progress=False))
    with pytest.raises(InputError):
        restore_video(tmp_path / "absent.mkv", tmp_path / "x.mkv", RestoreSettings(progress=False))
    with pytest.raises(SettingsError, match=r"^frames 10:5: expected") as e:
        RestoreSettings(frames=(10, 5))
    assert e.value.field == "frames"  # the API's name; the CLI shows it as --frames
    assert load_model("default").scale == 4


def test_variable_frame_rate_and_ten_bit(tmp_path: Path) -> None:
    src = tmp_path / "vfr10.mkv"
    write_av_clip(
        src,
        frames=14,
        size=(40, 24),
        codec="ffv1",
        pix_fmt="yuv420p10le",
        audio=False,
        subtitles=False,
        chapters=False,
        pts_step=[10, 30, 20],
    )
    out = tmp_path / "out.mkv"
    restore_video(src, out, RestoreSettings(progress=False, encode=EncodeSettings(codec="ffv1")))
    a, b = _frames(src), _frames(out)
    assert [f.pts for f in b] == [f.pts for f in a]  # uneven steps kept exactly
    assert b[0].format.name == "yuv420p10le"  # the input's bit depth is kept
    assert len(set(np.diff([f.pts for f in a]))) > 1


def test_cli_restore_prints_summary(clip: Path, tmp_path: Path, cli: Cli) -> None:
    out = tmp_path / "cli.mp4"
    r = cli("restore", str(clip), str(out), "--noise", "+0.1", "--frames", ":8", "--crf", "28", "-q")
    assert r.returncode == 0, r.stderr
    assert "8 frames" in r.stdout and str(out) in r.stdout
    assert len(_frames(out)) == 8


def test_cli_restore_with_the_bundled_x2_model(clip: Path, tmp_path: Path, cli: Cli) -> None:
    out = tmp_path / "x2.mkv"
    r = cli("restore", str(clip), str(out), "--model", "compact-x2", "--frames", ":4", "-q")
    assert r.returncode == 0, r.stderr
    frames = _frames(out)
    assert len(frames) == 4 and (frames[0].width, frames[0].height) == (96, 64)  # 48x32 at x2
    audio = av.open(str(out))
    assert len(audio.streams.audio) == 1  # the source's audio comes along as with the x4 model
    audio.close()


def test_interlaced_input_is_flagged_in_the_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    src = tmp_path / "interlaced.mkv"
    with av.open(str(src), "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"x264-params": "interlaced=1:tff=1"})
        stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
        rng = np.random.default_rng(0)
        for i in range(4):
            frame = av.VideoFrame.from_ndarray(
                rng.integers(0, 255, (24, 32, 3), dtype=np.uint8), format="rgb24"
            )
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with caplog.at_level("WARNING", logger="mmrealsr_video.engine"):
        summary = restore_video(src, tmp_path / "out.mkv", RestoreSettings(progress=False))
    assert summary.frames == 4
    assert any("interlaced" in r.getMessage() for r in caplog.records)


def test_alpha_is_carried_by_a_plain_resize(tmp_path: Path) -> None:
    src = tmp_path / "alpha.mkv"
    h, w = 24, 32
    alpha = np.zeros((h, w), np.uint8)
    alpha[:, w // 2 :] = 255  # right half opaque
    with av.open(str(src), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuva420p"
        for i in range(3):
            rgba = np.dstack([np.full((h, w, 3), 90 + 20 * i, np.uint8), alpha])
            frame = av.VideoFrame.from_ndarray(rgba, format="rgba").reformat(format="yuva420p")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    out_path = tmp_path / "out.mkv"
    restore_video(src, out_path, RestoreSettings(progress=False, encode=EncodeSettings(codec="ffv1")))
    frames = _frames(out_path)
    assert len(frames) == 3 and frames[0].format.name == "yuva420p"
    a = frames[0].to_ndarray(format="rgba")[:, :, 3]
    assert a.shape == (4 * h, 4 * w)
    assert a[:, : 4 * w // 2 - 4].max() < 10 and a[:, 4 * w // 2 + 4 :].min() > 245


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuva420p"])
def test_pictures_coded_in_the_restoring_thread_are_the_same(
    clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pix_fmt: str
) -> None:
    """A GPU run codes each picture to YUV on the GPU, in the restoring thread; a CPU run in the
    encode thread. Forced here on the CPU, the restoring-thread path writes the same frames."""
    import mmrealsr_video.io.sink as sink_module

    encode = EncodeSettings(codec="ffv1", pix_fmt=pix_fmt)
    settings = RestoreSettings(progress=False, frames=(0, 8), encode=encode)
    restore_video(clip, tmp_path / "a.mkv", settings)
    calls: list[bool] = []

    def here(rgb: object) -> bool:
        calls.append(True)
        return True

    monkeypatch.setattr(sink_module, "_code_in_producer", here)
    restore_video(clip, tmp_path / "b.mkv", settings)
    assert len(calls) == 8
    a, b = _frames(tmp_path / "a.mkv"), _frames(tmp_path / "b.mkv")
    assert len(a) == len(b) == 8 and a[0].format.name == pix_fmt
    for fa, fb in zip(a, b, strict=True):
        assert fa.pts == fb.pts
        assert all(np.array_equal(pa, pb) for pa, pb in zip(_planes(fa), _planes(fb), strict=True))
    assert not np.array_equal(_planes(a[0])[0], _planes(a[7])[0])  # real, moving pictures


def _planes(frame: av.VideoFrame) -> list[np.ndarray]:
    return [np.frombuffer(bytes(p), np.uint8) for p in frame.planes]


@pytest.mark.slow
def test_frame_threaded_decoding_stops_early_without_hanging(tmp_path: Path) -> None:
    """The decoder's threading mode, chosen by this test: FFmpeg frame threading ('AUTO', what
    open_video sets) is reported to hang when decoding stops before the end in a process that has
    PyTorch's thread pools up (PyAV #1849, pytorch #150259). Here it is exercised the way the
    pipeline uses it (model calls between frames, early stops as --frames makes them, the decoder
    in its own thread) in a child process with a timeout, so that a hang fails instead of blocking.
    """
    path = tmp_path / "long.mp4"
    ph = photos()
    write_clip(path, [Scene(ph[0], 48), Scene(ph[1], 48)], size=(96, 64), codec="libx264", pix_fmt="yuv420p")
    child = f"""
import threading, torch
from mmrealsr_video import load_model
from mmrealsr_video.io.video import open_video
model = load_model("default")
def decode(stop_after):
    container, stream = open_video({str(path)!r})
    assert str(stream.thread_type).endswith("AUTO"), stream.thread_type
    for i, frame in enumerate(container.decode(stream)):
        model.restore(torch.rand(1, 3, 16, 16), (0.5, 0.5))
        if i == stop_after:
            break
    container.close()
for k in range(12):
    t = threading.Thread(target=decode, args=(k,))
    t.start()
    t.join()
print("done")
"""
    r = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0 and "done" in r.stdout, r.stderr
    out = tmp_path / "part.mkv"
    r = subprocess.run(  # in a child too, so that a hang fails at the timeout
        [str(EXE), "restore", str(path), str(out), "--frames", "0:5", "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert len(_frames(out)) == 5


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".mkv", ".mp4", ".mov", ".avi", ".nut"])
def test_every_listed_container_restores_the_sample(tmp_path: Path, suffix: str) -> None:
    """Each container the docs list (one table: io.sink.MUXERS) restores part of the bundled sample,
    its video at x4 and its audio copied where the container takes AAC."""
    sample = Path(__file__).resolve().parent.parent / "examples" / "sample.mp4"
    out = tmp_path / f"sample{suffix}"
    summary = restore_video(sample, out, RestoreSettings(progress=False, frames=(0, 4)))
    frames = _frames(out)
    assert summary.frames == len(frames) == 4
    assert (frames[0].width, frames[0].height) == (960, 640)
    with av.open(str(out)) as c:
        assert len(c.streams.audio) == 1
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_image_and_a_one_frame_restore_agree(tmp_path: Path) -> None:
    """`image` and `restore` of the same picture (a one-image sequence) get the same automatic
    coefficients: the same crops through the same estimator."""
    from mmrealsr_video import ImageSettings, restore_image

    folder = tmp_path / "seq"
    folder.mkdir()
    picture = cv2.resize(photos()[2], (160, 160), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(folder / "pic.png"), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    still = restore_image(folder / "pic.png", tmp_path / "still.png", ImageSettings())
    restore_video(folder, tmp_path / "out", RestoreSettings(progress=False, save_track=tmp_path / "t.json"))
    (record,) = CoefficientTrack.load(tmp_path / "t.json").frames
    assert (still.record.auto_blur, still.record.auto_noise) == (record.auto_blur, record.auto_noise)
    assert (still.record.blur, still.record.noise) == (record.blur, record.noise)
    a = cv2.imread(str(tmp_path / "still.png"))
    b = cv2.imread(str(tmp_path / "out" / "pic.png"))
    assert a.shape == (640, 640, 3) and np.array_equal(a, b)  # the same picture, too


# --- issue 20: what a hostile user found ------------------------------------------------------------


@pytest.fixture(scope="module")
def lagged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 s of video whose audio is stored 1 s behind it."""
    path = tmp_path_factory.mktemp("lagged") / "lagged.mp4"
    write_lagged_audio_clip(path, frames=192, lag=1.0)
    return path


@pytest.mark.parametrize("part", [["--frames", "0:60"], ["--start", "2.5", "--duration", "3"]])
def test_a_part_keeps_the_audio_the_file_stores_behind_its_video(
    lagged: Path, tmp_path: Path, cli: Cli, part: list[str]
) -> None:
    """The loop stopped reading at the first picture past the part: of audio stored 1 s late, a
    2.5 s part kept 1.6 s. The file is now read on (pictures not decoded) until every copied
    stream has passed the part's end: the audio starts and ends with the video, within one AAC
    frame (1024 samples; the first may start a frame early, the encoder's priming)."""
    out = tmp_path / "part.mp4"
    r = cli("restore", lagged, out, "-q", *part)
    assert r.returncode == 0, r.stderr
    with av.open(str(out)) as c:
        video = [f.time for f in c.decode(video=0)]
    with av.open(str(out)) as c:
        audio = [
            (float(p.pts * p.time_base), float(p.duration * p.time_base)) for p in c.demux(audio=0) if p.size
        ]
    frame = 1024 / 48000
    v_start, v_end = video[0], video[0] + len(video) / 24
    a_start, a_end = audio[0][0], audio[-1][0] + audio[-1][1]
    assert len(video) == (60 if part[0] == "--frames" else 72)
    assert abs(a_start - v_start) <= frame + 1e-6 and abs(a_end - v_end) <= frame + 1e-6, (
        a_start,
        a_end,
        v_end,
    )
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_two_restores_to_one_output_cannot_both_succeed(clip: Path, tmp_path: Path) -> None:
    """Both passed the check at the start and the later silently replaced the other's output. The
    check is now made again, atomically, by the rename (a hard link fails on an existing name)."""
    out = tmp_path / "out.mkv"

    def other_restore() -> None:  # finishes first, while this restore is writing its partial file
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if any(p.name.startswith(".out.") and ".partial" in p.name for p in tmp_path.iterdir()):
                out.write_bytes(b"the other restore's video")
                return
            time.sleep(0.001)

    other = threading.Thread(target=other_restore)
    other.start()
    try:
        with pytest.raises(
            OutputError, match=r"out\.mkv: already exists \(written meanwhile by another process\?\)"
        ):
            restore_video(clip, out, RestoreSettings(progress=False, save_track=tmp_path / "t.json"))
    finally:
        other.join()
    assert out.read_bytes() == b"the other restore's video"
    assert [p.name for p in tmp_path.iterdir()] == ["out.mkv"]  # no track, no partial


@pytest.mark.slow
def test_sigterm_stops_a_restore_like_ctrl_c_and_leaves_nothing(tmp_path: Path) -> None:
    """SIGTERM left `.NAME.XXXX.partial.mp4` behind: it now ends the command as Ctrl-C does, the
    temporary file removed, with status 143 (128 + SIGTERM) and a message (the single pass; a
    job's SIGTERM leaves a resumable job, see tests/jobs)."""
    src = tmp_path / "long.mkv"
    write_clip(src, [Scene(photos()[0], 240)], size=(96, 64), codec="libx264", pix_fmt="yuv420p")
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen(
        [str(EXE), "restore", str(src), str(out), "-q", "--no-job"], stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 240
        started = False
        while not started and proc.poll() is None and time.monotonic() < deadline:
            started = any(".partial" in p.name and p.stat().st_size > 0 for p in tmp_path.iterdir())
            time.sleep(0.05)
        assert started, "the restore did not start writing"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert "mmrealsr-video: interrupted" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.mkv"]
