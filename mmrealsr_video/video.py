"""Decoding video files into RGB frames with their timestamps, sequentially (no seeking).

The conversion from the stream's YUV to RGB goes through libswscale with the stream's own matrix
and range (``VideoFrame.reformat``), in :func:`frame_to_rgb` and nowhere else.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error
import numpy as np

from mmrealsr_video.errors import InputError

__all__ = ["DecodedFrame", "VideoInfo", "frame_to_rgb", "iter_frames", "probe"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoInfo:
    """What the analysis needs to know of a video stream."""

    path: Path
    width: int
    height: int
    frame_rate: Fraction | None
    time_base: Fraction
    frames: int  # as the container declares it; 0 when unknown
    duration: float | None  # seconds, when declared
    pix_fmt: str
    codec: str


@dataclass(frozen=True)
class DecodedFrame:
    """One decoded picture: ``index`` counts from 0 in decode order of presentation."""

    index: int
    pts_time: float
    rgb: np.ndarray  # (H, W, 3) uint8


def _open(path: str | Path) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if p.is_dir():
        raise InputError(f"{p}: is a folder, not a video file")
    try:
        container = av.open(str(p), mode="r")
    except (av.error.FFmpegError, OSError) as e:
        raise InputError(f"{p}: cannot be opened as a video ({e})") from None
    if not container.streams.video:
        container.close()
        raise InputError(f"{p}: has no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return container, stream


def _fraction(value: object) -> Fraction | None:
    num, den = getattr(value, "numerator", None), getattr(value, "denominator", None)
    return Fraction(int(num), int(den)) if num and den else None


def probe(path: str | Path) -> VideoInfo:
    """Reads the container's description of its first video stream."""
    container, stream = _open(path)
    try:
        ctx = stream.codec_context
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        return VideoInfo(
            path=Path(path),
            width=ctx.width,
            height=ctx.height,
            frame_rate=_fraction(stream.average_rate),
            time_base=_fraction(stream.time_base) or Fraction(1, 90000),
            frames=int(stream.frames or 0),
            duration=duration,
            pix_fmt=str(ctx.pix_fmt),
            codec=ctx.name,
        )
    finally:
        container.close()


def frame_to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """(H, W, 3) uint8 RGB, converted with the frame's own colour matrix and range."""
    return frame.to_ndarray(format="rgb24")


def iter_frames(path: str | Path) -> Iterator[DecodedFrame]:
    """Yields every frame of the first video stream, in presentation order, as RGB.

    Raises:
        InputError: no such file, not a video, no video stream, no decodable frame, or a file that
            breaks off (names the file and the last good frame).
    """
    container, stream = _open(path)
    index = 0
    last_pts = None
    try:
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    pts_time = (
                        (last_pts + 1 / float(stream.average_rate or 25)) if last_pts is not None else 0.0
                    )
                else:
                    pts_time = (
                        float(frame.pts * frame.time_base) if frame.time_base else float(frame.time or 0.0)
                    )
                last_pts = pts_time
                yield DecodedFrame(index, pts_time, frame_to_rgb(frame))
                index += 1
        except av.error.FFmpegError as e:
            raise InputError(
                f"{path}: decoding failed after {index} frames ({e}); the file may be truncated"
            ) from None
        if index == 0:
            raise InputError(f"{path}: the video stream holds no decodable frame")
    finally:
        container.close()
