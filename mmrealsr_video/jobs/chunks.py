"""Chunks: the independent units of a long restore, cut at scene cuts.

Coefficients are decided per scene, so a scene never needs its neighbours: consecutive scenes are
grouped into chunks of at most ``max_frames`` frames, and a scene longer than that is split into
equal parts. The plan depends on the track and ``max_frames`` alone, never on how many workers
run it, so every way of running a job restores the same chunks into the same segments.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from mmrealsr_video.errors import SettingsError
from mmrealsr_video.plan.track import CoefficientTrack

__all__ = ["DEFAULT_CHUNK_FRAMES", "Chunk", "plan_chunks"]

#: Frames per chunk at most: 20 s at 24 fps. Small enough that a crash loses little and that
#: workers share a film evenly, large enough that a chunk's set-up (a seek, an encoder) is noise.
DEFAULT_CHUNK_FRAMES = 480


@dataclass(frozen=True)
class Chunk:
    """Frames ``first`` to ``end - 1`` (source frame numbers) of a job, restored into one segment.

    Attributes:
        number: the chunk's place in the job, from 0.
        first: the first frame (its number in the source).
        end: one past the last frame.
        start: position of ``first`` in the job's track (the track may start after frame 0).
    """

    number: int
    first: int
    end: int
    start: int

    @property
    def frames(self) -> int:
        return self.end - self.first

    @property
    def name(self) -> str:
        """The segment's file name stem."""
        return f"chunk-{self.number:06d}"


def plan_chunks(track: CoefficientTrack, max_frames: int = DEFAULT_CHUNK_FRAMES) -> list[Chunk]:
    """Groups the track's scenes into chunks of at most ``max_frames`` frames, cutting only at
    scene cuts, except inside a scene longer than ``max_frames``, which is split into equal parts.

    Raises:
        SettingsError: ``max_frames`` below 1 (names ``chunk_frames``).
    """
    if max_frames < 1:
        raise SettingsError("chunk_frames", f"must be at least 1, not {max_frames}")
    pieces: list[tuple[int, int]] = []  # (start, end) positions in the track
    for a, b in track.scenes():
        parts = math.ceil((b - a) / max_frames)
        bounds = [a + round(k * (b - a) / parts) for k in range(parts + 1)]
        pieces += list(itertools.pairwise(bounds))
    chunks: list[Chunk] = []
    start = end = 0
    for a, b in pieces:
        if end > start and b - start > max_frames:
            chunks.append(_chunk(track, len(chunks), start, end))
            start = a
        end = b
    if end > start:
        chunks.append(_chunk(track, len(chunks), start, end))
    return chunks


def _chunk(track: CoefficientTrack, number: int, start: int, end: int) -> Chunk:
    first = track.frames[start].index
    last = track.frames[end - 1].index
    return Chunk(number=number, first=first, end=last + 1, start=start)
