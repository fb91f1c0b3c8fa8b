"""Test media made by the tests themselves: clips of real photographs (scikit-image's) with known
degradations, written with PyAV in a fraction of a second."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from skimage import data


def photos() -> list[np.ndarray]:
    """Real colour photographs bundled with scikit-image."""
    return [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.stereo_motorcycle()[0]]


@dataclass(frozen=True)
class Scene:
    photo: np.ndarray
    frames: int
    blur_sigma: float = 0.0  # Gaussian sigma in pixels of the 2x "clean" render
    noise_sigma: float = 0.0  # Gaussian sigma on the 0-255 scale, a fresh realisation every frame
    flash_at: int | None = None  # a single white frame inside the scene


def render_frame(scene: Scene, t: int, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Frame t of a scene: a slow pan across the photo, blurred at 2x, downscaled, noised."""
    w, h = size
    photo = scene.photo
    # The clean render is 2x the frame; fit the photo so that there is room to pan.
    fit = max((2 * w + scene.frames) / photo.shape[1], (2 * h) / photo.shape[0])
    big = cv2.resize(
        photo, None, fx=fit, fy=fit, interpolation=cv2.INTER_AREA if fit < 1 else cv2.INTER_CUBIC
    )
    x0 = min(t, big.shape[1] - 2 * w)
    y0 = (big.shape[0] - 2 * h) // 2
    crop = big[y0 : y0 + 2 * h, x0 : x0 + 2 * w].astype(np.float32)
    if scene.blur_sigma > 0:
        crop = cv2.GaussianBlur(crop, (0, 0), scene.blur_sigma)
    frame = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA)
    if scene.noise_sigma > 0:
        frame = frame + rng.normal(0, scene.noise_sigma, frame.shape).astype(np.float32)
    if scene.flash_at is not None and t == scene.flash_at:
        frame = np.full_like(frame, 250)
    return np.clip(frame + 0.5, 0, 255).astype(np.uint8)


def write_clip(
    path: Path,
    scenes: list[Scene],
    *,
    size: tuple[int, int] = (128, 96),
    fps: int = 24,
    codec: str = "ffv1",
    pix_fmt: str = "yuv444p",
    seed: int = 0,
    colour: tuple[str, str] | None = None,
) -> list[int]:
    """Writes the scenes back to back; returns the first frame of every scene after the first.

    ``colour`` = (PyAV colorspace, range), e.g. ("ITU709", "MPEG"): frames are converted with it
    and the stream is tagged with it; None leaves the stream untagged (libswscale's defaults).
    """
    rng = np.random.default_rng(seed)
    cuts = []
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=Fraction(fps))
        stream.width, stream.height = size
        stream.pix_fmt = pix_fmt
        if colour is not None:
            stream.codec_context.colorspace = getattr(av.video.reformatter.Colorspace, colour[0])
            stream.codec_context.color_range = getattr(av.video.reformatter.ColorRange, colour[1])
        n = 0
        for k, scene in enumerate(scenes):
            if k:
                cuts.append(n)
            for t in range(scene.frames):
                frame = av.VideoFrame.from_ndarray(render_frame(scene, t, size, rng), format="rgb24")
                if colour is not None:
                    frame = frame.reformat(
                        format=pix_fmt, dst_colorspace=colour[0], dst_color_range=colour[1]
                    )
                frame.pts = n
                frame.time_base = Fraction(1, fps)
                out.mux(stream.encode(frame))
                n += 1
        out.mux(stream.encode(None))
    return cuts


ASS_HEADER = (
    b"[Script Info]\nScriptType: v4.00+\n\n[V4+ Styles]\nFormat: Name, Fontname, Fontsize\n"
    b"Style: Default,Arial,20\n\n[Events]\n"
    b"Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
)


def write_av_clip(
    path: Path,
    *,
    frames: int = 24,
    size: tuple[int, int] = (64, 48),
    fps: int = 24,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    audio: bool = True,
    subtitles: bool = True,
    chapters: bool = True,
    colorspace: str = "ITU709",
    color_range: str = "MPEG",
    pts_step: list[int] | None = None,
    seed: int = 0,
) -> dict[str, object]:
    """A short clip of a real photograph (slow pan) with AAC audio, ASS subtitles, chapters, colour tags
    and metadata. ``pts_step`` gives per-frame pts increments (variable frame rate)."""
    rng = np.random.default_rng(seed)
    scene = Scene(photos()[1], frames, 0.8, 3.0)
    w, h = size
    pts_list: list[int] = []
    with av.open(str(path), "w") as out:
        out.metadata["title"] = "mmrealsr-video test clip"
        v = out.add_stream(codec, rate=Fraction(fps))
        v.width, v.height, v.pix_fmt = w, h, pix_fmt
        v.time_base = Fraction(1, fps * 10)
        v.codec_context.colorspace = getattr(av.video.reformatter.Colorspace, colorspace)
        v.codec_context.color_range = getattr(av.video.reformatter.ColorRange, color_range)
        v.metadata["language"] = "eng"
        a = out.add_stream("aac", rate=48000) if audio else None
        if a is not None:
            a.layout = "stereo"
        s = out.add_stream("ass") if subtitles else None
        if s is not None:
            s.codec_context.time_base = Fraction(1, 1000)
            s.time_base = Fraction(1, 1000)
            s.codec_context.subtitle_header = ASS_HEADER
        if chapters:
            out.set_chapters(
                [
                    {
                        "id": 1,
                        "start": 0,
                        "end": 500,
                        "time_base": Fraction(1, 1000),
                        "metadata": {"title": "One"},
                    },
                    {
                        "id": 2,
                        "start": 500,
                        "end": 1000,
                        "time_base": Fraction(1, 1000),
                        "metadata": {"title": "Two"},
                    },
                ]
            )
        pts = 0
        for t in range(frames):
            img = render_frame(scene, t, size, rng)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame = frame.reformat(format=pix_fmt, dst_colorspace=colorspace, dst_color_range=color_range)
            frame.pts = pts
            frame.time_base = v.time_base
            pts_list.append(pts)
            out.mux(v.encode(frame))
            pts += pts_step[t % len(pts_step)] if pts_step else 10
        out.mux(v.encode(None))
        if a is not None:
            n = int(48000 * frames / fps)
            tone = (0.2 * np.sin(np.arange(n) * 2 * np.pi * 440 / 48000)).astype(np.float32)
            for i in range(0, n, 1024):
                chunk = tone[i : i + 1024]
                if len(chunk) < 1024:
                    break
                af = av.AudioFrame.from_ndarray(np.stack([chunk, chunk]), format="fltp", layout="stereo")
                af.sample_rate = 48000
                af.pts = i
                out.mux(a.encode(af))
            out.mux(a.encode(None))
        if s is not None:
            mux_subtitles(out, s, (100, 600))
    return {"pts": pts_list}


def mux_subtitles(out: av.container.OutputContainer, stream: av.stream.Stream, starts: Iterable[int]) -> None:
    """One ASS line ("line K") of 300 ms at each start (ms) into ``stream`` of ``out``."""
    for k, start in enumerate(starts):
        p = av.Packet(f"{k},0,Default,,0,0,0,,line {k}".encode())
        p.stream = stream
        p.pts = p.dts = start
        p.duration = 300
        p.time_base = Fraction(1, 1000)
        out.mux(p)


def packets(path: Path, kind: str) -> list[tuple[int | None, bytes]]:
    """(pts, payload) of every packet of the first stream of ``kind`` ("audio", "subtitle")."""
    with av.open(str(path)) as c:
        streams = [s for s in c.streams if s.type == kind]
        if not streams:
            return []
        return [(p.pts, bytes(p)) for p in c.demux(streams[0]) if p.size]


def write_audio_only(path: Path) -> None:
    """A file with one audio stream and no video."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def write_empty_video(path: Path) -> None:
    """A file with a video stream that holds no frame (give it an .avi name: Matroska and MP4 cannot
    hold an empty video stream)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=24)
        stream.width, stream.height = 64, 48
        out.start_encoding()  # header and trailer, no packet


def write_lagged_audio_clip(
    path: Path, *, frames: int, lag: float = 1.0, size: tuple[int, int] = (64, 48), fps: int = 24
) -> None:
    """A clip whose AAC audio is stored ``lag`` seconds behind its video: each audio packet is
    muxed among the video packets ``lag`` seconds later (muxing with ``max_interleave_delta`` of
    1 microsecond writes packets in the order given), as some muxers and capture tools leave files."""
    rng = np.random.default_rng(0)
    scene = Scene(photos()[0], frames)
    with av.open(str(path), "w", options={"max_interleave_delta": "1"}) as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        audio = out.add_stream("aac", rate=48000)
        audio.layout = "stereo"
        vpackets, apackets = [], []
        for t in range(frames):
            frame = av.VideoFrame.from_ndarray(render_frame(scene, t, size, rng), format="rgb24")
            frame.pts, frame.time_base = t, Fraction(1, fps)
            vpackets += video.encode(frame)
        vpackets += video.encode(None)
        n = 48000 * frames // fps
        tone = (0.2 * np.sin(np.arange(n) * 2 * np.pi * 440 / 48000)).astype(np.float32)
        for i in range(0, n - 1023, 1024):
            af = av.AudioFrame.from_ndarray(np.stack([tone[i : i + 1024]] * 2), format="fltp", layout="stereo")
            af.sample_rate, af.pts = 48000, i
            apackets += audio.encode(af)
        apackets += audio.encode(None)
        order = [(float(p.dts * p.time_base), 0, k, p) for k, p in enumerate(vpackets)]
        order += [(float(p.dts * p.time_base) + lag, 1, k, p) for k, p in enumerate(apackets)]
        for *_, packet in sorted(order, key=lambda item: item[:3]):
            out.mux(packet)
