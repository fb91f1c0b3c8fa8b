"""The restore pass: frames from a source, their coefficients from the plan's resolver, batched
through the model, into a sink. The one loop under every restore: the single-pass
:func:`~mmrealsr_video.engine.restore_video` and each chunk of a job. Also the job's planning pass
(:func:`planned_track`): every kept frame's final coefficients, before any frame is restored.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
import torch.nn.functional as F

from mmrealsr_video.analysis.streaming import AnalysisConfig, StreamingAnalysis, analyze_frames
from mmrealsr_video.errors import InputError
from mmrealsr_video.io.colour import ColourDescription, frame_to_tensor, to_rgb8
from mmrealsr_video.io.sink import FrameSink
from mmrealsr_video.io.source import FrameSource, decoded_frames, open_source
from mmrealsr_video.io.video import DecodedFrame, Orientation
from mmrealsr_video.models.loader import ModulatedModel
from mmrealsr_video.plan.keyframes import apply_keyframes, check_keyframes, parse_keyframes
from mmrealsr_video.plan.resolver import CoefficientResolver
from mmrealsr_video.plan.track import CoefficientTrack, FrameCoefficients
from mmrealsr_video.preflight import FrameRange, check_before_work, check_outscale
from mmrealsr_video.settings import RestoreSettings

__all__ = [
    "FrameRange",
    "PassResult",
    "RestoreSummary",
    "analysis_pass",
    "planned_track",
    "progress_bar",
    "restore_pass",
    "summarize",
]

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
    chunks: int = 1  # a job's chunks (1 for a single pass)
    resumed: int = 0  # chunks a job found done by an earlier run


@dataclass(frozen=True)
class PassResult:
    """What a restore pass did: the records used (with source frame numbers), frames written and
    the output's size."""

    records: tuple[FrameCoefficients, ...]
    frames: int
    width: int
    height: int


def summarize(
    output: Path, result: PassResult, seconds: float, *, chunks: int = 1, resumed: int = 0
) -> RestoreSummary:
    """The summary of a restore from its pass (or its job's track and output size)."""
    c = np.asarray([[r.blur, r.noise] for r in result.records]) if result.records else np.zeros((1, 2))
    return RestoreSummary(
        output=output,
        frames=result.frames,
        seconds=seconds,
        fps=result.frames / seconds if seconds > 0 else 0.0,
        scenes=len({r.scene for r in result.records}),
        blur_range=(float(c[:, 0].min()), float(c[:, 0].max())),
        noise_range=(float(c[:, 1].min()), float(c[:, 1].max())),
        width=result.width,
        height=result.height,
        chunks=chunks,
        resumed=resumed,
    )


def planned_track(
    source: Path, model: ModulatedModel, s: RestoreSettings
) -> tuple[CoefficientTrack, float | None]:
    """Every kept frame's final coefficients (source frame numbers), before any is restored: from
    ``s.track``, or an analysis (of the whole input with keyframes, whose positions need the whole
    timeline; of the kept frames otherwise, each scene whole), then keyframes and fixed values.
    Also the time where the kept part ends (that of the first frame past it; None: the end of the
    input), up to which the other streams are copied.

    Raises:
        InputError: a track or keyframes that do not fit the input (checked before any decoding
            where the container declares enough), an input without frames in the part asked for.
    """
    rng = FrameRange(s)
    keys = parse_keyframes(s.keyframes) if s.keyframes is not None else None
    track = CoefficientTrack.load(s.track) if s.track is not None else None
    src = open_source(source)
    try:
        check_before_work(src, s, rng, keys, track)
    finally:
        src.close()
    end_time: list[float] = []
    if track is None:
        track = _analysed(source, model, s, rng, whole=keys is not None, end_time=end_time)
    if keys is not None:
        check_keyframes(track, keys)
        track = apply_keyframes(track, keys)
    resolver = CoefficientResolver.from_track(
        track, blur=s.blur, noise=s.noise, model=model.name, source=str(source)
    )
    kept = [resolver.record(f.index) for f in track.frames if rng.keeps(f.index, f.pts_time)]
    if not kept:
        raise InputError(f"{source}: no video frame in the selected range")
    if rng.t1 is not None:
        end: float | None = rng.t1
    elif rng.end is None:
        end = None
    elif end_time:
        end = end_time[0]
    else:  # the part's end, from the frames themselves (a track was given)
        end = next((f.pts_time for f in decoded_frames(open_source(source)) if f.index >= rng.end), None)
    return CoefficientTrack(tuple(kept), model=model.name, fps=track.fps), end


def analysis_pass(
    src: FrameSource,
    frames: Iterable[DecodedFrame],
    model: ModulatedModel,
    config: AnalysisConfig | None,
    *,
    cuts: Sequence[int] | None = None,
    progress: bool = False,
    total: int | None = None,
) -> CoefficientTrack:
    """Analyses ``frames`` (read from ``src``, which is closed at the end) with a progress bar."""
    bar = progress_bar(progress, total, "analyse")
    try:
        return analyze_frames(
            frames,
            model,
            config=config,
            cuts=cuts,
            fps=src.fps,
            on_frame=(lambda _i: bar.update(1)) if bar is not None else None,
        )
    finally:
        src.close()
        if bar is not None:
            bar.close()


def _analysed(
    source: Path,
    model: ModulatedModel,
    s: RestoreSettings,
    rng: FrameRange,
    *,
    whole: bool,
    end_time: list[float],
) -> CoefficientTrack:
    """The analysis of the input (``whole``) or of its kept frames, with their source numbers; the
    time of the first frame past the part is appended to ``end_time``."""
    src = open_source(source)
    numbers: list[int] = []

    def kept_frames() -> Any:
        for f in decoded_frames(src):
            if rng.past(f.index, f.pts_time) and not end_time:
                end_time.append(f.pts_time)
                if not whole:
                    return
            if whole or rng.keeps(f.index, f.pts_time):
                numbers.append(f.index)
                yield dataclasses.replace(f, index=len(numbers) - 1)

    track = analysis_pass(
        src, kept_frames(), model, s.analysis, progress=s.progress, total=_expected_frames(s, src.total)
    )
    return track.with_frames(dataclasses.replace(r, index=numbers[r.index]) for r in track.frames)


# --- the one restore loop ---------------------------------------------------------------------------


def restore_pass(
    src: FrameSource,
    sink: FrameSink,
    model: ModulatedModel,
    s: RestoreSettings,
    rng: FrameRange,
    resolver: CoefficientResolver,
    settled: dict[int, FrameCoefficients] | None,
    *,
    save_track: Path | None = None,
    cancel: threading.Event | None = None,
    on_frame: Callable[[int], None] | None = None,
) -> PassResult:
    """Frames from ``src`` -> coefficients from ``resolver`` -> batched ``model.restore_frames`` ->
    ``sink``. With ``settled`` (automatic coefficients), a streaming analysis settles each kept
    frame's record into it (keyed by the analysis' count of kept frames) before the frame is restored.
    The records used are written to ``save_track``, if given. ``cancel``, when set, stops the pass
    at the next frame (KeyboardInterrupt, so that the caller cleans up as after Ctrl-C);
    ``on_frame`` is called with each restored frame's index.

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
    analysis = (
        StreamingAnalysis(model, s.analysis, fps=src.fps, lookahead=s.lookahead)
        if settled is not None
        else None
    )
    waiting: deque[tuple[int, int, av.VideoFrame]] = deque()  # (kept, input index, picture)
    batch: list[tuple[int, av.VideoFrame, FrameCoefficients]] = []
    bar = progress_bar(s.progress, _expected_frames(s, src.total), "restore")
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
            rgb, alpha = frame_to_tensor(frame, desc, device=model.conversion_device)
            tensors.append(orientation.apply(rgb))
            alphas.append(None if alpha is None else orientation.apply(alpha))
        x = torch.stack(tensors)
        coeffs = torch.tensor([[r.blur, r.noise] for _, _, r in batch], dtype=torch.float32)
        # Left on the model's device: the sink codes GPU pictures there (see VideoSink.write).
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
            if on_frame is not None:
                on_frame(index)
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
            if cancel is not None and cancel.is_set():
                raise KeyboardInterrupt
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
                check_outscale(w, h, s.outscale, src.name)
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
    return PassResult(tuple(records), written, out_w, out_h)


def _describe_input(name: str, frame: av.VideoFrame, orientation: Orientation) -> None:
    """Says, once, what is done about the input's orientation and interlacing."""
    if not orientation.identity:
        log.info(
            "%s: players show this stream turned %s (its display matrix); it is restored upright",
            name,
            orientation,
        )
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


def progress_bar(enabled: bool, total: int | None, what: str) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total or None, unit="frame", desc=what, disable=None, dynamic_ncols=True)
