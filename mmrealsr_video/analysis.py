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
from pathlib import Path

import cv2
import numpy as np
import torch

from mmrealsr_video.errors import InputError
from mmrealsr_video.model import ModulatedModel, load_model
from mmrealsr_video.plan import PlanConfig, plan_auto, scene_ranges
from mmrealsr_video.scenes import SceneDetector, SceneDetectorConfig, normalize_cuts
from mmrealsr_video.track import CoefficientTrack, FrameCoefficients
from mmrealsr_video.video import DecodedFrame, iter_frames, probe

__all__ = ["AnalysisConfig", "CropEstimator", "analyze", "analyze_frames", "select_crops"]

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
    every = 1 if cfg.plan.mode == "raw" else cfg.sample_every
    detector = None if cuts is not None else SceneDetector(cfg.detector, fps=fps or 25.0)
    recent: deque[DecodedFrame] = deque(maxlen=(detector.lookahead + 2) if detector else 1)
    estimator = CropEstimator(model, cfg)
    found: list[int] = []
    times: list[float] = []
    wanted_cuts = set(cuts or ())
    for frame in frames:
        times.append(frame.pts_time)
        recent.append(frame)
        if frame.index % every == 0 or frame.index in wanted_cuts:
            estimator.add(frame.index, frame.rgb)
        if detector is not None:
            for cut in detector.process_frame(frame.index, frame.rgb):
                found.append(cut)
                _sample_cut(estimator, recent, cut)
        if on_frame is not None:
            on_frame(frame.index)
    n = len(times)
    if n == 0:
        raise InputError("analysis: the video holds no frame")
    if detector is not None:
        for cut in detector.post_process():
            found.append(cut)
            _sample_cut(estimator, recent, cut)
        scene_cuts = normalize_cuts(found, n, min_scene_len=cfg.detector.min_scene_len)
    else:
        scene_cuts = normalize_cuts(cuts or (), n, source="external cuts")
        late = [c for c in (cuts or ()) if isinstance(c, int) and c >= n]
        if late:
            log.warning("external cuts past the last frame (%d) ignored: %s", n - 1, late[:5])
    estimator.flush()
    auto = plan_auto(n, scene_cuts, estimator.samples, cfg.plan)
    records = []
    for scene, (first, last) in enumerate(scene_ranges(scene_cuts, n)):
        for i in range(first, last):
            raw = estimator.samples.get(i)
            records.append(
                FrameCoefficients(
                    index=i,
                    pts_time=times[i],
                    scene=scene,
                    raw_blur=raw[0] if raw else None,
                    raw_noise=raw[1] if raw else None,
                    auto_blur=float(auto[i, 0]),
                    auto_noise=float(auto[i, 1]),
                    blur=float(auto[i, 0]),
                    noise=float(auto[i, 1]),
                    source="auto",
                )
            )
    return CoefficientTrack(tuple(records), model=model.name, fps=fps)


def _sample_cut(estimator: CropEstimator, recent: deque[DecodedFrame], cut: int) -> None:
    """Every scene's first frame is sampled, from the frames still held for the detector's lookahead."""
    for frame in recent:
        if frame.index == cut:
            estimator.add(cut, frame.rgb)
            return
    log.debug("cut at %d confirmed after its frame left the lookahead; scene sampled from later frames", cut)


def analyze(
    source: str | Path,
    model: str | Path | ModulatedModel = "default",
    *,
    config: AnalysisConfig | None = None,
    cuts: Sequence[int] | None = None,
    keyframes: str | Path | None = None,
    device: str = "cpu",
    progress: bool = False,
) -> CoefficientTrack:
    """Analyses a video file: scene cuts, per-scene degradation estimates, keyframed overrides.

    Args:
        source: a video file PyAV can open.
        model: a bundled model's name, a weights file, or a loaded model; its own estimator is
            used (coefficients are meaningful only for the generator trained with it).
        config: sampling, detection and aggregation settings.
        cuts: scene cuts given from outside (first frame of each new scene); skips detection.
        keyframes: a keyframe file or string (see docs/keyframes.md) applied on top.
        device: where the estimator runs.
        progress: show a progress bar (only on a terminal).

    Returns:
        The track: one record per frame.
    """
    info = probe(source)
    m = model if isinstance(model, ModulatedModel) else load_model(model, device=device)
    fps = float(info.frame_rate) if info.frame_rate else None
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=info.frames or None, unit="frame", desc="analyse", disable=None)
    try:
        track = analyze_frames(
            iter_frames(source),
            m,
            config=config,
            cuts=cuts,
            fps=fps,
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
