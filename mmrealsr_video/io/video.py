"""Video files: opening and probing them, a picture's display orientation, and the check that a
decoded video is complete. Frames are read through :mod:`mmrealsr_video.io.source`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error
import numpy as np
import torch

from mmrealsr_video.errors import InputError

__all__ = [
    "DecodedFrame",
    "Orientation",
    "VideoInfo",
    "as_fraction",
    "check_complete",
    "open_video",
    "probe",
]

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


@dataclass(frozen=True)
class Orientation:
    """How a coded picture is turned to show as players show it (a stream's display matrix).

    Phone videos are coded in the sensor's orientation and carry a display matrix (the old
    ``rotate`` tag): 90, 180 or 270 degrees, rarely with a mirror. PyAV 19 gives it on every decoded
    frame (``VideoFrame.rotation``, counter-clockwise degrees, and the raw matrix in
    ``side_data``). The turn applied here is the one FFmpeg's own autorotation applies (fftools:
    ``transpose=clock`` for a display rotation of 90 degrees clockwise, ``cclock_flip`` when
    mirrored...), expressed as ``torch.rot90`` quarter turns and flips.

    Attributes:
        turns: counter-clockwise quarter turns (``torch.rot90``'s ``k``), 0 to 3.
        vflip: flip upside down after turning.
        hflip: mirror left-right after turning.
    """

    turns: int = 0
    vflip: bool = False
    hflip: bool = False

    @classmethod
    def of(cls, frame: av.VideoFrame) -> Orientation:
        """The turn that shows ``frame`` upright; no turn without a display matrix."""
        matrix = None
        for key in frame.side_data:
            if "DISPLAYMATRIX" in str(key):
                raw = bytes(frame.side_data[key])
                if len(raw) >= 36:
                    matrix = np.frombuffer(raw[:36], dtype=np.int32)
                break
        if matrix is None:
            return cls()
        theta = -float(frame.rotation) % 360.0  # clockwise display rotation, as fftools computes it
        if abs(theta - 90) < 1:
            return cls(1, vflip=True) if matrix[3] > 0 else cls(3)
        if abs(theta - 180) < 1:
            return cls(0, vflip=bool(matrix[4] < 0), hflip=bool(matrix[0] < 0))
        if abs(theta - 270) < 1:
            return cls(3, vflip=True) if matrix[3] < 0 else cls(1)
        if theta < 1 or theta > 359:
            return cls(0, vflip=bool(matrix[4] < 0))
        log.warning(
            "display rotation of %.1f degrees is not a quarter turn; the picture is left as coded", theta
        )
        return cls()

    @property
    def identity(self) -> bool:
        return not (self.turns or self.vflip or self.hflip)

    def size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of a ``width`` x ``height`` picture once turned."""
        return (height, width) if self.turns % 2 else (width, height)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """Turns a (..., H, W) tensor."""
        if self.turns:
            x = torch.rot90(x, self.turns, dims=(-2, -1))
        if self.vflip:
            x = x.flip(-2)
        if self.hflip:
            x = x.flip(-1)
        return x

    def __str__(self) -> str:
        turn = {1: "90 degrees counter-clockwise", 2: "180 degrees", 3: "90 degrees clockwise"}
        words = [turn[self.turns]] if self.turns else []
        words += ["flipped"] * self.vflip + ["mirrored"] * self.hflip
        return ", ".join(words) or "upright"


def open_video(path: str | Path) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    """Opens a file for decoding its first video stream (frame threading on).

    Raises:
        InputError: no such file, a folder, not a container FFmpeg reads, or no video stream.
    """
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


def as_fraction(value: object) -> Fraction | None:
    """A PyAV rational (or anything with numerator/denominator) as a Fraction; None if zero or absent."""
    num, den = getattr(value, "numerator", None), getattr(value, "denominator", None)
    return Fraction(int(num), int(den)) if num and den else None


def probe(path: str | Path) -> VideoInfo:
    """Reads the container's description of its first video stream."""
    container, stream = open_video(path)
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
            frame_rate=as_fraction(stream.average_rate),
            time_base=as_fraction(stream.time_base) or Fraction(1, 90000),
            frames=int(stream.frames or 0),
            duration=duration,
            pix_fmt=str(ctx.pix_fmt),
            codec=ctx.name,
        )
    finally:
        container.close()


def check_complete(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    end_time: float,
    path: str | Path,
) -> None:
    """Raises if the decoded video ends well before the duration the container declares.

    FFmpeg decodes a cut-off file up to the cut without an error; the container's header still
    declares the full duration, which tells a truncated file from a complete one.

    Raises:
        InputError: naming the file, where it ends and what it declares.
    """
    declared = None
    if stream.duration is not None and stream.time_base is not None:
        declared = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        declared = container.duration / av.time_base
    if declared is None or declared <= 0:
        return
    rate = float(stream.average_rate) if stream.average_rate else 25.0
    start = (
        float(stream.start_time * stream.time_base)
        if stream.start_time is not None and stream.time_base
        else 0.0
    )
    if end_time - start < declared - max(0.5, 5 / rate):
        raise InputError(
            f"{path}: the video ends after {end_time - start:.2f} s but the file declares {declared:.2f} s; "
            "it is truncated or damaged"
        )
