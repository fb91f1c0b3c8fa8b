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
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
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
    tag_codec_context,
    tensor_to_frame,
)
from mmrealsr_video.errors import InputError, OutputError
from mmrealsr_video.files import atomic_output
from mmrealsr_video.keyframes import apply_fixed
from mmrealsr_video.model import ModulatedModel, load_model
from mmrealsr_video.track import CoefficientTrack, FrameCoefficients
from mmrealsr_video.video import as_fraction, check_complete, open_video

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
        if self.keyframes is not None and self.track is not None:
            raise InputError(
                "give keyframes or a track, not both (apply keyframes to the track with 'analyze')"
            )


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
    if dst.resolve() == src.resolve() or (dst.exists() and dst.samefile(src)):
        raise OutputError(f"{dst}: the output would overwrite the input")
    if dst.exists() and not force:
        raise OutputError(f"{dst}: already exists (pass --force to overwrite)")
    if not dst.parent.is_dir():
        raise OutputError(f"{dst.parent}: output folder does not exist")
    if _muxer(dst) is None:
        raise OutputError(f"{dst}: unknown container {dst.suffix!r}; use one of {', '.join(sorted(_MUXERS))}")


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
            if kind == "frame":
                for packet in stream.encode(item[1]):
                    output.mux(packet)
            else:
                packet = item[1]
                packet.stream = streams[item[2]]
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    except BaseException as e:
        errors.append(e)
        while items.get() is not _STOP:  # keep the producer from blocking
            pass


def _add_video_stream(
    output: av.container.OutputContainer,
    src: av.video.stream.VideoStream,
    settings: RestoreSettings,
    width: int,
    height: int,
    desc: ColourDescription,
    dst: Path,
) -> av.video.stream.VideoStream:
    enc = settings.encode
    codec = enc.codec or _DEFAULT_CODEC.get(dst.suffix.lower(), "libx264")
    try:
        av.codec.Codec(codec, "w")
    except (av.error.FFmpegError, ValueError):
        raise OutputError(f"{dst}: unknown encoder {codec!r} (see 'ffmpeg -encoders' for names)") from None
    rate = as_fraction(src.average_rate or src.guessed_rate) or Fraction(25)
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
    stream.pix_fmt = enc.pix_fmt or output_pix_fmt(src.codec_context.pix_fmt or "yuv420p", codec)
    if src.time_base is not None:
        stream.time_base = src.time_base
        stream.codec_context.time_base = src.time_base
    tag_codec_context(stream.codec_context, desc)
    if src.metadata:
        stream.metadata.update(src.metadata)
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
    """Restores a video file into ``output`` (container from the extension), copying its other streams.

    Raises:
        InputError: unreadable input, no video stream, no frames, bad settings.
        OutputError: the output exists (without ``force``), would overwrite the input, or cannot be written.
    """
    s = settings or RestoreSettings()
    src, dst = Path(source), Path(output)
    _check_paths(src, dst, s.force)
    model = load_model(s.model, device=s.device, dtype=s.dtype)
    full_track = _prepared_track(src, model, s)
    t_start = time.perf_counter()
    container, vstream = open_video(src)
    try:
        with atomic_output(dst) as tmp:
            summary = _run(container, vstream, tmp, dst, model, s, full_track, t_start)
    except av.error.FFmpegError as e:
        raise OutputError(f"{dst}: writing failed ({e})") from None
    finally:
        container.close()
    return summary


def _prepared_track(src: Path, model: ModulatedModel, s: RestoreSettings) -> CoefficientTrack | None:
    if s.track is not None:
        track = CoefficientTrack.load(s.track)
        if track.model != model.name:
            log.warning(
                "track %s was made with model %r, restoring with %r: coefficients may not match",
                s.track,
                track.model,
                model.name,
            )
        return track
    if s.keyframes is not None:
        from mmrealsr_video.analysis import analyze

        return analyze(src, model, config=s.analysis, keyframes=s.keyframes, progress=s.progress)
    return None


def _run(
    container: av.container.InputContainer,
    vstream: av.video.stream.VideoStream,
    tmp: Path,
    dst: Path,
    model: ModulatedModel,
    s: RestoreSettings,
    full_track: CoefficientTrack | None,
    t_start: float,
) -> RestoreSummary:
    ctx = vstream.codec_context
    if not ctx.width or not ctx.height:
        raise InputError(f"{container.name}: the video stream has no picture size")
    scale = s.outscale if s.outscale is not None else model.scale
    out_w, out_h = _even(round(ctx.width * scale)), _even(round(ctx.height * scale))
    rng = _Range(s)
    fps = float(vstream.average_rate) if vstream.average_rate else None
    try:
        output = av.open(str(tmp), "w", format=_muxer(dst))
    except (av.error.FFmpegError, ValueError) as e:
        raise OutputError(f"{dst}: cannot write this container ({e})") from None
    records: list[FrameCoefficients] = []
    written = 0
    decoded: queue.Queue[Any] = queue.Queue(maxsize=16)
    to_encode: queue.Queue[Any] = queue.Queue(maxsize=16)
    stop = threading.Event()
    enc_errors: list[BaseException] = []
    enc_thread: threading.Thread | None = None
    copied = _copyable(container, vstream.index)
    dec_thread = threading.Thread(
        target=_decode, args=(container, vstream, copied, decoded, stop), name="decode", daemon=True
    )
    try:
        output.metadata.update(container.metadata)
        mapping: dict[int, Any] = {}
        _copy_chapters(container, output)
        desc: ColourDescription | None = None
        ostream: av.video.stream.VideoStream | None = None
        dec_thread.start()
        offset: list[float | None] = [None]  # seconds subtracted from every kept timestamp
        early_packets: list[Any] = []

        def send_packet(packet: Any) -> None:
            t = float(packet.pts * packet.time_base) if packet.pts is not None and packet.time_base else None
            if t is not None and (
                (rng.t0 is not None and t < rng.t0 - 1e-6) or (rng.t1 is not None and t >= rng.t1)
            ):
                return
            if offset[0] is None:
                early_packets.append(packet)
                return
            if packet.stream.index not in mapping:
                return  # a stream this container cannot hold (warned about once)
            _shift(packet, offset[0])
            to_encode.put(("packet", packet, packet.stream.index))

        analysis = None
        if full_track is None:
            analysis = StreamingAnalysis(model, s.analysis, fps=fps, lookahead=s.lookahead)
        waiting: deque[tuple[int, av.VideoFrame]] = deque()
        batch: list[tuple[av.VideoFrame, FrameCoefficients]] = []
        bar = _progress(s, vstream)
        kept = 0

        def flush_batch() -> None:
            nonlocal written
            if not batch:
                return
            assert desc is not None
            tensors = []
            alphas = []
            for frame, _ in batch:
                rgb, alpha = frame_to_tensor(frame, desc)
                tensors.append(rgb)
                alphas.append(alpha)
            x = torch.stack(tensors)
            coeffs = torch.tensor([[r.blur, r.noise] for _, r in batch], dtype=torch.float32)
            y = model.restore_frames(
                x, coeffs, (out_h, out_w), tile=s.tile, tile_overlap=s.tile_overlap
            ).cpu()
            for k, (frame, _) in enumerate(batch):
                alpha = alphas[k]
                if alpha is not None:
                    alpha = F.interpolate(
                        alpha[None, None], size=(out_h, out_w), mode="bilinear", align_corners=False
                    )[0, 0]
                assert ostream is not None
                out = tensor_to_frame(y[k], desc, ostream.pix_fmt or "yuv420p", alpha)
                out.pts = _shifted_pts(frame, offset[0] or 0.0, as_fraction(vstream.time_base))
                out.time_base = vstream.time_base
                to_encode.put(("frame", out))
                written += 1
                if bar is not None:
                    bar.update(1)
            batch.clear()

        def settle(settled: list[FrameCoefficients], *, input_index: bool = False) -> None:
            for rec in settled:
                idx, frame = waiting.popleft()
                assert input_index or idx == rec.index
                final = _final(rec, s, model.name)
                records.append(final)
                batch.append((frame, final))
                if len(batch) >= s.batch:
                    flush_batch()

        last_time: float | None = None
        for index, frame in _frame_source(decoded, send_packet):
            t = (
                float(frame.pts * frame.time_base)
                if frame.pts is not None and frame.time_base
                else index / (fps or 25)
            )
            last_time = t
            if rng.past(index, t):
                stop.set()
                break
            if not rng.keeps(index, t):
                continue
            if desc is None:
                desc = ColourDescription.from_frame(frame)
                if frame.interlaced_frame:
                    log.warning(
                        "%s: the video is interlaced; it is restored frame by frame without deinterlacing "
                        "(deinterlace it first, e.g. with a VapourSynth QTGMC script, for better results)",
                        container.name,
                    )
                ostream, streams = _add_streams(
                    container,
                    output,
                    vstream.index,
                    partial(_add_video_stream, output, vstream, s, out_w, out_h, desc, dst),
                )
                mapping.update(streams)
                offset[0] = t if (rng.first or rng.t0) else 0.0
                enc_thread = threading.Thread(
                    target=_encode,
                    args=(output, ostream, mapping, to_encode, enc_errors),
                    name="encode",
                    daemon=True,
                )
                enc_thread.start()
                for p in early_packets:
                    send_packet(p)
                early_packets.clear()
            waiting.append((kept, frame))
            if full_track is not None:
                settle([_from_track(full_track, index, src=container.name)], input_index=True)
            else:
                assert analysis is not None
                rgb, _ = frame_to_tensor(frame, desc)
                settle(analysis.push(kept, t, _to_uint8(rgb)))
            kept += 1
            if enc_errors:
                raise enc_errors[0]
        if not stop.is_set() and last_time is not None:
            check_complete(container, vstream, last_time + 1 / (fps or 25.0), container.name)
        if analysis is not None and (waiting or batch):
            settle(analysis.finish())
        flush_batch()
        stop.set()
        _drain(decoded)
        dec_thread.join(timeout=30)
        if desc is None:
            raise InputError(
                f"{container.name}: no video frame in the selected range"
                if (rng.first or rng.t0)
                else f"{container.name}: the video stream holds no decodable frame"
            )
        to_encode.put(_STOP)
        assert enc_thread is not None
        enc_thread.join()
        if enc_errors:
            raise enc_errors[0]
        if bar is not None:
            bar.close()
    except BaseException:
        # Stop both threads before the temporary output is removed by the caller.
        stop.set()
        _drain(decoded)
        if enc_thread is not None and enc_thread.is_alive():
            _drain(to_encode)
            to_encode.put(_STOP)
            enc_thread.join(timeout=30)
        if dec_thread.is_alive():
            _drain(decoded)
            dec_thread.join(timeout=30)
        with contextlib.suppress(av.error.FFmpegError, OSError):
            output.close()
        raise
    output.close()
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


def _to_uint8(rgb: torch.Tensor) -> np.ndarray:
    """The analysis' view of a frame: the same 8-bit RGB ``video.frame_to_rgb`` gives ``analyze``."""
    return rgb.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


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


def _final(rec: FrameCoefficients, s: RestoreSettings, model: str) -> FrameCoefficients:
    """The frame's record with the fixed --blur/--noise values applied (the one rule: ``apply_fixed``)."""
    if s.blur is None and s.noise is None:
        return rec
    return apply_fixed(CoefficientTrack((rec,), model=model), s.blur, s.noise).frames[0]


def _from_track(track: CoefficientTrack, index: int, *, src: str) -> FrameCoefficients:
    if index >= len(track.frames):
        raise InputError(
            f"track has {len(track.frames)} frames but {src} has more; was it made from this file?"
        )
    return track.frames[index]


def _progress(s: RestoreSettings, vstream: av.video.stream.VideoStream) -> Any:
    if not s.progress:
        return None
    from tqdm import tqdm

    total = int(vstream.frames) or None
    if s.frames is not None and s.frames[1] is not None:
        total = s.frames[1] - s.frames[0]
    return tqdm(total=total, unit="frame", desc="restore", disable=None, dynamic_ncols=True)
