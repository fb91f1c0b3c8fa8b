"""Analysis: scene cuts and degradation estimates of a video, turned into a ``CoefficientTrack``.

One sequential pass (no seeking). Each frame goes to the scene detector (a 64-px proxy); every
``sample_every``-th frame, and the first frame of every scene, gives a few native-resolution crops
to the estimator paired with the generator in use (estimation on full frames would cost as much
as a large part of the generator; crops keep it to a small fraction, see
``benchmarks/bench_analysis.py``). Crops are chosen among a 3x3 grid as the most textured ones
(blur is invisible in flat areas); their estimates are averaged. The plan (``mmrealsr_video.plan``)
then aggregates the samples per scene.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import torch

from mmrealsr_video.errors import InputError
from mmrealsr_video.model import ModulatedModel, load_model
from mmrealsr_video.plan import PlanConfig, plan_auto
from mmrealsr_video.scenes import SceneDetector, SceneDetectorConfig, normalize_cuts
from mmrealsr_video.track import CoefficientTrack, FrameCoefficients
from mmrealsr_video.video import DecodedFrame, iter_frames, probe

__all__ = [
    "AnalysisConfig",
    "CropEstimator",
    "StreamingAnalysis",
    "analyze",
    "analyze_frames",
    "select_crops",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnalysisConfig:
    """How a video is analysed.

    Attributes:
        sample_every: estimate every k-th frame (and each scene's first frame); ``raw`` mode uses 1.
        crops: crops per sampled frame given to the estimator.
        crop_size: side of a crop, in input pixels.
        batch: sampled frames per estimator batch.
        detector: scene-cut detection settings.
        plan: aggregation of the estimates (scene, drift or raw).
    """

    sample_every: int = 6
    crops: int = 4
    crop_size: int = 64
    batch: int = 8
    detector: SceneDetectorConfig = field(default_factory=SceneDetectorConfig)
    plan: PlanConfig = field(default_factory=PlanConfig)

    def __post_init__(self) -> None:
        for name in ("sample_every", "crops", "crop_size", "batch"):
            if getattr(self, name) < 1:
                raise InputError(f"analysis: {name} must be at least 1, not {getattr(self, name)}")
        if self.crops > 9:
            raise InputError(f"analysis: at most 9 crops per frame (a 3x3 grid), not {self.crops}")


def select_crops(rgb: np.ndarray, count: int, size: int) -> np.ndarray:
    """The ``count`` most textured ``size``-square crops of a 3x3 grid: (count, size, size, 3).

    A frame smaller than a crop is used whole (one crop of the frame's size, repeated).
    """
    h, w = rgb.shape[:2]
    if h <= size or w <= size:
        s = min(h, w)
        y0, x0 = (h - s) // 2, (w - s) // 2
        return np.repeat(rgb[None, y0 : y0 + s, x0 : x0 + s], count, axis=0)
    ys = np.linspace(0, h - size, 3).round().astype(int)
    xs = np.linspace(0, w - size, 3).round().astype(int)
    gray = (
        cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if rgb.dtype == np.uint8
        else rgb.mean(axis=2).astype(np.float32)
    )
    scored = []
    for y in ys:
        for x in xs:
            patch = gray[y : y + size, x : x + size]
            scored.append((float(cv2.Laplacian(patch, cv2.CV_32F).var()), int(y), int(x)))
    # Stable order (score, then position) so that the choice does not flicker on ties.
    scored.sort(key=lambda t: (-t[0], t[1], t[2]))
    return np.stack([rgb[y : y + size, x : x + size] for _, y, x in scored[:count]])


class CropEstimator:
    """Batches crops of sampled frames through ``model.estimate``; averages each frame's crops."""

    def __init__(self, model: ModulatedModel, config: AnalysisConfig) -> None:
        self.model = model
        self.config = config
        self._pending: list[tuple[int, np.ndarray]] = []
        self.samples: dict[int, tuple[float, float]] = {}

    def add(self, index: int, rgb: np.ndarray) -> None:
        if index in self.samples or any(i == index for i, _ in self._pending):
            return
        self._pending.append((index, select_crops(rgb, self.config.crops, self.config.crop_size)))
        if len(self._pending) >= self.config.batch:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        # Crops of one batch share a size unless a frame was smaller than a crop.
        groups: dict[tuple[int, ...], list[tuple[int, np.ndarray]]] = {}
        for item in self._pending:
            groups.setdefault(item[1].shape, []).append(item)
        for items in groups.values():
            stack = np.concatenate([c for _, c in items])
            peak = 65535.0 if stack.dtype == np.uint16 else 255.0
            x = torch.from_numpy(stack).permute(0, 3, 1, 2).float().div_(peak)
            est = self.model.estimate(x).float().cpu().view(len(items), self.config.crops, -1).mean(dim=1)
            for (index, _), value in zip(items, est.clamp(0, 1).tolist(), strict=True):
                self.samples[index] = (float(value[0]), float(value[1]))
        self._pending.clear()


class StreamingAnalysis:
    """Scene detection, sampled estimation and the plan, one frame at a time.

    ``push`` takes frames in order and returns the records whose coefficients are settled: a
    scene's frames are settled when its end is known (the next cut, or the end of the stream).
    With a ``lookahead``, a scene longer than that is settled window by window: each window uses
    the scene's samples so far, and the values are blended from where the previous window ended,
    so that the curve stays continuous. Scenes shorter than the lookahead get exactly the values of
    an unbounded analysis.
    """

    def __init__(
        self,
        model: ModulatedModel,
        config: AnalysisConfig | None = None,
        *,
        fps: float | None = None,
        lookahead: int | None = None,
        cuts: Sequence[int] | None = None,
    ) -> None:
        self.config = cfg = config or AnalysisConfig()
        self._every = 1 if cfg.plan.mode == "raw" else cfg.sample_every
        self._detector = None if cuts is not None else SceneDetector(cfg.detector, fps=fps or 25.0)
        delay = self._detector.lookahead if self._detector else 0
        self._delay = delay
        self._recent: deque[tuple[int, np.ndarray]] = deque(maxlen=delay + 2)
        self._cuts = sorted({int(c) for c in cuts}) if cuts is not None else None
        self._estimator = CropEstimator(model, cfg)
        self._lookahead = lookahead
        self._times: dict[int, float] = {}
        self._n = 0
        self._pending = 0  # first frame not yet settled
        self._scene_start = 0
        self._scene = 0
        self._last: tuple[float, float] | None = None  # the last settled frame's auto values
        self.cuts: list[int] = []

    def push(
        self, index: int, pts_time: float, rgb: np.ndarray, *, cut: bool = False
    ) -> list[FrameCoefficients]:
        """Feeds frame ``index`` (RGB uint8/uint16, any size); returns newly settled records.

        ``cut`` marks the frame as the first of a new scene, for analyses made with external cuts
        (``cuts=``, possibly empty) whose cuts arrive with the frames (VapourSynth's
        ``_SceneChangePrev``); it is ignored when the detector runs.
        """
        if index != self._n:
            raise InputError(f"analysis: frames must arrive in order (expected {self._n}, got {index})")
        self._n += 1
        self._times[index] = pts_time
        self._recent.append((index, rgb))
        external = (
            self._detector is None and index > 0 and (cut or (self._cuts is not None and index in self._cuts))
        )
        if index % self._every == 0 or external:
            self._estimator.add(index, rgb)
        if self._detector is not None:
            new = self._detector.process_frame(index, rgb)
        else:
            new = [index] if external else []
        out: list[FrameCoefficients] = []
        for c in new:
            out += self._cut(c)
        if self._lookahead is not None and index + 1 - self._pending > self._lookahead:
            safe = index + 1 - self._delay  # no unconfirmed cut can fall before this frame
            if safe > self._pending:
                out += self._settle(safe, scene_ends=False)
        return out

    def finish(self) -> list[FrameCoefficients]:
        """Ends the stream: settles every remaining frame."""
        out: list[FrameCoefficients] = []
        if self._detector is not None:
            for cut in self._detector.post_process():
                out += self._cut(cut)
        if self._n == 0:
            raise InputError("analysis: the video holds no frame")
        if self._pending < self._n:
            out += self._settle(self._n, scene_ends=True)
        return out

    def _cut(self, cut: int) -> list[FrameCoefficients]:
        if cut <= self._scene_start or cut < self._pending:
            return []  # too late to honour (already settled past it)
        for i, rgb in self._recent:
            if i == cut:
                self._estimator.add(cut, rgb)
                break
        out = self._settle(cut, scene_ends=True)
        self.cuts.append(cut)
        self._scene += 1
        self._scene_start = cut
        return out

    def _settle(self, end: int, *, scene_ends: bool) -> list[FrameCoefficients]:
        self._estimator.flush()
        first, samples = self._scene_start, self._estimator.samples
        scene_samples = {i - first: v for i, v in samples.items() if first <= i < end}
        length = end - first
        if scene_samples:
            auto = plan_auto(length, [], scene_samples, self.config.plan)[self._pending - first :]
        else:
            fallback = self._last if self._last is not None else (0.0, 0.0)
            auto = np.tile(np.asarray(fallback, dtype=np.float64), (end - self._pending, 1))
        if self._pending > first and self._last is not None and len(auto):
            # Continue from the previous window: the difference fades out over this window.
            gap = np.asarray(self._last) - auto[0]
            ramp = 1.0 - np.arange(len(auto))[:, None] / len(auto)
            auto = np.clip(auto + gap * ramp, 0.0, 1.0)
        records = []
        for k, i in enumerate(range(self._pending, end)):
            raw = samples.get(i)
            b, n = float(auto[k, 0]), float(auto[k, 1])
            records.append(
                FrameCoefficients(
                    index=i,
                    pts_time=self._times.pop(i),
                    scene=self._scene,
                    raw_blur=raw[0] if raw else None,
                    raw_noise=raw[1] if raw else None,
                    auto_blur=b,
                    auto_noise=n,
                    blur=b,
                    noise=n,
                    source="auto",
                )
            )
        if records:
            self._last = (records[-1].auto_blur, records[-1].auto_noise)
        self._pending = end
        if scene_ends:
            for i in [i for i in samples if i < end]:
                del samples[i]  # memory stays bounded by the scene, not the video
        return records


def analyze_frames(
    frames: Iterable[DecodedFrame],
    model: ModulatedModel,
    *,
    config: AnalysisConfig | None = None,
    cuts: Sequence[int] | None = None,
    fps: float | None = None,
    on_frame: Callable[[int], None] | None = None,
) -> CoefficientTrack:
    """Analyses decoded frames (in order) with ``model``'s estimator; see :func:`analyze`."""
    cfg = config or AnalysisConfig()
    clean_cuts = None
    if cuts is not None:
        clean_cuts = normalize_cuts(cuts, 2**62, source="external cuts")
    stream = StreamingAnalysis(model, cfg, fps=fps, cuts=clean_cuts)
    records: list[FrameCoefficients] = []
    for frame in frames:
        records += stream.push(frame.index, frame.pts_time, frame.rgb)
        if on_frame is not None:
            on_frame(frame.index)
    records += stream.finish()
    if clean_cuts:
        late = [c for c in clean_cuts if c >= len(records)]
        if late:
            log.warning("external cuts past the last frame (%d) ignored: %s", len(records) - 1, late[:5])
    return CoefficientTrack(tuple(records), model=model.name, fps=fps)


def analyze(
    source: str | Path,
    model: str | Path | ModulatedModel = "default",
    *,
    config: AnalysisConfig | None = None,
    cuts: Sequence[int] | None = None,
    keyframes: str | Path | None = None,
    device: str = "cpu",
    progress: bool = False,
    fps: float | Fraction | str | None = None,
) -> CoefficientTrack:
    """Analyses a video file or an image sequence: scene cuts, per-scene degradation estimates,
    keyframed overrides.

    Args:
        source: a video file PyAV can open, or an image sequence (a folder, ``frames/%05d.png`` or
            ``frames/*.png``; see :mod:`mmrealsr_video.sequences`).
        model: a bundled model's name, a weights file, or a loaded model; its own estimator is
            used (coefficients are meaningful only for the generator trained with it).
        config: sampling, detection and aggregation settings.
        cuts: scene cuts given from outside (first frame of each new scene); skips detection.
        keyframes: a keyframe file or string (see docs/keyframes.md) applied on top.
        device: where the estimator runs.
        progress: show a progress bar (only on a terminal).
        fps: an image sequence's frame rate (default 25); a video keeps its own.

    Returns:
        The track: one record per frame.
    """
    from mmrealsr_video.sequences import as_rate, find_sequence, is_sequence, iter_sequence_frames

    frames: Iterable[DecodedFrame]
    frame_rate: float | None
    if is_sequence(source):
        rate = as_rate(fps)
        sequence = find_sequence(source)
        frames, total, frame_rate = iter_sequence_frames(sequence, rate), len(sequence), float(rate)
    else:
        if fps is not None:
            raise InputError(
                f"--fps sets an image sequence's frame rate; {source} is a video and keeps its own"
            )
        info = probe(source)
        frames, total = iter_frames(source), info.frames
        frame_rate = float(info.frame_rate) if info.frame_rate else None
    m = model if isinstance(model, ModulatedModel) else load_model(model, device=device)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total or None, unit="frame", desc="analyse", disable=None)
    try:
        track = analyze_frames(
            frames,
            m,
            config=config,
            cuts=cuts,
            fps=frame_rate,
            on_frame=(lambda _i: bar.update(1)) if bar is not None else None,
        )
    finally:
        if bar is not None:
            bar.close()
    log.info("%s: %d frames, %d scenes", source, len(track), len(track.scenes()))
    if keyframes is not None:
        from mmrealsr_video.keyframes import apply_keyframes, parse_keyframes

        track = apply_keyframes(track, parse_keyframes(keyframes))
    return track
