"""Real video codecs for the training degradations and the evaluation, through PyAV.

:func:`code_clip` codes a few frames as one short clip (an I-frame, then inter-coded frames) at a CRF or
a fixed quantiser and gives the decoded frames back; :func:`translate` makes the clip's slight motion;
:func:`code_as_video` is the deterministic one-image helper for evaluation (an x264 CRF ladder).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal, overload

import av
import numpy as np
import torch
import torch.nn.functional as F
from av.video.codeccontext import VideoCodecContext
from av.video.frame import PictureType

from mmrealsr_video.errors import InputError

__all__ = [
    "CODECS",
    "CodecSpec",
    "VideoCoding",
    "code_as_video",
    "code_clip",
    "codec_available",
    "translate",
]


@dataclass(frozen=True)
class CodecSpec:
    """How one FFmpeg encoder is driven.

    Attributes:
        decoder: FFmpeg's decoder of its streams.
        control: ``"crf"``, a constant rate factor (x264, x265), or ``"qscale"``, a fixed quantiser
            (MPEG-2, MPEG-4 Part 2). Larger is worse for both.
        limits: the encoder's valid control values.
        options: encoder options besides the control.
        min_width: narrower frames are padded (mirrored) to this width and cropped back after decoding.
    """

    decoder: str
    control: Literal["crf", "qscale"]
    limits: tuple[int, int]
    options: Mapping[str, str]
    min_width: int = 2

    def control_options(self, level: int) -> dict[str, str]:
        """The encoder options that set ``level``."""
        if self.control == "crf":
            return {"crf": str(level)}
        # A fixed quantiser: the rate control may pick only ``level`` for every frame type. A target bit
        # rate would be no control here: over a 3-frame clip libavcodec's rate control never leaves its
        # starting quantiser (measured: the same frames at 0.05 and 2 bits per pixel came out identical).
        return {"qmin": str(level), "qmax": str(level)}


#: The encoders of the degradations, with the libraries' default presets (x264 and x265 "medium") and
#: their default B-frames; MPEG-2 with DVD's two B-frames, MPEG-4 Part 2 with one, as Xvid/DivX made them.
CODECS: Mapping[str, CodecSpec] = types.MappingProxyType(
    {
        "libx264": CodecSpec("h264", "crf", (0, 51), {}),
        # One thread and pool: deterministic. Frames narrower than 64 px are padded: the libx265 of PyAV
        # 19's wheels corrupts its heap on 40 and 48 px wide frames (measured: glibc aborts within 100
        # clips; 16-32, 56 and 64-288 px ran clean, and every even width to 200 once padded).
        "libx265": CodecSpec(
            "hevc", "crf", (0, 51), {"x265-params": "log-level=none:frame-threads=1:pools=1"}, min_width=64
        ),
        "mpeg2video": CodecSpec("mpeg2video", "qscale", (1, 31), {"bf": "2"}),
        "mpeg4": CodecSpec("mpeg4", "qscale", (1, 31), {"bf": "1"}),
    }
)

_RATE = Fraction(25, 1)


def codec_available(name: str) -> bool:
    """Whether this PyAV build has the encoder ``name`` and its decoder (a key of :data:`CODECS`)."""
    spec = CODECS.get(name)
    if spec is None:
        return False
    try:
        av.Codec(name, "w")
        av.Codec(spec.decoder, "r")
    except av.FFmpegError:
        return False
    return True


@dataclass(frozen=True)
class VideoCoding:
    """One codec at one strength.

    Attributes:
        codec: a key of :data:`CODECS`.
        level: the CRF (libx264, libx265) or the fixed quantiser (mpeg2video, mpeg4); larger is worse.
    """

    codec: str
    level: int

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise InputError(f"VideoCoding.codec: unknown codec {self.codec!r}; known: {', '.join(CODECS)}")
        lo, hi = CODECS[self.codec].limits
        if not lo <= self.level <= hi:
            control = CODECS[self.codec].control
            raise InputError(
                f"VideoCoding.level: {self.codec}'s {control} must be within {lo}..{hi}, got {self.level}"
            )


def code_clip(frames: np.ndarray, coding: VideoCoding, *, force_p: bool = False) -> np.ndarray:
    """Codes frames as one clip in 4:2:0 (BT.601, limited range) and decodes them back.

    Args:
        frames: (T, H, W, 3) uint8 RGB, in display order.
        coding: codec and strength.
        force_p: code every frame after the first as a P-frame (otherwise the encoder picks P or B).

    Returns:
        The decoded (T, H, W, 3) uint8 RGB frames, in display order.

    Raises:
        InputError: ``frames`` of the wrong shape or type.
        av.FFmpegError: the encoder or decoder failed (the note says which clip).
    """
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or frames.shape[0] < 1:
        raise InputError(
            f"code_clip: frames must be (T, H, W, 3) uint8 with T >= 1, got {frames.shape} {frames.dtype}"
        )
    spec = CODECS[coding.codec]
    t, h, w, _ = frames.shape
    # 4:2:0 needs even sizes; libx265 a minimum width. Mirrored padding keeps the edge content natural.
    ph, pw = h + h % 2, max(w + w % 2, spec.min_width)
    if (ph, pw) != (h, w):
        frames = np.pad(frames, ((0, 0), (0, ph - h), (0, pw - w), (0, 0)), mode="symmetric")
    try:
        enc = typing.cast(VideoCodecContext, av.CodecContext.create(coding.codec, "w"))
        enc.width, enc.height, enc.pix_fmt = pw, ph, "yuv420p"
        enc.time_base, enc.framerate = 1 / _RATE, _RATE
        enc.thread_count = 1
        enc.options = {**spec.options, **spec.control_options(coding.level)}
        packets = []
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(
                format="yuv420p", dst_colorspace="ITU601", interpolation="BICUBIC", threads=1
            )
            frame.pts = i
            if force_p:
                frame.pict_type = PictureType.I if i == 0 else PictureType.P
            packets.extend(enc.encode(frame))
        packets.extend(enc.encode(None))
        dec = typing.cast(VideoCodecContext, av.CodecContext.create(spec.decoder, "r"))
        dec.thread_count = 1
        if enc.extradata:
            dec.extradata = enc.extradata
        decoded = []
        for packet in [*packets, None]:
            decoded.extend(dec.decode(packet))
    except av.FFmpegError as e:
        e.add_note(f"while coding a {t}-frame {w}x{h} clip with {coding.codec} at level {coding.level}")
        raise
    if len(decoded) != t:
        raise RuntimeError(f"{coding.codec} gave back {len(decoded)} frames of a {t}-frame clip")
    out = np.stack(
        [
            f.to_ndarray(format="rgb24", src_colorspace="ITU601", interpolation="BILINEAR", threads=1)
            for f in decoded
        ]
    )
    return out[:, :h, :w]


def translate(x: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Moves each image by a sub-pixel offset (bicubic; the edges mirrored in).

    Args:
        x: (N, C, H, W) float.
        offsets: (N, 2) ``(dx, dy)`` in pixels; positive moves the content right / down.

    Returns:
        (N, C, H, W); images with a zero offset are returned exactly.
    """
    n, _, h, w = x.shape
    moving = offsets.abs().sum(dim=1) > 0
    if not bool(moving.any()):
        return x
    theta = torch.zeros(n, 2, 3, dtype=x.dtype)
    theta[:, 0, 0] = 1.0
    theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = -2.0 * offsets[:, 0].to(x.dtype) / w
    theta[:, 1, 2] = -2.0 * offsets[:, 1].to(x.dtype) / h
    grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
    moved = F.grid_sample(x, grid, mode="bicubic", padding_mode="reflection", align_corners=False)
    return torch.where(moving.view(n, 1, 1, 1), moved, x)


@overload
def code_as_video(
    image: np.ndarray,
    codec: str = ...,
    *,
    crf: int | None = ...,
    qscale: int | None = ...,
    frames: int = ...,
    index: int | None = ...,
    motion: tuple[float, float] = ...,
) -> np.ndarray: ...
@overload
def code_as_video(
    image: torch.Tensor,
    codec: str = ...,
    *,
    crf: int | None = ...,
    qscale: int | None = ...,
    frames: int = ...,
    index: int | None = ...,
    motion: tuple[float, float] = ...,
) -> torch.Tensor: ...
def code_as_video(
    image: np.ndarray | torch.Tensor,
    codec: str = "libx264",
    *,
    crf: int | None = None,
    qscale: int | None = None,
    frames: int = 3,
    index: int | None = None,
    motion: tuple[float, float] = (0.5, 0.25),
) -> np.ndarray | torch.Tensor:
    """An image as one decoded frame of a short clip: deterministic, for evaluation ladders.

    The clip is the image (rounded to 8 bits) moving by ``motion`` pixels per frame (bicubic, edges
    mirrored), the frame ``index`` unmoved; the first frame is an I-frame and every later one a P-frame, so ``index >= 1``
    gives a P-frame, as most frames of old footage are.

    Args:
        image: (H, W, 3) uint8 RGB, or a float tensor in [0, 1] of shape (3, H, W) or (B, 3, H, W)
            (each image its own clip).
        codec: a key of :data:`CODECS`.
        crf: the CRF of libx264 / libx265 (0-51).
        qscale: the fixed quantiser of mpeg2video / mpeg4 (1-31).
        frames: frames in the clip.
        index: the frame given back (default: the last).
        motion: ``(dx, dy)`` pixels per frame.

    Returns:
        The decoded frame, of the input's shape and kind (tensors on 8-bit levels, float32).

    Raises:
        InputError: an unknown codec, a missing or out-of-range strength, a bad shape or index.
    """
    func = "code_as_video"
    if codec not in CODECS:
        raise InputError(f"{func}: unknown codec {codec!r}; known: {', '.join(CODECS)}")
    spec = CODECS[codec]
    level, other = (crf, qscale) if spec.control == "crf" else (qscale, crf)
    if level is None or other is not None:
        raise InputError(f"{func}: {codec} takes {spec.control}= (and only it)")
    lo, hi = spec.limits
    if not lo <= level <= hi:
        raise InputError(f"{func}: {spec.control} of {codec} must be within {lo}..{hi}, got {level}")
    if frames < 1:
        raise InputError(f"{func}: frames must be at least 1, got {frames}")
    index = frames - 1 if index is None else index
    if not 0 <= index < frames:
        raise InputError(f"{func}: index must be within 0..{frames - 1}, got {index}")
    coding = VideoCoding(codec, level)

    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
            raise InputError(
                f"{func}: a numpy image must be (H, W, 3) uint8, got {image.shape} {image.dtype}"
            )
        x = torch.from_numpy(image).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
    else:
        if image.ndim not in (3, 4) or image.shape[-3] != 3 or not image.is_floating_point():
            raise InputError(
                f"{func}: a tensor must be float (3, H, W) or (B, 3, H, W), got {tuple(image.shape)} {image.dtype}"
            )
        x = (image if image.ndim == 4 else image.unsqueeze(0)).detach().float().cpu()
        # On 8-bit levels first, as an image is before it is coded: both input kinds then give one clip.
        x = x.mul(255.0).round_().clamp_(0.0, 255.0).div_(255.0)
    n = x.shape[0]
    steps = torch.arange(frames, dtype=torch.float32) - index
    offsets = steps.view(1, frames, 1) * torch.tensor(motion, dtype=torch.float32).view(1, 1, 2)
    clips = translate(x.repeat_interleave(frames, dim=0), offsets.expand(n, -1, -1).reshape(-1, 2))
    u8 = clips.mul(255.0).round_().clamp_(0.0, 255.0).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    out = np.stack(
        [code_clip(u8[i * frames : (i + 1) * frames], coding, force_p=True)[index] for i in range(n)]
    )
    if isinstance(image, np.ndarray):
        return out[0]
    y = torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0)
    return y if image.ndim == 4 else y[0]
