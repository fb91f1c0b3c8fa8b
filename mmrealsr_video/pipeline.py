"""The streaming restoration pipeline: decode -> analysis -> restore -> encode, with the source's
other streams copied packet for packet.

Decoding runs in its own thread and feeds a bounded queue; encoding and muxing run in another; the
main thread analyses, batches and runs the model. Memory is bounded by the analysis lookahead
(frames wait, as decoded pictures at input resolution, until their scene's coefficients are
settled) and the queues, never by the video's length.

Coefficients come, per frame, from one of:

- the automatic analysis, streamed (no keyframes, no track): scenes are settled at their cut, or
  window by window in scenes longer than the lookahead;
- a track file (``track=``), used as it is;
- keyframes (``keyframes=``): the input is analysed first in a separate pass (keyframe positions
  such as ``-24`` or ``00:05:00`` need the whole timeline), then restored with that track.

Fixed ``blur`` / ``noise`` values apply on top of any of these.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any, cast

import av
import av.error
import numpy as np
import torch
import torch.nn.functional as F

from mmrealsr_video.analysis import AnalysisConfig, StreamingAnalysis
from mmrealsr_video.coefficients import CoefficientValue
from mmrealsr_video.colour import (
    ColourDescription,
    frame_to_tensor,
    output_pix_fmt,
    output_planes,
    planes_to_frame,
    tag_codec_context,
    to_rgb8,
)
from mmrealsr_video.errors import InputError, OutputError
from mmrealsr_video.files import atomic_folder, atomic_output
from mmrealsr_video.images import from_tensor, write_image
from mmrealsr_video.keyframes import apply_fixed_frame
from mmrealsr_video.model import ModulatedModel, load_model
from mmrealsr_video.sequences import (
    ImageOutput,
    ImageSequence,
    as_rate,
    find_sequence,
    image_output,
    is_image_output,
    is_sequence,
    read_frames,
)
from mmrealsr_video.track import CoefficientTrack, FrameCoefficients
from mmrealsr_video.video import Orientation, as_fraction, check_complete, open_video

__all__ = ["EncodeSettings", "RestoreSettings", "RestoreSummary", "restore_video"]

log = logging.getLogger(__name__)

_DEFAULT_CODEC = {
    ".mp4": "libx264",
    ".mkv": "libx264",
    ".mov": "libx264",
    ".m4v": "libx264",
    ".webm": "libsvtav1",
}
_CRF_CODECS = {"libx264", "libx265", "libsvtav1"}
_MUXERS = {
    ".mkv": "matroska",
    ".mp4": "mp4",
    ".mov": "mov",
    ".m4v": "mp4",
    ".webm": "webm",
    ".avi": "avi",
    ".nut": "nut",
}
_STOP = object()


@dataclass(frozen=True)
class EncodeSettings:
    """How the restored video is encoded. ``None`` picks a default from the output's extension."""

    codec: str | None = None
    crf: int | None = None
    preset: str | None = None
    pix_fmt: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RestoreSettings:
    """Everything ``restore_video`` can be told; the defaults restore with the bundled model."""

    model: str | Path = "default"
    device: str = "cpu"
    dtype: torch.dtype = torch.float32
    batch: int = 1
    tile: int | None = None
    tile_overlap: int = 32
    blur: CoefficientValue | None = None
    noise: CoefficientValue | None = None
    keyframes: str | Path | None = None
    track: str | Path | None = None
    save_track: str | Path | None = None
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    lookahead: int = 240
    encode: EncodeSettings = field(default_factory=EncodeSettings)
    outscale: float | None = None
    frames: tuple[int, int | None] | None = None
    start: float | None = None
    duration: float | None = None
    force: bool = False
    progress: bool = True
    fps: float | Fraction | str | None = None
    image_format: str | None = None

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise InputError(f"--batch must be at least 1, not {self.batch}")
        if self.lookahead < 1:
            raise InputError(f"lookahead must be at least 1 frame, not {self.lookahead}")
        if self.outscale is not None and not 0 < self.outscale <= 16:
            raise InputError(f"--outscale must be in (0, 16], not {self.outscale}")
        if self.frames is not None and (self.start is not None or self.duration is not None):
            raise InputError("use either --frames or --start/--duration, not both")
        if self.frames is not None:
            a, b = self.frames
            if a < 0 or (b is not None and b <= a):
                raise InputError(f"--frames {a}:{b if b is not None else ''}: expected 0 <= A < B")
        if self.start is not None and self.start < 0:
            raise InputError(f"--start must not be negative ({self.start})")
        if self.duration is not None and self.duration <= 0:
            raise InputError(f"--duration must be positive ({self.duration})")
        if self.fps is not None:
            as_rate(self.fps)  # validates


@dataclass(frozen=True)
class RestoreSummary:
    """What a run did."""

    output: Path
    frames: int
    seconds: float
    fps: float
    scenes: int
    blur_range: tuple[float, float]
    noise_range: tuple[float, float]
    width: int
    height: int


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def _check_paths(src: Path, dst: Path, force: bool) -> None:
    if not src.is_file():
        raise InputError(f"{src}: no such file")
    _check_video_output([src], dst, force)


def _check_video_output(inputs: Sequence[Path], dst: Path, force: bool) -> None:
    if any(dst.resolve() == f.resolve() or (dst.exists() and dst.samefile(f)) for f in inputs):
        raise OutputError(f"{dst}: the output would overwrite the input")
    if dst.exists() and not force:
        raise OutputError(f"{dst}: already exists (pass --force to overwrite)")
    if not dst.parent.is_dir():
        raise OutputError(f"{dst.parent}: output folder does not exist")
    if _muxer(dst) is None:
        raise OutputError(f"{dst}: unknown container {dst.suffix!r}; use one of {', '.join(sorted(_MUXERS))}")


def _check_image_output(inputs: Sequence[Path], out: ImageOutput, force: bool) -> None:
    """Refuses an output folder that holds the input, is a file, or is not empty (without force)."""
    folder = out.folder.resolve()
    if any(f.resolve().is_relative_to(folder) for f in inputs):
        raise OutputError(f"{out.folder}: the output folder holds the input, which it would replace")
    if not out.folder.parent.is_dir():
        raise OutputError(f"{out.folder.parent}: output folder does not exist")
    if out.folder.exists() and not out.folder.is_dir():
        raise OutputError(f"{out.folder}: exists and is not a folder")
    if out.folder.is_dir() and any(out.folder.iterdir()) and not force:
        raise OutputError(f"{out.folder}: the folder exists and is not empty (pass --force to replace it)")


class _Range:
    """Which input frames (by index) and which times are kept."""

    def __init__(self, settings: RestoreSettings) -> None:
        self.first, self.end = 0, None
        self.t0, self.t1 = None, None
        if settings.frames is not None:
            self.first, self.end = settings.frames
        if settings.start is not None:
            self.t0 = settings.start
        if settings.duration is not None:
            self.t1 = (settings.start or 0.0) + settings.duration

    def keeps(self, index: int, t: float) -> bool:
        if index < self.first or (self.end is not None and index >= self.end):
            return False
        if self.t0 is not None and t < self.t0 - 1e-6:
            return False
        return not (self.t1 is not None and t >= self.t1 - 1e-6)

    def past(self, index: int, t: float) -> bool:
        return (self.end is not None and index >= self.end) or (self.t1 is not None and t >= self.t1 - 1e-6)


def _decode(
    container: av.container.InputContainer,
    video: av.video.stream.VideoStream,
    copied: list[Any],
    out: queue.Queue[Any],
    stop: threading.Event,
) -> None:
    """Demuxes every stream; decoded video frames and copied packets go to ``out`` in file order."""
    try:
        for packet in container.demux([video, *copied]):
            if stop.is_set():
                break
            if packet.stream.index == video.index:
                for frame in packet.decode():
                    out.put(("frame", frame))
            elif packet.dts is not None and packet.size:
                out.put(("packet", packet))
    except av.error.FFmpegError as e:
        out.put(
            _Failure(
                InputError(f"{container.name}: decoding failed ({e}); the file may be truncated or corrupt")
            )
        )
    except BaseException as e:  # pragma: no cover - surfaced in the main thread
        out.put(_Failure(e))
    finally:
        out.put(_STOP)


def _encode(
    output: av.container.OutputContainer,
    stream: av.video.stream.VideoStream,
    streams: Mapping[int, Any],
    items: queue.Queue[Any],
    errors: list[BaseException],
) -> None:
    """Encodes restored frames and muxes them with the copied packets."""
    try:
        while True:
            item = items.get()
            if item is _STOP:
                break
            kind = item[0]
            if kind == "convert":  # a restored picture to code as a frame first (see _VideoSink.write)
                try:
                    frame = item[1]()
                finally:
                    item[2].release()
                for packet in stream.encode(frame):
                    output.mux(packet)
            else:
                packet = item[1]
                packet.stream = streams[item[2]]
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    except BaseException as e:
        errors.append(e)
        while (item := items.get()) is not _STOP:  # keep the producer from blocking
            if item[0] == "convert":
                item[2].release()


def _add_video_stream(
    output: av.container.OutputContainer,
    settings: RestoreSettings,
    width: int,
    height: int,
    desc: ColourDescription,
    dst: Path,
    *,
    rate: Fraction,
    time_base: Fraction | None,
    input_pix_fmt: str,
    metadata: Mapping[str, str],
) -> av.video.stream.VideoStream:
    enc = settings.encode
    codec = enc.codec or _DEFAULT_CODEC.get(dst.suffix.lower(), "libx264")
    try:
        av.codec.Codec(codec, "w")
    except (av.error.FFmpegError, ValueError):
        raise OutputError(f"{dst}: unknown encoder {codec!r} (see 'ffmpeg -encoders' for names)") from None
    options = dict(enc.options)
    if codec in _CRF_CODECS:
        options.setdefault("crf", str(enc.crf if enc.crf is not None else 18))
        if codec == "libx264":
            options.setdefault("preset", enc.preset or "medium")
        elif enc.preset is not None:
            options.setdefault("preset", enc.preset)
    elif enc.crf is not None:
        log.warning("--crf is ignored by %s", codec)
    try:
        stream = cast(av.video.stream.VideoStream, output.add_stream(codec, rate=rate, options=options))
    except (av.error.FFmpegError, ValueError) as e:
        raise OutputError(f"{dst}: cannot use encoder {codec!r} here ({e})") from None
    stream.width, stream.height = width, height
    stream.pix_fmt = enc.pix_fmt or output_pix_fmt(input_pix_fmt, codec)
    if time_base is not None:
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
    tag_codec_context(stream.codec_context, desc)
    # The pictures are turned upright before restoring (see _run), so no rotation is written.
    stream.metadata.update({k: v for k, v in metadata.items() if k.lower() != "rotate"})
    return stream


def _copyable(input_: av.container.InputContainer, video_index: int) -> list[Any]:
    """The input streams whose packets are copied: every audio, subtitle and data stream."""
    return [s for s in input_.streams if s.index != video_index and s.type in ("audio", "subtitle", "data")]


def _add_streams(
    input_: av.container.InputContainer,
    output: av.container.OutputContainer,
    video_index: int,
    add_video: Callable[[], av.video.stream.VideoStream],
) -> tuple[av.video.stream.VideoStream, dict[int, Any]]:
    """Adds the output streams in the input's order: the restored video in place of the source's,
    and a copy of every stream from :func:`_copyable` that the output container accepts."""
    video: av.video.stream.VideoStream | None = None
    mapping: dict[int, Any] = {}
    copyable = {s.index for s in _copyable(input_, video_index)}
    for s in input_.streams:
        if s.index == video_index:
            video = add_video()
            continue
        if s.index not in copyable:
            continue
        try:
            o = output.add_stream_from_template(s)
        except (av.error.FFmpegError, ValueError, TypeError, NotImplementedError) as e:
            name = s.codec_context.name if s.codec_context else "?"
            log.warning(
                "stream #%d (%s, %s) cannot be copied into this container: %s", s.index, s.type, name, e
            )
            continue
        if s.metadata:
            o.metadata.update(s.metadata)
        mapping[s.index] = o
    assert video is not None
    return video, mapping


def _frame_source(
    items: queue.Queue[Any],
    sink: Callable[[Any], None],
) -> Iterator[tuple[int, av.VideoFrame]]:
    """Yields decoded frames with their index; passes copied packets to ``sink`` as they come."""
    index = 0
    while True:
        item = items.get()
        if item is _STOP:
            return
        if isinstance(item, _Failure):
            raise item.error
        if item[0] == "packet":
            sink(item[1])
            continue
        yield index, item[1]
        index += 1


def restore_video(
    source: str | Path, output: str | Path, settings: RestoreSettings | None = None
) -> RestoreSummary:
    """Restores a video file or an image sequence into a video file or an image sequence.

    ``source``: a video file, or an image sequence (a folder, ``frames/%05d.png`` or
    ``frames/*.png``; see :mod:`mmrealsr_video.sequences`), timed at ``settings.fps``.
    ``output``: a video file (container from the extension; a video input's other streams are
    copied), or images: a folder (an existing one, a path ending in ``/`` or one without an
    extension) or a printf pattern (``out/%06d.png``, formatted with the input frame's index).
    Images keep a sequence's names (``--image-format`` changes the type) or are numbered by input
    frame (``%06d.png``) from a video; 16-bit inputs (and videos of more than 8 bits) give 16-bit
    PNG/TIFF. The images are written into a temporary folder renamed into place when complete.

    Raises:
        InputError: unreadable input, no video stream, no frames, bad settings.
        OutputError: the output exists (without ``force``), would overwrite the input, or cannot be written.
    """
    s = settings or RestoreSettings()
    dst = Path(output)
    sequence = find_sequence(source) if is_sequence(source) else None
    if sequence is None and s.fps is not None:
        raise InputError(f"--fps sets an image sequence's frame rate; {source} is a video and keeps its own")
    rate = as_rate(s.fps)
    images = (
        image_output(output, s.image_format, sequence.suffix if sequence else ".png")
        if (is_image_output(output))
        else None
    )
    inputs = list(sequence.files) if sequence is not None else [Path(source)]
    stems: list[str] | None = None
    if sequence is None and not Path(source).is_file():
        raise InputError(f"{source}: no such file")
    if images is not None:
        _check_image_output(inputs, images, s.force)
        if sequence is not None and images.pattern is None:
            stems = [f.stem for f in sequence.files]
            _check_unique_names(sequence, images, stems)
    else:
        _check_video_output(inputs, dst, s.force)
    model = load_model(s.model, device=s.device, dtype=s.dtype)
    full_track = _prepared_track(source, model, s, rate if sequence is not None else None)
    t_start = time.perf_counter()
    rng = _Range(s)
    container: av.container.InputContainer | None = None
    src: _VideoSource | _SequenceSource
    if sequence is not None:
        src = _SequenceSource(sequence, rate)
    else:
        container, vstream = open_video(source)
        try:
            src = _VideoSource(container, vstream, copy_streams=images is None)
        except BaseException:
            container.close()
            raise
    try:
        if images is not None:
            with atomic_folder(images.folder, force=s.force) as tmp:
                summary = _run(src, _ImageSink(tmp, images, stems), model, s, rng, full_track, t_start, dst)
        else:
            with atomic_output(dst) as tmp:
                sink = _VideoSink(
                    tmp,
                    dst,
                    s,
                    rng,
                    src.video if isinstance(src, _VideoSource) else None,
                    src.rate,
                    src.time_base,
                )
                summary = _run(src, sink, model, s, rng, full_track, t_start, dst)
    except av.error.FFmpegError as e:
        raise OutputError(f"{dst}: writing failed ({e})") from None
    finally:
        src.close()
        if container is not None:
            container.close()
    return summary


def _check_unique_names(sequence: ImageSequence, out: ImageOutput, stems: Sequence[str]) -> None:
    seen: dict[str, Path] = {}
    for path, stem in zip(sequence.files, stems, strict=True):
        name = stem + out.suffix
        if name in seen:
            raise OutputError(
                f"{out.folder}: {seen[name].name} and {path.name} would both be written as {name}"
            )
        seen[name] = path


def _prepared_track(
    src: str | Path, model: ModulatedModel, s: RestoreSettings, rate: Fraction | None
) -> CoefficientTrack | None:
    if s.track is not None:
        track = CoefficientTrack.load(s.track)
        if track.model != model.name:
            log.warning(
                "track %s was made with model %r, restoring with %r: coefficients may not match",
                s.track,
                track.model,
                model.name,
            )
        if s.keyframes is not None:  # keys on top of the track's values, as the VapourSynth filter does
            from mmrealsr_video.keyframes import apply_keyframes, parse_keyframes

            track = apply_keyframes(track, parse_keyframes(s.keyframes))
        return track
    if s.keyframes is not None:
        from mmrealsr_video.analysis import analyze

        return analyze(src, model, config=s.analysis, keyframes=s.keyframes, progress=s.progress, fps=rate)
    return None


# --- frame sources: where the pictures come from ------------------------------------------------------


class _VideoSource:
    """A video file's frames, decoded in a thread; its other streams' packets go to ``on_packet``."""

    def __init__(
        self,
        container: av.container.InputContainer,
        vstream: av.video.stream.VideoStream,
        *,
        copy_streams: bool,
    ) -> None:
        ctx = vstream.codec_context
        if not ctx.width or not ctx.height:
            raise InputError(f"{container.name}: the video stream has no picture size")
        self.video = (container, vstream)
        self.name = container.name
        self.fps = float(vstream.average_rate) if vstream.average_rate else None
        self.rate = as_fraction(vstream.average_rate or vstream.guessed_rate) or Fraction(25)
        self.time_base = as_fraction(vstream.time_base)
        self.total = int(vstream.frames) or None
        self.on_packet: Callable[[Any], None] = lambda _packet: None
        copied = _copyable(container, vstream.index) if copy_streams else []
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=16)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=_decode,
            args=(container, vstream, copied, self._queue, self._stop),
            name="decode",
            daemon=True,
        )

    def frames(self) -> Iterator[tuple[int, float, av.VideoFrame]]:
        self._thread.start()
        for index, frame in _frame_source(self._queue, self.on_packet):
            t = (
                float(frame.pts * frame.time_base)
                if frame.pts is not None and frame.time_base
                else index / (self.fps or 25)
            )
            yield index, t, frame

    def complete(self, last_time: float) -> None:
        container, vstream = self.video
        check_complete(container, vstream, last_time + 1 / (self.fps or 25.0), self.name)

    def close(self) -> None:
        _stop_thread(self._thread, self._stop, self._queue)


class _SequenceSource:
    """An image sequence's frames, read in a thread, timed at ``rate``."""

    def __init__(self, sequence: ImageSequence, rate: Fraction) -> None:
        self.video = None
        self.name = sequence.source
        self.fps: float | None = float(rate)
        self.rate = rate
        self.time_base: Fraction | None = 1 / rate
        self.total: int | None = len(sequence)
        self._sequence = sequence
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=16)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="read", daemon=True)

    def _read(self) -> None:
        try:
            for _, frame in read_frames(self._sequence, self.rate, stop=self._stop):
                self._queue.put(("frame", frame))
        except BaseException as e:
            self._queue.put(_Failure(e))
        finally:
            self._queue.put(_STOP)

    def frames(self) -> Iterator[tuple[int, float, av.VideoFrame]]:
        self._thread.start()
        for index, frame in _frame_source(self._queue, lambda _packet: None):
            yield index, float(index / self.rate), frame

    def complete(self, last_time: float) -> None:
        """Nothing to check: a sequence has no declared length."""

    def close(self) -> None:
        _stop_thread(self._thread, self._stop, self._queue)


def _stop_thread(thread: threading.Thread, stop: threading.Event, items: queue.Queue[Any]) -> None:
    """Stops a producer thread that may be blocked on a full queue."""
    stop.set()
    deadline = time.monotonic() + 30
    while thread.is_alive() and time.monotonic() < deadline:
        _drain(items)
        thread.join(timeout=0.05)
    _drain(items)


# --- frame sinks: where the restored pictures go ------------------------------------------------------


def _code_in_producer(rgb: torch.Tensor) -> bool:
    """Whether a restored picture is coded to YUV in the restoring thread (see _VideoSink.write)."""
    return rgb.device.type != "cpu"


class _VideoSink:
    """Encodes restored frames (in a thread) into a new container, with a video input's other
    streams, chapters and metadata copied."""

    even = True  # 4:2:0 encoders need even sizes

    def __init__(
        self,
        tmp: Path,
        dst: Path,
        s: RestoreSettings,
        rng: _Range,
        video: tuple[av.container.InputContainer, av.video.stream.VideoStream] | None,
        rate: Fraction,
        time_base: Fraction | None,
    ) -> None:
        self.dst, self.s, self.rng, self.video = dst, s, rng, video
        self.rate, self.time_base = rate, time_base
        try:
            self.output = av.open(str(tmp), "w", format=_muxer(dst))
        except (av.error.FFmpegError, ValueError) as e:
            raise OutputError(f"{dst}: cannot write this container ({e})") from None
        if video is not None:
            self.output.metadata.update(video[0].metadata)
            _copy_chapters(video[0], self.output)
        self.mapping: dict[int, Any] = {}
        self.offset: float | None = None  # seconds subtracted from every kept timestamp
        self.early_packets: list[Any] = []
        self.items: queue.Queue[Any] = queue.Queue(maxsize=16)
        # Restored pictures waiting to be coded as frames (float RGB at output size: bounded apart).
        self.converting = threading.BoundedSemaphore(3)
        self.errors: list[BaseException] = []
        self.thread: threading.Thread | None = None
        self.desc: ColourDescription | None = None
        self.stream: av.video.stream.VideoStream | None = None

    def send_packet(self, packet: Any) -> None:
        """A copied stream's packet: kept if inside the range, shifted like the video."""
        rng = self.rng
        t = float(packet.pts * packet.time_base) if packet.pts is not None and packet.time_base else None
        if t is not None and (
            (rng.t0 is not None and t < rng.t0 - 1e-6) or (rng.t1 is not None and t >= rng.t1)
        ):
            return
        if self.offset is None:
            self.early_packets.append(packet)
            return
        if packet.stream.index not in self.mapping:
            return  # a stream this container cannot hold (warned about once)
        _shift(packet, self.offset)
        self.items.put(("packet", packet, packet.stream.index))

    def open(
        self, first: av.VideoFrame, t: float, desc: ColourDescription, size: tuple[int, int], shifted: bool
    ) -> None:
        self.desc = desc
        add = partial(
            _add_video_stream,
            self.output,
            self.s,
            size[0],
            size[1],
            desc,
            self.dst,
            rate=self.rate,
            time_base=self.time_base,
            input_pix_fmt=(
                (self.video[1].codec_context.pix_fmt or "yuv420p") if self.video else first.format.name
            ),
            metadata=dict(self.video[1].metadata) if self.video else {},
        )
        if self.video is not None:
            self.stream, streams = _add_streams(self.video[0], self.output, self.video[1].index, add)
            self.mapping.update(streams)
        else:
            self.stream = add()
        self.offset = t if shifted else 0.0
        self.thread = threading.Thread(
            target=_encode,
            args=(self.output, self.stream, self.mapping, self.items, self.errors),
            name="encode",
            daemon=True,
        )
        self.thread.start()
        for p in self.early_packets:
            self.send_packet(p)
        self.early_packets.clear()

    def write(self, index: int, frame: av.VideoFrame, rgb: torch.Tensor, alpha: torch.Tensor | None) -> None:
        """Queues a restored picture for the encode thread. A picture on the CPU is coded (RGB ->
        YUV) there too, so that the conversion overlaps the model's next batch instead of following
        it; one on a GPU is coded here, on the GPU (a few kernels), so that only the 8/16-bit codes
        cross to the CPU (an eighth of the float picture at 8 bits) and the encode thread, which
        bounds a GPU run's speed, is left with the encoder alone."""
        assert self.stream is not None and self.desc is not None
        desc, pix_fmt, time_base = self.desc, self.stream.pix_fmt or "yuv420p", self.time_base
        pts = _shifted_pts(frame, self.offset or 0.0, time_base)
        coded = output_planes(rgb, desc, pix_fmt, alpha) if _code_in_producer(rgb) else None

        def build() -> av.VideoFrame:
            codes = coded if coded is not None else output_planes(rgb, desc, pix_fmt, alpha)
            out = planes_to_frame(codes, desc, pix_fmt)
            out.pts = pts
            if time_base is not None:
                out.time_base = time_base
            return out

        while not self.converting.acquire(timeout=0.5):
            self.check()
        self.items.put(("convert", build, self.converting))

    def check(self) -> None:
        if self.errors:
            raise self.errors[0]

    def finish(self) -> None:
        self.items.put(_STOP)
        assert self.thread is not None
        self.thread.join()
        self.check()
        self.output.close()

    def abort(self) -> None:
        if self.thread is not None and self.thread.is_alive():
            _drain(self.items)
            self.items.put(_STOP)
            self.thread.join(timeout=30)
        with contextlib.suppress(av.error.FFmpegError, OSError):
            self.output.close()


class _ImageSink:
    """Writes restored frames as images into a (temporary) folder."""

    even = False

    def __init__(self, folder: Path, out: ImageOutput, stems: Sequence[str] | None) -> None:
        self.folder, self.out, self.stems = folder, out, stems
        self.dtype: type[np.generic] = np.uint8

    def send_packet(self, packet: Any) -> None:  # pragma: no cover - image outputs copy no stream
        pass

    def open(
        self, first: av.VideoFrame, t: float, desc: ColourDescription, size: tuple[int, int], shifted: bool
    ) -> None:
        bits = max(c.bits for c in first.format.components)
        deep = bits > 8 and self.out.suffix in (".png", ".tif", ".tiff")
        self.dtype = np.uint16 if deep else np.uint8

    def write(self, index: int, frame: av.VideoFrame, rgb: torch.Tensor, alpha: torch.Tensor | None) -> None:
        pixels = from_tensor(rgb.cpu(), self.dtype)
        a = None
        if alpha is not None:
            a = from_tensor(alpha.expand(3, -1, -1), self.dtype)[:, :, 0]
        write_image(self.folder / self.out.name(index, self.stems), pixels, a)

    def check(self) -> None:
        pass

    def finish(self) -> None:
        pass

    def abort(self) -> None:
        pass


# --- the one restore loop ---------------------------------------------------------------------------


def _run(
    src: _VideoSource | _SequenceSource,
    sink: _VideoSink | _ImageSink,
    model: ModulatedModel,
    s: RestoreSettings,
    rng: _Range,
    full_track: CoefficientTrack | None,
    t_start: float,
    dst: Path,
) -> RestoreSummary:
    """Frames from ``src`` -> analysis (or a track) -> batched ``model.restore_frames`` -> ``sink``.

    A picture whose stream carries a display rotation (phone videos) is turned upright right after
    its conversion to RGB, for the analysis and for the model alike, and the output carries no
    rotation: the analysis' crops and the model's tiles see the picture as it is meant to be seen,
    image outputs (which have no rotation tag) come out upright, and every output displays as the
    input did. ``analyze`` turns its frames the same way (``video.iter_frames``), so tracks match.
    """
    fps = src.fps
    records: list[FrameCoefficients] = []
    written = 0
    if isinstance(src, _VideoSource):
        src.on_packet = sink.send_packet
    analysis = None
    track_frames = {r.index: r for r in full_track.frames} if full_track is not None else {}
    if full_track is None:
        analysis = StreamingAnalysis(model, s.analysis, fps=fps, lookahead=s.lookahead)
    waiting: deque[tuple[int, int, av.VideoFrame]] = deque()  # (kept, input index, picture)
    batch: list[tuple[int, av.VideoFrame, FrameCoefficients]] = []
    bar = _progress(s, src.total)
    kept = 0
    desc: ColourDescription | None = None
    orientation = Orientation()
    out_w = out_h = 0

    def flush_batch() -> None:
        nonlocal written
        if not batch:
            return
        assert desc is not None
        tensors = []
        alphas = []
        for _, frame, _ in batch:
            rgb, alpha = frame_to_tensor(frame, desc)
            tensors.append(orientation.apply(rgb))
            alphas.append(None if alpha is None else orientation.apply(alpha))
        x = torch.stack(tensors)
        coeffs = torch.tensor([[r.blur, r.noise] for _, _, r in batch], dtype=torch.float32)
        # Left on the model's device: the sink codes GPU pictures there (see _VideoSink.write).
        y = model.restore_frames(x, coeffs, (out_h, out_w), tile=s.tile, tile_overlap=s.tile_overlap)
        for k, (index, frame, _) in enumerate(batch):
            alpha = alphas[k]
            if alpha is not None:
                alpha = F.interpolate(
                    alpha[None, None], size=(out_h, out_w), mode="bilinear", align_corners=False
                )[0, 0]
            sink.write(index, frame, y[k], alpha)
            written += 1
            if bar is not None:
                bar.update(1)
        batch.clear()

    def settle(settled: list[FrameCoefficients], *, input_index: bool = False) -> None:
        for rec in settled:
            idx, index, frame = waiting.popleft()
            assert input_index or idx == rec.index
            final = apply_fixed_frame(rec, s.blur, s.noise)
            if final.index != index:  # the analysis counts kept frames; a track names source frames
                final = dataclasses.replace(final, index=index)
            records.append(final)
            batch.append((index, frame, final))
            if len(batch) >= s.batch:
                flush_batch()

    try:
        last_time: float | None = None
        stopped = False
        for index, t, frame in src.frames():
            last_time = t
            if rng.past(index, t):
                stopped = True
                break
            if not rng.keeps(index, t):
                continue
            if desc is None:
                desc = ColourDescription.from_frame(frame)
                orientation = Orientation.of(frame)
                if not orientation.identity:
                    log.info(
                        "%s: players show this stream turned %s (its display matrix); it is restored upright",
                        src.name,
                        orientation,
                    )
                if frame.interlaced_frame:
                    log.warning(
                        "%s: the video is interlaced; it is restored frame by frame without deinterlacing "
                        "(deinterlace it first, e.g. with a VapourSynth QTGMC script, for better results)",
                        src.name,
                    )
                scale = s.outscale if s.outscale is not None else model.scale
                w, h = orientation.size(frame.width, frame.height)
                out_w, out_h = max(1, round(w * scale)), max(1, round(h * scale))
                if sink.even:
                    out_w, out_h = _even(out_w), _even(out_h)
                sink.open(frame, t, desc, (out_w, out_h), shifted=bool(rng.first or rng.t0))
            waiting.append((kept, index, frame))
            if full_track is not None:
                settle([_from_track(track_frames, index, src=src.name)], input_index=True)
            else:
                assert analysis is not None
                rgb, _ = frame_to_tensor(frame, desc)
                settle(analysis.push(kept, t, to_rgb8(orientation.apply(rgb))))
            kept += 1
            sink.check()
        if not stopped and last_time is not None:
            src.complete(last_time)
        if analysis is not None and (waiting or batch):
            settle(analysis.finish())
        flush_batch()
        src.close()
        if desc is None:
            raise InputError(
                f"{src.name}: no video frame in the selected range"
                if (rng.first or rng.t0)
                else f"{src.name}: the video stream holds no decodable frame"
            )
        sink.finish()
        if bar is not None:
            bar.close()
    except BaseException:
        # Stop both threads before the temporary output is removed by the caller.
        src.close()
        sink.abort()
        raise
    if s.save_track is not None:
        CoefficientTrack(tuple(records), model=model.name, fps=fps).save(s.save_track)
    seconds = time.perf_counter() - t_start
    c = np.asarray([[r.blur, r.noise] for r in records]) if records else np.zeros((1, 2))
    return RestoreSummary(
        output=dst,
        frames=written,
        seconds=seconds,
        fps=written / seconds if seconds > 0 else 0.0,
        scenes=len({r.scene for r in records}),
        blur_range=(float(c[:, 0].min()), float(c[:, 0].max())),
        noise_range=(float(c[:, 1].min()), float(c[:, 1].max())),
        width=out_w,
        height=out_h,
    )


def _drain(q: queue.Queue[Any] | None) -> None:
    if q is None:
        return
    try:
        while True:
            q.get_nowait()
    except queue.Empty:
        pass


def _even(n: int) -> int:
    return max(2, n + (n % 2))


def _muxer(dst: Path) -> str | None:
    return {".mkv": "matroska", ".mp4": "mp4", ".mov": "mov", ".m4v": "mp4", ".webm": "webm"}.get(
        dst.suffix.lower()
    )


def _shift(packet: Any, offset: float) -> None:
    if not offset or packet.time_base is None:
        return
    delta = round(offset / float(packet.time_base))
    if packet.pts is not None:
        packet.pts -= delta
    if packet.dts is not None:
        packet.dts -= delta


def _shifted_pts(frame: av.VideoFrame, offset: float, time_base: Fraction | None) -> int | None:
    if frame.pts is None:
        return None
    if not offset or time_base is None:
        return int(frame.pts)
    return int(frame.pts) - round(offset / float(time_base))


def _copy_chapters(input_: av.container.InputContainer, output: av.container.OutputContainer) -> None:
    chapters = getattr(input_, "chapters", None)
    setter = getattr(output, "set_chapters", None)
    if chapters is None or setter is None:
        return
    try:
        found = chapters()
        if found:
            setter(found)
    except (av.error.FFmpegError, ValueError, TypeError) as e:
        log.warning("chapters could not be copied: %s", e)


def _from_track(frames: Mapping[int, FrameCoefficients], index: int, *, src: str) -> FrameCoefficients:
    """The track's record of source frame ``index`` (a track saved from a part of the input holds
    that part's frames, by their numbers in the source)."""
    rec = frames.get(index)
    if rec is None:
        held = f"frames {min(frames)}-{max(frames)}" if frames else "no frames"
        raise InputError(
            f"the track holds {held} but not frame {index} of {src}; was it made from this input?"
        )
    return rec


def _progress(s: RestoreSettings, total: int | None) -> Any:
    if not s.progress:
        return None
    from tqdm import tqdm

    if s.frames is not None and s.frames[1] is not None:
        total = s.frames[1] - s.frames[0]
    return tqdm(total=total, unit="frame", desc="restore", disable=None, dynamic_ncols=True)
