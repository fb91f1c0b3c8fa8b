"""One chunk restored into one segment: the unit of work every worker (a thread, a process, a Ray
actor) runs. Seeks to the chunk's first frame, restores its frames with the job's coefficients and
codes them, video only, into a segment file of the job folder, written under a temporary name and
renamed when complete; returns the segment's size and checksum for the manifest.

A segment depends only on its :class:`SegmentSpec` (frames, coefficients, encoder settings with a
fixed thread count), so it comes out the same in whatever process or machine makes it.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from mmrealsr_video.errors import InputError
from mmrealsr_video.io.files import atomic_output
from mmrealsr_video.io.sink import EncodeSettings, VideoSink
from mmrealsr_video.io.source import FrameSource, open_source
from mmrealsr_video.jobs.chunks import Chunk
from mmrealsr_video.jobs.manifest import file_sha256
from mmrealsr_video.models.loader import ModulatedModel
from mmrealsr_video.passes import FrameRange, restore_pass
from mmrealsr_video.plan.resolver import CoefficientResolver
from mmrealsr_video.plan.track import CoefficientTrack, FrameCoefficients
from mmrealsr_video.settings import RestoreSettings

__all__ = [
    "TIMESTAMPS_SUFFIX",
    "SegmentResult",
    "SegmentSpec",
    "read_timestamps",
    "restore_segment",
    "segment_sha256",
    "timestamps_path",
    "write_timestamps",
]

#: Segments are files of the output's own container (so that the encoder codes the bitstream that
#: container wants: AVI takes H.264 with start codes, MP4 and Matroska with length prefixes); their
#: packets' exact timestamps, which a container may round, are kept beside them in ``.ts.json``
#: files, in the encoder's time base.
TIMESTAMPS_SUFFIX = ".ts.json"


def timestamps_path(segment: Path) -> Path:
    """The file that holds a segment's exact packet timestamps."""
    return segment.with_suffix(TIMESTAMPS_SUFFIX)
#: Frames whose time differs from the track's by less than this are the same frame (seconds).
_SAME_TIME = 1e-4


@dataclass(frozen=True)
class SegmentSpec:
    """Everything a worker needs to make one segment (picklable, for other processes).

    Attributes:
        source: the input video.
        folder: the job folder (shared by every worker).
        chunk: which frames.
        records: the chunk's frames' coefficients (final values), in order.
        settings: the restore's settings (model, precision, tiles, batch...).
        encode: the encoder's settings, codec and thread count fixed by the job.
        offset: seconds subtracted from every timestamp (the start of a partial restore), or 0.
        suffix: the output's extension: segments are files of its container.
    """

    source: Path
    folder: Path
    chunk: Chunk
    records: tuple[FrameCoefficients, ...]
    model_name: str
    settings: RestoreSettings
    encode: EncodeSettings
    offset: float
    suffix: str

    @property
    def path(self) -> Path:
        return self.folder / (self.chunk.name + self.suffix)


@dataclass(frozen=True)
class SegmentResult:
    """A finished segment: its chunk's number, file name, size and SHA-256, and frames written."""

    number: int
    file: str
    size: int
    sha256: str
    frames: int


class _ChunkSource:
    """A video source positioned at a chunk: seeks to the keyframe at or before its first frame and
    numbers the decoded frames by matching their times to the track's, dropping those before it.
    Falls back to decoding from the start when the container cannot seek or a seek lands late."""

    def __init__(self, source: Path, chunk: Chunk, times: list[float]) -> None:
        self._path, self._chunk, self._times = source, chunk, times
        self._src: FrameSource = open_source(source)
        self._seeked = self._seek()

    def _seek(self) -> bool:
        video = self._src.video
        assert video is not None
        container, stream = video
        if self._chunk.first == 0 or stream.time_base is None:
            return False
        try:
            container.seek(
                int(self._times[0] / stream.time_base), stream=stream, backward=True, any_frame=False
            )
        except (av.error.FFmpegError, OSError):
            return False
        return True

    # The FrameSource protocol, answered by the source underneath.
    @property
    def name(self) -> str:
        return self._src.name

    @property
    def fps(self) -> float | None:
        return self._src.fps

    @property
    def rate(self) -> Fraction:
        return self._src.rate

    @property
    def time_base(self) -> Fraction | None:
        return self._src.time_base

    @property
    def total(self) -> int | None:
        return self._src.total

    @property
    def duration(self) -> float | None:
        return self._src.duration

    @property
    def size(self) -> tuple[int, int] | None:
        return self._src.size

    @property
    def video(self) -> Any:
        return self._src.video

    @property
    def on_packet(self) -> Callable[[Any], None]:
        return self._src.on_packet

    @on_packet.setter
    def on_packet(self, value: Callable[[Any], None]) -> None:
        self._src.on_packet = value

    def read_packets_until(self, end: float, streams: frozenset[int]) -> None:
        self._src.read_packets_until(end, streams)

    def frames(self) -> Iterator[tuple[int, float, av.VideoFrame]]:
        if not self._seeked:
            yield from self._src.frames()
            return
        first = self._chunk.first
        index: int | None = None
        for _, t, frame in self._src.frames():
            if index is None:
                if t < self._times[0] - _SAME_TIME:
                    continue  # before the chunk (decoded from the keyframe on)
                if abs(t - self._times[0]) > _SAME_TIME:
                    raise _LateSeek(t)
                index = first
            k = index - first
            if k < len(self._times) and abs(t - self._times[k]) > _SAME_TIME:
                raise InputError(
                    f"{self._path}: frame {index} decoded at {t:.6f} s after seeking, but the analysis "
                    f"saw it at {self._times[k]:.6f} s; the file may have changed"
                )
            yield index, t, frame  # the restore pass stops at the chunk's end
            index += 1

    def complete(self, last_time: float) -> None:
        self._src.complete(last_time)

    def close(self) -> None:
        self._src.close()


class _LateSeek(Exception):
    """A seek landed after the chunk's first frame (a container with sparse or wrong index)."""

    def __init__(self, t: float) -> None:
        self.t = t


def restore_segment(
    spec: SegmentSpec,
    model: ModulatedModel,
    *,
    cancel: threading.Event | None = None,
    on_frame: Callable[[int], None] | None = None,
) -> SegmentResult:
    """Restores ``spec``'s chunk into its segment file (see the module's docstring).

    Raises:
        InputError: the input cannot be read as the analysis read it.
        OutputError: the segment cannot be written (a full disk...).
        KeyboardInterrupt: ``cancel`` was set; nothing is left behind.
    """
    try:
        return _restore(spec, model, seek=True, cancel=cancel, on_frame=on_frame)
    except _LateSeek:
        return _restore(spec, model, seek=False, cancel=cancel, on_frame=on_frame)


def _restore(
    spec: SegmentSpec,
    model: ModulatedModel,
    *,
    seek: bool,
    cancel: threading.Event | None,
    on_frame: Callable[[int], None] | None,
) -> SegmentResult:
    chunk = spec.chunk
    times = [r.pts_time for r in spec.records]
    src: FrameSource = _ChunkSource(spec.source, chunk, times) if seek else open_source(spec.source)
    track = CoefficientTrack(spec.records, model=spec.model_name)
    resolver = CoefficientResolver.from_track(track, source=str(spec.source))
    settings = replace(
        spec.settings, frames=(chunk.first, chunk.end), start=None, duration=None, progress=False
    )
    log: list[tuple[int | None, int | None, int, Fraction | None]] = []
    try:
        with atomic_output(spec.path, force=True) as tmp:
            sink = VideoSink(
                tmp,
                spec.path,
                spec.encode,
                (None, None),
                None,
                _rate(src),
                src.time_base,
                offset=spec.offset,
                timestamps=log,
            )
            written = restore_pass(
                src,
                sink,
                model,
                settings,
                FrameRange(settings),
                resolver,
                None,
                cancel=cancel,
                on_frame=on_frame,
            ).frames
            if written != chunk.frames:
                raise InputError(
                    f"{spec.source}: chunk {chunk.number} gave {written} frames, expected {chunk.frames}"
                )
            write_timestamps(timestamps_path(spec.path), log)
    finally:
        src.close()
    return SegmentResult(
        chunk.number, spec.path.name, spec.path.stat().st_size, segment_sha256(spec.path), written
    )


def write_timestamps(path: Path, log: list[tuple[int | None, int | None, int, Fraction | None]]) -> None:
    """Writes a segment's exact packet timestamps (one time base for all) beside it."""
    bases = {tb for *_, tb in log}
    if len(bases) != 1 or None in bases:
        raise InputError(
            f"{path}: the encoder gave packets without one time base ({sorted(map(str, bases))})"
        )
    (tb,) = bases
    assert tb is not None
    data = {"time_base": [tb.numerator, tb.denominator], "packets": [[p, d, n] for p, d, n, _ in log]}
    with atomic_output(path, force=True) as tmp:
        tmp.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")


def read_timestamps(path: Path) -> tuple[Fraction, list[tuple[int | None, int | None, int]]]:
    """A segment's exact packet timestamps, as :func:`write_timestamps` wrote them.

    Raises:
        InputError: missing or damaged (names the file).
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        num, den = data["time_base"]
        return Fraction(int(num), int(den)), [(p, d, int(n)) for p, d, n in data["packets"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(
            f"{path}: a segment's timestamps are missing or damaged ({e}); run again to redo it"
        ) from None


def segment_sha256(path: Path) -> str:
    """The checksum a segment is recorded with: its file and its timestamps, together."""
    h = hashlib.sha256(file_sha256(path).encode())
    h.update(file_sha256(timestamps_path(path)).encode())
    return h.hexdigest()


def _rate(src: FrameSource) -> Fraction:
    return src.rate
