"""The checks a restore makes before its first frame, against what the input's container declares:
so that a mistake is a message at once, not an error after hours of work with the result thrown
away. Shared by the single-pass restore and the jobs."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from mmrealsr_video.errors import InputError, OutputError, SettingsError
from mmrealsr_video.io.source import FrameSource
from mmrealsr_video.plan.keyframes import Keyframes, check_key_positions, check_keyframes
from mmrealsr_video.plan.track import CoefficientTrack, check_track_output
from mmrealsr_video.settings import RestoreSettings

__all__ = ["FrameRange", "check_before_work", "check_outscale", "check_save_track", "check_track"]

log = logging.getLogger(__name__)


class FrameRange:
    """Which input frames (by index) and which times a restore keeps: ``frames`` or ``start`` /
    ``duration`` of its settings."""

    def __init__(self, settings: RestoreSettings) -> None:
        self.first, self.end = 0, None
        self.t0, self.t1 = None, None
        if settings.frames is not None:
            self.first, self.end = settings.frames
        if settings.start is not None:
            self.t0 = settings.start
        if settings.duration is not None:
            self.t1 = (settings.start or 0.0) + settings.duration

    @property
    def shifted(self) -> bool:
        """Whether the output's timestamps start at the range's first frame."""
        return bool(self.first or self.t0)

    def keeps(self, index: int, t: float) -> bool:
        if index < self.first or (self.end is not None and index >= self.end):
            return False
        if self.t0 is not None and t < self.t0 - 1e-6:
            return False
        return not (self.t1 is not None and t >= self.t1 - 1e-6)

    def past(self, index: int, t: float) -> bool:
        return (self.end is not None and index >= self.end) or (self.t1 is not None and t >= self.t1 - 1e-6)


# --- jobs ------------------------------------------------------------------------------------------


def check_save_track(
    s: RestoreSettings, inputs: Sequence[Path], output: Path, folder: Path | None
) -> Path | None:
    """The track file to write, refused before any work if it cannot be (see :func:`check_track_output`)."""
    if s.save_track is None:
        return None
    path = Path(s.save_track)
    if path.resolve() == output.resolve():
        raise OutputError(f"{path}: the track would overwrite the output")
    if folder is not None and path.resolve().is_relative_to(folder.resolve()):
        raise OutputError(
            f"{path}: the track would be inside the output folder {folder}, which the images replace"
        )
    if any(path.resolve() == f.resolve() for f in inputs):
        raise OutputError(f"{path}: the track would overwrite the input")
    return check_track_output(path, force=s.force)


def check_outscale(width: int, height: int, outscale: float | None, name: str) -> None:
    """Refuses an ``outscale`` that makes a side of the output smaller than a pixel."""
    if outscale is None:
        return
    w, h = round(width * outscale), round(height * outscale)
    if w < 1 or h < 1:
        raise SettingsError(
            "outscale",
            f"{outscale:g} makes {name} ({width}x{height}) {w}x{h} pixels; an output needs at least 1 pixel "
            f"a side (an outscale of at least {0.5 / min(width, height):.3g} here)",
        )


def check_before_work(
    src: FrameSource,
    s: RestoreSettings,
    rng: FrameRange,
    keys: Keyframes | None,
    track: CoefficientTrack | None,
) -> None:
    """Refuses, before the first frame, what does not fit what the container declares: a part
    past the end, an output smaller than a pixel, a track that misses frames (or is clearly
    another video's), keyframes past the end."""
    total, duration = src.total, src.duration
    if total is not None and rng.first >= total:
        raise SettingsError(
            "frames", f"{rng.first}:{rng.end or ''}: {src.name} declares {total} frames (0-{total - 1})"
        )
    if duration is not None and rng.t0 is not None and rng.t0 >= duration:
        raise SettingsError("start", f"{rng.t0:g} s is past the end of {src.name} ({duration:.3f} s)")
    if src.size is not None:  # a turned picture's sides are the same two numbers
        check_outscale(*src.size, s.outscale, src.name)
    if track is not None:
        check_track(track, Path(s.track or "track"), src, rng)
        if keys is not None:
            check_keyframes(track, keys)
    elif keys is not None:
        check_key_positions(keys, frames=total, duration=duration, source=src.name)


def check_track(track: CoefficientTrack, path: Path, src: FrameSource, rng: FrameRange) -> None:
    """Refuses a track that lacks frames the restore will need (by the frame count or duration the
    container declares), or that holds clearly more frames than the input (another video's: more
    than a second more, where containers may declare a few frames fewer than they hold); warns
    about a few extra frames, which are not used."""
    if not track.frames:
        raise InputError(f"{path}: the track holds no frames")
    total, fps = src.total, src.fps or 25.0
    index = track.column("index")
    held = f"frames {index[0]}-{index[-1]}"
    if total is not None:
        extra = int((index >= total).sum())
        if extra and index[-1] >= total + max(2, round(fps)):
            raise InputError(
                f"{path}: the track holds {held} ({len(index)} frames) but {src.name} declares {total}: "
                "it was made from another video (or another cut of it); use the track made from this input"
            )
        if extra:
            log.warning(
                "%s: the track holds %d frames past the %d that %s declares; they are not used",
                *(path, extra, total, src.name),
            )
    if rng.t0 is None and rng.t1 is None and total is not None:
        end = total if rng.end is None else min(rng.end, total)
        have = set(index.tolist())
        missing = [n for n in range(rng.first, end) if n not in have]
        if missing:
            raise InputError(
                f"{path}: the track holds {held} but not frame {missing[0]} of {src.name}, which declares "
                f"{total} frames ({len(missing)} without coefficients); was it made from this input?"
            )
    elif rng.t0 is not None or rng.t1 is not None:
        times = track.column("pts_time")
        first_t = rng.t0 or 0.0
        last_t = rng.t1 if src.duration is None else min(rng.t1 or src.duration, src.duration)
        if times[0] > first_t + 1.5 / fps or (last_t is not None and times[-1] < last_t - 1.5 / fps):
            span = f"{first_t:g}-{last_t:g} s" if last_t is not None else f"{first_t:g} s to the end"
            raise InputError(
                f"{path}: the track holds {held}, {times[0]:.3f}-{times[-1]:.3f} s, but not all of {span} "
                f"of {src.name}; was it made from this input?"
            )
