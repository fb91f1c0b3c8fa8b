"""The engine: one function per job, each wiring a source, the plan, a model and a sink.

- :func:`restore_video`: a video file or an image sequence, decoded in a thread, analysed as it
  streams (or coefficients from a track), restored in batches, encoded in another thread with the
  input's other streams copied. Memory is bounded by the analysis lookahead (frames wait, as
  decoded pictures at input resolution, until their scene's coefficients are settled) and the
  queues, never by the video's length.
- :func:`restore_image`: one still picture, its coefficients estimated by the same analysis a
  one-frame video gets.
- :func:`analyze`: a video's track (scenes, estimates, coefficients), for a later restore.

Where a frame's coefficients come from is the plan's :class:`CoefficientResolver`: the streamed
analysis, a track file (``track=``), or, with keyframes (``keyframes=``), a first analysis pass
(keyframe positions such as ``-24`` or ``00:05:00`` need the whole timeline); fixed ``blur`` /
``noise`` values apply on top of any of these.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
import numpy as np
import torch
import torch.nn.functional as F

from mmrealsr_video.analysis.streaming import AnalysisConfig, StreamingAnalysis, analyze_frames
from mmrealsr_video.errors import InputError, OutputError, SettingsError
from mmrealsr_video.io.colour import ColourDescription, frame_to_tensor, to_rgb8
from mmrealsr_video.io.files import atomic_folder, atomic_output, check_output_file
from mmrealsr_video.io.images import IMAGE_SUFFIXES, from_tensor, read_image, write_image
from mmrealsr_video.io.sequences import (
    find_sequence,
    image_output,
    is_image_output,
    is_sequence,
    sequence_frame,
)
from mmrealsr_video.io.sink import (
    FrameSink,
    ImageSink,
    VideoSink,
    check_encoder,
    check_image_output,
    check_unique_names,
    check_video_output,
)
from mmrealsr_video.io.source import FrameSource, decoded_frames, open_source
from mmrealsr_video.io.video import Orientation
from mmrealsr_video.models.loader import ModulatedModel, load_model
from mmrealsr_video.plan.keyframes import (
    Keyframes,
    apply_keyframes,
    check_key_positions,
    check_keyframes,
    parse_keyframes,
)
from mmrealsr_video.plan.resolver import CoefficientResolver
from mmrealsr_video.plan.track import CoefficientTrack, FrameCoefficients, check_track_output
from mmrealsr_video.settings import ImageSettings, RestoreSettings

__all__ = ["ImageSummary", "RestoreSummary", "analyze", "restore_image", "restore_video"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RestoreSummary:
    """What a video restore did."""

    output: Path
    frames: int
    seconds: float
    fps: float
    scenes: int
    blur_range: tuple[float, float]
    noise_range: tuple[float, float]
    width: int
    height: int


@dataclass(frozen=True)
class ImageSummary:
    """What an image restore did: sizes, the coefficients used and the automatic ones."""

    output: Path
    input_size: tuple[int, int]
    output_size: tuple[int, int]
    record: FrameCoefficients
    model: str
    seconds: float


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


def analyze(
    source: str | Path,
    model: str | Path | ModulatedModel = "default",
    *,
    config: AnalysisConfig | None = None,
    cuts: Sequence[int] | None = None,
    keyframes: str | Path | Keyframes | None = None,
    device: str = "cpu",
    progress: bool = False,
    fps: float | Fraction | str | None = None,
) -> CoefficientTrack:
    """Analyses a video file or an image sequence: scene cuts, per-scene degradation estimates,
    keyframed overrides.

    Args:
        source: a video file PyAV can open, or an image sequence (a folder, ``frames/%05d.png`` or
            ``frames/*.png``; see :mod:`mmrealsr_video.io.sequences`).
        model: a bundled model's name, a weights file, or a loaded model; its own estimator is
            used (coefficients are meaningful only for the generator trained with it).
        config: sampling, detection and aggregation settings.
        cuts: scene cuts given from outside (first frame of each new scene); skips detection.
        keyframes: keyframes (a file, a string, see docs/keyframes.md, or parsed) applied on top.
        device: where the estimator runs.
        progress: show a progress bar (only on a terminal).
        fps: an image sequence's frame rate (default 25); a video keeps its own.

    Returns:
        The track: one record per frame.

    Raises:
        InputError: an unreadable input; keyframes that do not parse, or that fall outside the
            video (checked against what the container declares before the pass, against the track
            after it).
    """
    keys = _keyframes(keyframes)  # refused before the long pass
    m = model if isinstance(model, ModulatedModel) else load_model(model, device=device)
    src = open_source(source, fps=fps)
    if keys is not None:
        try:
            check_key_positions(keys, frames=src.total, duration=src.duration, source=src.name)
        except BaseException:
            src.close()
            raise
    bar = _progress_bar(progress, src.total, "analyse")
    try:
        track = analyze_frames(
            decoded_frames(src),
            m,
            config=config,
            cuts=cuts,
            fps=src.fps,
            on_frame=(lambda _i: bar.update(1)) if bar is not None else None,
        )
    finally:
        src.close()
        if bar is not None:
            bar.close()
    log.info("%s: %d frames, %d scenes", source, len(track), len(track.scenes()))
    if keys is None:
        return track
    check_keyframes(track, keys)
    return apply_keyframes(track, keys)


def _keyframes(keyframes: str | Path | Keyframes | None) -> Keyframes | None:
    if keyframes is None or isinstance(keyframes, Keyframes):
        return keyframes
    return parse_keyframes(keyframes)


def restore_image(
    source: str | Path, output: str | Path, settings: ImageSettings | None = None
) -> ImageSummary:
    """Restores one still picture (PNG, JPEG, TIFF 8/16-bit, WebP, BMP; alpha kept, resized).

    Its automatic coefficients are those a one-frame video of the same picture gets (the same crops
    through the same estimator), so ``restore_image`` and ``restore_video`` agree on a picture.

    Raises:
        InputError: unreadable input or bad settings.
        OutputError: the output exists (without ``force``), would overwrite the input, or cannot be written.
    """
    s = settings or ImageSettings()
    src, dst = Path(source), Path(output)
    if dst.resolve() == src.resolve():
        raise OutputError(f"{dst}: the output would overwrite the input")
    check_output_file(dst, force=s.force)
    if dst.suffix.lower() not in IMAGE_SUFFIXES:
        raise OutputError(
            f"{dst}: unknown image type {dst.suffix!r}; use one of {', '.join(sorted(IMAGE_SUFFIXES))}"
        )
    rgb, alpha = read_image(src)
    h, w = rgb.shape[:2]
    _check_outscale(w, h, s.outscale, str(src))
    # The picture takes a video frame's path (an RGB frame, the same conversion to the model's input
    # and to the estimator's 8-bit pixels), so that a one-frame video of it gets the same numbers.
    frame = sequence_frame(src, rgb, alpha)
    x, _ = frame_to_tensor(frame, ColourDescription.from_frame(frame))
    model = load_model(s.model, device=s.device, dtype=s.dtype)
    for note in model.tiling_notes(w, h, s.tile, s.tile_overlap):
        log.warning("%s: %s", src, note)
    t0 = time.perf_counter()
    analysis = StreamingAnalysis(model, s.analysis)
    settled = {r.index: r for r in analysis.push(0, 0.0, to_rgb8(x)) + analysis.finish()}
    record = CoefficientResolver.from_analysis(settled.__getitem__, blur=s.blur, noise=s.noise).record(0)
    out_w, out_h = model.output_size(w, h, s.outscale)
    coeffs = torch.tensor([[record.blur, record.noise]], dtype=torch.float32)
    y = model.restore_frames(x[None], coeffs, (out_h, out_w), tile=s.tile, tile_overlap=s.tile_overlap)
    pixels = from_tensor(y.cpu(), rgb.dtype.type)
    if alpha is not None:
        import cv2

        alpha = cv2.resize(alpha, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
    with atomic_output(dst, force=s.force) as tmp:
        write_image(tmp, pixels, alpha, force=True)
    return ImageSummary(
        output=dst,
        input_size=(w, h),
        output_size=(out_w, out_h),
        record=record,
        model=f"{model.name} ({model.arch}) on {model.device}",
        seconds=time.perf_counter() - t0,
    )


def restore_video(
    source: str | Path, output: str | Path, settings: RestoreSettings | None = None
) -> RestoreSummary:
    """Restores a video file or an image sequence into a video file or an image sequence.

    ``source``: a video file, or an image sequence (a folder, ``frames/%05d.png`` or
    ``frames/*.png``; see :mod:`mmrealsr_video.io.sequences`), timed at ``settings.fps``.
    ``output``: a video file (container from the extension, one of
    :data:`mmrealsr_video.io.sink.MUXERS`; a video input's other streams are copied), or images: a
    folder (an existing one, a path ending in ``/`` or one without an extension) or a printf
    pattern (``out/%06d.png``, formatted with the input frame's index). Images keep a sequence's
    names (``image_format`` changes the type) or are numbered by input frame (``%06d.png``) from a
    video; 16-bit inputs (and videos of more than 8 bits) give 16-bit PNG/TIFF. The output is
    written under a temporary name and renamed into place when complete.

    Everything that can be checked is checked before the first frame is decoded: the outputs
    (the video or images, ``save_track``), the encoder and its settings, the part asked for, a
    track (``track``) and keyframes against what the container declares.

    Raises:
        InputError: unreadable input, no video stream, no frames, a track or keyframes that do not
            fit the input, bad settings.
        OutputError: the output exists (without ``force``), would overwrite the input, or cannot be written.
    """
    s = settings or RestoreSettings()
    dst = Path(output)
    sequence = find_sequence(source) if is_sequence(source) else None
    images = (
        image_output(output, s.image_format, sequence.suffix if sequence else ".png")
        if is_image_output(output)
        else None
    )
    inputs = list(sequence.files) if sequence is not None else [Path(source)]
    stems: list[str] | None = None
    if sequence is None and not Path(source).is_file():
        raise InputError(f"{source}: no such file")
    if images is not None:
        check_image_output(inputs, images, s.force)
        if sequence is not None and images.pattern is None:
            stems = [f.stem for f in sequence.files]
            check_unique_names(sequence, images, stems)
    else:
        check_video_output(inputs, dst, s.force)
    save_track = _check_save_track(s, inputs, dst, images.folder if images is not None else None)
    keys = parse_keyframes(s.keyframes) if s.keyframes is not None else None
    track = CoefficientTrack.load(s.track) if s.track is not None else None
    rng = _Range(s)
    src = open_source(source, fps=s.fps, copy_streams=images is None)
    try:
        if images is None:
            vstream = src.video[1] if src.video is not None else None
            check_encoder(s.encode, dst, vstream.codec_context.pix_fmt if vstream is not None else None)
        _check_before_work(src, s, rng, keys, track)
        model = load_model(s.model, device=s.device, dtype=s.dtype)
        resolver, settled = _resolver(source, src, model, s, keys, track)
        t_start = time.perf_counter()
        with contextlib.ExitStack() as outputs:
            # The track's file is claimed first and renamed into place last, after the video.
            track_tmp = None
            if save_track is not None:
                track_tmp = outputs.enter_context(atomic_output(save_track, force=s.force))
            if images is not None:
                tmp = outputs.enter_context(atomic_folder(images.folder, force=s.force))
                sink: FrameSink = ImageSink(tmp, images, stems)
            else:
                tmp = outputs.enter_context(atomic_output(dst, force=s.force))
                sink = VideoSink(tmp, dst, s.encode, (rng.t0, rng.t1), src.video, src.rate, src.time_base)
            summary = _run(src, sink, model, s, rng, resolver, settled, t_start, dst, track_tmp)
    except av.error.FFmpegError as e:
        raise OutputError(f"{dst}: writing failed ({e})") from None
    finally:
        src.close()
    return summary


def _check_save_track(
    s: RestoreSettings, inputs: Sequence[Path], output: Path, folder: Path | None
) -> Path | None:
    """The track file to write, refused before any work if it cannot be (see :func:`check_track_output`)."""
    if s.save_track is None:
        return None
    path = Path(s.save_track)
    if path.resolve() == output.resolve():
        raise OutputError(f"{path}: the track would overwrite the output")
    if folder is not None and path.resolve().is_relative_to(folder.resolve()):
        raise OutputError(f"{path}: the track would be inside the output folder {folder}, which the images replace")
    if any(path.resolve() == f.resolve() for f in inputs):
        raise OutputError(f"{path}: the track would overwrite the input")
    return check_track_output(path, force=s.force)


def _check_outscale(width: int, height: int, outscale: float | None, name: str) -> None:
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


def _check_before_work(
    src: FrameSource, s: RestoreSettings, rng: _Range, keys: Keyframes | None, track: CoefficientTrack | None
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
        _check_outscale(*src.size, s.outscale, src.name)
    if track is not None:
        _check_track(track, Path(s.track or "track"), src, rng)
        if keys is not None:
            check_keyframes(track, keys)
    elif keys is not None:
        check_key_positions(keys, frames=total, duration=duration, source=src.name)


def _check_track(track: CoefficientTrack, path: Path, src: FrameSource, rng: _Range) -> None:
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


def _resolver(
    source: str | Path,
    src: FrameSource,
    model: ModulatedModel,
    s: RestoreSettings,
    keys: Keyframes | None,
    track: CoefficientTrack | None,
) -> tuple[CoefficientResolver, dict[int, FrameCoefficients] | None]:
    """The resolver of a restore, and the dict the streamed analysis settles records into (None
    when the coefficients come from a track)."""
    if track is None and keys is not None:
        track = analyze(source, model, config=s.analysis, progress=s.progress, fps=s.fps)
        check_keyframes(track, keys)  # scene keys can only be checked now, before any frame is restored
    elif track is None:
        settled: dict[int, FrameCoefficients] = {}
        return CoefficientResolver.from_analysis(settled.pop, blur=s.blur, noise=s.noise), settled
    resolver = CoefficientResolver.from_track(
        track, keyframes=keys, blur=s.blur, noise=s.noise, model=model.name, source=src.name
    )
    return resolver, None


# --- the one restore loop ---------------------------------------------------------------------------


def _run(
    src: FrameSource,
    sink: FrameSink,
    model: ModulatedModel,
    s: RestoreSettings,
    rng: _Range,
    resolver: CoefficientResolver,
    settled: dict[int, FrameCoefficients] | None,
    t_start: float,
    dst: Path,
    save_track: Path | None = None,
) -> RestoreSummary:
    """Frames from ``src`` -> coefficients from ``resolver`` -> batched ``model.restore_frames`` ->
    ``sink``. With ``settled`` (automatic coefficients), a streaming analysis settles each kept
    frame's record into it (keyed by the analysis' count of kept frames) before the frame is restored.
    The records used are written to ``save_track``, if given.

    A part of the input ends at its first frame past the part; the file is then read on (without
    decoding pictures) for the copied streams' packets of the part that the file stores later
    than its last picture (an audio stream muxed behind the video).

    A picture whose stream carries a display rotation (phone videos) is turned upright right after
    its conversion to RGB, for the analysis and for the model alike, and the output carries no
    rotation: the analysis' crops and the model's tiles see the picture as it is meant to be seen,
    image outputs (which have no rotation tag) come out upright, and every output displays as the
    input did. :func:`analyze` turns its frames the same way, so tracks match.
    """
    records: list[FrameCoefficients] = []
    written = 0
    src.on_packet = sink.send_packet
    analysis = StreamingAnalysis(model, s.analysis, fps=src.fps, lookahead=s.lookahead) if settled is not None else None
    waiting: deque[tuple[int, int, av.VideoFrame]] = deque()  # (kept, input index, picture)
    batch: list[tuple[int, av.VideoFrame, FrameCoefficients]] = []
    bar = _progress_bar(s.progress, _expected_frames(s, src.total), "restore")
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
        # Left on the model's device: the sink codes GPU pictures there (see VideoSink.write).
        y = model.restore_frames(x, coeffs, (out_h, out_w), tile=s.tile, tile_overlap=s.tile_overlap)
        for k, (index, frame, _) in enumerate(batch):
            alpha = alphas[k]
            if alpha is not None:
                alpha = F.interpolate(alpha[None, None], size=(out_h, out_w), mode="bilinear", align_corners=False)[
                    0, 0
                ]
            sink.write(index, frame, y[k], alpha)
            written += 1
            if bar is not None:
                bar.update(1)
        batch.clear()

    def restore_ready() -> None:
        """Queues every waiting frame whose record is known, in order."""
        while waiting and (settled is None or waiting[0][0] in settled):
            kept_index, index, frame = waiting.popleft()
            record = resolver.record(kept_index if settled is not None else index)
            if record.index != index:  # the analysis counts kept frames; a track names source frames
                record = dataclasses.replace(record, index=index)
            records.append(record)
            batch.append((index, frame, record))
            if len(batch) >= s.batch:
                flush_batch()

    def settle(new: list[FrameCoefficients]) -> None:
        assert settled is not None
        for rec in new:
            settled[rec.index] = rec
        restore_ready()

    try:
        last_time: float | None = None
        stopped: float | None = None  # the part's end, in seconds, when it ends before the input
        for index, t, frame in src.frames():
            last_time = t
            if rng.past(index, t):
                stopped = rng.t1 if rng.t1 is not None else t
                break
            if not rng.keeps(index, t):
                continue
            if desc is None:
                desc = ColourDescription.from_frame(frame)
                orientation = Orientation.of(frame)
                _describe_input(src.name, frame, orientation)
                w, h = orientation.size(frame.width, frame.height)
                _check_outscale(w, h, s.outscale, src.name)
                for note in model.tiling_notes(w, h, s.tile, s.tile_overlap):
                    log.warning("%s: %s", src.name, note)
                out_w, out_h = model.output_size(w, h, s.outscale, sink.size_multiple)
                sink.open(frame, t, desc, (out_w, out_h), shifted=rng.shifted)
            waiting.append((kept, index, frame))
            if analysis is not None:
                rgb, _ = frame_to_tensor(frame, desc)
                settle(analysis.push(kept, t, to_rgb8(orientation.apply(rgb))))
            else:
                restore_ready()
            kept += 1
            sink.check()
        if stopped is not None and desc is not None:
            sink.stop_at(stopped)
            src.read_packets_until(stopped, sink.copied_streams)
        elif stopped is None and last_time is not None:
            src.complete(last_time)
        if analysis is not None and (waiting or batch):
            settle(analysis.finish())
        flush_batch()
        src.close()
        if desc is None:
            raise InputError(
                f"{src.name}: no video frame in the selected range"
                if rng.shifted
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
    if save_track is not None:
        CoefficientTrack(tuple(records), model=model.name, fps=src.fps).save(save_track, force=True)
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


def _describe_input(name: str, frame: av.VideoFrame, orientation: Orientation) -> None:
    """Says, once, what is done about the input's orientation and interlacing."""
    if not orientation.identity:
        log.info("%s: players show this stream turned %s (its display matrix); it is restored upright", name, orientation)
    if frame.interlaced_frame:
        log.warning(
            "%s: the video is interlaced; it is restored frame by frame without deinterlacing "
            "(deinterlace it first, e.g. with a VapourSynth QTGMC script, for better results)",
            name,
        )


def _expected_frames(s: RestoreSettings, total: int | None) -> int | None:
    if s.frames is not None and s.frames[1] is not None:
        return s.frames[1] - s.frames[0]
    return total


def _progress_bar(enabled: bool, total: int | None, what: str) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total or None, unit="frame", desc=what, disable=None, dynamic_ncols=True)
