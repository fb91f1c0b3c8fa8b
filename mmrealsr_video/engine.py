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
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error
import torch

from mmrealsr_video.analysis.streaming import AnalysisConfig, StreamingAnalysis
from mmrealsr_video.errors import InputError, OutputError
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
from mmrealsr_video.models.loader import ModulatedModel, load_model
from mmrealsr_video.passes import RestoreSummary, analysis_pass, restore_pass, summarize
from mmrealsr_video.plan.keyframes import (
    Keyframes,
    apply_keyframes,
    check_key_positions,
    check_keyframes,
    parse_keyframes,
)
from mmrealsr_video.plan.resolver import CoefficientResolver
from mmrealsr_video.plan.track import CoefficientTrack, FrameCoefficients
from mmrealsr_video.preflight import FrameRange, check_before_work, check_outscale, check_save_track
from mmrealsr_video.settings import ImageSettings, RestoreSettings

__all__ = ["ImageSummary", "RestoreSummary", "analyze", "restore_image", "restore_video"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageSummary:
    """What an image restore did: sizes, the coefficients used and the automatic ones."""

    output: Path
    input_size: tuple[int, int]
    output_size: tuple[int, int]
    record: FrameCoefficients
    model: str
    seconds: float


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
    track = analysis_pass(src, decoded_frames(src), m, config, cuts=cuts, progress=progress, total=src.total)
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
    check_outscale(w, h, s.outscale, str(src))
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
    save_track = check_save_track(s, inputs, dst, images.folder if images is not None else None)
    keys = parse_keyframes(s.keyframes) if s.keyframes is not None else None
    track = CoefficientTrack.load(s.track) if s.track is not None else None
    rng = FrameRange(s)
    src = open_source(source, fps=s.fps, copy_streams=images is None)
    try:
        if images is None:
            vstream = src.video[1] if src.video is not None else None
            check_encoder(s.encode, dst, vstream.codec_context.pix_fmt if vstream is not None else None)
        check_before_work(src, s, rng, keys, track)
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
            result = restore_pass(src, sink, model, s, rng, resolver, settled, save_track=track_tmp)
        summary = summarize(dst, result, time.perf_counter() - t_start)
    except av.error.FFmpegError as e:
        raise OutputError(f"{dst}: writing failed ({e})") from None
    finally:
        src.close()
    return summary


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
