"""What a restore can be told: :class:`ImageSettings` for a still picture, :class:`RestoreSettings`
(the same, plus the video's) for a video or an image sequence. Validated when made; a bad value
raises :class:`~mmrealsr_video.errors.SettingsError` naming the field."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import torch

from mmrealsr_video.analysis.streaming import AnalysisConfig
from mmrealsr_video.errors import InputError, SettingsError
from mmrealsr_video.io.sequences import as_rate
from mmrealsr_video.io.sink import EncodeSettings
from mmrealsr_video.models.loader import parse_device
from mmrealsr_video.plan.coefficients import CoefficientValue
from mmrealsr_video.plan.track import TRACK_SUFFIXES

__all__ = ["EncodeSettings", "ImageSettings", "RestoreSettings"]

#: The largest output scale either front accepts.
MAX_OUTSCALE = 16.0


@dataclass(frozen=True)
class ImageSettings:
    """How one picture is restored; the defaults restore with the bundled model on the CPU.

    Attributes:
        model: a bundled model's name or a weights file.
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        dtype: the model's precision (half precision is meant for CUDA).
        tile: tile side in input pixels; None tiles only when a frame would not fit, 0 never.
        tile_overlap: pixels shared by neighbouring tiles.
        blur, noise: fixed values (absolute, or relative to the automatic value); None is automatic.
        analysis: how the automatic values are estimated (crops, sampling, scenes, plan).
        outscale: the final scale (a resize after the model); None is the model's.
        force: replace an existing output.
    """

    model: str | Path = "default"
    device: str = "cpu"
    dtype: torch.dtype = torch.float32
    tile: int | None = None
    tile_overlap: int = 32
    blur: CoefficientValue | None = None
    noise: CoefficientValue | None = None
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    outscale: float | None = None
    force: bool = False

    def __post_init__(self) -> None:
        try:
            parse_device(self.device)
        except InputError:
            raise SettingsError("device", f"must be cpu, cuda or cuda:N, not {str(self.device)[:40]!r}") from None
        if self.tile is not None and self.tile < 0:
            raise SettingsError("tile", f"must be 0 (never tile), a side in pixels, or None; not {self.tile}")
        if self.tile_overlap < 0:
            raise SettingsError("tile_overlap", f"must not be negative ({self.tile_overlap})")
        if self.outscale is not None and not (math.isfinite(self.outscale) and 0 < self.outscale <= MAX_OUTSCALE):
            raise SettingsError("outscale", f"must be in (0, {MAX_OUTSCALE:g}], not {self.outscale}")


@dataclass(frozen=True)
class RestoreSettings(ImageSettings):
    """Everything ``restore_video`` can be told: :class:`ImageSettings` plus the video's settings.

    Attributes:
        batch: frames per model call.
        keyframes: a keyframe file or string (``docs/keyframes.md``); needs a first analysis pass.
        track: a track file to restore with instead of analysing.
        save_track: where to write the coefficients used (``.json``/``.csv``).
        lookahead: frames that may wait for their scene's coefficients (bounds memory).
        encode: the encoder's settings.
        frames: a part of the input, (first, end) frame numbers, end exclusive (None: to the end).
        start, duration: a part of the input in seconds (not with ``frames``).
        progress: show a progress bar (only on a terminal).
        fps: an image sequence's frame rate (default 25); not for videos.
        image_format: the type of output images (``png``, ``jpg``, ``tif``).
    """

    batch: int = 1
    keyframes: str | Path | None = None
    track: str | Path | None = None
    save_track: str | Path | None = None
    lookahead: int = 240
    encode: EncodeSettings = field(default_factory=EncodeSettings)
    frames: tuple[int, int | None] | None = None
    start: float | None = None
    duration: float | None = None
    progress: bool = True
    fps: float | Fraction | str | None = None
    image_format: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.batch < 1:
            raise SettingsError("batch", f"must be at least 1, not {self.batch}")
        if self.lookahead < 1:
            raise SettingsError("lookahead", f"must be at least 1 frame, not {self.lookahead}")
        if self.frames is not None and (self.start is not None or self.duration is not None):
            raise SettingsError("frames", "cannot be combined with start/duration; use one or the other")
        if self.frames is not None:
            a, b = self.frames
            if a < 0 or (b is not None and b <= a):
                raise SettingsError("frames", f"{a}:{b if b is not None else ''}: expected 0 <= A < B")
        if self.start is not None and not (math.isfinite(self.start) and self.start >= 0):
            raise SettingsError("start", f"must be a time of 0 s or more, not {self.start}")
        if self.duration is not None and not (math.isfinite(self.duration) and self.duration > 0):
            raise SettingsError("duration", f"must be a positive time, not {self.duration}")
        if self.fps is not None:
            as_rate(self.fps)  # validates
        if self.save_track is not None and Path(self.save_track).suffix.lower() not in TRACK_SUFFIXES:
            raise SettingsError(
                "save_track", f"{self.save_track}: a track is written as {' or '.join(TRACK_SUFFIXES)}"
            )
